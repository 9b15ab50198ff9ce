"""Argument checking for the public API: one place that turns a wrong argument into
``InvalidArgument`` naming it and saying what was expected, before anything runs.

Every public function and every public method of a public class (``Engine``,
``IdentityGraph``, ``Audience``, the models, ...) is wrapped by :func:`check_api` (called once,
at the end of ``userops/__init__.py``): the wrapper checks each argument against the
parameter's type hint and hands the function normalized values (numpy scalars as Python
numbers, sequences and iterables as lists, mappings as dicts). What the hints say is the
contract:

* ``str`` is text that can be encoded as UTF-8 (no lone surrogates) of at most
  :data:`MAX_TEXT` characters: no name, key, reason or expression is longer, and a longer one
  is a mistake that a durable engine would journal for good (JSON text, ``JsonText``, is
  exempt: its values are checked as the engine reads them);
* ``int`` is an integer (not a ``bool``) in the signed 64-bit range, unless a
  :class:`Range` in ``Annotated[int, Range(...)]`` gives another;
* ``float`` is a finite number (an integer is accepted); ``Decimal`` a finite decimal;
* ``bool`` is ``True`` or ``False``;
* ``datetime`` carries a time zone: a naive datetime is refused, never guessed;
* ``Mapping``, ``Sequence``, ``Iterable``, ``Tuple``, ``Literal``, ``Optional`` and ``Union``
  are checked element by element (a string is not a sequence of strings);
* ``Any`` and ``object`` are not checked here: what such a value may be is the function's own
  business (tables, users, wire values, which :mod:`userops._convert` checks).

A call with a missing or unexpected argument is left to Python (``TypeError``), as for any
function.

>>> import userops
>>> e = userops.Engine()
>>> try:
...     e.earn(1, "brand-a", "100", "k1")
... except userops.InvalidArgument as err:
...     print(err.field, "|", err)
points | invalid argument at `points`: earn() expects an integer, got str '100'
"""

from __future__ import annotations

import collections.abc as cabc
import datetime as _dt
import functools
import inspect
import math
import numbers
import reprlib
import sys
import typing
from decimal import Decimal
from typing import Any, Callable, Dict, Iterable, List, Optional, Tuple, TypeVar

from .errors import InvalidArgument

_F = TypeVar("_F", bound=Callable[..., Any])

I64_MIN, I64_MAX, U64_MAX = -(2**63), 2**63 - 1, 2**64 - 1


#: The longest string argument, in characters (and the longest string inside one).
MAX_TEXT = 65_536


class Range:
    """Bounds of a number parameter, inclusive: ``Annotated[int, Range(0, 2**32 - 1)]``.

    >>> Range(0, 2**32 - 1).describe("an integer")
    'an integer from 0 to 4,294,967,295'
    """

    def __init__(self, low: float, high: float) -> None:
        self.low = low
        self.high = high

    def describe(self, what: str) -> str:
        """``what`` with the bounds, for messages."""
        return f"{what} from {self.low:,} to {self.high:,}"


class Unbounded:
    """Metadata exempting a ``str`` parameter from :data:`MAX_TEXT`: ``Annotated[str,
    Unbounded()]``."""


#: JSON text (an event), as long as it needs to be.
JsonText = typing.Annotated[str, Unbounded()]
#: A count or number of periods handed to native code as an unsigned 32-bit integer.
UInt32 = typing.Annotated[int, Range(0, 2**32 - 1)]
#: A seed handed to native code as an unsigned 64-bit integer.
UInt64 = typing.Annotated[int, Range(0, U64_MAX)]
#: A duration in seconds that native code counts in milliseconds (a signed 64-bit integer).
Seconds = typing.Annotated[float, Range(0, I64_MAX // 1000)]
#: A duration in days that native code counts in milliseconds.
Days = typing.Annotated[float, Range(0, I64_MAX // 86_400_000)]


class _Mismatch(Exception):
    """An argument (at ``path``) that is not what its hint says: ``expected``, and what was
    given (``got``, described only when a message needs it: a union tries its members by
    failing)."""

    def __init__(self, path: str, expected: str, value: Any, depth: int, got: Optional[str] = None) -> None:
        super().__init__(path)
        self.path = path
        self.expected = expected
        self.value = value
        self.depth = depth
        self._got = got

    @property
    def got(self) -> str:
        """The value given, in words."""
        return self._got if self._got is not None else describe(self.value)


_short = reprlib.Repr()
_short.maxstring = 40
_short.maxother = 40


def describe(value: Any) -> str:
    """A short description of a value for messages: its type and a shortened repr.

    >>> describe("x" * 100)
    "str 'xxxxxxxxxxxxxxxxx...xxxxxxxxxxxxxxxxxx'"
    >>> describe(None)
    'None'
    """
    if value is None:
        return "None"
    if isinstance(value, _dt.datetime) and value.tzinfo is None:
        return f"a naive datetime {value.isoformat(' ')} (no tzinfo)"
    return f"{type(value).__name__} {_short.repr(value)}"


#: Said after the expectation when a naive datetime was given.
NAIVE_HINT = (
    "; userops never guesses a time zone: pass datetime(..., tzinfo=datetime.timezone.utc) "
    "(or another zone) or RFC 3339 text with an offset"
)

Checker = Callable[[Any, str, int], Any]


def utf8_ok(s: str) -> bool:
    """Whether ``s`` can be encoded as UTF-8 (Python strings may hold lone surrogates).

    >>> utf8_ok("茶"), utf8_ok("\\udcff")
    (True, False)
    """
    if s.isascii():
        return True
    try:
        s.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def field_path(path: str, key: Any) -> str:
    """The path of a part of the value at ``path``, as the engine writes fields
    (``lines[0].price``).

    >>> field_path(field_path(field_path("cart", "lines"), 0), "price")
    'cart.lines[0].price'
    """
    if isinstance(key, int):
        return f"{path}[{key}]"
    return f"{path}.{key}" if path else str(key)


def _compile(hint: Any, where: str, namespace: Dict[str, Any]) -> Tuple[Optional[Checker], str]:
    """A checker for ``hint`` (``None`` when anything goes) and what it expects, in words;
    names in string hints are looked up in ``namespace``."""
    while isinstance(hint, (str, typing.ForwardRef)):  # "'Engine'" is a string in a string
        text = hint if isinstance(hint, str) else hint.__forward_arg__
        hint = eval(text, namespace)  # noqa: S307 - the package's own annotations
    origin = typing.get_origin(hint)
    args = typing.get_args(hint)
    if hint is Any or hint is object or isinstance(hint, TypeVar):
        return None, "anything"
    if origin is typing.Annotated:
        if args[0] is str and any(isinstance(m, Unbounded) for m in hint.__metadata__):
            return _long_str, "a string"
        ranges = [m for m in hint.__metadata__ if isinstance(m, Range)]
        if not ranges:
            return _compile(args[0], where, namespace)
        return _bounded(args[0], ranges[0])
    if hint is type(None) or hint is None:
        return _exact_none, "None"
    if hint is str:
        return _str, "a string"
    if hint is bool:
        return _bool, "True or False"
    if hint is int:
        return _bounded(int, Range(I64_MIN, I64_MAX))
    if hint is float:
        return _float, "a finite number"
    if hint is Decimal:
        return _decimal, "a finite Decimal"
    if hint is _dt.datetime:
        return _datetime, "a datetime with a time zone"
    if hint is _dt.date:
        return _date, "a date"
    if origin is typing.Union:
        return _union([_compile(a, where, namespace) for a in args])
    if origin is typing.Literal:
        return _literal(args)
    if origin in (cabc.Mapping, dict, cabc.MutableMapping):
        key = _compile(args[0], where, namespace) if args else (None, "anything")
        val = _compile(args[1], where, namespace) if args else (None, "anything")
        return _mapping(key[0], val[0]), "a mapping (dict)"
    if origin is tuple:
        if len(args) == 2 and args[1] is Ellipsis:
            item = _compile(args[0], where, namespace)
            return _sequence(item[0], tuple), "a tuple"
        items = [_compile(a, where, namespace) for a in args]
        words = ", ".join(w for _, w in items)
        return _fixed_tuple([c for c, _ in items]), f"a tuple ({words})"
    if origin in (cabc.Sequence, list, cabc.MutableSequence):
        item = _compile(args[0], where, namespace) if args else (None, "anything")
        return _sequence(item[0], list), "a list"
    if origin in (cabc.Iterable, cabc.Collection):
        item = _compile(args[0], where, namespace) if args else (None, "anything")
        return _sequence(item[0], list, any_iterable=True), "an iterable"
    if origin is type or hint is type:
        return None, "a class"
    if origin in (cabc.Callable,) or hint is cabc.Callable:
        return _callable, "a callable"
    if isinstance(hint, type):
        return _instance(hint), f"a {hint.__name__}"
    if isinstance(origin, type):  # os.PathLike[str]
        return _instance(origin), f"a {origin.__name__}"
    raise TypeError(f"{where}: userops._args cannot check the type hint {hint!r}")


def _fail(value: Any, path: str, depth: int, expected: str) -> _Mismatch:
    return _Mismatch(path, expected, value, depth)


def _exact_none(value: Any, path: str, depth: int) -> Any:
    if value is None:
        return None
    raise _fail(value, path, depth, "None")


def text_problem(s: str) -> Optional[Tuple[str, str]]:
    """What is wrong with a string argument, as ``(expected, got)``, or ``None``.

    >>> text_problem("ok"), text_problem("x" * 70_000)
    (None, ('a string of at most 65,536 characters', 'a string of 70,000 characters'))
    """
    if len(s) > MAX_TEXT:
        return f"a string of at most {MAX_TEXT:,} characters", f"a string of {len(s):,} characters"
    if not utf8_ok(s):
        return "text that can be encoded as UTF-8", "a string with a lone surrogate"
    return None


def _str(value: Any, path: str, depth: int) -> Any:
    if isinstance(value, str):
        problem = text_problem(value)
        if problem is not None:
            raise _Mismatch(path, problem[0], value, depth, got=problem[1])
        return value
    raise _fail(value, path, depth, "a string")


def _long_str(value: Any, path: str, depth: int) -> Any:
    if isinstance(value, str):
        if not utf8_ok(value):
            raise _Mismatch(path, "text that can be encoded as UTF-8", value, depth, got="a string with a lone surrogate")
        return value
    raise _fail(value, path, depth, "a string")


def _bool(value: Any, path: str, depth: int) -> Any:
    if isinstance(value, bool):
        return value
    if type(value).__name__ == "bool_" and type(value).__module__ == "numpy":
        return bool(value)
    raise _fail(value, path, depth, "True or False")


def _is_int(value: Any) -> bool:
    return isinstance(value, numbers.Integral) and not isinstance(value, bool)


def _bounded(kind: Any, bounds: Range) -> Tuple[Checker, str]:
    what = "an integer" if kind is int else "a finite number"
    expected = bounds.describe(what)

    def check(value: Any, path: str, depth: int) -> Any:
        if kind is int:
            if not _is_int(value):
                raise _fail(value, path, depth, what)
            number: Any = int(value)
        else:
            number = _float(value, path, depth)
        if not bounds.low <= number <= bounds.high:
            raise _fail(value, path, depth, expected)
        return number

    return check, what if bounds.low == I64_MIN and bounds.high == I64_MAX else expected


def _float(value: Any, path: str, depth: int) -> Any:
    if isinstance(value, numbers.Real) and not isinstance(value, bool):
        try:
            f = float(value)
        except OverflowError:  # an int beyond the largest float
            f = math.inf
        if math.isfinite(f):
            return f
    raise _fail(value, path, depth, "a finite number")


def _decimal(value: Any, path: str, depth: int) -> Any:
    if isinstance(value, Decimal) and value.is_finite():
        return value
    raise _fail(value, path, depth, "a finite Decimal")


def _datetime(value: Any, path: str, depth: int) -> Any:
    if isinstance(value, _dt.datetime):
        if value.tzinfo is not None and value.tzinfo.utcoffset(value) is not None:
            return value
        raise _Mismatch(path, "a datetime with a time zone", value, depth, got=describe(value) + NAIVE_HINT)
    raise _fail(value, path, depth, "a datetime with a time zone")


def _date(value: Any, path: str, depth: int) -> Any:
    if isinstance(value, _dt.datetime):
        return _datetime(value, path, depth)
    if isinstance(value, _dt.date):
        return value
    raise _fail(value, path, depth, "a date")


def _callable(value: Any, path: str, depth: int) -> Any:
    if callable(value):
        return value
    raise _fail(value, path, depth, "a callable")


def _instance(cls: type) -> Checker:
    def check(value: Any, path: str, depth: int) -> Any:
        if isinstance(value, cls):
            return value
        raise _fail(value, path, depth, f"a {cls.__name__}")

    return check


def _literal(values: Tuple[Any, ...]) -> Tuple[Checker, str]:
    expected = "one of " + ", ".join(repr(v) for v in values)

    def check(value: Any, path: str, depth: int) -> Any:
        # `True == 1`: a bool must not pass for an int literal (nor 1 for True).
        if any(type(value) is type(v) and value == v for v in values):
            return value
        raise _fail(value, path, depth, expected)

    return check, expected


def _union(members: List[Tuple[Optional[Checker], str]]) -> Tuple[Optional[Checker], str]:
    if any(c is None for c, _ in members):
        return None, "anything"
    expected = " or ".join(w for _, w in members)
    checkers = [c for c, _ in members if c is not None]

    def check(value: Any, path: str, depth: int) -> Any:
        deepest: Optional[_Mismatch] = None
        for c in checkers:
            try:
                return c(value, path, depth)
            except _Mismatch as m:
                if m.depth > depth and (deepest is None or m.depth > deepest.depth):
                    deepest = m
        # A member whose shape matched but whose contents did not says more than the list.
        if deepest is not None:
            raise deepest
        got = describe(value) + (NAIVE_HINT if _naive(value) else "")
        raise _Mismatch(path, expected, value, depth, got=got)

    return check, expected


def _naive(value: Any) -> bool:
    return isinstance(value, _dt.datetime) and (value.tzinfo is None or value.tzinfo.utcoffset(value) is None)


def _mapping(key: Optional[Checker], val: Optional[Checker]) -> Checker:
    def check(value: Any, path: str, depth: int) -> Any:
        if not isinstance(value, cabc.Mapping):
            raise _fail(value, path, depth, "a mapping (dict)")
        out = {}
        for k, v in value.items():
            sub = field_path(path, k)
            k2 = key(k, sub, depth + 1) if key is not None else k
            out[k2] = val(v, sub, depth + 1) if val is not None else v
        return out

    return check


def _listlike(value: Any, any_iterable: bool) -> bool:
    if isinstance(value, (str, bytes, bytearray, cabc.Mapping)):
        return False
    if isinstance(value, cabc.Sequence):
        return True
    if any_iterable:
        return isinstance(value, cabc.Iterable)
    # numpy arrays, pandas and polars Series, pyarrow arrays: ordered, though not `Sequence`s;
    # sets are not (their order is arbitrary).
    return not isinstance(value, (cabc.Set, cabc.Iterator)) and hasattr(value, "__len__") and hasattr(
        value, "__getitem__"
    )


def _sequence(item: Optional[Checker], into: type, any_iterable: bool = False) -> Checker:
    expected = "an iterable" if any_iterable else "a list"

    def check(value: Any, path: str, depth: int) -> Any:
        if not _listlike(value, any_iterable):
            raise _fail(value, path, depth, expected)
        try:
            items = list(value.tolist() if hasattr(value, "tolist") else value)
        except (TypeError, ValueError) as e:  # an iterable that fails while read
            got = f"{type(value).__name__} that cannot be read: {e}"
            raise _Mismatch(path, expected, value, depth, got=got) from None
        if item is not None:
            items = [item(x, field_path(path, i), depth + 1) for i, x in enumerate(items)]
        return into(items)

    return check


def _fixed_tuple(items: List[Optional[Checker]]) -> Checker:
    expected = f"a tuple of {len(items)}"

    def check(value: Any, path: str, depth: int) -> Any:
        if not isinstance(value, tuple) or len(value) != len(items):
            raise _fail(value, path, depth, expected)
        return tuple(
            c(x, field_path(path, i), depth + 1) if c is not None else x for i, (c, x) in enumerate(zip(items, value))
        )

    return check


# ------------------------------------------------------------------------------------------------
# wrapping


def _hints(func: Callable[..., Any], sig: inspect.Signature) -> Dict[str, Tuple[Checker, str]]:
    """Checkers of the parameters that have something to check."""
    module = sys.modules.get(func.__module__)
    namespace = dict(vars(module)) if module is not None else {}
    out: Dict[str, Tuple[Checker, str]] = {}
    for name, p in sig.parameters.items():
        if p.annotation is inspect.Parameter.empty or p.kind in (p.VAR_POSITIONAL, p.VAR_KEYWORD):
            continue
        checker, expected = _compile(p.annotation, f"{func.__qualname__}({name})", namespace)
        if checker is not None:
            out[name] = (checker, expected)
    return out


def checked(func: _F) -> _F:
    """``func`` with its arguments checked against its type hints (see the module docs).

    >>> @checked
    ... def f(n: int, names: "list[str]" = []) -> int:
    ...     return n + len(names)
    >>> f(1, ("a", "b"))
    3
    >>> try:
    ...     f(1, ["a", None])
    ... except InvalidArgument as e:
    ...     print(e.field, "|", e)
    names[1] | invalid argument at `names[1]`: f() expects a string, got None
    """
    if getattr(func, "__userops_checked__", False):
        return func
    sig = inspect.signature(func)
    name = func.__name__
    # Positional arguments bind to these parameters in order (what `sig.bind` would do, at a
    # fraction of its cost: this runs on every call).
    positional = [
        p.name for p in sig.parameters.values() if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD)
    ]
    # A keyword named like a positional-only parameter belongs to **kwargs (call(method, /, **args)).
    by_keyword = {p.name for p in sig.parameters.values() if p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY)}
    resolved: List[Dict[str, Tuple[Checker, str]]] = []

    def check(param: str, value: Any) -> Any:
        c = resolved[0].get(param)
        if c is None:
            return value
        try:
            return c[0](value, param, 0)
        except _Mismatch as m:
            raise InvalidArgument(
                f"invalid argument at `{m.path}`: {name}() expects {m.expected}, got {m.got}", field=m.path
            ) from None

    @functools.wraps(func)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        if not resolved:
            # Hints are read at the first call: their names may be defined after the function.
            resolved.append(_hints(func, sig))
        if resolved[0]:
            # Extra, missing or doubled arguments are left to Python's own TypeError.
            args = tuple(check(positional[i], v) if i < len(positional) else v for i, v in enumerate(args))
            for k, v in kwargs.items():
                if k in by_keyword:
                    kwargs[k] = check(k, v)
        return func(*args, **kwargs)

    setattr(wrapper, "__userops_checked__", True)
    return typing.cast(_F, wrapper)


def _check_class(cls: type) -> None:
    """Wrap every public method of ``cls`` (and ``__init__``) defined in userops, in place."""
    for attr in dir(cls):
        if attr.startswith("_") and attr != "__init__":
            continue
        for owner in cls.__mro__:
            if attr in vars(owner):
                raw = vars(owner)[attr]
                break
        else:
            continue
        if isinstance(raw, classmethod):
            func = raw.__func__
            wrap: Callable[[Any], Any] = classmethod
        elif isinstance(raw, staticmethod):
            func = raw.__func__
            wrap = staticmethod
        elif inspect.isfunction(raw):
            func, wrap = raw, lambda f: f
        else:
            continue
        if not (func.__module__ or "").startswith("userops"):
            continue
        setattr(cls, attr, wrap(checked(func)))


def check_api(namespace: Dict[str, Any], names: Iterable[str]) -> None:
    """Check the arguments of every public function and class method among ``names`` of
    ``namespace`` (the package's ``globals()`` and ``__all__``); a function is replaced in its
    own module too, so ``userops.models.rfm`` is the checked ``userops.rfm``."""
    for n in names:
        obj = namespace[n]
        if isinstance(obj, type):
            if not issubclass(obj, BaseException):
                _check_class(obj)
        elif inspect.isfunction(obj) and (obj.__module__ or "").startswith("userops"):
            func: Callable[..., Any] = obj
            wrapped = checked(func)
            namespace[n] = wrapped
            home = sys.modules.get(func.__module__)
            if home is not None and getattr(home, func.__name__, None) is func:
                setattr(home, func.__name__, wrapped)
