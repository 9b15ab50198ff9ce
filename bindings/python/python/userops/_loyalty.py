"""Loyalty methods of the engine: programs, the points ledger, tiers, growth, benefits, tasks.

Every write takes an idempotency ``key``: replaying it returns the first result (marked
``duplicate``) and changes nothing; reusing it for other content raises ``LedgerDuplicateKey``.
Writes happen at ``time`` (default: now, UTC); pass timezone-aware datetimes.
"""

from __future__ import annotations

import datetime as _dt
from decimal import Decimal
from typing import TYPE_CHECKING, Any, Dict, List, Mapping, Optional, Sequence, Union

from . import _convert, _tables
from ._base import EngineBase
from .errors import InvalidArgument

# `Engine` lists `EngineBase` before the module mixins; a mixin that subclassed it at run time
# would make that order impossible (Python's MRO), so the base is for type checkers only.
if TYPE_CHECKING:
    _Base = EngineBase
else:
    _Base = object

Time = Optional[_dt.datetime]


def _now(time: Time) -> _dt.datetime:
    return time if time is not None else _dt.datetime.now(_dt.timezone.utc)


def _refund_line(line: Mapping[str, Any]) -> Dict[str, Any]:
    """A refund line for the wire: money as a decimal string, the rest as given."""
    out = dict(line)
    if out.get("amount") is not None:
        out["amount"] = str(out["amount"])
    return out


class LoyaltyMethods(_Base):
    """Points ledger, tiers, growth value, benefits and tasks (SPEC §6)."""

    def create_program(self, program: Mapping[str, Any]) -> Dict[str, Any]:
        """Create a program from its definition (``id``, ``level``, ``parent``, ``expiry``,
        ``overdraft``, ``clawback``, ``conversions``, ``merge_into``, ``growth``, ``tiers``,
        ``benefits``, ``tasks``; see ``userops._sample.PROGRAMS`` for a full one). ``clawback``
        is what a refund does with points already spent: ``"balance"`` (the default) takes them
        from the member's other points and forgives the rest, never going below zero;
        ``"debt"`` lets the balance go negative, repaid by later earns; ``"none"``. The same
        definition again is a no-op (``duplicate``); another definition under the same id, an
        unknown parent or a malformed ladder raise ``InvalidArgument``.

        >>> import userops
        >>> e = userops.sample_engine(loyalty=True)
        >>> e.create_program({"id": "store-1", "level": "store", "parent": "brand-a"})
        {'program': 'store-1', 'duplicate': False}
        """
        out: Dict[str, Any] = self.call("create_program", program=dict(program))
        return out

    def earn(
        self,
        user: _convert.UserLike,
        program: str,
        points: int,
        key: str,
        reason: str = "",
        expires: Optional[_dt.datetime] = None,
        pending: bool = False,
        *,
        order: Optional[str] = None,
        apply_multiplier: bool = False,
        actor: str = "",
        time: Time = None,
    ) -> Dict[str, Any]:
        """Earn points into a bucket expiring at ``expires`` (default: the program's policy).

        ``pending`` holds them until :meth:`post` (or :meth:`void`). ``order`` ties the earn to
        an order for :meth:`refund` (default: ``key``). Returns the posting: ``transfers``,
        ``points``, ``balance``, ``pending``, ``duplicate``. Raises ``InvalidAmount`` for
        points ≤ 0, ``ExpiryInPast``, ``UnknownAccount`` for an unknown program and
        ``LedgerDuplicateKey`` for a key reused with other content.

        >>> import datetime as dt, userops
        >>> e = userops.sample_engine(loyalty=True)  # programs "group" and "brand-a"
        >>> def t(day): return dt.datetime(2026, 1, day, tzinfo=dt.timezone.utc)
        >>> e.earn(("member_no", "M1"), "brand-a", 100, "e1", reason="welcome", time=t(2))
        {'key': 'e1', 'transfers': [1], 'points': 100, 'other': 0, 'balance': 100, 'pending': False, 'duplicate': False}
        >>> e.earn(("member_no", "M1"), "brand-a", 100, "e1", reason="welcome", time=t(2))["duplicate"]
        True
        """
        out: Dict[str, Any] = self.call(
            "earn", user=_convert.user(user), program=program, points=points, key=key,
            reason=reason, expires=expires, pending=pending, order=order,
            apply_multiplier=apply_multiplier, actor=actor, time=_now(time),
        )
        return out

    def spend(
        self,
        user: _convert.UserLike,
        program: str,
        points: int,
        key: str,
        reason: str = "",
        *,
        actor: str = "",
        time: Time = None,
    ) -> Dict[str, Any]:
        """Spend points, earliest-expiring first. Raises ``InsufficientPoints`` beyond the
        balance (plus the program's overdraft). Returns the posting (as :meth:`earn`).

        >>> import datetime as dt, userops
        >>> e = userops.sample_engine(loyalty=True)  # programs "group" and "brand-a"
        >>> def t(day): return dt.datetime(2026, 1, day, tzinfo=dt.timezone.utc)
        >>> _ = e.earn(("member_no", "M1"), "brand-a", 100, "e1", time=t(2))
        >>> e.spend(1, "brand-a", 30, "s1", time=t(3))["balance"]
        70
        >>> try:
        ...     e.spend(1, "brand-a", 500, "s2", time=t(3))
        ... except userops.InsufficientPoints as err:
        ...     print(err.code)
        insufficient_points
        """
        out: Dict[str, Any] = self.call(
            "spend", user=_convert.user(user), program=program, points=points, key=key,
            reason=reason, actor=actor, time=_now(time),
        )
        return out

    def post(self, key: str, *, time: Time = None) -> Dict[str, Any]:
        """Post the pending earn written with ``key``: its points join the balance. Raises
        ``NotPending`` when there is no open pending earn under ``key``.

        >>> import datetime as dt, userops
        >>> e = userops.sample_engine(loyalty=True)  # programs "group" and "brand-a"
        >>> def t(day): return dt.datetime(2026, 1, day, tzinfo=dt.timezone.utc)
        >>> _ = e.earn(1, "brand-a", 50, "e2", pending=True, time=t(4))
        >>> e.balance(1, "brand-a"), e.post("e2", time=t(5))["balance"]
        (0, 50)
        """
        out: Dict[str, Any] = self.call("post", key=key, time=_now(time))
        return out

    def void(self, key: str, *, time: Time = None) -> Dict[str, Any]:
        """Void the pending earn written with ``key``: its points never reach the balance.
        Raises ``NotPending`` when there is no open pending earn under ``key``.

        >>> import datetime as dt, userops
        >>> e = userops.sample_engine(loyalty=True)  # programs "group" and "brand-a"
        >>> def t(day): return dt.datetime(2026, 1, day, tzinfo=dt.timezone.utc)
        >>> _ = e.earn(1, "brand-a", 20, "e3", pending=True, time=t(4))
        >>> e.void("e3", time=t(5))["balance"], e.balance(1, "brand-a")
        (0, 0)
        """
        out: Dict[str, Any] = self.call("void", key=key, time=_now(time))
        return out

    def refund(
        self,
        order_key: str,
        key: str,
        *,
        amount: Union[Decimal, str, None] = None,
        lines: Optional[Sequence[Mapping[str, Any]]] = None,
        time: Time = None,
    ) -> Dict[str, Any]:
        """Reverse every earn tied to ``order_key``: pending ones are voided, the unspent rest
        reversed (``points``), spent points clawed back by the program's policy (``other``).

        With ``amount`` (money, a ``Decimal`` or decimal string) only that share of the order
        is refunded: each earn that records its order amount (earns made by a program's order
        earn rules) gives back its points for the refunded share. Measured over all refunds of
        the order so far, the member keeps ``floor(points × (order − refunded) / order)``: the
        rounding never creates points, and partial refunds add up to one refund of their total.
        Refunds never exceed what was paid: an ``amount`` above what is left of the order raises
        ``InvalidAmount`` (``field`` ``"amount"``) and changes nothing. Spent points are taken
        from the member's other points by default and the rest forgiven, so the balance stays
        ≥ 0; only a program with ``"clawback": "debt"`` lets it go negative. Returns the posting
        (as :meth:`earn`). Raises ``NotPending`` when nothing is left to refund.

        >>> import datetime as dt, userops
        >>> e = userops.sample_engine(loyalty=True)  # programs "group" and "brand-a"
        >>> def t(day): return dt.datetime(2026, 1, day, tzinfo=dt.timezone.utc)
        >>> _ = e.earn(("member_no", "M1"), "brand-a", 100, "e1", time=t(2))
        >>> _ = e.earn(1, "brand-a", 50, "e2", order="A9", time=t(4))
        >>> e.refund("A9", "r1", time=t(6))["points"], e.balance(1, "brand-a")
        (50, 100)

        With ``lines`` only those order lines are refunded, each a dict naming the line by
        ``"sku"`` (or ``"line"``, its 0-based index) with the units returned (``"qty"``) and/or
        the money refunded without units (``"amount"``, a price adjustment): each earn that
        records the order's lines (order earn rules) gives back what those lines earned under
        its multipliers, never more than a line earned; refunding every line gives back exactly
        the order's points. An unknown line or a ``qty`` above what is left to refund raises
        ``InvalidAmount`` (``field`` such as ``"lines[0].qty"``) and changes nothing.

        >>> import userops
        >>> e = userops.Engine()
        >>> _ = e.create_program({"id": "b", "earn": {"points_per_unit": "1"}})
        >>> _ = e.ingest({"kind": "order", "key": "o1", "time": "2026-03-01T10:00:00Z",
        ...     "source": {"platform": "app", "program": "b"},
        ...     "user": {"kind": "member_no", "value": "M1"},
        ...     "order_id": "O1", "amount": "30", "lines": [
        ...         {"sku": "x", "price": "10", "qty": 1}, {"sku": "y", "price": "10", "qty": 2}]})
        >>> e.refund("O1", "r1", lines=[{"sku": "y", "qty": 1}])["points"]
        10
        >>> e.balance(("member_no", "M1"), "b")
        20
        """
        if lines is not None:
            if amount is not None:
                raise InvalidArgument(
                    "give either amount or lines: lines carry their own amounts", field="amount"
                )
            by_line: Dict[str, Any] = self.call(
                "refund_lines",
                order_key=order_key,
                key=key,
                lines=[_refund_line(x) for x in lines],
                time=_now(time),
            )
            return by_line
        if amount is None:
            out: Dict[str, Any] = self.call(
                "refund", order_key=order_key, key=key, time=_now(time)
            )
            return out
        part: Dict[str, Any] = self.call(
            "refund_amount", order_key=order_key, key=key, amount=str(amount), time=_now(time)
        )
        return part

    def post_due(self, now: _dt.datetime) -> Dict[str, Any]:
        """Post every pending order earn whose return window closed by ``now``:
        ``{"posted": [keys], "points": n, "skipped": [keys voided by refunds meanwhile]}``.
        (Order earns are pending when the program's order earn rules give a return window.)

        >>> import datetime as dt, userops
        >>> e = userops.sample_engine(loyalty=True)  # programs "group" and "brand-a"
        >>> def t(day): return dt.datetime(2026, 1, day, tzinfo=dt.timezone.utc)
        >>> e.post_due(t(20))
        {'posted': [], 'points': 0, 'skipped': []}
        """
        out: Dict[str, Any] = self.call("post_due", now=now)
        return out

    def expire(self, now: _dt.datetime) -> Dict[str, Any]:
        """Expire every bucket due at ``now``: ``{"points": ..., "transfers": [...]}``.

        >>> import datetime as dt, userops
        >>> e = userops.sample_engine(loyalty=True)  # programs "group" and "brand-a"
        >>> def t(day): return dt.datetime(2026, 1, day, tzinfo=dt.timezone.utc)
        >>> _ = e.earn(1, "brand-a", 10, "e4", expires=t(10), time=t(6))
        >>> e.expire(t(11)), e.balance(1, "brand-a")
        ({'points': 10, 'transfers': [2]}, 0)
        """
        out: Dict[str, Any] = self.call("expire", now=now)
        return out

    def convert(
        self,
        user: _convert.UserLike,
        src: str,
        dst: str,
        points: int,
        key: str,
        *,
        time: Time = None,
    ) -> Dict[str, Any]:
        """Convert points from ``src`` to ``dst`` at ``src``'s rate: whole lots only, the
        remainder stays in ``src``. ``points`` is what was used, ``other`` what was credited.
        Raises ``InvalidArgument`` when ``src`` has no conversion to ``dst``.

        >>> import datetime as dt, userops
        >>> e = userops.sample_engine(loyalty=True)  # programs "group" and "brand-a"
        >>> def t(day): return dt.datetime(2026, 1, day, tzinfo=dt.timezone.utc)
        >>> _ = e.earn(("member_no", "M1"), "brand-a", 100, "e1", time=t(2))
        >>> c = e.convert(1, "brand-a", "group", 25, "c1", time=t(12))  # 10 → 3
        >>> c["points"], c["other"], e.balance(1, "group")
        (20, 6, 6)
        """
        out: Dict[str, Any] = self.call(
            "convert", user=_convert.user(user), src=src, dst=dst, points=points, key=key,
            time=_now(time),
        )
        return out

    def balance(self, user: _convert.UserLike, program: str) -> int:
        """The member's posted balance (0 for a member without points; pending earns are not
        in it). Raises ``UnknownAccount`` for an unknown program.

        >>> import datetime as dt, userops
        >>> e = userops.sample_engine(loyalty=True)  # programs "group" and "brand-a"
        >>> def t(day): return dt.datetime(2026, 1, day, tzinfo=dt.timezone.utc)
        >>> _ = e.earn(("member_no", "M1"), "brand-a", 100, "e1", time=t(2))
        >>> e.balance(("member_no", "M1"), "brand-a"), e.balance(("member_no", "M2"), "brand-a")
        (100, 0)
        """
        out: int = self.call("balance", user=_convert.user(user), program=program)
        return out

    def statement(
        self, user: _convert.UserLike, program: str, *, output: _tables.Output = None
    ) -> Any:
        """The member's postings as a table, oldest first (pandas by default; ``output=``
        ``"polars"`` or ``"arrow"``; built as Arrow in Rust): ``id``, ``time`` (UTC), ``kind``,
        ``key``, ``amount`` (signed), ``balance`` (running), ``pending``, ``counterparty``,
        ``expires`` (UTC, null for points that never expire), ``reason``, ``actor``.

        >>> import datetime as dt, userops
        >>> e = userops.Engine()
        >>> _ = e.create_program({"id": "brand-a", "level": "brand"})
        >>> _ = e.earn(("member_no", "M1"), "brand-a", 100, "o1", time=dt.datetime(2026, 1, 1, tzinfo=dt.timezone.utc))
        >>> e.statement(("member_no", "M1"), "brand-a", output="arrow").select(["kind", "amount", "balance"]).to_pylist()
        [{'kind': 'earn', 'amount': 100, 'balance': 100}]
        """
        return self._output_table(output, "statement", user=_convert.user(user), program=program)

    def tier(
        self, user: _convert.UserLike, program: str, now: Optional[_dt.datetime] = None
    ) -> Dict[str, Any]:
        """The member's tier at ``now`` (default: the current time): ``tier``, ``metric`` (the
        ladder's basis over its window), ``growth_total``, ``spend_total``, ``next``,
        ``to_next``, ``downgrade_due`` and ``history``.

        >>> import datetime as dt, userops
        >>> e = userops.sample_engine(loyalty=True)  # programs "group" and "brand-a"
        >>> def t(day): return dt.datetime(2026, 1, day, tzinfo=dt.timezone.utc)
        >>> _ = e.record_spend(1, "brand-a", "1200.00", "sp1", time=t(12))
        >>> r = e.tier(1, "brand-a", now=t(13))
        >>> r["tier"], r["metric"], [h["to"] for h in r["history"]]
        ('gold', '1200.00', ['gold'])
        """
        out: Dict[str, Any] = self.call(
            "tier", user=_convert.user(user), program=program, now=now
        )
        return out

    def evaluate_tiers(self, now: _dt.datetime) -> Dict[str, Any]:
        """Evaluate every ladder at ``now`` (downgrades when the window's metric fell, after
        any grace): counts of ``members``, ``upgraded``, ``downgraded``, ``grace``.

        >>> import datetime as dt, userops
        >>> e = userops.sample_engine(loyalty=True)  # programs "group" and "brand-a"
        >>> def t(day): return dt.datetime(2026, 1, day, tzinfo=dt.timezone.utc)
        >>> _ = e.record_spend(1, "brand-a", "1200.00", "sp1", time=t(12))
        >>> e.evaluate_tiers(t(14))
        {'members': 1, 'upgraded': 0, 'downgraded': 0, 'grace': 0}
        """
        out: Dict[str, Any] = self.call("evaluate_tiers", now=now)
        return out

    def add_growth(
        self,
        user: _convert.UserLike,
        program: str,
        behaviour: str,
        key: str,
        count: int = 1,
        *,
        time: Time = None,
    ) -> Dict[str, Any]:
        """Record a behaviour's growth value (weight × count, after the daily cap); upgrades at
        once. Returns ``growth`` added, ``tier`` and ``upgraded``. Raises ``InvalidArgument`` for
        a behaviour without a weight.

        >>> import datetime as dt, userops
        >>> e = userops.sample_engine(loyalty=True)  # programs "group" and "brand-a"
        >>> def t(day): return dt.datetime(2026, 1, day, tzinfo=dt.timezone.utc)
        >>> g = e.add_growth(1, "brand-a", "order", "g1", 2, time=t(14))  # weight 10
        >>> g["growth"], g["tier"]
        (20, 'silver')
        """
        out: Dict[str, Any] = self.call(
            "add_growth", user=_convert.user(user), program=program, behaviour=behaviour,
            key=key, count=count, time=_now(time),
        )
        return out

    def record_spend(
        self,
        user: _convert.UserLike,
        program: str,
        amount: Union[Decimal, str, int],
        key: str,
        *,
        time: Time = None,
    ) -> Dict[str, Any]:
        """Record money spent (for spend-based ladders); upgrades at once. Returns ``spend``,
        ``tier`` and ``upgraded``. Raises ``InvalidAmount`` for a negative amount.

        >>> import datetime as dt, userops
        >>> e = userops.sample_engine(loyalty=True)  # programs "group" and "brand-a"
        >>> def t(day): return dt.datetime(2026, 1, day, tzinfo=dt.timezone.utc)
        >>> r = e.record_spend(1, "brand-a", "1200.00", "sp1", time=t(12))
        >>> r["tier"], r["upgraded"]
        ('gold', True)
        """
        out: Dict[str, Any] = self.call(
            "record_spend", user=_convert.user(user), program=program,
            amount=str(amount), key=key, time=_now(time),
        )
        return out

    def benefits(
        self, user: _convert.UserLike, program: str, now: Optional[_dt.datetime] = None
    ) -> List[Dict[str, Any]]:
        """The program's benefits with what the member is granted and may still claim at
        ``now``: ``id``, ``kind``, ``granted``, ``claimed``, ``remaining``, ``multiplier``,
        ``coupons``, ``description``.

        >>> import datetime as dt, userops
        >>> e = userops.sample_engine(loyalty=True)  # programs "group" and "brand-a"
        >>> def t(day): return dt.datetime(2026, 1, day, tzinfo=dt.timezone.utc)
        >>> _ = e.record_spend(1, "brand-a", "1200.00", "sp1", time=t(12))
        >>> [(b["id"], b["granted"], b["remaining"]) for b in e.benefits(1, "brand-a", now=t(15))]
        [('wash', True, 1)]
        """
        out: List[Dict[str, Any]] = self.call(
            "benefits", user=_convert.user(user), program=program, now=now
        )
        return out

    def claim_benefit(
        self, user: _convert.UserLike, program: str, benefit: str, key: str, *, time: Time = None
    ) -> Dict[str, Any]:
        """Claim a benefit. Returns ``benefit``, ``coupons`` issued and ``remaining``. Raises
        ``NotEligible`` (tier) or ``LimitReached``.

        >>> import datetime as dt, userops
        >>> e = userops.sample_engine(loyalty=True)  # programs "group" and "brand-a"
        >>> def t(day): return dt.datetime(2026, 1, day, tzinfo=dt.timezone.utc)
        >>> try:
        ...     e.claim_benefit(1, "brand-a", "wash", "b0", time=t(15))
        ... except userops.NotEligible:
        ...     print("gold only")
        gold only
        >>> _ = e.record_spend(1, "brand-a", "1200.00", "sp1", time=t(12))
        >>> e.claim_benefit(1, "brand-a", "wash", "b1", time=t(15))["remaining"]
        0
        """
        out: Dict[str, Any] = self.call(
            "claim_benefit", user=_convert.user(user), program=program, benefit=benefit,
            key=key, time=_now(time),
        )
        return out

    def complete_task(
        self, user: _convert.UserLike, program: str, task: str, key: str, *, time: Time = None
    ) -> Dict[str, Any]:
        """Complete a task: its points and growth value. Returns ``completions``, ``points``,
        ``growth`` and ``tier``. Raises ``LimitReached`` past its cap, ``NotFound`` for an
        unknown task.

        >>> import datetime as dt, userops
        >>> e = userops.sample_engine(loyalty=True)  # programs "group" and "brand-a"
        >>> def t(day): return dt.datetime(2026, 1, day, tzinfo=dt.timezone.utc)
        >>> e.complete_task(1, "brand-a", "survey", "k1", time=t(15))["points"], e.balance(1, "brand-a")
        (5, 5)
        """
        out: Dict[str, Any] = self.call(
            "complete_task", user=_convert.user(user), program=program, task=task, key=key,
            time=_now(time),
        )
        return out
