from typing import Any, Callable, List, Optional, Tuple

__version__: str

class NativeEngine:
    def __init__(self) -> None: ...
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
