"""Time the Python-side column conversion the table functions did before issue 10 moved it to
Rust (the old ``userops/_columns.py``, commit aac4c98) on 1M rows; it needs only pyarrow/numpy.

    git archive aac4c98 | tar -x -C /work/benchdata/python/old
    python benches/compare/python_old_conversion.py
"""
import importlib.util
import sys
import time
import types

import numpy as np
import pyarrow as pa

# Load the old helpers without the old native module.
pkg = types.ModuleType("oldu"); pkg.__path__ = []
sys.modules["oldu"] = pkg
for name in ("errors", "_columns"):
    spec = importlib.util.spec_from_file_location(f"oldu.{name}", f"/work/benchdata/python/old/bindings/python/python/userops/{name}.py")
    m = importlib.util.module_from_spec(spec); sys.modules[f"oldu.{name}"] = m; spec.loader.exec_module(m)
C = sys.modules["oldu._columns"]
rng = np.random.default_rng(42)
n = 1_000_000
start = np.datetime64("2025-01-01T00:00:00", "ms").astype(np.int64)
t = pa.table({"user": pa.array(rng.integers(0, n // 10, n), pa.int64()),
              "time": pa.array(start + rng.integers(0, 365 * 86_400_000, n), pa.timestamp("ms", tz="UTC")),
              "member": pa.array([f"M{x}" for x in rng.integers(0, n // 10, n)]),
              "event": pa.array(rng.choice(["view", "cart", "buy"], n))})
def best(f, k=3):
    r = []
    for _ in range(k):
        t0 = time.perf_counter(); f(); r.append(time.perf_counter() - t0)
    return min(r)
def lifecycle_int():
    users = C.UserCodes([C.column(t, "user", "user")])
    C.u64_bytes(users.codes[0]); C.i64_bytes(C.time_ms(C.column(t, "time", "time"), "time"))
def lifecycle_text():
    users = C.UserCodes([C.column(t, "member", "user")])
    C.u64_bytes(users.codes[0]); C.i64_bytes(C.time_ms(C.column(t, "time", "time"), "time"))
def funnel_text():
    lifecycle_text(); C.dictionary(C.column(t, "event", "event"))
print(f"old Python-side conversion, {n:,} rows (best of 3):")
print(f"  lifecycle inputs, int ids  {best(lifecycle_int):.3f} s")
print(f"  lifecycle inputs, text ids {best(lifecycle_text):.3f} s")
print(f"  funnel inputs, text ids    {best(funnel_text):.3f} s")
