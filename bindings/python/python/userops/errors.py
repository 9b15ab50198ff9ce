"""The exception hierarchy of userops.

Every error the engine reports carries a stable ``code`` (for example ``"invalid_identifier"``),
a numeric ``status`` (the same number the C ABI returns), a ``message`` and, where the error is
about one field, ``field`` (a path such as ``"lines[0].price"``).
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

    def __init__(self, message: str, *, field: Optional[str] = None) -> None:
        super().__init__(message)
        self.message = message
        self.field = field


class InvalidArgument(UserOpsError):
    """A call argument is malformed."""

    code = "invalid_argument"
    status = 1


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


class NotFound(UserOpsError):
    """Something referenced does not exist (a OneID, a program, ...)."""

    code = "not_found"
    status = 6


class OutOfRange(UserOpsError):
    """A number is out of range or would overflow."""

    code = "out_of_range"
    status = 7


class StorageError(UserOpsError):
    """The durable store failed: I/O, a directory, a read-only or foreign file, a newer schema."""

    code = "storage"
    status = 40


class CorruptStore(UserOpsError):
    """The durable store holds a corrupt journal record or snapshot (the message names it)."""

    code = "corrupt"
    status = 41


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
        NotFound,
        OutOfRange,
        StorageError,
        CorruptStore,
        InternalError,
    )
}


def from_report(report: Dict[str, Any]) -> UserOpsError:
    """Build the exception matching an engine error report."""
    cls = _BY_CODE.get(str(report.get("code")), UserOpsError)
    return cls(str(report.get("message", "")), field=report.get("field"))
