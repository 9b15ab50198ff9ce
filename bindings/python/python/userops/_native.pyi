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
