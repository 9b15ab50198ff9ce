"""Every docstring example of the installed package runs and says what it shows (doctest)."""

from __future__ import annotations

import doctest
import importlib
import inspect
import pkgutil
from typing import List

import pytest

import userops


def _modules() -> List[str]:
    names = ["userops"]
    names += [m.name for m in pkgutil.iter_modules(userops.__path__, "userops.") if m.name != "userops._native"]
    return sorted(names)


@pytest.mark.parametrize("name", _modules())
def test_docstring_examples(name: str) -> None:
    if name == "userops.spark":
        from conftest import spark_session

        spark_session()  # the examples' getOrCreate() finds it
    module = importlib.import_module(name)
    result = doctest.testmod(module, optionflags=doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE)
    assert result.failed == 0, f"{result.failed} of {result.attempted} examples failed in {name}"


def test_every_public_function_has_an_example() -> None:
    missing = []
    for name in userops.__all__:
        obj = getattr(userops, name)
        if isinstance(obj, type) and issubclass(obj, BaseException):
            continue
        if callable(obj) and ">>>" not in (obj.__doc__ or ""):
            missing.append(name)
    assert missing == [], f"public names without a docstring example: {missing}"


def test_every_public_method_has_an_example() -> None:
    """Every public method (and property) of every public class (``Engine``, ``IdentityGraph``,
    ``Audience``, ``BetaGeo``, ...) shows a runnable example, which the doctests above run."""
    missing = []
    checked = 0
    for name in userops.__all__:
        cls = getattr(userops, name)
        if not isinstance(cls, type) or issubclass(cls, BaseException):
            continue
        for attr, member in inspect.getmembers(cls):
            if attr.startswith("_") or not (callable(member) or isinstance(member, property)):
                continue
            owner = member.fget if isinstance(member, property) else member
            if not (getattr(owner, "__module__", "") or "").startswith("userops"):
                continue  # inherited from object / builtins
            checked += 1
            if ">>>" not in (inspect.getdoc(member) or ""):
                missing.append(f"{name}.{attr}")
    assert checked > 100
    assert missing == [], f"{len(missing)} public methods without a docstring example: {missing}"
