"""userops: the core of a customer data platform, from Python.

>>> import userops
>>> engine = userops.Engine()
>>> receipt = engine.ingest({
...     "kind": "identify", "key": "jd-7781", "time": "2026-01-05T10:00:00+08:00",
...     "source": {"platform": "jd", "program": "brand-a"},
...     "ids": [{"kind": "phone", "value": "13800138000"}, {"kind": "device_id", "value": "a9f3"}],
... })
>>> receipt["oneid"], receipt["duplicate"]
(1, False)
>>> engine.resolve(("phone", "+86 138 0013 8000"))
1
"""

from __future__ import annotations

from typing import Any, Dict, Mapping, Optional, Union

from . import _args, _convert
from ._analytics import AnalyticsMethods as _AnalyticsMethods
from ._analytics import attribution, cohort_retention, funnel
from ._base import EngineBase as _EngineBase
from ._campaigns import CampaignsMethods as _CampaignsMethods
from ._identity import IdentityGraph, IdentityMethods, resolve_identities
from ._ingest import IngestMethods as _IngestMethods
from ._lifecycle import LifecycleMethods as _LifecycleMethods
from ._lifecycle import active_rate_decomposition, lifecycle
from ._loyalty import LoyaltyMethods as _LoyaltyMethods
from ._models import ModelsMethods as _ModelsMethods
from ._native import __version__
from ._profile import ProfileMethods as _ProfileMethods
from ._sample import sample_engine, sample_summary
from ._tags import Audience
from ._tags import TagsMethods as _TagsMethods
from ._privacy import PrivacyMethods
from .errors import (
    AudienceSyntaxError,
    BudgetExhausted,
    CouponUnusable,
    DuplicateKey,
    DuplicateOrder,
    ExpiryInPast,
    InsufficientPoints,
    InternalError,
    InvalidAmount,
    InvalidArgument,
    InvalidEvent,
    InvalidIdentifier,
    LedgerDuplicateKey,
    LedgerError,
    LimitReached,
    MissingDependency,
    NotConverged,
    NotEligible,
    NotFound,
    NotPending,
    OutOfRange,
    PromotionLimitReached,
    TableError,
    UnknownAccount,
    CorruptStore,
    OutOfRange,
    StorageError,
    UnknownMethod,
    UserOpsError,
)
from .models import (
    BetaGeo,
    ChurnModel,
    GammaGamma,
    calibration_and_holdout,
    churn_scores,
    preferences,
    rfm,
    summary_data,
)

__all__ = [
    "Engine",
    "__version__",
    "sample_engine",
    "sample_summary",
    # identity
    "IdentityGraph",
    "resolve_identities",
    # tags and audiences
    "Audience",
    # lifecycle and analytics
    "lifecycle",
    "active_rate_decomposition",
    "funnel",
    "cohort_retention",
    "attribution",
    # models
    "summary_data",
    "calibration_and_holdout",
    "rfm",
    "BetaGeo",
    "GammaGamma",
    "ChurnModel",
    "churn_scores",
    "preferences",
    # errors
    "UserOpsError",
    "InvalidArgument",
    "InvalidIdentifier",
    "InvalidEvent",
    "UnknownMethod",
    "DuplicateKey",
    "DuplicateOrder",
    "NotFound",
    "OutOfRange",
    "StorageError",
    "CorruptStore",
    "InternalError",
    "TableError",
    "MissingDependency",
    "AudienceSyntaxError",
    "LedgerError",
    "InsufficientPoints",
    "LedgerDuplicateKey",
    "UnknownAccount",
    "InvalidAmount",
    "ExpiryInPast",
    "NotPending",
    "LimitReached",
    "NotEligible",
    "NotConverged",
    "BudgetExhausted",
    "PromotionLimitReached",
    "CouponUnusable",
]


class Engine(
    # ---- module mixins: one base class per line, defined in the module's own file ----
    _IngestMethods,

    IdentityMethods,

    _ProfileMethods,
    _TagsMethods,

    _LoyaltyMethods,

    _LifecycleMethods,
    _AnalyticsMethods,

    _ModelsMethods,

    _CampaignsMethods,

    # EngineBase comes last: every mixin derives from it, so it must follow them in the MRO.
    PrivacyMethods,

    # The base comes last: mixins subclass it, and Python's MRO needs subclasses first.
    _EngineBase,
):
    """The unified user pool. Every method builds one engine command and returns its output.

    One engine is shared by threads: every call releases the GIL, writes run one at a time in
    journal order, and a read sees a whole state, with every write that returned before it
    started. ``concurrency="lock"`` (the default) keeps one copy of the state: reads run
    together but wait for a write in progress. ``concurrency="replicas"`` (for a service)
    keeps three: reads never wait for writes, and long analyses run on a copy of their own
    without holding writers up, for three times the memory (see the README's "Threads"
    section). Table methods (``ingest_table``, ``set_tags``) take pandas, polars, pyarrow or
    any Arrow PyCapsule object.

    >>> import userops
    >>> e = userops.Engine()
    >>> _ = e.ingest({"kind": "identify", "key": "k1", "time": "2026-01-05T10:00:00+08:00",
    ...               "source": {"platform": "app", "program": "brand-a"},
    ...               "ids": [{"kind": "member_no", "value": "M1"}]})
    >>> e.stats()["persons"], e.resolve(("member_no", "M1"))
    (1, 1)
    """

    def ingest(self, event: Union[Mapping[str, Any], _args.JsonText]) -> Dict[str, Any]:
        """Ingest one event (a dict in the wire shape of SPEC §2, or its JSON text).

        Returns the receipt: ``key``, ``kind``, ``seq``, ``oneid``, ``absorbed`` and
        ``duplicate`` (true when the idempotency key was seen before; nothing changed).
        Raises ``InvalidEvent`` naming the bad field, ``DuplicateKey`` when the key was used for
        other content (amounts compare by value and an ``identify``'s ids in any order: those
        are the same content), ``DuplicateOrder`` when the order id was already ingested from
        the same source program under another key, ``OutOfRange`` for an amount with more
        decimals than the currency's (2) or above 10^12, a time outside 1970–2099, or refunds
        beyond what the order paid (a refund must name an order of its program and person).

        >>> import userops
        >>> e = userops.Engine()
        >>> event = {"kind": "activity", "key": "a1", "time": "2026-01-05T10:00:00+08:00",
        ...          "source": {"platform": "app", "program": "brand-a"},
        ...          "user": {"kind": "member_no", "value": "M1"}, "type": "login"}
        >>> e.ingest(event)
        {'key': 'a1', 'kind': 'activity', 'seq': 1, 'oneid': 1, 'absorbed': [], 'duplicate': False}
        >>> e.ingest(event)["duplicate"]
        True
        """
        text = event if isinstance(event, str) else _convert.dumps(event)
        reply: Dict[str, Any] = self._reply(*self._native.ingest_json(text))
        return reply

    def resolve(self, user: _convert.UserLike) -> Optional[int]:
        """The OneID of a user reference, or ``None`` for an unknown identifier. Creates nothing.

        ``user`` is a ``(kind, value)`` tuple, a ``{"kind", "value"}`` dict, a OneID or
        ``{"oneid": n}``; identifiers are normalized first. Raises ``InvalidIdentifier`` for a
        malformed value.

        >>> import userops
        >>> e = userops.sample_engine()
        >>> e.resolve(("phone", "+86 138-0000-0002")), e.resolve(("member_no", "M9"))
        (2, None)
        """
        out = self.call("resolve", user=_convert.user(user))
        oneid: Optional[int] = out["oneid"]
        return oneid

    def stats(self) -> Dict[str, Any]:
        """Counts of what the engine holds: events (and per kind), persons, identifiers.

        >>> import userops
        >>> userops.sample_engine().stats()
        {'events': 23, 'events_by_kind': {'activity': 6, 'behavior': 5, 'identify': 3, 'order': 6, 'register': 3}, 'persons': 3, 'identifiers': 6}
        """
        out: Dict[str, Any] = self.call("stats")
        return out


# Last: every public function and method checks its arguments against its type hints (one
# place for InvalidArgument naming the argument; see `userops._args`).
_args.check_api(globals(), __all__)
