"""The exception hierarchy of userops.

Every error the engine reports carries a stable ``code`` (for example ``"invalid_identifier"``),
a numeric ``status`` (the same number the C ABI returns), a ``message`` and, where the error is
about one field, ``field`` (a path such as ``"lines[0].price"``). Errors about a row of a table
also carry ``row`` (0-based position in the table) and ``column``.
"""

from __future__ import annotations

from typing import Any, Dict, Optional, Type


class UserOpsError(Exception):
    """Base class of every error raised by userops.

    >>> import userops
    >>> try:
    ...     userops.Engine().resolve(("phone", "12"))
    ... except userops.InvalidArgument as e:
    ...     print(e.code, e.field)
    invalid_argument user
    """

    code: str = "internal"
    status: int = 99

    def __init__(
        self,
        message: str,
        *,
        field: Optional[str] = None,
        row: Optional[int] = None,
        column: Optional[str] = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.field = field
        #: For errors about a table: the first bad row (0-based position), when there is one.
        self.row = row
        #: For errors about a table: the column at fault, when there is one.
        self.column = column


class InvalidArgument(UserOpsError):
    """A call argument is malformed."""

    code = "invalid_argument"
    status = 1


class TableError(InvalidArgument):
    """A table handed to userops cannot be read: a missing column, a column of the wrong type,
    a null where a value is required, a value that cannot be parsed. ``column`` names the
    column and ``row`` the first bad row (0-based; ``None`` when the whole column is at fault).

    >>> import pyarrow as pa, userops
    >>> try:
    ...     userops.Engine().ingest_table(pa.table({"key": ["k1"]}))
    ... except userops.TableError as e:
    ...     print(e.column, e.row)
    kind None
    """

    def __init__(
        self,
        message: str,
        *,
        field: Optional[str] = None,
        row: Optional[int] = None,
        column: Optional[str] = None,
    ) -> None:
        # The column is the field at fault when nothing more precise is known.
        super().__init__(message, field=field if field is not None else column, row=row, column=column)


class MissingDependency(UserOpsError, ImportError):
    """An optional package a function needs is not installed (``pyarrow`` for tables, and
    ``pandas`` or ``polars`` to hand back tables of those kinds). The message says what to
    install."""

    code = "missing_dependency"
    status = 99


class InvalidIdentifier(UserOpsError):
    """A value is not a valid identifier of its kind (a bad phone, email, ...)."""

    code = "invalid_identifier"
    status = 2


class InvalidEvent(UserOpsError):
    """An event is malformed: bad JSON, unknown kind, a missing or bad field."""

    code = "invalid_event"
    status = 3


class UnknownMethod(UserOpsError):
    """The engine has no such method."""

    code = "unknown_method"
    status = 4


class DuplicateKey(UserOpsError):
    """An idempotency key was reused for different content."""

    code = "duplicate_key"
    status = 5


class DuplicateOrder(DuplicateKey):
    """An order id already ingested from the same source program under another idempotency key
    (also a ``DuplicateKey``): an order counts once. ``field`` is ``"order_id"``; the message
    names the key it was first ingested under."""

    code = "duplicate_order"
    status = 8


class NotFound(UserOpsError):
    """Something referenced does not exist (a OneID, a program, ...)."""

    code = "not_found"
    status = 6


class OutOfRange(UserOpsError):
    """A number is out of range or would overflow."""

    code = "out_of_range"
    status = 7


class AudienceSyntaxError(UserOpsError):
    """An audience expression is wrong: bad syntax, an unknown tag, a type mismatch.

    ``position`` is the 0-based character offset of the mistake in the expression; the message
    says the (1-based) column and, for a misspelt name, the nearest known one.

    >>> import userops
    >>> try:
    ...     userops.Engine().audience("age >")
    ... except userops.AudienceSyntaxError as e:
    ...     print(e.position)
    5
    """

    code = "audience_syntax"
    status = 40

    def __init__(
        self,
        message: str,
        *,
        field: Optional[str] = None,
        row: Optional[int] = None,
        column: Optional[str] = None,
        position: Optional[int] = None,
    ) -> None:
        super().__init__(message, field=field, row=row, column=column)
        self.position = position
class LedgerError(UserOpsError):
    """Base class of the loyalty module's errors (points ledger, tiers, benefits, tasks)."""

    code = "ledger_error"
    status = 0


class InsufficientPoints(LedgerError):
    """A spend or conversion above the balance (plus the program's overdraft)."""

    code = "insufficient_points"
    status = 50


class LedgerDuplicateKey(LedgerError, DuplicateKey):
    """An idempotency key reused for a different loyalty write (also a ``DuplicateKey``)."""

    code = "ledger_duplicate_key"
    status = 51


class UnknownAccount(LedgerError, NotFound):
    """The member has no points account in the program (also a ``NotFound``)."""

    code = "unknown_account"
    status = 52


class InvalidAmount(LedgerError, OutOfRange):
    """A zero, negative or overflowing amount (also an ``OutOfRange``)."""

    code = "invalid_amount"
    status = 53


class ExpiryInPast(LedgerError):
    """An expiry at or before the time of the earn."""

    code = "expiry_in_past"
    status = 54


class NotPending(LedgerError):
    """Posting or voiding what is not an open pending earn; refunding what has nothing left."""

    code = "not_pending"
    status = 55


class LimitReached(LedgerError):
    """A benefit claimed or a task completed more often than allowed."""

    code = "limit_reached"
    status = 56


class NotEligible(LedgerError):
    """A benefit the member's tier does not grant."""

    code = "not_eligible"
    status = 57


class NotConverged(UserOpsError):
    """A model fit (maximum likelihood, IRLS) did not converge; nothing was fitted."""

    code = "not_converged"
    status = 70


class BudgetExhausted(UserOpsError):
    """A promotion's budget cannot cover a commit."""

    code = "budget_exhausted"
    status = 80


class PromotionLimitReached(UserOpsError):
    """A promotion's per-user or total limit, or a coupon template's stock, is reached."""

    code = "promotion_limit_reached"
    status = 81


class CouponUnusable(UserOpsError):
    """A coupon cannot be used (or returned) in its state, window or on this cart."""

    code = "coupon_unusable"
    status = 82


class StorageError(UserOpsError):
    """The durable store failed: I/O, a directory, a read-only or foreign file, a newer schema."""

    code = "storage"
    status = 90


class CorruptStore(UserOpsError):
    """The durable store holds a corrupt journal record or snapshot (the message names it)."""

    code = "corrupt"
    status = 91


class InternalError(UserOpsError):
    """A bug inside userops. Please report it with the message."""

    code = "internal"
    status = 99


_BY_CODE: Dict[str, Type[UserOpsError]] = {
    cls.code: cls
    for cls in (
        InvalidArgument,
        InvalidIdentifier,
        InvalidEvent,
        UnknownMethod,
        DuplicateKey,
        DuplicateOrder,
        NotFound,
        OutOfRange,
        AudienceSyntaxError,
        InsufficientPoints,
        LedgerDuplicateKey,
        UnknownAccount,
        InvalidAmount,
        ExpiryInPast,
        NotPending,
        LimitReached,
        NotEligible,
        NotConverged,
        BudgetExhausted,
        PromotionLimitReached,
        CouponUnusable,
        StorageError,
        CorruptStore,
        InternalError,
    )
}


def from_report(report: Dict[str, Any]) -> UserOpsError:
    """Build the exception matching an engine error report.

    Every code the engine has maps to its own class (``tests/test_engine.py`` checks the
    table against the native module's codes); a report with any other code cannot come from
    this wheel's engine, so it is an :class:`InternalError` that names the code rather than
    a guess at a class."""
    code = str(report.get("code"))
    cls = _BY_CODE.get(code)
    if cls is None:
        return InternalError(f"unknown error code {code!r}: {report.get('message', '')}")
    common: Dict[str, Any] = {
        "field": report.get("field"),
        "row": report.get("row"),
        "column": report.get("column"),
    }
    if cls is AudienceSyntaxError:
        return AudienceSyntaxError(str(report.get("message", "")), position=report.get("position"), **common)
    return cls(str(report.get("message", "")), **common)
