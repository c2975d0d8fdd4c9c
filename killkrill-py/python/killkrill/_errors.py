"""The client's errors and the reading of answers into them (see
:mod:`killkrill._api`)."""

from __future__ import annotations

import json
from typing import Any, Mapping, Optional


# The `errorType` of a native (non-Prometheus) error, from its status.
_ERROR_TYPES = {
    400: "bad_data",
    401: "unauthorized",
    403: "forbidden",
    404: "not_found",
    405: "method_not_allowed",
    406: "not_acceptable",
    408: "timeout",
    413: "too_large",
    415: "unsupported_media_type",
    422: "limit_exceeded",
    429: "too_many_requests",
    500: "internal",
    502: "unavailable",
    503: "unavailable",
    504: "timeout",
}


class ApiError(Exception):
    """The server refused a request (any 4xx or 5xx answer).

    ``status`` is the HTTP status; ``error_type`` a short stable word:
    Prometheus's ``errorType`` (``bad_data``, ``execution``, ``timeout``,
    ...) on the Prometheus API, else derived from the status (``bad_data``,
    ``unauthorized``, ``forbidden``, ``too_large``, ``limit_exceeded``,
    ``too_many_requests``, ``unavailable``, ...). ``message`` is the
    server's ``error`` text, ``detail`` its ``detail`` (where in the input,
    or None), ``body`` the decoded JSON body (or the text when it was not
    JSON). ``parameter`` names the request parameter at fault and
    ``limit`` the server limit that was exceeded (``query.max_range_secs``,
    ...), when the server says. ``retry_after`` is the ``Retry-After``
    header in seconds, when sent. ``accepted`` is set by the push methods: the records or samples
    that earlier requests of the same call had stored before this one failed.
    """

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
    ) -> None:
        text = f"{status} {error_type}: {message}"
        if detail:
            text += f" ({detail})"
        super().__init__(text)
        self.status = status
        self.error_type = error_type
        self.message = message
        self.detail = detail
        self.body = body
        self.retry_after = retry_after
        doc = body if isinstance(body, dict) else {}
        self.parameter = doc.get("parameter") if isinstance(doc.get("parameter"), str) else None
        self.limit = doc.get("limit") if isinstance(doc.get("limit"), str) else None
        self.accepted = None


class TailDisconnected(ApiError):
    """The server ended a live tail and said why (for example a client too
    slow to keep up). ``status`` is that of the stream (200), ``error_type``
    the server's reason (``slow_client``, ...; else the event name),
    ``message`` its explanation."""


class ProtocolError(Exception):
    """The server's answer was not HTTP, JSON or SSE as the API defines it
    (a proxy's HTML page, a truncated body, an oversized event)."""


def error_from_response(status: int, headers: Mapping[str, str], body: bytes) -> ApiError:
    """The :class:`ApiError` for a 4xx/5xx answer."""
    retry_after: Optional[float] = None
    ra = headers.get("retry-after")
    if ra is not None:
        try:
            retry_after = float(ra)
        except ValueError:
            retry_after = None
    text = body.decode("utf-8", "replace")
    try:
        doc: Any = json.loads(text)
    except ValueError:
        doc = None
    if isinstance(doc, dict) and isinstance(doc.get("error"), str):
        error_type = doc.get("errorType")
        if not isinstance(error_type, str):
            error_type = _ERROR_TYPES.get(status, "error")
        detail = doc.get("detail")
        return ApiError(
            status,
            error_type,
            doc["error"],
            detail if isinstance(detail, str) else None,
            doc,
            retry_after,
        )
    # Not the API's envelope (a proxy in between, a bare status).
    snippet = text.strip()[:500] or "(empty body)"
    return ApiError(status, _ERROR_TYPES.get(status, "error"), snippet, None, text, retry_after)


def decode_json(status: int, headers: Mapping[str, str], body: bytes) -> Any:
    """The JSON of a 2xx answer, or the error of a 4xx/5xx one."""
    if status >= 400:
        raise error_from_response(status, headers, body)
    if not body:
        return None
    try:
        return json.loads(body)
    except ValueError as e:
        raise ProtocolError(f"{status} answer is not JSON: {body[:200]!r}") from e


def prometheus_data(doc: Any) -> Any:
    """``data`` of Prometheus's ``{"status": "success", "data": ...}``."""
    if not isinstance(doc, dict) or doc.get("status") != "success" or "data" not in doc:
        raise ProtocolError(f"not a Prometheus API answer: {str(doc)[:200]}")
    return doc["data"]
