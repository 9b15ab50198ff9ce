from typing import Any, Callable, Optional, Tuple

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
