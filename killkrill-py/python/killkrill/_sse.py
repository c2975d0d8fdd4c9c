"""Server-Sent Events for the live tail: an incremental parser and what
an event means to the client (see :mod:`killkrill._api`)."""

from __future__ import annotations

import json
import warnings
from dataclasses import dataclass
from typing import Any, Dict, List, Optional

from ._errors import ProtocolError, TailDisconnected

#: Largest single Server-Sent Events line or event.
MAX_EVENT_BYTES = 4 << 20


@dataclass(frozen=True)
class SseEvent:
    """One Server-Sent Event: ``event`` (``message`` when the stream named
    none), ``data`` (its data lines joined by ``\\n``) and ``id``."""

    event: str
    data: str
    id: Optional[str] = None


class SseParser:
    """An incremental ``text/event-stream`` parser (the WHATWG rules: lines
    end with CRLF, LF or CR; ``:`` starts a comment; a blank line
    dispatches). Feed it what the socket returned; it returns the complete
    events. Comments (heartbeats) are counted in ``comments``."""

    def __init__(self, max_event_bytes: int = MAX_EVENT_BYTES) -> None:
        self._buf = b""
        self._data: List[str] = []
        self._size = 0
        self._event = ""
        self._id: Optional[str] = None
        self._last_id: Optional[str] = None
        self._max = max_event_bytes
        self.comments = 0

    def feed(self, chunk: bytes) -> List[SseEvent]:
        buf = self._buf + chunk
        # A CR at the end may be half of a CRLF: keep it for the next chunk.
        hold = buf.endswith(b"\r")
        if hold:
            buf = buf[:-1]
        buf = buf.replace(b"\r\n", b"\n").replace(b"\r", b"\n")
        *lines, rest = buf.split(b"\n")
        self._buf = rest + (b"\r" if hold else b"")
        if len(self._buf) > self._max:
            raise ProtocolError(f"an event-stream line is longer than {self._max} bytes")
        out: List[SseEvent] = []
        for raw in lines:
            ev = self._line(raw.decode("utf-8", "replace"))
            if ev is not None:
                out.append(ev)
        return out

    def _line(self, line: str) -> Optional[SseEvent]:
        if not line:
            return self._dispatch()
        if line.startswith(":"):
            self.comments += 1
            return None
        name, sep, value = line.partition(":")
        if sep and value.startswith(" "):
            value = value[1:]
        if name == "data":
            self._size += len(value) + 1
            if self._size > self._max:
                raise ProtocolError(f"an event is larger than {self._max} bytes")
            self._data.append(value)
        elif name == "event":
            self._event = value
        elif name == "id":
            if "\0" not in value:
                self._id = value
        # `retry` and unknown fields are ignored: the client never reconnects.
        return None

    def _dispatch(self) -> Optional[SseEvent]:
        if self._id is not None:
            self._last_id = self._id
        if not self._data:
            self._event, self._id, self._size = "", None, 0
            return None
        ev = SseEvent(self._event or "message", "\n".join(self._data), self._last_id)
        self._data, self._event, self._id, self._size = [], "", None, 0
        return ev


#: Event names that carry no record and only show the stream is alive.
HEARTBEAT_EVENTS = frozenset({"heartbeat", "ping", "keepalive"})
#: Event names with which the server ends a tail and says why.
CLOSE_EVENTS = frozenset({"error", "close", "disconnect", "lagged", "overflow"})
#: Event names with which the server says late records before a time will
#: not be tailed (the stream goes on).
GAP_EVENTS = frozenset({"gap"})


def tail_item(ev: SseEvent, status: int) -> Optional[Dict[str, Any]]:
    """The record an event carries, None for a heartbeat; raises
    :class:`TailDisconnected` for the server's closing event."""
    if ev.event in HEARTBEAT_EVENTS:
        return None
    if ev.event in GAP_EVENTS:
        # Not a record and not the end: said out loud, never silently dropped.
        message: Any = ev.data
        try:
            doc = json.loads(ev.data)
            if isinstance(doc, dict):
                message = doc.get("message") or ev.data
        except ValueError:
            pass
        warnings.warn(f"killkrill tail gap: {message}", UserWarning, stacklevel=3)
        return None
    if ev.event in CLOSE_EVENTS:
        message = ev.data
        kind = ev.event
        detail = None
        try:
            doc = json.loads(ev.data)
            if isinstance(doc, dict):
                message = doc.get("error") or doc.get("message") or ev.data
                if isinstance(doc.get("reason"), str):
                    kind = doc["reason"]
                d = doc.get("detail")
                detail = d if isinstance(d, str) else None
        except ValueError:
            pass
        raise TailDisconnected(status, kind, str(message), detail, ev.data)
    try:
        doc = json.loads(ev.data)
    except ValueError as e:
        raise ProtocolError(f"tail event {ev.event!r} is not JSON: {ev.data[:200]!r}") from e
    return doc
