"""The Python examples run and say what they should."""

from __future__ import annotations

import pathlib
import subprocess
import sys

ROOT = pathlib.Path(__file__).resolve().parents[3]


def test_quickstart_runs() -> None:
    out = subprocess.run(
        [sys.executable, str(ROOT / "examples" / "python" / "quickstart.py"), "--members", "100"],
        check=True, capture_output=True, text=True,
    ).stdout
    assert "all duplicates → True" in out
    assert "invalid_event" in out and "phone" in out  # the bad phone row is reported
    persons = int(out.split(" persons;")[0].rsplit("→ ", 1)[1])
    assert 100 <= persons < 200, persons
