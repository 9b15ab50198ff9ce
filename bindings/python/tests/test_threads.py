"""One `Engine` shared by threads: the GIL is released around engine calls, and with
``concurrency="replicas"`` reads answer while a write runs, each on a whole state."""

import threading
import time
from typing import Any, Dict, List, Tuple

import pytest

import userops

N = 40_000


def registers(prefix: str, n: int) -> Dict[str, Any]:
    return {
        "kind": ["register"] * n,
        "key": [f"{prefix}{i}" for i in range(n)],
        "time": ["2026-01-05T10:00:00+08:00"] * n,
        "member_no": [f"{prefix}M{i}" for i in range(n)],
    }


def write_while(e: userops.Engine, table: Dict[str, Any], during: Any) -> Tuple[float, float, List[Any]]:
    """Run one big batch write on a thread; call ``during()`` on this one until it is done.
    Returns when the write started and ended, and (time, result) of every call."""
    span: Dict[str, float] = {}

    def write() -> None:
        span["start"] = time.perf_counter()
        e.ingest_table(table, values={"platform": "app", "program": "b"}, chunk_size=N)
        span["end"] = time.perf_counter()

    seen: List[Any] = []
    t = threading.Thread(target=write)
    t.start()
    while t.is_alive():
        seen.append((time.perf_counter(), during()))
    t.join()
    return span["start"], span["end"], seen


@pytest.mark.parametrize("concurrency", ["lock", "replicas"])
def test_the_gil_is_released_during_an_engine_call(concurrency: str) -> None:
    e = userops.Engine(concurrency=concurrency)
    # Python code on this thread runs while the engine ingests on the other one.
    start, end, seen = write_while(e, registers("a", N), lambda: None)
    inside = [t for t, _ in seen if start < t < end]
    assert end - start > 0.05, "the write is too short to tell"
    assert len(inside) > 100, (len(inside), end - start)
    assert e.stats()["events"] == N


def test_with_replicas_reads_answer_during_a_write_and_see_whole_states() -> None:
    e = userops.Engine(concurrency="replicas")
    e.ingest({"kind": "register", "key": "first", "time": "2026-01-05T10:00:00+08:00",
              "source": {"platform": "app", "program": "b"}, "user": {"kind": "member_no", "value": "F"}})
    start, end, seen = write_while(e, registers("b", N), lambda: e.stats()["events"])
    answered_inside = [n for t, n in seen if start < t < end]
    assert answered_inside, "no read answered while the write ran"
    # One batch is one command: a read sees all of it or none of it.
    assert {n for _, n in seen} <= {1, N + 1}, sorted({n for _, n in seen})
    assert e.stats()["events"] == N + 1


def test_an_unknown_concurrency_is_refused() -> None:
    with pytest.raises(userops.InvalidArgument):
        userops.Engine(concurrency="fast")
    with pytest.raises(userops.InvalidArgument):
        userops.Engine.open("never.db", concurrency="fast")
