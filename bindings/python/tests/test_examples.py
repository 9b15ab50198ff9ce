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
    # The later sections: tags, audiences, lifecycle, RFM, churn, the promotion and coupons.
    assert "set ['spend', 'tier', 'vip'] for" in out
    for stage in ("churned", "dormant"):
        assert stage in out.split("== 7.")[1].split("== 8.")[0]
    assert "important_value" in out.split("== 8.")[1]
    assert "params: {'r':" in out
    assert "winback20#1" in out and "79.60" in out  # 20% of 398.00
