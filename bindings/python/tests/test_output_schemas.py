"""The output tables the package returns have the schemas the ``userops-arrow`` crate declares,
which are the ones the C ABI exports: compared here table by table, and against the C library
itself when it is built (``scripts/test`` builds it first and sets ``USEROPS_C_LIB``)."""

from __future__ import annotations

import ctypes
import functools
import json
import os
from pathlib import Path
from typing import Any, Callable, Dict, List, Tuple

import pyarrow as pa
import pytest

import userops
from userops import _native
from userops._campaigns import PLAN_COLUMNS

NOW = "2026-03-01T10:00:00Z"

#: One state where every output table has rows, shared with the Rust and C tests: ``calls``
#: (method, arguments) make it, then each of ``tables`` (table, method, arguments) returns
#: that table, in order (``run_automation`` plans the touches ``channel_effectiveness``
#: counts), through ``Engine`` methods and the C ABI's ``userops_engine_call_arrow`` alike.
FIXTURE: Dict[str, Any] = json.loads(
    (Path(__file__).resolve().parents[3] / "tests" / "fixtures" / "output_tables.json").read_text()
)
CALLS: List[Tuple[str, Dict[str, Any]]] = [(method, args) for method, args in FIXTURE["calls"]]
TABLES: List[Tuple[str, str, Dict[str, Any]]] = [(name, method, args) for name, method, args in FIXTURE["tables"]]

#: Tables only the C ABI exports as tables: Python returns lifecycle stages as a dict,
#: audiences and resolved ids as lists.
C_ONLY = {"lifecycle_stages", "audience_members", "resolved_oneids"}


def engine() -> userops.Engine:
    e = userops.Engine()
    for method, args in CALLS:
        e.call(method, **args)
    return e


def declared(name: str) -> pa.Schema:
    return pa.table(_native.empty_output_table(name)).schema


@functools.lru_cache(maxsize=None)
def python_tables() -> Dict[str, pa.Table]:
    """Every table the package returns, made by its ``Engine`` method from the fixture's
    state, in the fixture's order."""
    e = engine()
    out: Dict[str, pa.Table] = {}
    for name, method, args in TABLES:
        if name in C_ONLY:
            e.call(method, **args)
            continue
        made = getattr(e, method)(**args, output="arrow")
        # churn_risk and churn_model return (users, fit or model).
        out[name] = made[0] if isinstance(made, tuple) else made
    return out


def test_every_output_table_is_listed_here() -> None:
    assert {name for name, _, _ in TABLES} | {"audience_members", "resolved_oneids"} == set(
        _native.output_columns
    )
    assert set(python_tables()) == set(_native.output_columns) - C_ONLY


@pytest.mark.parametrize("name", sorted(_native.output_columns))
def test_declared_columns_spell_pyarrow_types(name: str) -> None:
    schema = declared(name)
    assert [(f.name, str(f.type), f.nullable) for f in schema] == [
        tuple(c) for c in _native.output_columns[name]
    ]


@pytest.mark.parametrize("name", sorted(set(_native.output_columns) - C_ONLY))
def test_python_tables_have_the_declared_schema(name: str) -> None:
    table = python_tables()[name]
    assert table.num_rows >= 1
    assert table.schema.equals(declared(name)), (table.schema, declared(name))


def test_the_rest_of_an_output_comes_with_its_table() -> None:
    e = engine()
    users, fit = e.churn_risk("2026-03-01T00:00:00Z", freq="W")
    assert sorted(fit) == ["log_likelihood", "params"] and sorted(fit["params"]) == ["a", "alpha", "b", "r"]
    assert users.columns.tolist() == [f.name for f in declared("churn_risk")]
    _, model = e.churn_model("2026-03-01T00:00:00Z")
    assert model["model"]["features"] == list(userops.Engine.CHURN_FEATURES)
    assert model["n_train"] + model["n_holdout"] >= 1


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


def c_library_typed() -> ctypes.CDLL:
    """The C library with the argument types of the calls made here."""
    lib = c_library()
    lib.userops_engine_new.restype = ctypes.c_void_p
    lib.userops_engine_free.argtypes = [ctypes.c_void_p]
    lib.userops_string_free.argtypes = [ctypes.c_void_p]
    lib.userops_engine_call.argtypes = [ctypes.c_void_p, ctypes.c_char_p, ctypes.c_char_p,
                                        ctypes.POINTER(ctypes.c_void_p)]
    lib.userops_engine_call_arrow.argtypes = [ctypes.c_void_p, ctypes.c_char_p, ctypes.c_char_p,
                                              ctypes.c_void_p, ctypes.c_void_p]
    lib.userops_audience_eval.argtypes = [ctypes.c_void_p, ctypes.c_char_p,
                                          ctypes.POINTER(ctypes.c_void_p)]
    lib.userops_audience_free.argtypes = [ctypes.c_void_p]
    return lib


def c_engine(lib: ctypes.CDLL) -> Any:
    """A C engine in the fixture's state (free with ``userops_engine_free``)."""
    engine = lib.userops_engine_new()
    for method, args in CALLS:
        result = ctypes.c_void_p()
        status = lib.userops_engine_call(engine, method.encode(), json.dumps(args).encode(),
                                         ctypes.byref(result))
        assert status == 0, method
        lib.userops_string_free(result)
    return engine


def c_export(call: Callable[[Any, Any], int], name: str) -> pa.RecordBatch:
    """The record batch a C export writes (its structs moved into pyarrow, which releases them)."""
    array, schema = ArrowArray(), ArrowSchema()
    assert call(ctypes.byref(array), ctypes.byref(schema)) == 0, name
    struct = pa.Array._import_from_c(ctypes.addressof(array), ctypes.addressof(schema))
    return pa.RecordBatch.from_struct_array(struct)


def c_tables() -> Dict[str, pa.RecordBatch]:
    """Every output table as the C ABI exports it, from the same state as :func:`engine`:
    every method's table through ``userops_engine_call_arrow``, in the fixture's order, then
    the audience and resolved ids through their own functions."""
    lib = c_library_typed()
    engine = c_engine(lib)
    out: Dict[str, pa.RecordBatch] = {}
    try:
        for name, method, args in TABLES:
            m, a = method.encode(), json.dumps(args).encode()
            out[name] = c_export(
                lambda arr, sch: lib.userops_engine_call_arrow(ctypes.c_void_p(engine), m, a, arr, sch), name)
        audience = ctypes.c_void_p()
        assert lib.userops_audience_eval(engine, b'points("p") >= 1', ctypes.byref(audience)) == 0
        out["audience_members"] = c_export(lambda a, s: lib.userops_audience_to_arrow(audience, a, s),
                                           "audience_members")
        lib.userops_audience_free(audience)
        values = pa.array(["M1", "M9"])
        c_values, c_values_schema = ArrowArray(), ArrowSchema()
        values._export_to_c(ctypes.addressof(c_values), ctypes.addressof(c_values_schema))
        out["resolved_oneids"] = c_export(
            lambda a, s: lib.userops_identity_resolve_arrow(
                ctypes.c_void_p(engine), b"member_no", ctypes.byref(c_values),
                ctypes.byref(c_values_schema), a, s),
            "resolved_oneids")
    finally:
        lib.userops_engine_free(ctypes.c_void_p(engine))
    return out


def c_typed_tables() -> Dict[str, pa.RecordBatch]:
    """The tables the C ABI also exports through a typed function of their own."""
    lib = c_library_typed()
    engine = c_engine(lib)
    out: Dict[str, pa.RecordBatch] = {}
    try:
        user = User(b"member_no", b"M1", 0)
        out["statement"] = c_export(
            lambda a, s: lib.userops_loyalty_statement(ctypes.c_void_p(engine), ctypes.byref(user), b"p", a, s),
            "statement")
        out["automation_plan"] = c_export(
            lambda a, s: lib.userops_automation_plan(ctypes.c_void_p(engine), NOW.encode(), a, s),
            "automation_plan")
        out["lifecycle_stages"] = c_export(
            lambda a, s: lib.userops_lifecycle_stages(ctypes.c_void_p(engine), None, 0, a, s),
            "lifecycle_stages")
    finally:
        lib.userops_engine_free(ctypes.c_void_p(engine))
    return out


def test_c_and_python_export_identical_schemas() -> None:
    exported = c_tables()
    assert set(exported) == set(_native.output_columns), "every output table is exported by the C ABI"
    made = python_tables()
    for name, batch in exported.items():
        assert batch.num_rows >= 1, name
        assert batch.schema.equals(declared(name)), (name, batch.schema)
        if name in made:
            assert made[name].schema.equals(batch.schema), (name, made[name].schema, batch.schema)
            # The same state, the same rows: the two bindings build them from one output.
            assert made[name].to_pylist() == batch.to_pylist(), name
    for name, batch in c_typed_tables().items():
        assert batch.num_rows >= 1, name
        assert batch.schema.equals(exported[name].schema), name


def test_a_method_without_a_table_is_refused_by_the_c_abi() -> None:
    lib = c_library_typed()
    engine = c_engine(lib)
    try:
        array, schema = ArrowArray(), ArrowSchema()
        status = lib.userops_engine_call_arrow(ctypes.c_void_p(engine), b"stats", b"{}",
                                               ctypes.byref(array), ctypes.byref(schema))
        assert status == 1  # UOPS_INVALID_ARGUMENT
        assert array.release is None and schema.release is None  # nothing to release
    finally:
        lib.userops_engine_free(ctypes.c_void_p(engine))
