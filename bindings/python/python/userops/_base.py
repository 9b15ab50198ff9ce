"""The engine handle every module's methods build on: one call path into the native core."""

from __future__ import annotations

import json
from typing import Any

from . import _convert
from ._native import NativeEngine as _NativeEngine
from .errors import from_report


class EngineBase:
    """Holds the native engine and sends it commands (method name + keyword arguments)."""

    def __init__(self) -> None:
        self._native = _NativeEngine()

    @staticmethod
    def _reply(ok: bool, out: str) -> Any:
        if not ok:
            raise from_report(json.loads(out))
        return json.loads(out)

    def call(self, method: str, **args: Any) -> Any:
        """Execute any engine method by name with keyword arguments (the C ABI's view).

        >>> import userops
        >>> userops.Engine().call("stats")["persons"]
        0
        """
        return self._reply(*self._native.call(method, _convert.dumps(args)))
