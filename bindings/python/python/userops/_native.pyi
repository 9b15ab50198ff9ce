"""Type stubs of the native module ``userops._native`` (Rust, PyO3).

Table arguments are anything with the Arrow PyCapsule interface (``__arrow_c_stream__``; the
Python wrappers pass a ``pyarrow.Table``); table results are Arrow tables (objects with
``__arrow_c_stream__``) that ``userops._tables.from_arrow`` turns into the caller's kind. Bad
columns raise ``userops.TableError``; the core's refusals raise the class of their error code.
"""

from typing import Any, Callable, Dict, List, Optional, Tuple

__version__: str

#: Every engine error code: (name, C status number).
error_codes: List[Tuple[str, int]]

#: An Arrow table in or out (``__arrow_c_stream__``).
_Table = Any

# ---- output tables (bindings/python/src/outputs.rs; schemas from the userops-arrow crate) ----
#: Every output table's columns by table name (``"statement"``, ``"rfm"``, ...):
#: ``(name, type as pyarrow prints it, nullable)``; the C ABI exports the same schemas.
output_columns: Dict[str, List[Tuple[str, str, bool]]]
def empty_output_table(name: str) -> _Table: ...

class NativeEngine:
    @staticmethod
    def memory(concurrency: str = "lock") -> Tuple[Optional["NativeEngine"], str]: ...
    @staticmethod
    def open(
        path: str, durability: str, concurrency: str = "lock"
    ) -> Tuple[Optional["NativeEngine"], str]: ...
    def flush(self) -> Tuple[bool, str]: ...
    def call(self, method: str, args_json: str) -> Tuple[bool, str]: ...
    def ingest_json(self, event_json: str) -> Tuple[bool, str]: ...
    def state_fingerprint(self) -> int: ...
    def ingest_table(
        self,
        table: _Table,
        options_json: str,
        progress: Optional[Callable[[int, int], None]] = None,
    ) -> _Table: ...
    def set_tags_table(self, table: _Table, user: str, kind: str, now: Optional[str] = None) -> Tuple[bool, str]: ...
    def audience_members(self, args_json: str) -> Tuple[bool, str, bytes]: ...
    def call_output_table(self, method: str, args_json: str) -> Tuple[str, _Table, str]:
        """Execute ``method`` and return ``(table name, table, rest_json)``: its output as the
        table ``output_columns`` declares, and the rest of the output as JSON (the rows
        replaced by ``null``)."""

class NativeIdentityGraph:
    def __init__(self) -> None: ...
    def call(self, method: str, args_json: str) -> Tuple[bool, str]: ...
    def resolve_columns(
        self,
        record_id: List[str],
        kind: List[str],
        value: List[str],
        source: List[str],
        ts: List[int],
    ) -> Tuple[bool, Optional[Tuple[List[Optional[int]], str]], str]: ...
    def resolve_table(
        self,
        table: _Table,
        record_id: str = ...,
        kind: str = ...,
        value: str = ...,
        source: str = ...,
        ts: str = ...,
        progress: Optional[Callable[[int, int], None]] = ...,
    ) -> _Table: ...
    def identifier_keys(
        self, table: _Table, record_id: str = ..., kind: str = ..., value: str = ...
    ) -> _Table: ...

# ---- lifecycle and analytics (bindings/python/src/analytics.rs) ----
def lifecycle_stages(
    table: _Table, user: str = ..., time: str = ..., registered: Optional[str] = ..., period: str = ...,
    utc_offset_seconds: int = ..., churn_after: int = ..., early_activity: str = ..., through: Optional[str] = ...,
    progress: Optional[Callable[[int, int], None]] = ...,
) -> _Table: ...
def lifecycle_report(
    table: _Table, user: str = ..., time: str = ..., registered: Optional[str] = ..., period: str = ...,
    utc_offset_seconds: int = ..., churn_after: int = ..., early_activity: str = ..., through: Optional[str] = ...,
    by: Optional[str] = ..., progress: Optional[Callable[[int, int], None]] = ...,
) -> _Table: ...
def funnel(
    table: _Table, steps: List[str], window_ms: int, user: str = ..., time: str = ..., event: str = ...,
    by: Optional[str] = ...,
) -> _Table: ...
def cohort_retention(
    table: _Table, user: str = ..., time: str = ..., period: str = ..., utc_offset_seconds: int = ...
) -> _Table: ...
def attribution(
    touches: _Table, conversions: _Table, model: str, lookback_ms: int, half_life_hours: Optional[float] = ...,
    user: str = ..., time: str = ..., channel: str = ..., value: Optional[str] = ...,
) -> _Table: ...

# ---- user models (bindings/python/src/models.rs) ----
_Bg = Tuple[float, float, float, float]
_Gg = Tuple[float, float, float]

def summary_data(
    table: _Table, customer: str, time: str, amount: Optional[str] = ..., observation_end: Optional[int] = ...,
    freq: str = ...,
) -> _Table: ...
def calibration_and_holdout(
    table: _Table, customer: str, time: str, calibration_end: int, observation_end: int,
    amount: Optional[str] = ..., freq: str = ...,
) -> _Table: ...
def rfm(
    table: _Table, customer: str, time: str, amount: str, as_of: int, window_days: Optional[int] = ...,
    monetary: str = ..., split: str = ..., progress: Optional[Callable[[int, int], None]] = ...,
) -> _Table: ...
def bgnbd_fit(table: _Table) -> Tuple[_Bg, float, int]: ...
def bgnbd_log_likelihood(params: _Bg, table: _Table) -> float: ...
def bgnbd_p_alive(params: _Bg, table: _Table) -> _Table: ...
def bgnbd_expected(params: _Bg, horizon: _Table, history: Optional[_Table] = ...) -> _Table: ...
def gamma_gamma_fit(table: _Table) -> Tuple[_Gg, float, int]: ...
def gamma_gamma_expected_profit(params: _Gg, table: _Table) -> _Table: ...
def clv(
    gg_params: _Gg, bg_params: _Bg, table: _Table, months: int, periods_per_month: float, monthly_discount: float
) -> _Table: ...
def churn_scores(
    table: _Table, features: List[str], label: str, holdout: float = ..., seed: int = ...,
    low_below: float = ..., high_from: float = ...,
) -> Tuple[str, _Table]: ...
def preferences(
    table: _Table, customer: str, value: str, weight: Optional[str] = ..., time: Optional[str] = ...,
    as_of: Optional[int] = ..., lookback_months: int = ..., top_k: Optional[int] = ...,
) -> _Table: ...

# ---- tables in parts (bindings/python/src/parts.rs) ----
def rfm_score(
    table: _Table, scale_json: str, recency: str = ..., frequency: str = ..., monetary: str = ...
) -> _Table: ...
def churn_bands(table: _Table, low_below: float, high_from: float, p_alive: str = ...) -> _Table: ...
