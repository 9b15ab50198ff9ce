"""The engine handle every module's methods build on: one call path into the native core."""

from __future__ import annotations

import json
import os
from typing import Any, Optional, Tuple, Type, TypeVar, Union

from . import _convert
from ._native import NativeEngine as _NativeEngine
from .errors import from_report

_E = TypeVar("_E", bound="EngineBase")


class EngineBase:
    """Holds the native engine and sends it commands (method name + keyword arguments)."""

    def __init__(self, concurrency: str = "lock") -> None:
        native, error = _NativeEngine.memory(concurrency)
        if native is None:
            raise from_report(json.loads(error))
        self._native = native

    @classmethod
    def open(
        cls: Type[_E],
        path: Union[str, "os.PathLike[str]"],
        durability: str = "every",
        concurrency: str = "lock",
    ) -> _E:
        """Open (or create) a durable engine kept in the SQLite file at ``path``.

        ``durability="every"`` commits each command before the call returns; ``"group"``
        commits groups of up to 1,000 commands or every 10 ms (call :meth:`flush` to commit
        at once; closing the engine flushes). ``concurrency`` as for :class:`Engine`
        (``"replicas"`` also writes snapshots in the background). Raises ``StorageError`` for
        a directory, a read-only file, a file that is not a userops store or a newer schema
        (the file is left untouched), ``CorruptStore`` naming the bad record, and
        ``InvalidArgument`` for an unknown ``durability`` or ``concurrency``.

        >>> import tempfile, os, userops
        >>> path = os.path.join(tempfile.mkdtemp(), "pool.db")
        >>> e = userops.Engine.open(path, concurrency="replicas")
        >>> e.stats()["events"]
        0
        """
        native, error = _NativeEngine.open(os.fspath(path), durability, concurrency)
        if native is None:
            raise from_report(json.loads(error))
        engine = cls.__new__(cls)
        engine._native = native
        return engine

    def flush(self) -> None:
        """Commit pending commands of a durable engine now (a no-op in memory). Raises
        ``StorageError`` when the store cannot be written.

        >>> import tempfile, os, userops
        >>> path = os.path.join(tempfile.mkdtemp(), "pool.db")
        >>> e = userops.Engine.open(path, durability="group")
        >>> _ = e.define_tag("vip"); _ = e.set_tag(("member_no", "M1"), "vip", True)
        >>> e.flush()
        >>> del e  # closing also flushes
        >>> userops.Engine.open(path).audience("vip").oneids("list")
        [1]
        """
        self._reply(*self._native.flush())

    @staticmethod
    def _reply(ok: bool, out: str) -> Any:
        if not ok:
            raise from_report(json.loads(out))
        return json.loads(out)

    def call(self, method: str, /, **args: Any) -> Any:
        """Execute any engine method by name with keyword arguments (the C ABI's view).

        >>> import userops
        >>> userops.Engine().call("stats")["persons"]
        0
        """
        return self._reply(*self._native.call(method, _convert.dumps(args)))

    def _output_table(self, output: Optional[str], method: str, /, **args: Any) -> Any:
        """Execute ``method`` and return its output as a table of ``output`` kind (``None``:
        :data:`userops._tables.ENGINE_OUTPUT`), built in Rust as Arrow from the engine's typed
        output, with the schema the C ABI exports too (``userops._native.output_columns``)."""
        table, _ = self._output_table_and_rest(output, method, **args)
        return table

    def _output_table_and_rest(
        self, output: Optional[str], method: str, /, **args: Any
    ) -> Tuple[Any, Any]:
        """As :meth:`_output_table`, and the rest of the output (its rows replaced by ``None``;
        ``None`` for an output that is only rows)."""
        from . import _tables

        _tables.check_output(output)
        _, native, rest = self._native.call_output_table(method, _convert.dumps(args))
        return _tables.from_arrow(native, output or _tables.ENGINE_OUTPUT), json.loads(rest)
