"""Batch ingest of events from a table: ``Engine.ingest_table``."""

from __future__ import annotations

from typing import Any, Iterable, Literal, Mapping, Optional

from . import _convert, _progress, _tables
from ._base import EngineBase
from .errors import InvalidArgument


class IngestMethods(EngineBase):
    """``ingest_table``: one row per event, straight from pandas, polars or Arrow."""

    def ingest_table(
        self,
        table: _tables.TableLike,
        *,
        columns: Optional[Mapping[str, str]] = None,
        values: Optional[Mapping[str, Any]] = None,
        id_columns: Optional[Mapping[str, str]] = None,
        exclude: Iterable[str] = (),
        errors: Literal["raise", "skip"] = "raise",
        chunk_size: int = 10_000,
        naive_time_zone: Optional[str] = None,
        output: _tables.Output = None,
        progress: _tables.Progress = None,
    ) -> Any:
        """Ingest one event per row of ``table``; return one receipt per row.

        ``table`` is anything :func:`userops._tables.to_arrow` reads (pandas, polars, pyarrow,
        duckdb, Arrow PyCapsule objects, a dict of columns, a list of row dicts). Each row goes
        through exactly the checks of :meth:`Engine.ingest`; replayed keys are no-ops, so
        running the same table twice ingests it once.

        **Columns** (rename any with ``columns={"field": "my column"}``):

        * ``kind``, ``key``, ``time`` — required (``kind`` may instead be a constant in
          ``values``). ``time`` is a timestamp with a time zone, or RFC 3339 text with a zone;
          naive timestamps are refused unless ``naive_time_zone="+08:00"`` (or ``"UTC"``) says
          how to read them.
        * ``platform``, ``program`` — the source; columns or constants in ``values``.
        * the user: ``oneid`` (integer), or ``user_kind`` + ``user_value`` (``user_kind`` is
          often a constant: ``values={"user_kind": "member_no"}``), or else the first non-null
          identifier column (below).
        * identifier columns: by default the columns named ``phone``, ``email``, ``device_id``,
          ``openid``, ``unionid``, ``member_no`` (or ``id_columns={"phone": "mobile"}``). For
          ``identify`` rows their non-null values (plus ``user_kind``/``user_value`` and an
          ``ids`` list-of-struct column, if any) are the identifiers seen together.
        * every other column is the event field of the same name (``type``, ``order_id``,
          ``amount``, ``channel``, ``lines``, ...), read where non-null. Money columns
          (``amount``, and ``price`` / ``amount`` in ``lines``) must be decimal text or
          decimals: a float column raises ``TableError`` naming it and the fix, whatever
          ``errors`` says (a float cannot hold 19.99 exactly). Leave columns out with
          ``exclude=[...]``.

        ``values`` gives constants (for any field) used where the column is absent or null.

        **Errors.** Every row is checked before the first is ingested when ``errors="raise"``
        (the default): a missing column, a column of the wrong type or a bad value raises
        ``TableError`` (or the engine's error, such as ``InvalidEvent``) with ``.column`` and
        ``.row`` (0-based) and changes nothing. A row the engine then refuses because of what it
        already holds (a key reused with other content, an unknown ``oneid``) stops the ingest
        with that error and its ``.row``: the rows before it are ingested, it and later rows are
        not; since keys are idempotent, fix the row and run the whole table again. With
        ``errors="skip"`` bad rows are reported in the result (``error_code``,
        ``error_column``, ``error``) and every good row is ingested.

        **Work.** Rows go in chunks of ``chunk_size``, each one engine batch (and one store
        transaction), without the GIL. Between chunks ``progress`` is reported (see
        :mod:`userops._progress`) and Ctrl-C is honoured: ``KeyboardInterrupt`` is raised with
        the chunks before it ingested.

        Returns a table of the input's kind (or ``output``) with one row per input row: ``row``,
        ``key``, ``kind``, ``seq``, ``oneid``, ``absorbed`` (OneIDs merged into ``oneid``),
        ``duplicate``, and ``error_code`` / ``error_column`` / ``error`` (null when accepted).

        >>> import pandas as pd, userops
        >>> engine = userops.Engine()
        >>> orders = pd.DataFrame({
        ...     "key": ["o1", "o2"],
        ...     "time": ["2026-01-05T10:00:00+08:00", "2026-01-06T11:30:00+08:00"],
        ...     "member_no": ["M1", "M2"],
        ...     "order_id": ["A-1", "A-2"],
        ...     "amount": ["399.00", "58.50"],
        ... })
        >>> receipts = engine.ingest_table(
        ...     orders, values={"kind": "order", "platform": "app", "program": "brand-a"})
        >>> receipts[["row", "key", "oneid", "duplicate"]].to_string(index=False)
        ' row key  oneid  duplicate\\n   0  o1      1      False\\n   1  o2      2      False'
        """
        if errors not in ("raise", "skip"):
            raise InvalidArgument(f"errors must be 'raise' or 'skip', got {errors!r}", field="errors")
        if isinstance(chunk_size, bool) or not isinstance(chunk_size, int) or chunk_size < 1:
            raise InvalidArgument("chunk_size must be a positive integer", field="chunk_size")
        _tables.check_output(output)
        for field, value in (values or {}).items():
            if field == "amount" and isinstance(value, float):
                raise InvalidArgument(
                    f"invalid argument at `values.amount`: money is exact and a float is not; "
                    f"give decimal text ({value!r} -> '{value:.2f}') or a Decimal",
                    field="values.amount",
                )
        arrow, kind = _tables.to_arrow(table)
        options = _convert.dumps(
            {
                "columns": dict(columns or {}),
                "values": dict(values or {}),
                "id_columns": None if id_columns is None else dict(id_columns),
                "exclude": list(exclude),
                "errors": errors,
                "chunk_size": chunk_size,
                "naive_time_zone": naive_time_zone,
            }
        )
        with _progress.reporter(progress, total=arrow.num_rows, desc="ingest") as report:
            native = self._native.ingest_table(arrow, options, report)
        return _tables.from_arrow(native, output or kind)
