"""The wheel in a fresh virtual environment with nothing else installed: the dict API works and
the table functions say what to install."""

from __future__ import annotations

import os
import pathlib
import subprocess
import sys
import venv

import pytest

ROOT = pathlib.Path(__file__).resolve().parents[3]

SCRIPT = r'''
import importlib.util, json, sys
for name in ("pyarrow", "pandas", "polars", "numpy"):
    assert importlib.util.find_spec(name) is None, name + " should not be installed"
import userops
e = userops.Engine()
r = e.ingest({"kind": "identify", "key": "k1", "time": "2026-01-05T10:00:00+08:00",
              "source": {"platform": "jd", "program": "brand-a"},
              "ids": [{"kind": "phone", "value": "13800138000"}]})
assert r["oneid"] == 1, r
assert e.resolve(("phone", "+86 138 0013 8000")) == 1
try:
    e.ingest_table({"key": ["k2"]})
except userops.MissingDependency as x:
    assert isinstance(x, ImportError) and isinstance(x, userops.UserOpsError)
    assert "pip install" in str(x) and "pyarrow" in str(x), str(x)
else:
    raise AssertionError("ingest_table without pyarrow should raise MissingDependency")
print(json.dumps({"ok": True, "version": userops.__version__, "file": userops.__file__}))
'''


def _wheel() -> pathlib.Path:
    given = os.environ.get("USEROPS_WHEEL")
    if given:
        return pathlib.Path(given)
    wheels = sorted((ROOT / "target" / "wheels").glob("userops-*.whl"), key=lambda p: p.stat().st_mtime)
    if not wheels:
        pytest.skip("no wheel built: run scripts/test (or maturin build) first")
    return wheels[-1]


def test_wheel_works_in_a_fresh_venv(tmp_path: pathlib.Path) -> None:
    wheel = _wheel()
    env_dir = tmp_path / "fresh"
    venv.create(env_dir, with_pip=False, clear=True)
    python = env_dir / "bin" / "python"
    # No index: if the wheel declared a required dependency, pip could not install it.
    subprocess.run(
        [sys.executable, "-m", "pip", "--python", str(python), "install", "-q",
         "--disable-pip-version-check", "--no-index", str(wheel)],
        check=True,
    )
    out = subprocess.run(
        [str(python), "-I", "-c", SCRIPT], check=True, capture_output=True, text=True, cwd=tmp_path
    )
    assert '"ok": true' in out.stdout
    assert str(env_dir) in out.stdout, "imported from the fresh venv, not from elsewhere"
