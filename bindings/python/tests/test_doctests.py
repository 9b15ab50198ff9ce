"""Every docstring example of the installed package runs and says what it shows (doctest)."""

from __future__ import annotations

import doctest
import importlib
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
