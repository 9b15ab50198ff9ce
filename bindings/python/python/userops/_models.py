"""Engine methods of the user models: RFM, churn risk, preferences, cross tables, activity
scores and high-value screening over the orders and behaviours the engine has ingested.

Times are RFC 3339 strings or ``datetime`` values; periods and days use the engine's business
time zone. Each method returns JSON-shaped rows (lists of dicts); the definitions are those of
the table functions in :mod:`userops.models`.
"""

from __future__ import annotations

import datetime as _dt
from decimal import Decimal
from typing import TYPE_CHECKING, Any, Dict, List, Mapping, Optional, Sequence, Tuple, Union

if TYPE_CHECKING:
    from ._base import EngineBase as _Base
else:
    # `Engine` lists `EngineBase` before the mixins, so a mixin that subclassed it at run time
    # would make the MRO inconsistent; type checkers still see `call`.
    _Base = object

TimeLike = Union[str, _dt.datetime]


class ModelsMethods(_Base):
    """User models over the engine's own data."""

    def rfm(
        self,
        as_of: TimeLike,
        window_days: Optional[int] = None,
        monetary: str = "sum",
        split: str = "mean",
        tag: Optional[str] = None,
    ) -> List[Dict[str, Any]]:
        """RFM per user with orders in the window: ``oneid``, ``recency``, ``frequency``,
        ``monetary``, ``r_score``/``f_score``/``m_score`` (1-5) and ``segment`` (one of the eight
        classic segments, e.g. ``"important_value"``). With ``tag``, the segments are also written as
        that enum model tag (users without orders in the window lose it), so audiences can select
        them: ``engine.audience('rfm_segment = "important_value"')``."""
        out: List[Dict[str, Any]] = self.call(
            "rfm", as_of=as_of, window_days=window_days, monetary=monetary, split=split, tag=tag
        )
        return out

    def churn_risk(
        self,
        as_of: TimeLike,
        freq: str = "D",
        low_below: float = 0.3,
        high_from: float = 0.7,
        tag: Optional[str] = None,
    ) -> Dict[str, Any]:
        """Fit BG/NBD on the orders up to ``as_of`` and band each user's churn probability
        (1 - P(alive)): ``params``, ``log_likelihood`` and ``users`` (``oneid``, ``frequency``,
        ``recency``, ``T``, ``p_alive``, ``risk`` in low/mid/high). Raises ``NotConverged`` when the
        fit does not converge. With ``tag``, the bands are written as that enum model tag."""
        out: Dict[str, Any] = self.call(
            "churn_risk", as_of=as_of, freq=freq, low_below=low_below, high_from=high_from, tag=tag
        )
        return out

    def churn_model(
        self,
        as_of: TimeLike,
        window_days: int = 30,
        holdout: float = 0.3,
        seed: int = 0,
        low_below: float = 0.3,
        high_from: float = 0.7,
        tag: Optional[str] = None,
    ) -> Dict[str, Any]:
        """Supervised churn on the engine's own history: features (recency, frequency, tenure,
        trend, activity_score) at ``as_of - window_days`` labelled churned when the user has no
        event in the following ``window_days``; logistic regression (IRLS) with AUC on a seeded
        holdout; every user scored at ``as_of``. Returns ``model`` (coefficients, intercept,
        ``auc_holdout``, ...) and ``users`` (``oneid``, ``features``, ``score``, ``risk``,
        ``contributions``). With ``tag``, the bands are written as that enum model tag."""
        out: Dict[str, Any] = self.call(
            "churn_model",
            as_of=as_of,
            window_days=window_days,
            holdout=holdout,
            seed=seed,
            low_below=low_below,
            high_from=high_from,
            tag=tag,
        )
        return out

    def preference_shares(
        self,
        as_of: TimeLike,
        dimension: str,
        lookback_months: int = 3,
        top_k: Optional[int] = None,
        price_bands: Sequence[Union[str, Decimal]] = (),
        tag: Optional[str] = None,
    ) -> List[Dict[str, Any]]:
        """Share of each user's behaviour per ``dimension`` (``category``, ``price_band``,
        ``channel``, ``activity_type``, ``function``) over the lookback window: rows of
        ``oneid``, ``value``, ``weight``, ``share``, ``rank``. With ``tag``, each user's kept
        values (the top ``top_k``) are written as that multi-valued enum model tag."""
        out: List[Dict[str, Any]] = self.call(
            "preference_shares",
            as_of=as_of,
            dimension=dimension,
            lookback_months=lookback_months,
            top_k=top_k,
            price_bands=[str(b) for b in price_bands],
            tag=tag,
        )
        return out

    def cross_table(
        self,
        as_of: TimeLike,
        rows: str,
        cols: str,
        lookback_months: int = 3,
        price_bands: Sequence[Union[str, Decimal]] = (),
    ) -> List[Dict[str, Any]]:
        """Order-line amounts per (rows, cols) label, each ``region``, ``category``, ``channel``
        or ``price_band``; or location × activity: ``region`` with ``activity_type`` or
        ``function`` (event counts by the region of the user's latest order). Rows of ``row``,
        ``col``, ``amount``."""
        out: List[Dict[str, Any]] = self.call(
            "cross_table",
            as_of=as_of,
            rows=rows,
            cols=cols,
            lookback_months=lookback_months,
            price_bands=[str(b) for b in price_bands],
        )
        return out

    def activity_scores(
        self,
        as_of: TimeLike,
        half_life_days: float = 30.0,
        weights: Optional[Mapping[str, float]] = None,
        levels: Optional[Sequence[Tuple[str, float]]] = None,
        tag: Optional[str] = None,
    ) -> List[Dict[str, Any]]:
        """Decayed weighted behaviour count per user (``oneid``, ``score``, ``level``). With
        ``tag``, the levels are written as that enum model tag."""
        out: List[Dict[str, Any]] = self.call(
            "activity_scores",
            as_of=as_of,
            half_life_days=half_life_days,
            weights=dict(weights or {}),
            levels=None if levels is None else [list(lv) for lv in levels],
            tag=tag,
        )
        return out

    def high_value_users(
        self, as_of: TimeLike, window_days: Optional[int] = None, rule: Optional[Mapping[str, Any]] = None
    ) -> List[Dict[str, Any]]:
        """Screening features (orders, amount, order interval, messages, message interval,
        influence) and ``high_value`` per user under ``rule`` (``min_orders``, ``min_amount``,
        ``max_order_interval_days``, ``min_messages``, ``max_message_interval_days``,
        ``min_influence``)."""
        out: List[Dict[str, Any]] = self.call("high_value_users", as_of=as_of, window_days=window_days, rule=dict(rule or {}))
        return out
