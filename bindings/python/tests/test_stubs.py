"""The native module's stubs (``_native.pyi``) list exactly what the module exports."""

from __future__ import annotations

import ast
import inspect
import pathlib
from typing import Dict, Set

import userops
from userops import _native


def _stub_names() -> Dict[str, Set[str]]:
    path = pathlib.Path(userops.__file__).with_name("_native.pyi")
    tree = ast.parse(path.read_text())
    out: Dict[str, Set[str]] = {"": set()}
    for node in tree.body:
        if isinstance(node, ast.FunctionDef):
            out[""].add(node.name)
        elif isinstance(node, ast.ClassDef):
            out[""].add(node.name)
            out[node.name] = {n.name for n in node.body if isinstance(n, ast.FunctionDef)}
        elif isinstance(node, ast.AnnAssign) and isinstance(node.target, ast.Name):
            if not node.target.id.startswith("_"):
                out[""].add(node.target.id)
    return out


def test_stubs_match_the_native_module() -> None:
    stubs = _stub_names()
    runtime = {n for n in dir(_native) if not n.startswith("_")}
    assert runtime == stubs[""]
    for cls in ("NativeEngine", "NativeIdentityGraph"):
        methods = {n for n, _ in inspect.getmembers(getattr(_native, cls)) if not n.startswith("_")}
        assert methods == stubs[cls] - {"__init__"}, cls
