from typing import Any, Callable, List, Optional, Tuple
from typing import Optional, Tuple

__version__: str

class NativeEngine:
    def __init__(self) -> None: ...
    @staticmethod
    def open(path: str, durability: str) -> Tuple[Optional["NativeEngine"], str]: ...
    def flush(self) -> Tuple[bool, str]: ...
    def call(self, method: str, args_json: str) -> Tuple[bool, str]: ...
    def ingest_json(self, event_json: str) -> Tuple[bool, str]: ...
    def ingest_table(
        self,
        table: Any,
        options_json: str,
        progress: Optional[Callable[[int, int], None]] = None,
    ) -> Any: ...

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

# ---- table functions (lifecycle / analytics): columns as little-endian bytes; errors raise
#      ValueError(<error report JSON>) ----
def lifecycle_stages(
    user: bytes, time: bytes, reg_user: Optional[bytes] = ..., reg_time: Optional[bytes] = ...,
    period: str = ..., utc_offset_seconds: int = ..., churn_after: int = ..., early_activity: str = ...,
    through: Optional[str] = ...,
) -> Tuple[bytes, List[str], bytes, List[str]]: ...
def lifecycle_report(
    user: bytes, time: bytes, reg_user: Optional[bytes] = ..., reg_time: Optional[bytes] = ...,
    period: str = ..., utc_offset_seconds: int = ..., churn_after: int = ..., early_activity: str = ...,
    through: Optional[str] = ..., seg_code: Optional[bytes] = ..., seg_names: Optional[List[str]] = ...,
) -> str: ...
def funnel(
    user: bytes, time: bytes, event: bytes, names: List[str], steps: List[str], window_ms: int,
    seg_code: Optional[bytes] = ..., seg_names: Optional[List[str]] = ...,
) -> str: ...
def cohort_retention(user: bytes, time: bytes, period: str = ..., utc_offset_seconds: int = ...) -> str: ...
def attribution(
    t_user: bytes, t_time: bytes, t_channel: bytes, channels: List[str], c_user: bytes, c_time: bytes,
    c_value: Optional[List[str]], model: str, half_life_hours: Optional[float], lookback_ms: int,
) -> str: ...

# ---- user models (bindings/python/src/models.rs): columns are little-endian byte buffers ----
_Cols = List[bytes]
_Bg = Tuple[float, float, float, float]
_Gg = Tuple[float, float, float]

def summary_data(customers: bytes, times: bytes, amounts: Optional[bytes], observation_end: Optional[int], freq: str) -> _Cols: ...
def calibration_and_holdout(
    customers: bytes, times: bytes, amounts: Optional[bytes], calibration_end: int, observation_end: int, freq: str
) -> Tuple[_Cols, float]: ...
def rfm(
    customers: bytes, times: bytes, amounts: bytes, as_of: int, window_days: Optional[int], monetary: str, split: str
) -> Tuple[_Cols, List[str]]: ...
def bgnbd_fit(frequency: bytes, recency: bytes, t: bytes, weights: Optional[bytes]) -> Tuple[_Bg, float, int]: ...
def bgnbd_log_likelihood(params: _Bg, frequency: bytes, recency: bytes, t: bytes) -> float: ...
def bgnbd_p_alive(params: _Bg, frequency: bytes, recency: bytes, t: bytes) -> bytes: ...
def bgnbd_expected(
    params: _Bg, horizon: bytes, frequency: Optional[bytes], recency: Optional[bytes], t: Optional[bytes]
) -> bytes: ...
def gamma_gamma_fit(frequency: bytes, monetary_value: bytes, weights: Optional[bytes]) -> Tuple[_Gg, float, int]: ...
def gamma_gamma_expected_profit(params: _Gg, frequency: bytes, monetary_value: bytes) -> bytes: ...
def clv(
    gg_params: _Gg,
    bg_params: _Bg,
    frequency: bytes,
    recency: bytes,
    t: bytes,
    monetary_value: bytes,
    months: int,
    periods_per_month: float,
    monthly_discount: float,
) -> bytes: ...
def churn_fit(names: List[str], columns: List[bytes], labels: bytes, holdout: float, seed: int) -> str: ...
def preferences(
    customers: bytes,
    values: bytes,
    weights: Optional[bytes],
    times: Optional[bytes],
    as_of: Optional[int],
    lookback_months: int,
    top_k: Optional[int],
) -> _Cols: ...
