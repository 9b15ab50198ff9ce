"""Progress of the long table functions (lifecycle, active-rate decomposition, RFM): reported
by the core's hook between chunks (the GIL taken only to report), monotone up to the exact total,
the same result as without it, and a callback that raises (or Ctrl-C) stops the call."""

from __future__ import annotations

import datetime as dt
import os
import signal
import sys
import threading
import types
from typing import Any, Callable, List, Optional, Tuple

import numpy as np
import pyarrow as pa
import pytest

import userops

ROWS = 300_000


def _activity(rows: int = ROWS) -> pa.Table:
    rng = np.random.default_rng(5)
    start = np.datetime64("2025-01-01T00:00:00", "ms").astype(np.int64)
    return pa.table({
        "user": pa.array(rng.integers(0, rows // 10, rows), pa.int64()),
        "time": pa.array(start + rng.integers(0, 365 * 86_400_000, rows), pa.timestamp("ms", tz="UTC")),
        "amount": pa.array(rng.gamma(2.0, 50.0, rows)),
    })


CALLS: List[Tuple[str, Callable[..., Any], int]] = [
    ("lifecycle", lambda t, **kw: userops.lifecycle(t, tz=0, **kw), 2 * ROWS),
    ("active_rate_decomposition", lambda t, **kw: userops.active_rate_decomposition(t, tz=0, **kw), 2 * ROWS),
    ("rfm", lambda t, **kw: userops.rfm(t, "user", "time", "amount", as_of=dt.datetime(2026, 1, 1), **kw), ROWS),
]


@pytest.mark.parametrize("name,call,total", CALLS, ids=[c[0] for c in CALLS])
def test_progress_is_monotone_and_reaches_the_total(name: str, call: Callable[..., Any], total: int) -> None:
    t = _activity()
    seen: List[Tuple[int, int]] = []
    with_progress = call(t, progress=lambda done, tot: seen.append((done, tot)))
    assert len(seen) >= 4, seen
    assert all(tot == total for _, tot in seen), seen[:3]
    dones = [d for d, _ in seen]
    assert dones == sorted(dones) and dones[0] < total
    assert dones[-1] == total
    assert with_progress.equals(call(t, progress=False))


@pytest.mark.parametrize("name,call,total", CALLS, ids=[c[0] for c in CALLS])
def test_a_callback_that_raises_stops_the_call(name: str, call: Callable[..., Any], total: int) -> None:
    calls: List[int] = []

    def stop(done: int, tot: int) -> None:
        calls.append(done)
        raise RuntimeError("enough")

    with pytest.raises(RuntimeError, match="enough"):
        call(_activity(), progress=stop)
    assert len(calls) == 1  # the core stopped at the first report


@pytest.mark.usefixtures("sigint_raises")
def test_ctrl_c_stops_a_long_lifecycle() -> None:
    """SIGINT while the core runs without the GIL: KeyboardInterrupt at the next report, even
    with progress off (the hook still checks for signals)."""
    t = _activity()
    started = threading.Event()
    reports: List[int] = []

    def first(done: int, tot: int) -> None:
        reports.append(done)
        if not started.is_set():
            started.set()
            os.kill(os.getpid(), signal.SIGINT)

    with pytest.raises(KeyboardInterrupt):
        userops.lifecycle(t, tz=0, progress=first)
    assert len(reports) == 1
    # With progress=False: the signal arrives from another thread while the call runs.
    timer = threading.Timer(0.05, lambda: os.kill(os.getpid(), signal.SIGINT))
    big = pa.concat_tables([t] * 8)
    timer.start()
    try:
        with pytest.raises(KeyboardInterrupt):
            for _ in range(20):  # in case the signal lands between calls on a fast machine
                userops.lifecycle(big, tz=0, progress=False)
    finally:
        timer.join()


def test_other_threads_run_while_the_core_works() -> None:
    t = pa.concat_tables([_activity()] * 4)
    ticks: List[int] = []
    done = threading.Event()

    def count() -> None:
        while not done.is_set():
            ticks.append(1)
            done.wait(0.001)

    th = threading.Thread(target=count)
    th.start()
    try:
        userops.lifecycle(t, tz=0, progress=False)
    finally:
        done.set()
        th.join()
    assert len(ticks) > 5  # the GIL was free while the stages were computed


def test_progress_true_draws_a_tqdm_bar_sized_by_the_core(monkeypatch: pytest.MonkeyPatch) -> None:
    bars: List["FakeBar"] = []

    class FakeBar:
        def __init__(self, total: int, desc: str, unit: str, disable: Optional[bool]) -> None:
            self.total, self.desc, self.n, self.closed = total, desc, 0, False
            bars.append(self)

        def update(self, k: int) -> None:
            assert k >= 0
            self.n += k

        def close(self) -> None:
            self.closed = True

    fake = types.ModuleType("tqdm")
    setattr(fake, "tqdm", FakeBar)
    monkeypatch.setitem(sys.modules, "tqdm", fake)
    t = _activity(50_000)
    userops.lifecycle(t, tz=0, progress=True)
    userops.rfm(t, "user", "time", "amount", as_of=dt.datetime(2026, 1, 1), progress=True)
    assert [(b.desc, b.n, b.total, b.closed) for b in bars] == [
        ("lifecycle", 100_000, 100_000, True), ("rfm", 50_000, 50_000, True)]


def test_progress_true_without_tqdm_writes_lines(capsys: pytest.CaptureFixture[str],
                                                monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "tqdm", None)  # import fails
    userops.rfm(_activity(100_000), "user", "time", "amount", as_of=dt.datetime(2026, 1, 1), progress=True)
    lines = capsys.readouterr().err.splitlines()
    assert lines[-1] == "rfm: 100000/100000" and len(lines) >= 2
