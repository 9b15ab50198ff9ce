"""The output tables the package returns have the schemas the ``userops-arrow`` crate declares,
which are the ones the C ABI exports: compared here table by table, and against the C library
itself when it is built (``scripts/test`` builds it first and sets ``USEROPS_C_LIB``)."""

from __future__ import annotations

import ctypes
import json
import os
from pathlib import Path
from typing import Any, Callable, Dict, List, Optional, Tuple

import pyarrow as pa
import pytest

import userops
from userops import _native
from userops._campaigns import PLAN_COLUMNS

NOW = "2026-03-01T10:00:00Z"

#: One state where every engine-made table has a row: (method, arguments) for ``Engine.call``
#: and the C ABI's ``userops_engine_call`` alike (the Rust tests make the same calls).
CALLS: List[Tuple[str, Dict[str, Any]]] = [
    (method, args)
    for method, args in json.loads(
        (Path(__file__).resolve().parents[3] / "tests" / "fixtures" / "output_tables.json").read_text()
    )
]

#: Every output table: how the package returns it, or None where only the C ABI exports it as
#: a table (Python returns lifecycle stages as a dict, audiences and resolved ids as lists).
PYTHON: Dict[str, Optional[Callable[[userops.Engine], Any]]] = {
    "statement": lambda e: e.statement(("member_no", "M1"), "p", output="arrow"),
    "automation_plan": lambda e: e.run_automation(NOW, output="arrow"),
    "lifecycle_stages": None,
    "audience_members": None,
    "resolved_oneids": None,
}


def engine() -> userops.Engine:
    e = userops.Engine()
    for method, args in CALLS:
        e.call(method, **args)
    return e


def declared(name: str) -> pa.Schema:
    return pa.table(_native.empty_output_table(name)).schema


def test_every_output_table_is_listed_here() -> None:
    assert set(PYTHON) == set(_native.output_columns)


@pytest.mark.parametrize("name", sorted(PYTHON))
def test_declared_columns_spell_pyarrow_types(name: str) -> None:
    schema = declared(name)
    assert [(f.name, str(f.type), f.nullable) for f in schema] == [
        tuple(c) for c in _native.output_columns[name]
    ]


@pytest.mark.parametrize("name", sorted(n for n, f in PYTHON.items() if f is not None))
def test_python_tables_have_the_declared_schema(name: str) -> None:
    make = PYTHON[name]
    assert make is not None
    table = make(engine())
    assert table.num_rows >= 1
    assert table.schema.equals(declared(name)), (table.schema, declared(name))


def test_statement_id_is_uint64_and_plan_columns_come_from_the_declaration() -> None:
    e = engine()
    assert e.statement(("member_no", "M1"), "p", output="arrow").schema.field("id").type == pa.uint64()
    assert str(e.statement(("member_no", "M1"), "p")["id"].dtype) == "UInt64"  # pandas, nullable
    assert list(PLAN_COLUMNS) == [
        (f.name, str(f.type)) for f in declared("automation_plan")
    ]


# ---- the C library ----------------------------------------------------------------------------


class ArrowSchema(ctypes.Structure):
    _fields_ = [("format", ctypes.c_char_p), ("name", ctypes.c_char_p),
                ("metadata", ctypes.c_char_p), ("flags", ctypes.c_int64),
                ("n_children", ctypes.c_int64), ("children", ctypes.c_void_p),
                ("dictionary", ctypes.c_void_p), ("release", ctypes.c_void_p),
                ("private_data", ctypes.c_void_p)]


class ArrowArray(ctypes.Structure):
    _fields_ = [("length", ctypes.c_int64), ("null_count", ctypes.c_int64),
                ("offset", ctypes.c_int64), ("n_buffers", ctypes.c_int64),
                ("n_children", ctypes.c_int64), ("buffers", ctypes.c_void_p),
                ("children", ctypes.c_void_p), ("dictionary", ctypes.c_void_p),
                ("release", ctypes.c_void_p), ("private_data", ctypes.c_void_p)]


class User(ctypes.Structure):
    _fields_ = [("kind", ctypes.c_char_p), ("value", ctypes.c_char_p), ("oneid", ctypes.c_uint64)]


def c_library() -> ctypes.CDLL:
    """libuserops.so: ``USEROPS_C_LIB``, else the workspace's debug build; missing, the test is
    skipped unless ``USEROPS_REQUIRE_C_LIB`` is set (``scripts/test`` sets both)."""
    root = Path(__file__).resolve().parents[3]
    target = Path(os.environ.get("CARGO_TARGET_DIR", root / "target"))
    path = Path(os.environ.get("USEROPS_C_LIB", target / "debug" / "libuserops.so"))
    if not path.exists():
        if os.environ.get("USEROPS_REQUIRE_C_LIB"):
            pytest.fail(f"{path} is missing (build it: cargo build -p userops-c)")
        pytest.skip(f"{path} is not built")
    return ctypes.CDLL(str(path))


def c_tables() -> Dict[str, pa.RecordBatch]:
    """Every output table as the C ABI exports it, from the same state as :func:`engine`."""
    lib = c_library()
    lib.userops_engine_new.restype = ctypes.c_void_p
    lib.userops_engine_free.argtypes = [ctypes.c_void_p]
    lib.userops_string_free.argtypes = [ctypes.c_void_p]
    lib.userops_engine_call.argtypes = [ctypes.c_void_p, ctypes.c_char_p, ctypes.c_char_p,
                                        ctypes.POINTER(ctypes.c_void_p)]
    lib.userops_audience_eval.argtypes = [ctypes.c_void_p, ctypes.c_char_p,
                                          ctypes.POINTER(ctypes.c_void_p)]
    lib.userops_audience_free.argtypes = [ctypes.c_void_p]
    engine = lib.userops_engine_new()
    out: Dict[str, pa.RecordBatch] = {}
    try:
        for method, args in CALLS:
            result = ctypes.c_void_p()
            status = lib.userops_engine_call(engine, method.encode(), json.dumps(args).encode(),
                                             ctypes.byref(result))
            assert status == 0, method
            lib.userops_string_free(result)

        def export(name: str, call: Callable[[Any, Any], int]) -> None:
            array, schema = ArrowArray(), ArrowSchema()
            assert call(ctypes.byref(array), ctypes.byref(schema)) == 0, name
            struct = pa.Array._import_from_c(ctypes.addressof(array), ctypes.addressof(schema))
            out[name] = pa.RecordBatch.from_struct_array(struct)

        user = User(b"member_no", b"M1", 0)
        export("statement",
               lambda a, s: lib.userops_loyalty_statement(ctypes.c_void_p(engine), ctypes.byref(user), b"p", a, s))
        export("automation_plan",
               lambda a, s: lib.userops_automation_plan(ctypes.c_void_p(engine), NOW.encode(), a, s))
        export("lifecycle_stages",
               lambda a, s: lib.userops_lifecycle_stages(ctypes.c_void_p(engine), None, 0, a, s))
        audience = ctypes.c_void_p()
        assert lib.userops_audience_eval(engine, b'points("p") >= 1', ctypes.byref(audience)) == 0
        export("audience_members", lambda a, s: lib.userops_audience_to_arrow(audience, a, s))
        lib.userops_audience_free(audience)
        values = pa.array(["M1", "M9"])
        c_values, c_values_schema = ArrowArray(), ArrowSchema()
        values._export_to_c(ctypes.addressof(c_values), ctypes.addressof(c_values_schema))
        export("resolved_oneids",
               lambda a, s: lib.userops_identity_resolve_arrow(
                   ctypes.c_void_p(engine), b"member_no", ctypes.byref(c_values),
                   ctypes.byref(c_values_schema), a, s))
    finally:
        lib.userops_engine_free(ctypes.c_void_p(engine))
    return out


def test_c_and_python_export_identical_schemas() -> None:
    exported = c_tables()
    assert set(exported) == set(PYTHON), "every output table is exported by the C ABI"
    e = engine()
    for name, make in PYTHON.items():
        c_schema = exported[name].schema
        assert exported[name].num_rows >= 1, name
        assert c_schema.equals(declared(name)), (name, c_schema)
        if make is not None:
            py_schema = make(e).schema
            assert py_schema.equals(c_schema), (name, py_schema, c_schema)
