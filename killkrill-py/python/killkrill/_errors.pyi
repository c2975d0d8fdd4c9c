"""Type stubs for ``killkrill._errors``: the client's errors."""

from typing import Any, Mapping, Optional

class ApiError(Exception):
    """The server refused a request (4xx/5xx), with what its JSON body said."""

    status: int
    error_type: str
    message: str
    detail: Optional[str]
    body: Any
    retry_after: Optional[float]
    parameter: Optional[str]
    limit: Optional[str]
    accepted: Optional[int]
    def __init__(
        self,
        status: int,
        error_type: str,
        message: str,
        detail: Optional[str] = None,
        body: Any = None,
        retry_after: Optional[float] = None,
    ) -> None: ...

class TailDisconnected(ApiError):
    """The server ended a live tail and said why (``message``)."""

class ProtocolError(Exception):
    """An answer that is not HTTP, JSON or SSE as the API defines it."""

def error_from_response(status: int, headers: Mapping[str, str], body: bytes) -> ApiError: ...
def decode_json(status: int, headers: Mapping[str, str], body: bytes) -> Any: ...
def prometheus_data(doc: Any) -> Any: ...
