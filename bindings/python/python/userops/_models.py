"""Engine methods of the user models: RFM, churn risk, preferences, cross tables, activity
scores and high-value screening over the orders and behaviours the engine has ingested.

Times are RFC 3339 strings or ``datetime`` values; periods and days use the engine's business
time zone. Each method returns a table, one row per user (or label), built as Arrow in Rust:
pandas by default, or ``output="polars"`` / ``"arrow"``; the definitions are those of the
table functions in :mod:`userops.models`. Bad arguments raise ``InvalidArgument`` naming the
argument; a fit that does not converge raises ``NotConverged``.
"""

from __future__ import annotations

import datetime as _dt
from decimal import Decimal
from typing import TYPE_CHECKING, Any, Dict, List, Mapping, Optional, Sequence, Tuple, Union

from . import _tables

if TYPE_CHECKING:
    from ._base import EngineBase as _Base
else:
    # `Engine` lists `EngineBase` before the mixins, so a mixin that subclassed it at run time
    # would make the MRO inconsistent; type checkers still see `call`.
    _Base = object

TimeLike = Union[str, _dt.datetime]


_FEATURES: Tuple[str, ...] = ("recency", "frequency", "tenure", "trend", "activity_score")
CHURN_FEATURES = _FEATURES


class ModelsMethods(_Base):
    """User models over the engine's own data."""

    #: The supervised churn model's features (:meth:`churn_model`), in coefficient order.
    CHURN_FEATURES: Tuple[str, ...] = _FEATURES

    def rfm(
        self,
        as_of: TimeLike,
        window_days: Optional[int] = None,
        monetary: str = "sum",
        split: str = "mean",
        tag: Optional[str] = None,
        *,
        output: _tables.Output = None,
    ) -> Any:
        """RFM of every user with an order in the window ``(as_of - window_days, as_of]`` (all
        orders up to ``as_of`` without ``window_days``).

        ``monetary`` is ``"sum"`` or ``"mean"`` of the order amounts; ``split`` (``"mean"`` or
        ``"median"``) is the centre that makes each of R, F, M high or low. With ``tag``, the
        segments are also written as that enum model tag (users without orders in the window
        lose it), so audiences can select them: ``engine.audience('rfm = "important_value"')``.

        Returns a table (pandas unless ``output="polars"`` / ``"arrow"``), one row per user by
        OneID: ``oneid``, ``recency`` (whole days since the last order), ``frequency`` (orders),
        ``monetary``, ``r_score`` / ``f_score`` / ``m_score`` (quantile scores 1-5) and
        ``segment`` (one of the eight classic segments, e.g. ``"important_value"``). Raises
        ``InvalidArgument`` for a bad ``monetary`` or ``split``.

        >>> import userops
        >>> e = userops.sample_engine()
        >>> e.rfm("2026-02-28T23:00:00+08:00")[["oneid", "recency", "frequency", "monetary", "segment"]]
           oneid  recency  frequency  monetary           segment
        0      1       16          3     465.0   important_value
        1      2       86          1      30.0  general_win_back
        2      3       39          2     184.0   general_develop
        >>> _ = e.rfm("2026-02-28T23:00:00+08:00", tag="rfm")
        >>> e.audience('rfm = "important_value"').oneids("list")
        [1]
        """
        return self._output_table(output, "rfm", as_of=as_of, window_days=window_days,
                                monetary=monetary, split=split, tag=tag)

    def churn_risk(
        self,
        as_of: TimeLike,
        freq: str = "D",
        low_below: float = 0.3,
        high_from: float = 0.7,
        tag: Optional[str] = None,
        *,
        output: _tables.Output = None,
    ) -> Tuple[Any, Dict[str, Any]]:
        """Fit BG/NBD on every buyer's orders up to ``as_of`` (counted in periods of ``freq``:
        ``"D"``, ``"W"``, ``"M"``) and band each buyer's churn probability 1 - P(alive):
        ``"low"`` below ``low_below``, ``"high"`` from ``high_from``, else ``"mid"``. With
        ``tag``, the bands are written as that enum model tag.

        Returns ``(users, fit)``: ``users`` is a table (pandas unless ``output="polars"`` /
        ``"arrow"``) with ``oneid``, ``frequency``, ``recency``, ``T`` (as lifetimes' summary),
        ``p_alive`` and ``risk``; ``fit`` is ``{"params": {"r", "alpha", "a", "b"},
        "log_likelihood"}``. Raises ``NotConverged`` when the fit does not converge (too few or
        degenerate buyers) and ``InvalidArgument`` for bad cut-offs.

        >>> import userops
        >>> e = userops.sample_engine(buyers=300)
        >>> users, fit = e.churn_risk("2026-03-01T00:00:00Z", freq="W", tag="churn")
        >>> sorted(fit["params"]), users.columns.tolist()
        (['a', 'alpha', 'b', 'r'], ['oneid', 'frequency', 'recency', 'T', 'p_alive', 'risk'])
        >>> users["risk"].value_counts().to_dict()
        {'low': 139, 'high': 112, 'mid': 52}
        >>> len(e.audience('churn = "high"'))
        112
        """
        users, rest = self._output_table_and_rest(
            output, "churn_risk", as_of=as_of, freq=freq,
            low_below=low_below, high_from=high_from, tag=tag,
        )
        return users, {"params": rest["params"], "log_likelihood": rest["log_likelihood"]}

    def churn_model(
        self,
        as_of: TimeLike,
        window_days: int = 30,
        holdout: float = 0.3,
        seed: int = 0,
        low_below: float = 0.3,
        high_from: float = 0.7,
        tag: Optional[str] = None,
        *,
        output: _tables.Output = None,
    ) -> Tuple[Any, Dict[str, Any]]:
        """Supervised churn on the engine's own history: the features (:attr:`CHURN_FEATURES`:
        recency, frequency, tenure, trend, activity_score) of each user at ``as_of -
        window_days`` are labelled churned when the user has no event in the following
        ``window_days``; a logistic regression (IRLS) is fitted, with its AUC on a ``holdout``
        share of users drawn with ``seed``; then every user is scored on their features at
        ``as_of`` and banded (``low_below``, ``high_from``). With ``tag``, the bands are written
        as that enum model tag.

        Returns ``(users, model)``: ``users`` is a table (pandas unless ``output=``) with
        ``oneid``, ``score`` (churn probability), ``risk``, the five feature values and
        ``contribution_<feature>`` (coefficient × value, the score's log-odds split by
        feature); ``model`` is ``{"model": {"features", "intercept", "coefficients",
        "log_likelihood", "iterations"}, "auc_holdout", "n_train", "n_holdout"}``. Raises
        ``InvalidArgument`` when a feature is constant (too little history) and
        ``NotConverged`` when IRLS does not converge.

        >>> import userops
        >>> e = userops.sample_engine(buyers=300)
        >>> users, model = e.churn_model("2026-03-01T00:00:00Z")
        >>> model["model"]["features"] == list(userops.Engine.CHURN_FEATURES), model["auc_holdout"] > 0.7
        (True, True)
        >>> users.columns.tolist()[:5], len(users) == e.stats()["persons"]
        (['oneid', 'score', 'risk', 'recency', 'frequency'], True)
        """
        users, rest = self._output_table_and_rest(
            output, "churn_model", as_of=as_of, window_days=window_days,
            holdout=holdout, seed=seed, low_below=low_below, high_from=high_from, tag=tag,
        )
        model: Dict[str, Any] = rest["model"]
        return users, model

    def preference_shares(
        self,
        as_of: TimeLike,
        dimension: str,
        lookback_months: int = 3,
        top_k: Optional[int] = None,
        price_bands: Sequence[Union[str, Decimal]] = (),
        tag: Optional[str] = None,
        *,
        output: _tables.Output = None,
    ) -> Any:
        """Each user's preference along ``dimension`` over the ``lookback_months`` calendar
        months up to ``as_of`` (``as_of - months < time <= as_of``, business time zone), with
        one basis per dimension:

        * ``category``, ``price_band``, ``channel`` (the order's sales channel): the user's
          spend, Σ price × qty of their order lines with that value — the same amounts as
          :meth:`cross_table`; an order without lines spends on no value;
        * ``activity_type`` (``activity`` events), ``function`` (``behavior`` events by type),
          ``touchpoint`` (``behavior`` events by the channel / touchpoint they name): counts.

        ``share`` is the value's weight over the user's total; ``rank`` 1 is the largest share,
        equal weights ranked by value text (``"apple"`` before ``"wine"``), whatever order the
        events were ingested in. ``price_bands`` are the ascending upper bounds of the price
        bands (money as decimal strings; a line's band is by its unit price). With ``tag``, each
        user's kept values (the top ``top_k``, all without it) are written as that multi-valued
        enum model tag.

        Returns a table (pandas unless ``output=``) with ``oneid``, ``value``, ``weight``,
        ``share`` and ``rank``. Raises ``InvalidArgument`` for an unknown dimension or price
        bands that do not ascend.

        >>> import userops
        >>> e = userops.sample_engine()
        >>> e.preference_shares("2026-02-28T23:00:00+08:00", "category").round(3)
           oneid value  weight  share  rank
        0      1   tea   420.0  0.903     1
        1      1  cups    45.0  0.097     2
        2      2  cups    30.0  1.000     1
        3      3   tea   184.0  1.000     1
        >>> e.preference_shares("2026-02-28T23:00:00+08:00", "function")[["oneid", "value", "weight"]]
           oneid   value  weight
        0      1    view     2.0
        1      1   share     1.0
        2      2    view     1.0
        3      3  review     1.0
        """
        return self._output_table(
            output, "preference_shares", as_of=as_of, dimension=dimension,
            lookback_months=lookback_months, top_k=top_k,
            price_bands=[str(b) for b in price_bands], tag=tag,
        )

    def cross_table(
        self,
        as_of: TimeLike,
        rows: str,
        cols: str,
        lookback_months: int = 3,
        price_bands: Sequence[Union[str, Decimal]] = (),
        *,
        output: _tables.Output = None,
    ) -> Any:
        """Order-line amounts (price × qty) over the ``lookback_months`` before ``as_of`` per
        (``rows``, ``cols``) label pair, each of ``region``, ``category``, ``channel`` or
        ``price_band``; or location × activity: ``rows="region"`` with ``cols="activity_type"``
        or ``"function"`` (event counts by the region of the user's latest order up to
        ``as_of``; a user with no such order, say one who never ordered, falls in the row
        ``"(unknown)"``).

        Returns a long table (pandas unless ``output=``) with ``row``, ``col`` and ``amount``;
        pivot it for the grid. Raises ``InvalidArgument`` for an unsupported pair.

        >>> import userops
        >>> e = userops.sample_engine()
        >>> t = e.cross_table("2026-02-28T23:00:00+08:00", "region", "category")
        >>> t.pivot(index="row", columns="col", values="amount").fillna(0)
        col       cups    tea
        row
        beijing   30.0    0.0
        hangzhou   0.0  184.0
        shanghai  45.0  420.0
        >>> _ = e.ingest({"kind": "activity", "key": "new-login", "time": "2026-02-20T10:00:00+08:00",
        ...               "source": {"platform": "app", "program": "brand-a"},
        ...               "user": {"kind": "member_no", "value": "M9"}, "type": "login"})
        >>> e.cross_table("2026-02-28T23:00:00+08:00", "region", "activity_type")
                 row    col  amount
        0  (unknown)  login     1.0
        1    beijing  login     2.0
        2   hangzhou  login     1.0
        3   shanghai  login     3.0
        """
        return self._output_table(
            output, "cross_table", as_of=as_of, rows=rows, cols=cols,
            lookback_months=lookback_months, price_bands=[str(b) for b in price_bands],
        )

    def activity_scores(
        self,
        as_of: TimeLike,
        half_life_days: float = 30.0,
        weights: Optional[Mapping[str, float]] = None,
        levels: Optional[Sequence[Tuple[str, float]]] = None,
        tag: Optional[str] = None,
        *,
        output: _tables.Output = None,
    ) -> Any:
        """Each user's activity score at ``as_of``: Σ weight × 2^(-age / ``half_life_days``)
        over their activities, behaviours and orders up to ``as_of``. ``weights`` are keyed by
        activity or behaviour type (``"login"``, ``"review"``) or by event kind (``"activity"``,
        ``"behavior"``, ``"order"``: every event of the kind without a weight of its own type);
        others weigh 1. ``levels`` are ``(name, lower bound)`` pairs: a score gets the level
        with the highest bound it reaches, and ``"dormant"`` below every bound (default
        ``high`` ≥ 10, ``medium`` ≥ 3, ``low`` ≥ 0.5, else ``dormant``). With ``tag``, the
        levels are written as that enum model tag.

        Returns a table (pandas unless ``output=``) with ``oneid``, ``score`` and ``level``.
        Raises ``InvalidArgument`` for a non-positive half-life, a negative weight, or a weight
        keyed by an event kind the score does not count (``"touch"``, ``"register"``, ...).

        >>> import userops
        >>> e = userops.sample_engine()
        >>> e.activity_scores("2026-02-28T23:00:00+08:00").round(2)
           oneid  score    level
        0      1   3.89   medium
        1      2   1.91      low
        2      3   1.07      low
        >>> e.activity_scores("2026-02-28T23:00:00+08:00", weights={"activity": 3}).round(2)
           oneid  score   level
        0      1   6.14  medium
        1      2   3.83  medium
        2      3   1.35     low
        >>> e.activity_scores("2026-04-30T23:00:00+08:00")["level"].tolist()
        ['low', 'dormant', 'dormant']
        """
        return self._output_table(
            output, "activity_scores", as_of=as_of, half_life_days=half_life_days,
            weights=dict(weights or {}), levels=None if levels is None else [list(lv) for lv in levels],
            tag=tag,
        )

    def high_value_users(
        self,
        as_of: TimeLike,
        window_days: Optional[int] = None,
        rule: Optional[Mapping[str, Any]] = None,
        *,
        output: _tables.Output = None,
    ) -> Any:
        """High-value screening at ``as_of`` over the ``window_days`` before it: each user's
        features and whether they pass ``rule`` (every given threshold must hold:
        ``min_orders``, ``min_amount``, ``max_order_interval_days``, ``min_messages``,
        ``max_message_interval_days``, ``min_influence``; no rule passes everyone).

        Returns a table (pandas unless ``output=``) with ``oneid``, ``orders``, ``amount``,
        ``order_interval_days`` (mean days between orders, null with one order),
        ``messages``, ``message_interval_days``, ``influence`` (replies received from others:
        community messages whose ``reply_to`` names the user; a reply to a user not seen yet
        creates that user, so it counts whatever order the events arrive in) and
        ``high_value``.

        >>> import userops
        >>> e = userops.sample_engine()
        >>> t = e.high_value_users("2026-02-28T23:00:00+08:00", rule={"min_orders": 2, "min_amount": 100})
        >>> t[["oneid", "orders", "amount", "high_value"]]
           oneid  orders  amount  high_value
        0      1       3   465.0        True
        1      2       1    30.0       False
        2      3       2   184.0        True
        """
        return self._output_table(output, "high_value_users", as_of=as_of,
                                  window_days=window_days, rule=dict(rule or {}))
