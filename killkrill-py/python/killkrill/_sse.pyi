"""Type stubs for ``killkrill._sse``: Server-Sent Events of the live tail."""

from dataclasses import dataclass
from typing import Any, Dict, List, Optional

MAX_EVENT_BYTES: int

@dataclass(frozen=True)
class SseEvent:
    event: str
    data: str
    id: Optional[str] = ...

class SseParser:
    comments: int
    def __init__(self, max_event_bytes: int = ...) -> None: ...
    def feed(self, chunk: bytes) -> List[SseEvent]: ...

HEARTBEAT_EVENTS: frozenset[str]
CLOSE_EVENTS: frozenset[str]
GAP_EVENTS: frozenset[str]

def tail_item(ev: SseEvent, status: int) -> Optional[Dict[str, Any]]: ...
