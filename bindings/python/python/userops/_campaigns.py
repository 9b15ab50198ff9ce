"""Campaigns: promotions, quotes, coupons, automation rules, delivery plans and monitoring.

Money travels as decimal strings (``"300"``, ``"49.90"``); ``decimal.Decimal`` values are
accepted wherever a string is. Times are RFC 3339 strings with a zone, or ``datetime`` objects
with a timezone.
"""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING, Any, Dict, Iterable, List, Mapping, Optional, Sequence, Tuple, Union

from . import _convert, _native, _tables
from .errors import TableError

if TYPE_CHECKING:
    from ._base import EngineBase as _Base
else:
    # At run time a plain mixin: `Engine` lists `EngineBase` first, and a mixin that also
    # derived from it would make the method resolution order inconsistent.
    _Base = object

TimeLike = Union[str, datetime]

def _time(t: TimeLike) -> str:
    # The argument check refused naive datetimes already (see `userops._args`).
    return t.isoformat() if isinstance(t, datetime) else t


#: The delivery plan's columns, in order, with their Arrow types (see :meth:`run_automation`);
#: the C ABI's ``userops_automation_plan`` exports the same.
PLAN_COLUMNS: Sequence[Tuple[str, str]] = tuple(
    (name, arrow_type) for name, arrow_type, _ in _native.output_columns["automation_plan"]
)


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

        >>> import userops
        >>> e = userops.sample_engine()
        >>> e.add_promotion({"id": "m300", "name": "50 off 300", "conditions": {},
        ...                  "action": {"type": "threshold_discount", "threshold": "300", "off": "50"},
        ...                  "budget": {"kind": "money", "amount": "1000"}})
        >>> cart = {"time": "2026-03-02T10:00:00+08:00", "channel": "app",
        ...         "lines": [{"sku": "tea-1", "category": "tea", "price": "199.00", "qty": 2}]}
        >>> e.quote(cart)["discount"]
        '50.00'
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
        rewards}``), ``not_applied`` (``{id, code, reason}``) and ``checksum`` (what
        :meth:`commit` verifies). ``mode`` is ``"best_for_customer"`` or ``"priority"``. Nothing
        changes until ``commit``. Raises ``InvalidArgument`` for a malformed cart and
        ``OutOfRange`` for a price with more than 2 decimals or a price, line (``price × qty``)
        or subtotal above 10^12.

        >>> import userops
        >>> e = userops.sample_engine()
        >>> e.add_promotion({"id": "m300", "name": "50 off 300", "conditions": {},
        ...                  "action": {"type": "threshold_discount", "threshold": "300", "off": "50"},
        ...                  "budget": {"kind": "money", "amount": "1000"}})
        >>> cart = {"time": "2026-03-02T10:00:00+08:00", "channel": "app",
        ...         "lines": [{"sku": "tea-1", "category": "tea", "price": "199.00", "qty": 2}]}
        >>> q = e.quote(cart, user=("member_no", "M1"))
        >>> q["subtotal"], q["discount"], q["total"], [a["id"] for a in q["applied"]]
        ('398.00', '50.00', '348.00', ['m300'])
        """
        args: Dict[str, Any] = {"cart": dict(cart), "mode": mode}
        if user is not None:
            args["user"] = _convert.user(user)
        out: Dict[str, Any] = self.call("quote", **args)
        return out

    def commit(
        self, quote: Mapping[str, Any], key: str, time: Optional[TimeLike] = None
    ) -> Dict[str, Any]:
        """Consume the quote's budgets and limits under an idempotency ``key`` (e.g. the order
        id), and grant its coupon and points rewards (满返 rebates, gift coupons) to the quote's
        customer at ``time`` (default: the cart's time). The receipt lists ``coupons`` issued
        and ``points`` posted. Replaying a key with the same quote changes nothing
        (``duplicate`` is true); raises ``BudgetExhausted`` / ``PromotionLimitReached`` when
        the quote no longer fits. Commit the quote as :meth:`quote` returned it: its
        ``checksum`` covers what commit reads (customer, time, subtotal, applied promotions with
        their discounts, budget use and rewards), and a quote without it or edited since raises
        ``InvalidArgument`` (``field`` ``"quote.checksum"``).

        >>> import userops
        >>> e = userops.sample_engine()
        >>> e.add_promotion({"id": "m300", "name": "50 off 300", "conditions": {},
        ...                  "action": {"type": "threshold_discount", "threshold": "300", "off": "50"},
        ...                  "budget": {"kind": "money", "amount": "1000"}})
        >>> cart = {"time": "2026-03-02T10:00:00+08:00", "channel": "app",
        ...         "lines": [{"sku": "tea-1", "category": "tea", "price": "199.00", "qty": 2}]}
        >>> r = e.commit(e.quote(cart, user=("member_no", "M1")), "order-B1")
        >>> r["state"], r["uses"], e.promotion_usage("m300")["budget_left"]
        ('committed', [{'id': 'm300', 'money': '50.00'}], '950.00')
        """
        args: Dict[str, Any] = {"quote": dict(quote), "key": key}
        if time is not None:
            args["time"] = _time(time)
        out: Dict[str, Any] = self.call("commit", **args)
        return out

    def cancel(self, key: str, time: Optional[TimeLike] = None) -> Dict[str, Any]:
        """Give back what the commit under ``key`` consumed: budgets and limits, its points
        (refunded in the loyalty ledger) and its unused coupons (expired). A second cancel
        changes nothing. Raises ``NotFound`` for an unknown key.

        >>> import userops
        >>> e = userops.sample_engine()
        >>> e.add_promotion({"id": "m300", "name": "50 off 300", "conditions": {},
        ...                  "action": {"type": "threshold_discount", "threshold": "300", "off": "50"},
        ...                  "budget": {"kind": "money", "amount": "1000"}})
        >>> cart = {"time": "2026-03-02T10:00:00+08:00", "channel": "app",
        ...         "lines": [{"sku": "tea-1", "category": "tea", "price": "199.00", "qty": 2}]}
        >>> _ = e.commit(e.quote(cart, user=("member_no", "M1")), "order-B1")
        >>> e.cancel("order-B1")["state"], e.promotion_usage("m300")["budget_left"]
        ('cancelled', '1000.00')
        """
        args: Dict[str, Any] = {"key": key}
        if time is not None:
            args["time"] = _time(time)
        out: Dict[str, Any] = self.call("cancel", **args)
        return out

    def promotion_usage(self, promotion_id: str) -> Dict[str, Any]:
        """``{"id", "money", "orders", "budget_left"}`` of one promotion (money as decimal
        strings; ``budget_left`` is ``None`` without a money budget). Raises ``NotFound``.

        >>> import userops
        >>> e = userops.sample_engine()
        >>> e.add_promotion({"id": "m300", "name": "50 off 300", "conditions": {},
        ...                  "action": {"type": "threshold_discount", "threshold": "300", "off": "50"},
        ...                  "budget": {"kind": "money", "amount": "1000"}})
        >>> cart = {"time": "2026-03-02T10:00:00+08:00", "channel": "app",
        ...         "lines": [{"sku": "tea-1", "category": "tea", "price": "199.00", "qty": 2}]}
        >>> _ = e.commit(e.quote(cart, user=("member_no", "M1")), "order-B1")
        >>> e.promotion_usage("m300")
        {'id': 'm300', 'money': '50.00', 'orders': 1, 'budget_left': '950.00'}
        """
        out: Dict[str, Any] = self.call("promotion_usage", id=promotion_id)
        return out

    # ---- coupons -------------------------------------------------------------------------

    def add_coupon_template(self, template: Mapping[str, Any]) -> None:
        """Add a coupon template ``{"id", "kind": "consumption" | "gift" | "service",
        "benefit": {"type": "amount_off", "off"} | {"type": "percent_off", "percent"} |
        {"type": "item", "sku"} | {"type": "service", "service"}, "skus", "categories",
        "min_amount", "valid_from", "valid_to", "valid_days", "stock"}``. Raises
        ``InvalidArgument`` for a malformed template.

        >>> import userops
        >>> e = userops.sample_engine()
        >>> e.add_coupon_template({"id": "tea20", "kind": "consumption", "categories": ["tea"],
        ...                        "benefit": {"type": "percent_off", "percent": "20"}, "valid_days": 14})
        >>> e.issue_coupons("tea20", [("member_no", "M1")], time="2026-03-01T10:00:00+08:00")
        ['tea20#1']
        """
        self.call("add_coupon_template", template=dict(template))

    def issue_coupons(
        self,
        template: str,
        users: Iterable[_convert.UserLike] = (),
        time: TimeLike = "",
        audience: Optional[str] = None,
    ) -> List[str]:
        """Issue one coupon of ``template`` to each user (or each member of ``audience``);
        the coupon ids. All or nothing (template stock is checked first). Raises ``NotFound``
        for an unknown template and ``PromotionLimitReached`` when the stock is short.

        >>> import userops
        >>> e = userops.sample_engine()
        >>> e.add_coupon_template({"id": "tea20", "kind": "consumption", "categories": ["tea"],
        ...                        "benefit": {"type": "percent_off", "percent": "20"}, "valid_days": 14})
        >>> e.issue_coupons("tea20", [("member_no", "M1"), ("member_no", "M2")], time="2026-03-01T10:00:00+08:00")
        ['tea20#1', 'tea20#2']
        """
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
        the coupon id. Raises ``PromotionLimitReached`` when the stock is out.

        >>> import userops
        >>> e = userops.sample_engine()
        >>> e.add_coupon_template({"id": "tea20", "kind": "consumption", "categories": ["tea"],
        ...                        "benefit": {"type": "percent_off", "percent": "20"}, "valid_days": 14})
        >>> e.claim_coupon("tea20", ("member_no", "M3"), "2026-03-01T11:00:00+08:00")
        'tea20#1'
        """
        out = self.call("claim_coupon", template=template, user=_convert.user(user), time=_time(time))
        coupon_id: str = out["coupon_id"]
        return coupon_id

    def use_coupon(
        self, coupon_id: str, user: _convert.UserLike, cart: Mapping[str, Any]
    ) -> Dict[str, Any]:
        """Use a coupon on a cart (at the cart's ``time``): ``{"coupon_id", "discount",
        "lines", "service"}``. Raises ``CouponUnusable`` when used, expired, out of window or
        without an eligible line (nothing changes then).

        >>> import userops
        >>> e = userops.sample_engine()
        >>> e.add_coupon_template({"id": "tea20", "kind": "consumption", "categories": ["tea"],
        ...                        "benefit": {"type": "percent_off", "percent": "20"}, "valid_days": 14})
        >>> ids = e.issue_coupons("tea20", [("member_no", "M1"), ("member_no", "M2")], time="2026-03-01T10:00:00+08:00")
        >>> cart = {"time": "2026-03-02T10:00:00+08:00", "channel": "app",
        ...         "lines": [{"sku": "tea-1", "category": "tea", "price": "199.00", "qty": 2}]}
        >>> e.use_coupon(ids[0], ("member_no", "M1"), cart)["discount"]
        '79.60'
        >>> try:
        ...     e.use_coupon(ids[0], ("member_no", "M1"), cart)
        ... except userops.CouponUnusable:
        ...     print("already used")
        already used
        """
        out: Dict[str, Any] = self.call(
            "use_coupon", coupon_id=coupon_id, user=_convert.user(user), cart=dict(cart)
        )
        return out

    def return_coupon(self, coupon_id: str, time: TimeLike) -> str:
        """Return a used coupon after a refund; its new state (``claimed`` or ``expired``,
        when its window closed meanwhile). Raises ``CouponUnusable`` for a coupon not used.

        >>> import userops
        >>> e = userops.sample_engine()
        >>> e.add_coupon_template({"id": "tea20", "kind": "consumption", "categories": ["tea"],
        ...                        "benefit": {"type": "percent_off", "percent": "20"}, "valid_days": 14})
        >>> ids = e.issue_coupons("tea20", [("member_no", "M1"), ("member_no", "M2")], time="2026-03-01T10:00:00+08:00")
        >>> cart = {"time": "2026-03-02T10:00:00+08:00", "channel": "app",
        ...         "lines": [{"sku": "tea-1", "category": "tea", "price": "199.00", "qty": 2}]}
        >>> _ = e.use_coupon(ids[0], ("member_no", "M1"), cart)
        >>> e.return_coupon(ids[0], "2026-03-03T10:00:00+08:00")
        'claimed'
        """
        out = self.call("return_coupon", coupon_id=coupon_id, time=_time(time))
        state: str = out["state"]
        return state

    def expire_coupons(self, now: TimeLike) -> List[str]:
        """Expire coupons whose window closed by ``now``; their ids.

        >>> import userops
        >>> e = userops.sample_engine()
        >>> e.add_coupon_template({"id": "tea20", "kind": "consumption", "categories": ["tea"],
        ...                        "benefit": {"type": "percent_off", "percent": "20"}, "valid_days": 14})
        >>> ids = e.issue_coupons("tea20", [("member_no", "M1"), ("member_no", "M2")], time="2026-03-01T10:00:00+08:00")
        >>> cart = {"time": "2026-03-02T10:00:00+08:00", "channel": "app",
        ...         "lines": [{"sku": "tea-1", "category": "tea", "price": "199.00", "qty": 2}]}
        >>> e.expire_coupons("2026-03-20T00:00:00+08:00")
        ['tea20#1', 'tea20#2']
        """
        out: List[str] = self.call("expire_coupons", now=_time(now))
        return out

    def coupon_counts(self, template: Optional[str] = None, *, output: _tables.Output = None) -> Any:
        """Counts per state (``issued``, ``claimed``, ``used``, ``expired``, ``returned``) per
        ``template`` (all, or one), as a table (pandas unless ``output="polars"`` /
        ``"arrow"``).

        >>> import userops
        >>> e = userops.sample_engine()
        >>> e.add_coupon_template({"id": "tea20", "kind": "consumption", "categories": ["tea"],
        ...                        "benefit": {"type": "percent_off", "percent": "20"}, "valid_days": 14})
        >>> ids = e.issue_coupons("tea20", [("member_no", "M1"), ("member_no", "M2")], time="2026-03-01T10:00:00+08:00")
        >>> cart = {"time": "2026-03-02T10:00:00+08:00", "channel": "app",
        ...         "lines": [{"sku": "tea-1", "category": "tea", "price": "199.00", "qty": 2}]}
        >>> _ = e.use_coupon(ids[0], ("member_no", "M1"), cart)
        >>> e.coupon_counts()
          template  issued  claimed  used  expired  returned
        0    tea20       1        0     1        0         0
        """
        return self._output_table(output, "coupon_counts", template=template)

    # ---- automation and monitoring -------------------------------------------------------

    def add_rule(self, rule: Mapping[str, Any]) -> None:
        """Add (or replace by id) an automation rule ``{"id", "trigger": {"type": "audience"
        | "order" | "register" | "birthday" | "inactive", ...}, "actions": [{"type": "touch",
        "channel", "content", "purpose", "frequency_cap": {"max", "days"}} | {"type":
        "issue_coupon", "template"} | {"type": "grant_points", "points", "program"} | {"type":
        "add_tag", "tag"}], "quiet_hours": [22, 8], "attribution_days": 7}``. ``grant_points``
        without a program uses the only loyalty program; ``add_tag`` names a bool tag (defined
        as a manual tag if new). The ``audience`` of an ``audience`` or ``inactive`` trigger is
        the name of a saved audience (:meth:`save_audience`), never an expression: a name that
        is not saved raises ``NotFound`` (save the expression first), and
        :meth:`delete_audience` refuses while a rule uses it. A frequency cap of ``max`` touches
        per ``days`` counts the touches of the last ``days`` days, ``(now - days, now]``: a
        touch exactly ``days`` earlier no longer counts (see :meth:`run_automation`). Raises
        ``InvalidArgument`` for a malformed rule.

        >>> import datetime as dt, userops
        >>> e = userops.sample_engine()
        >>> _ = e.set_consent(1, "sms", "marketing", True, actor="crm", time="2026-01-01T00:00:00Z")
        >>> e.add_rule({"id": "win-back", "trigger": {"type": "inactive", "days": 10},
        ...             "actions": [{"type": "touch", "channel": "sms", "content": "we-miss-you"}]})
        >>> e.run_automation("2026-03-01T10:00:00+08:00")[["user", "action", "channel", "rule"]]
           user action channel      rule
        0     1  touch     sms  win-back
        >>> big = {"id": "big", "trigger": {"type": "audience", "audience": "gmv >= 400"},
        ...        "actions": [{"type": "add_tag", "tag": "big_spender"}]}
        >>> try:
        ...     e.add_rule(big)
        ... except userops.NotFound as err:
        ...     print(type(err).__name__)
        NotFound
        >>> _ = e.save_audience("big_spenders", "gmv >= 400", now=dt.datetime(2026, 3, 1, tzinfo=dt.timezone.utc))
        >>> e.add_rule({**big, "trigger": {"type": "audience", "audience": "big_spenders"}})
        >>> e.run_automation("2026-03-01T11:00:00+08:00")[["user", "action", "tag"]]
           user   action          tag
        0     1  add_tag  big_spender
        """
        self.call("add_rule", rule=dict(rule))

    def run_automation(self, now: TimeLike, *, output: _tables.Output = None) -> Any:
        """Run every rule at ``now``; the delivery plan as a table (pandas unless
        ``output="polars"`` / ``"arrow"``; built as Arrow in Rust), one row per action:
        ``touch_id`` (touches), ``user``, ``action`` (touch, issue_coupon, grant_points,
        add_tag), ``channel``, ``content``, ``coupon_id``, ``points``, ``program``, ``key``,
        ``tag``, ``rule``, ``reason`` (see :data:`PLAN_COLUMNS`). Coupons are issued, points
        posted and tags written by the run itself (once per rule, user and trigger instance);
        sending the touches is the host's job. Rules go in id order (by id text), each over its
        users in OneID order: when two rules touch a user on a capped channel, the rule whose id
        sorts first takes the slot. A frequency cap of ``max`` per ``days`` counts the touches
        planned in ``(now - days, now]``: a touch exactly ``days`` earlier is outside it.
        The run does not hold up other threads: it is planned on a consistent state (holding
        every call that returned before it) and committed in chunks of 250 users in OneID
        order (rows: chunk by chunk, then as above), each chunk one short journaled write; other
        threads' reads and writes go on between chunks and may see the first chunks applied
        only. Whether a firing goes (already fired, consent, caps, coupon stock) is checked
        again when its chunk is committed; users who became eligible after the planned state
        are left for the next run.

        >>> import userops
        >>> e = userops.sample_engine()
        >>> _ = e.set_consent(1, "sms", "marketing", True, actor="crm", time="2026-01-01T00:00:00Z")
        >>> def rule(rid: str) -> dict:
        ...     return {"id": rid, "trigger": {"type": "inactive", "days": 10},
        ...             "actions": [{"type": "touch", "channel": "sms", "content": rid,
        ...                          "frequency_cap": {"max": 1, "days": 7}}]}
        >>> e.add_rule(rule("b-second")); e.add_rule(rule("a-first"))
        >>> e.run_automation("2026-03-01T10:00:00+08:00")["rule"].tolist()
        ['a-first']
        >>> e.add_rule(rule("c-third"))
        >>> e.run_automation("2026-03-08T09:59:59+08:00")["rule"].tolist()  # 7 days minus 1 s: capped
        []
        >>> e.add_rule(rule("d-fourth"))
        >>> e.run_automation("2026-03-08T10:00:00+08:00")["rule"].tolist()  # exactly 7 days: free
        ['d-fourth']

        >>> import userops
        >>> e = userops.Engine()
        >>> _ = e.ingest({"kind": "activity", "key": "a1", "time": "2026-01-01T10:00:00+08:00", "type": "login",
        ...               "source": {"platform": "app", "program": "p"}, "user": {"kind": "member_no", "value": "M1"}})
        >>> _ = e.set_consent(1, "sms", "marketing", True, actor="crm", time="2026-01-01T00:00:00Z")
        >>> e.add_rule({"id": "wb", "trigger": {"type": "inactive", "days": 30},
        ...             "actions": [{"type": "touch", "channel": "sms", "content": "hi"}]})
        >>> e.run_automation("2026-03-01T10:00:00+08:00", output="arrow").select(["user", "channel", "rule"]).to_pylist()
        [{'user': 1, 'channel': 'sms', 'rule': 'wb'}]
        """
        return self._output_table(output, "run_automation", now=_time(now))

    def record_outcomes(self, table: _tables.TableLike) -> int:
        """Record touch outcomes from a table (pyarrow, pandas, polars, or a list of row dicts)
        with columns ``touch_id``, ``outcome`` (sent, delivered, opened, clicked, converted),
        ``time`` (RFC 3339 text or a timezone-aware timestamp) and optionally ``amount``
        (decimal, for conversions). All rows are checked before any is applied. Returns the
        number recorded. Raises ``NotFound`` for an unknown touch, ``InvalidArgument`` for a
        bad outcome.

        >>> import userops
        >>> e = userops.sample_engine()
        >>> _ = e.set_consent(1, "sms", "marketing", True, actor="crm", time="2026-01-01T00:00:00Z")
        >>> e.add_rule({"id": "win-back", "trigger": {"type": "inactive", "days": 10},
        ...             "actions": [{"type": "touch", "channel": "sms", "content": "we-miss-you"}]})
        >>> _ = e.run_automation("2026-03-01T10:00:00+08:00")
        >>> e.record_outcomes([{"touch_id": 1, "outcome": "delivered", "time": "2026-03-01T10:01:00+08:00"},
        ...                    {"touch_id": 1, "outcome": "opened", "time": "2026-03-01T12:00:00+08:00"}])
        2
        """
        arrow, _ = _tables.to_arrow(table)
        rows = []
        for i, r in enumerate(arrow.to_pylist()):
            r = {k: v for k, v in r.items() if v is not None}
            if isinstance(r.get("amount"), float):
                raise TableError(
                    "amount: money is never a float; give decimal text ('19.90') or Decimals",
                    column="amount", row=i,
                )
            if isinstance(r.get("touch_id"), float) and r["touch_id"].is_integer():
                r["touch_id"] = int(r["touch_id"])  # pandas makes integer columns with nulls floats
            rows.append(r)
        # Times, Decimals and anything that cannot travel are checked on the way (`rows[i].time`).
        out = self.call("record_outcomes", rows=rows)
        recorded: int = out["recorded"]
        return recorded

    def channel_effectiveness(self, by: str = "channel", *, output: _tables.Output = None) -> Any:
        """Delivery funnel per ``channel``, ``rule`` or ``audience`` (the ``key`` column):
        ``planned``, ``sent``, ``delivered``, ``opened``, ``clicked``, ``converted``,
        ``revenue`` (decimal) and ``conversion_rate``, as a table (pandas unless ``output=``).
        Raises ``InvalidArgument`` for another ``by``.

        >>> import userops
        >>> e = userops.sample_engine()
        >>> _ = e.set_consent(1, "sms", "marketing", True, actor="crm", time="2026-01-01T00:00:00Z")
        >>> e.add_rule({"id": "win-back", "trigger": {"type": "inactive", "days": 10},
        ...             "actions": [{"type": "touch", "channel": "sms", "content": "we-miss-you"}]})
        >>> _ = e.run_automation("2026-03-01T10:00:00+08:00")
        >>> _ = e.record_outcomes([{"touch_id": 1, "outcome": "opened", "time": "2026-03-01T12:00:00+08:00"}])
        >>> e.channel_effectiveness("rule")[["key", "planned", "sent", "opened", "clicked"]]
                key  planned  sent  opened  clicked
        0  win-back        1     1       1        0
        """
        return self._output_table(output, "channel_effectiveness", by=by)


__all__: Sequence[str] = ["CampaignsMethods"]
