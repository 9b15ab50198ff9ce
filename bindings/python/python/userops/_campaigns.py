"""Campaigns: promotions, quotes, coupons, automation rules, delivery plans and monitoring.

Money travels as decimal strings (``"300"``, ``"49.90"``); ``decimal.Decimal`` values are
accepted wherever a string is. Times are RFC 3339 strings with a zone, or ``datetime`` objects
with a timezone.
"""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING, Any, Dict, Iterable, List, Mapping, Optional, Sequence, Union

from . import _convert

if TYPE_CHECKING:
    from ._base import EngineBase as _Base
else:
    # At run time a plain mixin: `Engine` lists `EngineBase` first, and a mixin that also
    # derived from it would make the method resolution order inconsistent.
    _Base = object

TimeLike = Union[str, datetime]

#: The columns of a delivery plan as a table.
_PLAN = [
    ("touch_id", "u64"), ("user", "u64"), ("action", "str"), ("channel", "str"), ("content", "str"),
    ("coupon_id", "str"), ("points", "i64"), ("tag", "str"), ("rule", "str"), ("reason", "str"),
]


def _time(t: TimeLike) -> str:
    if isinstance(t, datetime):
        if t.tzinfo is None:
            raise ValueError("datetime must carry a timezone")
        return t.isoformat()
    return t


def _rows(table: Any) -> List[Dict[str, Any]]:
    """Accept a list of dicts, a pandas DataFrame or a pyarrow / polars table."""
    if isinstance(table, list):
        return [dict(r) for r in table]
    if hasattr(table, "to_pylist"):  # pyarrow.Table
        return list(table.to_pylist())
    if hasattr(table, "to_dicts"):  # polars.DataFrame
        return list(table.to_dicts())
    if hasattr(table, "to_dict"):  # pandas.DataFrame
        return list(table.to_dict("records"))
    return [dict(r) for r in table]


class CampaignsMethods(_Base):
    """Promotion engine, coupons, automation and delivery monitoring (SPEC §7)."""

    # ---- promotions ----------------------------------------------------------------------

    def add_promotion(self, promotion: Mapping[str, Any]) -> None:
        """Add (or replace by id) a promotion.

        ``{"id", "name", "conditions": {...}, "action": {"type": "threshold_discount",
        "threshold": "300", "off": "50"} | {"type": "percent_off", "percent": "20"} | ...,
        "stacking": {"mode": "exclusive" | "stackable", "group", "priority"}, "budget":
        {"kind": "money", "amount": "1000"} | {"kind": "count", "count": 100}, "limits":
        {"per_user", "per_order", "total"}}``. Contradictory conditions or a negative budget
        raise ``InvalidArgument``.
        """
        self.call("add_promotion", promotion=dict(promotion))

    def quote(
        self,
        cart: Mapping[str, Any],
        user: Optional[_convert.UserLike] = None,
        mode: str = "best_for_customer",
    ) -> Dict[str, Any]:
        """Evaluate a cart ``{"lines": [{"sku", "category", "price", "qty"}], "channel",
        "region", "store", "time"}``.

        Returns ``subtotal``, ``discount``, ``total`` (decimal strings), ``lines`` (per line:
        ``amount``, ``discount``, ``total``), ``applied`` (``{id, discount, budget_use, lines,
        rewards}``) and ``not_applied`` (``{id, code, reason}``). ``mode`` is
        ``"best_for_customer"`` or ``"priority"``. Nothing changes until ``commit``.
        """
        args: Dict[str, Any] = {"cart": dict(cart), "mode": mode}
        if user is not None:
            args["user"] = _convert.user(user)
        out: Dict[str, Any] = self.call("quote", **args)
        return out

    def commit(self, quote: Mapping[str, Any], key: str) -> Dict[str, Any]:
        """Consume the quote's budgets and limits under an idempotency ``key`` (e.g. the order
        id). Replaying a key with the same quote changes nothing (``duplicate`` is true); raises
        ``BudgetExhausted`` / ``PromotionLimitReached`` when the quote no longer fits."""
        out: Dict[str, Any] = self.call("commit", quote=dict(quote), key=key)
        return out

    def cancel(self, key: str) -> Dict[str, Any]:
        """Give back what the commit under ``key`` consumed (a second cancel changes nothing)."""
        out: Dict[str, Any] = self.call("cancel", key=key)
        return out

    def promotion_usage(self, promotion_id: str) -> Dict[str, Any]:
        """``{"id", "money", "orders", "budget_left"}`` of one promotion."""
        out: Dict[str, Any] = self.call("promotion_usage", id=promotion_id)
        return out

    # ---- coupons -------------------------------------------------------------------------

    def add_coupon_template(self, template: Mapping[str, Any]) -> None:
        """Add a coupon template ``{"id", "kind": "consumption" | "gift" | "service",
        "benefit": {"type": "amount_off", "off"} | {"type": "percent_off", "percent"} |
        {"type": "item", "sku"} | {"type": "service", "service"}, "skus", "categories",
        "min_amount", "valid_from", "valid_to", "valid_days", "stock"}``."""
        self.call("add_coupon_template", template=dict(template))

    def issue_coupons(
        self,
        template: str,
        users: Iterable[_convert.UserLike] = (),
        time: TimeLike = "",
        audience: Optional[str] = None,
    ) -> List[str]:
        """Issue one coupon of ``template`` to each user (or each member of ``audience``);
        the coupon ids. All or nothing (template stock is checked first)."""
        out: List[str] = self.call(
            "issue_coupons",
            template=template,
            users=[_convert.user(u) for u in users],
            audience=audience,
            time=_time(time),
        )
        return out

    def claim_coupon(self, template: str, user: _convert.UserLike, time: TimeLike) -> str:
        """The user claims a coupon of ``template`` (one issued to them, else one from stock);
        the coupon id."""
        out = self.call("claim_coupon", template=template, user=_convert.user(user), time=_time(time))
        coupon_id: str = out["coupon_id"]
        return coupon_id

    def use_coupon(
        self, coupon_id: str, user: _convert.UserLike, cart: Mapping[str, Any]
    ) -> Dict[str, Any]:
        """Use a coupon on a cart (at the cart's ``time``): ``{"coupon_id", "discount",
        "lines", "service"}``. Raises ``CouponUnusable`` when used, expired, out of window or
        without an eligible line."""
        out: Dict[str, Any] = self.call(
            "use_coupon", coupon_id=coupon_id, user=_convert.user(user), cart=dict(cart)
        )
        return out

    def return_coupon(self, coupon_id: str, time: TimeLike) -> str:
        """Return a used coupon after a refund; its new state (``claimed`` or ``expired``)."""
        out = self.call("return_coupon", coupon_id=coupon_id, time=_time(time))
        state: str = out["state"]
        return state

    def expire_coupons(self, now: TimeLike) -> List[str]:
        """Expire coupons whose window closed by ``now``; their ids."""
        out: List[str] = self.call("expire_coupons", now=_time(now))
        return out

    def coupon_counts(self, template: Optional[str] = None) -> List[Dict[str, Any]]:
        """Counts per state (issued, claimed, used, expired, returned) per template."""
        out: List[Dict[str, Any]] = self.call("coupon_counts", template=template)
        return out

    # ---- automation and monitoring -------------------------------------------------------

    def add_rule(self, rule: Mapping[str, Any]) -> None:
        """Add (or replace by id) an automation rule ``{"id", "trigger": {"type": "audience"
        | "order" | "register" | "birthday" | "inactive", ...}, "actions": [{"type": "touch",
        "channel", "content", "purpose", "frequency_cap": {"max", "days"}} | {"type":
        "issue_coupon", "template"} | {"type": "grant_points", "points"} | {"type": "add_tag",
        "tag"}], "quiet_hours": [22, 8], "attribution_days": 7}``."""
        self.call("add_rule", rule=dict(rule))

    def run_automation(self, now: TimeLike, *, output: Optional[str] = None) -> Any:
        """Run every rule at ``now``: the delivery plan, one dict per row (``touch_id``,
        ``user``, ``action``, ``channel``, ``content``, ``coupon_id``, ``points``, ``tag``,
        ``rule``, ``reason``), or with ``output="pandas" | "polars" | "arrow"`` a table of that
        kind (built as Arrow in Rust). Sending is the host's job.

        >>> import userops
        >>> e = userops.Engine()
        >>> _ = e.ingest({"kind": "activity", "key": "a1", "time": "2026-01-01T10:00:00+08:00", "type": "login",
        ...               "source": {"platform": "app", "program": "p"}, "user": {"kind": "member_no", "value": "M1"}})
        >>> e.set_touch_consent(1, "sms")
        >>> e.add_rule({"id": "wb", "trigger": {"type": "inactive", "days": 30},
        ...             "actions": [{"type": "touch", "channel": "sms", "content": "hi"}]})
        >>> e.run_automation("2026-03-01T10:00:00+08:00", output="arrow").select(["user", "channel", "rule"]).to_pylist()
        [{'user': 1, 'channel': 'sms', 'rule': 'wb'}]
        """
        if output is not None:
            return self._rows_table(output, "run_automation", _PLAN, now=_time(now))
        out: List[Dict[str, Any]] = self.call("run_automation", now=_time(now))
        return out

    def record_outcomes(self, table: Any) -> int:
        """Record touch outcomes: rows ``{"touch_id", "outcome": "sent" | "delivered" |
        "opened" | "clicked" | "converted", "time", "amount"}`` as a list of dicts or a
        pandas / polars / Arrow table. All rows are checked before any is applied."""
        rows = []
        for r in _rows(table):
            r = {k: v for k, v in r.items() if v is not None}
            if "time" in r:
                r["time"] = _time(r["time"])
            if "amount" in r:
                r["amount"] = str(r["amount"])
            if "touch_id" in r:
                r["touch_id"] = int(r["touch_id"])
            rows.append(r)
        out = self.call("record_outcomes", rows=rows)
        recorded: int = out["recorded"]
        return recorded

    def channel_effectiveness(self, by: str = "channel") -> List[Dict[str, Any]]:
        """Funnel per ``channel``, ``rule`` or ``audience``: planned, sent, delivered, opened,
        clicked, converted, revenue, conversion_rate."""
        out: List[Dict[str, Any]] = self.call("channel_effectiveness", by=by)
        return out

    def set_touch_consent(
        self,
        user: _convert.UserLike,
        channel: str,
        granted: bool = True,
        purpose: str = "marketing",
    ) -> None:
        """Grant or withdraw a user's consent to touches on ``channel`` for ``purpose``.
        Automation never plans a touch without it."""
        self.call(
            "set_touch_consent",
            user=_convert.user(user),
            channel=channel,
            purpose=purpose,
            granted=granted,
        )


__all__: Sequence[str] = ["CampaignsMethods"]
