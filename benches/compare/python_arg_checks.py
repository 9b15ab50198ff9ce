"""What the Python argument checks (userops/_args.py, _convert.wire) cost per call.

    python benches/compare/python_arg_checks.py --calls 20000 --repeat 5

Three measurements, each in µs of CPU time per call (process_time, so that other processes on
a shared machine count less; best of --repeat runs):

* the argument check alone: ``earn``'s signature and hints on a function that does nothing,
  checked (``_args.checked``) and not;
* the serialization alone: an order event with a line through ``_convert.dumps`` (the wire
  check, then ``json.dumps``) and through the serializer it replaced (``json.dumps`` with a
  ``default`` for Decimal, dates and tuples);
* whole calls: ``Engine.ingest`` and ``Engine.earn`` through the checked method and through
  the unchecked function underneath (``__wrapped__``) with the old serializer, each run on a
  fresh engine. The native work dominates these (and depends on the build); the first two are
  Python alone.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import time
from decimal import Decimal
from typing import Any, Callable, Dict, List

import userops
from userops import _args, _convert

T = dt.datetime(2026, 3, 1, tzinfo=dt.timezone.utc)


def event(i: int) -> Dict[str, Any]:
    return {"kind": "order", "key": f"o{i}", "time": "2026-03-01T10:00:00+08:00",
            "source": {"platform": "app", "program": "brand-a"},
            "user": {"kind": "member_no", "value": f"M{i % 1000}"}, "order_id": f"O{i}", "amount": "19.90",
            "lines": [{"sku": "tea-1", "category": "tea", "price": "19.90", "qty": 1}]}


def _old_default(value: Any) -> Any:
    if isinstance(value, Decimal):
        return str(value)
    if isinstance(value, (dt.datetime, dt.date)):
        return value.isoformat()
    if isinstance(value, tuple):
        return list(value)
    raise TypeError(f"{type(value).__name__} is not JSON serializable")


def old_dumps(value: Any) -> str:
    """The serializer before the wire check (main d586624)."""
    return json.dumps(value, default=_old_default, allow_nan=False)


def engine_with_program() -> userops.Engine:
    e = userops.Engine()
    e.create_program({"id": "brand-a", "level": "brand"})
    return e


def best(repeat: int, calls: int, make: Callable[[], Any], run: Callable[[Any, int], Any]) -> float:
    times: List[float] = []
    for _ in range(repeat):
        target = make()
        t0 = time.process_time()
        for i in range(calls):
            run(target, i)
        times.append(time.process_time() - t0)
    return min(times) / calls * 1e6


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--calls", type=int, default=20_000)
    ap.add_argument("--repeat", type=int, default=5)
    a = ap.parse_args()

    earn_raw = userops.Engine.earn.__wrapped__  # type: ignore[attr-defined]
    ingest_raw = userops.Engine.ingest.__wrapped__  # type: ignore[attr-defined]

    def nothing(self: Any, user: Any, program: Any, points: Any, key: Any, reason: Any = "", expires: Any = None,
                pending: Any = False, *, order: Any = None, apply_multiplier: Any = False, actor: Any = "",
                time: Any = None) -> None:
        return None

    nothing.__annotations__ = dict(earn_raw.__annotations__)
    nothing.__module__ = earn_raw.__module__
    checked_nothing = _args.checked(nothing)
    events = [event(i) for i in range(a.calls)]

    def with_old_dumps(run: Callable[[Any, int], Any]) -> Callable[[Any, int], Any]:
        def go(target: Any, i: int) -> Any:
            saved = _convert.dumps
            _convert.dumps = old_dumps  # type: ignore[assignment]
            try:
                return run(target, i)
            finally:
                _convert.dumps = saved  # type: ignore[assignment]
        return go

    def earn_args(i: int) -> Any:
        return ("member_no", f"M{i % 1000}"), "brand-a", 5, f"k{i}"

    rows = [
        ("argument check of earn(...), no work", lambda: None,
         lambda _, i: checked_nothing(None, *earn_args(i), time=T), lambda _, i: nothing(None, *earn_args(i), time=T)),
        ("serialize an order event with a line", lambda: None,
         lambda _, i: _convert.dumps(events[i]), lambda _, i: old_dumps(events[i])),
        ("Engine.ingest(dict): that order", userops.Engine,
         lambda e, i: e.ingest(events[i]), with_old_dumps(lambda e, i: ingest_raw(e, events[i]))),
        ("Engine.earn(user, program, points, key, time=)", engine_with_program,
         lambda e, i: e.earn(*earn_args(i), time=T), with_old_dumps(lambda e, i: earn_raw(e, *earn_args(i), time=T))),
    ]
    print(f"{'µs of CPU per call':48} {'checked':>9} {'unchecked':>10} {'difference':>11}")
    for name, make, checked, raw in rows:
        c = best(a.repeat, a.calls, make, checked)
        u = best(a.repeat, a.calls, make, raw)
        print(f"{name:48} {c:9.1f} {u:10.1f} {c - u:11.1f}")


if __name__ == "__main__":
    main()
