"""What the synchronous and the asyncio client share, with no I/O in it.

Request building (query parameters, time and duration arguments, bodies),
response reading (the JSON envelopes; the errors are in ``_errors``), the
Prometheus result types and the Server-Sent Events parser (``_sse``) live
here, so :mod:`killkrill.client` and :mod:`killkrill.aio` only move bytes:
one behaviour, two transports.
"""

from __future__ import annotations

import datetime as _dt
import gzip as _gzip
import json
import math
import ssl as _ssl
import time as _time
from dataclasses import dataclass, field
from typing import (
    Any,
    Dict,
    Iterable,
    Iterator,
    List,
    Mapping,
    Optional,
    Sequence,
    Tuple,
    Union,
)
from urllib.parse import quote, urlencode, urlsplit

from ._errors import (  # noqa: F401  (re-exported)
    ApiError,
    ProtocolError,
    TailDisconnected,
    decode_json,
    error_from_response,
    prometheus_data,
)
from ._killkrill import __version__
from ._sse import (  # noqa: F401  (re-exported)
    CLOSE_EVENTS,
    GAP_EVENTS,
    HEARTBEAT_EVENTS,
    MAX_EVENT_BYTES,
    SseEvent,
    SseParser,
    tail_item,
)

USER_AGENT = f"killkrill-python/{__version__}"

#: Seconds a request may take (connect, then each read) unless told otherwise.
DEFAULT_TIMEOUT = 30.0
#: Records (or samples) per request when an iterable is pushed.
DEFAULT_BATCH_SIZE = 5_000
#: Bytes per request body before compression; the server's default limit is
#: 16 MiB of decompressed body, so a batch stays well below it.
DEFAULT_BATCH_BYTES = 4 << 20
#: Largest response body the client reads (a larger one is a ProtocolError).
MAX_RESPONSE_BYTES = 256 << 20
#: Bodies at least this large are gzipped when ``gzip=None`` (automatic).
GZIP_MIN_BYTES = 64 << 10

TimeArg = Union[int, float, str, _dt.datetime, _dt.timedelta]
DurationArg = Union[int, float, str, _dt.timedelta]


# --- the base URL and headers -----------------------------------------------


@dataclass(frozen=True)
class Endpoint:
    """Where the server is: scheme, host, port and a path prefix."""

    scheme: str
    host: str
    port: int
    prefix: str

    @staticmethod
    def parse(url: str) -> "Endpoint":
        u = urlsplit(url)
        if u.scheme not in ("http", "https"):
            raise ValueError(f"url must start with http:// or https://, got {url!r}")
        if not u.hostname:
            raise ValueError(f"url has no host: {url!r}")
        if u.query or u.fragment:
            raise ValueError(f"url must not have a query or fragment: {url!r}")
        if u.username or u.password:
            raise ValueError("give credentials as api_key=..., not in the url")
        port = u.port or (443 if u.scheme == "https" else 80)
        return Endpoint(u.scheme, u.hostname, port, u.path.rstrip("/"))

    def target(self, path: str, params: Optional[Sequence[Tuple[str, str]]] = None) -> str:
        t = self.prefix + path
        if params:
            t += "?" + urlencode(params)
        return t

    def host_header(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        default = 443 if self.scheme == "https" else 80
        return host if self.port == default else f"{host}:{self.port}"


def base_headers(
    endpoint: Endpoint, api_key: Optional[str], extra: Optional[Mapping[str, str]]
) -> Dict[str, str]:
    h = {
        "Host": endpoint.host_header(),
        "User-Agent": USER_AGENT,
        "Accept": "application/json",
        "Accept-Encoding": "identity",
    }
    if api_key is not None:
        if not api_key or any(c in api_key for c in "\r\n"):
            raise ValueError("api_key must be a non-empty string without line breaks")
        h["Authorization"] = f"Bearer {api_key}"
    for k, v in (extra or {}).items():
        if not k or any(c in k for c in ":\r\n") or any(c in v for c in "\r\n"):
            raise ValueError(f"invalid header {k!r}: no colon in the name, no line breaks")
        h[k] = v
    return h


# --- arguments --------------------------------------------------------------

_EPOCH = _dt.datetime(1970, 1, 1, tzinfo=_dt.timezone.utc)


def rfc3339_from_ns(ns: int) -> str:
    """``2026-11-25T10:00:00.123456789Z`` for nanoseconds since the epoch."""
    secs, frac = divmod(ns, 1_000_000_000)
    t = _EPOCH + _dt.timedelta(seconds=secs)
    return t.strftime("%Y-%m-%dT%H:%M:%S") + f".{frac:09d}Z"


def ns_from_datetime(t: _dt.datetime) -> int:
    """Nanoseconds since the epoch; a naive datetime is local time (as in
    :meth:`datetime.datetime.astimezone`)."""
    d = t.astimezone(_dt.timezone.utc) - _EPOCH
    return (d.days * 86_400 + d.seconds) * 1_000_000_000 + d.microseconds * 1_000


def time_param(t: TimeArg, now_ns: Optional[int] = None) -> str:
    """A time argument as the server reads it.

    ``int``: nanoseconds since the epoch (the package's convention);
    ``float``: seconds since the epoch (``time.time()``); ``datetime``;
    ``timedelta``: relative to now, resolved here (``-timedelta(minutes=15)``),
    so every page of one query uses the same bounds; ``str``: sent as is
    (RFC 3339, epoch seconds, or the server's relative syntax such as
    ``-15m``, which the server resolves on every request).
    """
    if isinstance(t, bool):
        raise TypeError("a time is int (ns), float (s), str, datetime or timedelta, not bool")
    if isinstance(t, int):
        return rfc3339_from_ns(t)
    if isinstance(t, float):
        if not math.isfinite(t):
            raise ValueError(f"time must be finite, got {t}")
        return rfc3339_from_ns(round(t * 1e9))
    if isinstance(t, _dt.datetime):
        return rfc3339_from_ns(ns_from_datetime(t))
    if isinstance(t, _dt.timedelta):
        base = _time.time_ns() if now_ns is None else now_ns
        return rfc3339_from_ns(base + _td_ns(t))
    if isinstance(t, str):
        if not t:
            raise ValueError("time must not be empty")
        return t
    raise TypeError(f"a time is int (ns), float (s), str, datetime or timedelta, not {type(t).__name__}")


def _td_ns(td: _dt.timedelta) -> int:
    return (td.days * 86_400 + td.seconds) * 1_000_000_000 + td.microseconds * 1_000


def duration_param(d: DurationArg) -> str:
    """A duration (``step``, ``timeout``): seconds as ``int``/``float``, a
    ``timedelta``, or a string in the server's syntax (``"1m"``, ``"30s"``)."""
    if isinstance(d, bool):
        raise TypeError("a duration is int or float seconds, str or timedelta, not bool")
    if isinstance(d, _dt.timedelta):
        return _seconds_text(d.total_seconds())
    if isinstance(d, (int, float)):
        if not math.isfinite(d):
            raise ValueError(f"duration must be finite, got {d}")
        return _seconds_text(float(d))
    if isinstance(d, str):
        if not d:
            raise ValueError("duration must not be empty")
        return d
    raise TypeError(f"a duration is int or float seconds, str or timedelta, not {type(d).__name__}")


def _seconds_text(s: float) -> str:
    return str(int(s)) if s == int(s) else repr(s)


def log_filter_params(
    query: Optional[str],
    severity: Optional[str],
    host: Optional[str],
    app: Optional[str],
    source: Optional[str],
    fields: Optional[Mapping[str, Any]],
    start: Optional[TimeArg],
    end: Optional[TimeArg],
) -> List[Tuple[str, str]]:
    """The filter parameters that ``/api/v1/logs``, ``/logs/volume`` and
    ``/logs/tail`` share. Times are resolved once, here."""
    now = _time.time_ns()
    p: List[Tuple[str, str]] = []
    for name, value in (
        ("query", query),
        ("severity", severity),
        ("host", host),
        ("app", app),
        ("source", source),
    ):
        if value is not None:
            p.append((name, str(value)))
    for k, v in (fields or {}).items():
        if not k:
            raise ValueError("a field name must not be empty")
        p.append((f"field.{k}", _field_text(v)))
    if start is not None:
        p.append(("start", time_param(start, now)))
    if end is not None:
        p.append(("end", time_param(end, now)))
    return p


def _field_text(v: Any) -> str:
    if isinstance(v, bool):
        return "true" if v else "false"
    if v is None:
        return "null"
    return str(v)


def matcher_params(match: Union[str, Sequence[str], None]) -> List[Tuple[str, str]]:
    if match is None:
        return []
    if isinstance(match, str):
        return [("match[]", match)]
    return [("match[]", m) for m in match]


def range_params(start: Optional[TimeArg], end: Optional[TimeArg]) -> List[Tuple[str, str]]:
    now = _time.time_ns()
    p = []
    if start is not None:
        p.append(("start", time_param(start, now)))
    if end is not None:
        p.append(("end", time_param(end, now)))
    return p


# --- bodies -------------------------------------------------------------------


def _json_default(o: Any) -> Any:
    if isinstance(o, _dt.datetime):
        return rfc3339_from_ns(ns_from_datetime(o))
    if hasattr(o, "to_dict"):
        return o.to_dict()
    raise TypeError(f"{type(o).__name__} is not JSON serializable")


# One encoder for every record: `json.dumps` with options builds a new one
# per call.
_ENCODER = json.JSONEncoder(ensure_ascii=False, separators=(",", ":"), allow_nan=False, default=_json_default)


def ingest_form(record: Any) -> Mapping[str, Any]:
    """A record as ``POST /api/v1/logs`` reads it.

    A mapping is sent as it is (a JSON log object: ``msg``/``level``/``ts``
    and the other aliases are read by the server). A killkrill object
    (``LogRecord``, ``SyslogMessage``) is turned from its canonical form into
    the ingest form: empty header fields dropped, ``attributes`` moved to the
    top level, structured data nested (the server stores it as the flattened
    attributes ``structured_data.<id>.<name>``).
    """
    if isinstance(record, Mapping):
        return record
    to_dict = getattr(record, "to_dict", None)
    if to_dict is None:
        raise TypeError(f"a log record is a dict or a killkrill record, not {type(record).__name__}")
    canonical = to_dict()
    out: Dict[str, Any] = {}
    for k, v in canonical.items():
        if k == "attributes":
            continue
        if k == "source":
            # Set by the server (the ingest path); as a key it would be read
            # as an alias of `app`.
            continue
        if v is not None:
            out[k] = v
    for k, v in (canonical.get("attributes") or {}).items():
        out.setdefault(k, v)
    return out


def ndjson_batches(records: Iterable[Any], batch_size: int, batch_bytes: int) -> Iterator[Tuple[bytes, int]]:
    """NDJSON bodies of at most ``batch_size`` records and about
    ``batch_bytes`` bytes (a single larger record is sent alone), with the
    record count of each."""
    if batch_size <= 0 or batch_bytes <= 0:
        raise ValueError("batch_size and batch_bytes must be positive")
    lines: List[bytes] = []
    size = 0
    for r in records:
        line = _ENCODER.encode(ingest_form(r)).encode("utf-8")
        if lines and (len(lines) >= batch_size or size + len(line) + 1 > batch_bytes):
            yield b"\n".join(lines) + b"\n", len(lines)
            lines, size = [], 0
        lines.append(line)
        size += len(line) + 1
    if lines:
        yield b"\n".join(lines) + b"\n", len(lines)


_METRIC_TYPES_WITH_TYPE_LINE = ("counter", "gauge")


def _sample_fields(s: Any) -> Tuple[str, Mapping[str, str], float, Optional[int], Optional[str]]:
    if isinstance(s, Mapping):
        return (s["name"], s.get("labels") or {}, s["value"], s.get("timestamp"), s.get("type"))
    if isinstance(s, tuple):
        # (name, labels, value[, timestamp_ns])
        if len(s) == 3:
            return (s[0], s[1] or {}, s[2], None, None)
        if len(s) == 4:
            return (s[0], s[1] or {}, s[2], s[3], None)
        raise ValueError(f"a sample tuple is (name, labels, value[, timestamp_ns]), got {len(s)} items")
    if hasattr(s, "name") and hasattr(s, "value"):
        return (s.name, s.labels, s.value, s.timestamp, getattr(s, "type", None))
    raise TypeError(f"a sample is a killkrill.MetricSample, a dict or a tuple, not {type(s).__name__}")


def _escape_label(v: str) -> str:
    return v.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")


def _float_text(v: float) -> str:
    if math.isnan(v):
        return "NaN"
    if math.isinf(v):
        return "+Inf" if v > 0 else "-Inf"
    return repr(float(v))


def exposition_batches(samples: Iterable[Any], batch_size: int) -> Iterator[Tuple[bytes, int]]:
    """Samples as Prometheus text 0.0.4 bodies of at most ``batch_size``
    samples. Samples are grouped by name in first-seen order (the format
    wants a family's samples together) with a ``# TYPE`` line for counters
    and gauges. Timestamps go from nanoseconds to the format's milliseconds
    (sub-millisecond digits are dropped)."""
    if batch_size <= 0:
        raise ValueError("batch_size must be positive")
    groups: Dict[str, List[str]] = {}
    types: Dict[str, Optional[str]] = {}
    count = 0

    def flush() -> Tuple[bytes, int]:
        out: List[str] = []
        for name, lines in groups.items():
            t = types.get(name)
            if t in _METRIC_TYPES_WITH_TYPE_LINE:
                out.append(f"# TYPE {name} {t}")
            out.extend(lines)
        return ("\n".join(out) + "\n").encode("utf-8"), count

    for s in samples:
        name, labels, value, ts, mtype = _sample_fields(s)
        if not isinstance(name, str) or not name:
            raise ValueError(f"a sample needs a metric name, got {name!r}")
        if isinstance(labels, Mapping):
            items = list(labels.items())
        else:
            items = list(labels)
        text = name
        if items:
            text += "{" + ",".join(f'{k}="{_escape_label(str(v))}"' for k, v in items) + "}"
        text += " " + _float_text(float(value))
        if ts is not None:
            text += f" {int(ts) // 1_000_000}"
        if name not in groups:
            groups[name] = []
            types[name] = mtype
        elif types[name] != mtype:
            types[name] = None
        groups[name].append(text)
        count += 1
        if count >= batch_size:
            yield flush()
            groups, types, count = {}, {}, 0
    if count:
        yield flush()


def maybe_gzip(body: bytes, gzip: Optional[bool]) -> Tuple[bytes, Dict[str, str]]:
    """The body to send and its ``Content-Encoding``: gzipped when ``gzip``
    is True, or when it is None and the body is at least 64 KiB."""
    if gzip or (gzip is None and len(body) >= GZIP_MIN_BYTES):
        return _gzip.compress(body, compresslevel=5), {"Content-Encoding": "gzip"}
    return body, {}


def raw_body(data: Union[bytes, bytearray, memoryview, str]) -> bytes:
    return data.encode("utf-8") if isinstance(data, str) else bytes(data)


# --- Prometheus results ---------------------------------------------------------


def ns_from_prometheus(t: Union[int, float, str]) -> int:
    """A Prometheus timestamp (seconds, millisecond precision) in nanoseconds."""
    return round(float(t) * 1000) * 1_000_000


@dataclass(frozen=True)
class Series:
    """One series of a query result: its labels (``__name__`` included when
    the result keeps it) and points ``(timestamp_ns, value)``. An instant
    vector's series has one point."""

    labels: Dict[str, str]
    points: List[Tuple[int, float]] = field(default_factory=list)

    @property
    def value(self) -> float:
        """The value of the last point (the only one of an instant vector)."""
        return self.points[-1][1]

    @property
    def timestamp(self) -> int:
        """The timestamp of the last point, in nanoseconds."""
        return self.points[-1][0]


@dataclass(frozen=True)
class QueryResult:
    """A PromQL answer. ``type`` is ``vector``, ``matrix``, ``scalar`` or
    ``string``; ``series`` holds the series of a vector or matrix (empty
    otherwise), ``scalar`` the ``(timestamp_ns, value)`` of a scalar or
    string; ``raw`` is the ``data`` object as the server sent it."""

    type: str
    series: List[Series]
    scalar: Optional[Tuple[int, Union[float, str]]]
    raw: Dict[str, Any]

    def __len__(self) -> int:
        return len(self.series)

    def __iter__(self) -> Iterator[Series]:
        return iter(self.series)


def query_result(data: Any) -> QueryResult:
    if not isinstance(data, dict) or "resultType" not in data:
        raise ProtocolError(f"not a query result: {str(data)[:200]}")
    kind = data["resultType"]
    result: Any = data.get("result")
    if kind == "vector":
        series = [
            Series(dict(s["metric"]), [(ns_from_prometheus(s["value"][0]), float(s["value"][1]))])
            for s in result
        ]
        return QueryResult(kind, series, None, data)
    if kind == "matrix":
        series = [
            Series(dict(s["metric"]), [(ns_from_prometheus(t), float(v)) for t, v in s["values"]])
            for s in result
        ]
        return QueryResult(kind, series, None, data)
    if kind == "scalar":
        return QueryResult(kind, [], (ns_from_prometheus(result[0]), float(result[1])), data)
    if kind == "string":
        return QueryResult(kind, [], (ns_from_prometheus(result[0]), str(result[1])), data)
    raise ProtocolError(f"unknown resultType {kind!r}")


# --- log pages --------------------------------------------------------------------


def log_page(doc: Any) -> Tuple[List[Dict[str, Any]], Optional[str]]:
    """``(records, next_cursor)`` of a ``/api/v1/logs`` answer."""
    if not isinstance(doc, dict) or not isinstance(doc.get("data"), list):
        raise ProtocolError(f"not a log page: {str(doc)[:200]}")
    cursor = doc.get("next_cursor")
    if cursor is not None and not isinstance(cursor, str):
        cursor = str(cursor)
    return doc["data"], cursor or None


def path_segment(s: str) -> str:
    return quote(s, safe="")


# --- the native metric query --------------------------------------------------------


def metrics_params(
    name: Optional[str],
    match: Optional[str],
    labels: Optional[Mapping[str, str]],
    start: Optional[TimeArg],
    end: Optional[TimeArg],
    step: Optional[DurationArg],
    resolution: Optional[DurationArg],
    aggregation: Optional[str],
) -> List[Tuple[str, str]]:
    """The parameters of ``GET /api/v1/metrics``."""
    p: List[Tuple[str, str]] = []
    if name is not None:
        p.append(("name", name))
    if match is not None:
        p.append(("match", match))
    for k, v in (labels or {}).items():
        p.append((f"label.{k}", str(v)))
    p += range_params(start, end)
    if step is not None:
        p.append(("step", duration_param(step)))
    if resolution is not None:
        p.append(("resolution", duration_param(resolution)))
    if aggregation is not None:
        p.append(("aggregation", aggregation))
    return p


def metrics_result(doc: Any) -> QueryResult:
    """A native metric answer as a matrix: each series' labels with
    ``__name__``, points ``(timestamp_ns, value)``; ``raw`` keeps
    ``resolution``, ``aggregation`` and ``step_seconds``."""
    if not isinstance(doc, dict) or not isinstance(doc.get("data"), list):
        raise ProtocolError(f"not a metrics answer: {str(doc)[:200]}")
    series = []
    for s in doc["data"]:
        labels = {"__name__": s["name"], **s.get("labels", {})}
        series.append(Series(labels, [(int(t) * 1_000_000, float(v)) for t, v in s["points"]]))
    return QueryResult("matrix", series, None, doc)


# --- requests, built once for both clients --------------------------------------------


@dataclass(frozen=True)
class Request:
    """One API call: what to send and how to read the answer."""

    method: str
    path: str
    params: List[Tuple[str, str]]
    body: Optional[bytes] = None
    headers: Optional[Dict[str, str]] = None
    # Turns the decoded JSON into the method's return value.
    result: Any = None

    def read(self, status: int, headers: Mapping[str, str], body: bytes) -> Any:
        doc = decode_json(status, headers, body)
        return self.result(doc) if self.result is not None else doc


_FORM = {"Content-Type": "application/x-www-form-urlencoded"}


def _prometheus_request(path: str, params: List[Tuple[str, str]], result: Any) -> Request:
    # POST with a form body, as Prometheus's API allows: long PromQL and many
    # match[] selectors do not hit URL length limits.
    return Request(
        "POST",
        path,
        [],
        urlencode(params).encode("ascii"),
        _FORM,
        lambda doc: result(prometheus_data(doc)),
    )


def _same(x: Any) -> Any:
    return x


def req_query(promql: str, time: Optional[TimeArg], timeout: Optional[DurationArg]) -> Request:
    p = [("query", promql)]
    if time is not None:
        p.append(("time", time_param(time)))
    if timeout is not None:
        p.append(("timeout", duration_param(timeout)))
    return _prometheus_request("/api/v1/query", p, query_result)


def req_query_range(
    promql: str, start: TimeArg, end: TimeArg, step: DurationArg, timeout: Optional[DurationArg]
) -> Request:
    p = [("query", promql)] + range_params(start, end)
    p.append(("step", duration_param(step)))
    if timeout is not None:
        p.append(("timeout", duration_param(timeout)))
    return _prometheus_request("/api/v1/query_range", p, query_result)


def req_series(match: Union[str, Sequence[str]], start: Optional[TimeArg], end: Optional[TimeArg]) -> Request:
    p = matcher_params(match)
    if not p:
        raise ValueError("series() needs at least one selector")
    return _prometheus_request("/api/v1/series", p + range_params(start, end), _same)


def req_labels(
    match: Union[str, Sequence[str], None], start: Optional[TimeArg], end: Optional[TimeArg]
) -> Request:
    return _prometheus_request("/api/v1/labels", matcher_params(match) + range_params(start, end), _same)


def req_label_values(
    name: str, match: Union[str, Sequence[str], None], start: Optional[TimeArg], end: Optional[TimeArg]
) -> Request:
    return Request(
        "GET",
        f"/api/v1/label/{path_segment(name)}/values",
        matcher_params(match) + range_params(start, end),
        result=prometheus_data,
    )


def _volume_data(doc: Any) -> Any:
    if not isinstance(doc, dict) or not isinstance(doc.get("data"), list):
        raise ProtocolError(f"not a volume answer: {str(doc)[:200]}")
    return doc["data"]


def req_volume(filters: List[Tuple[str, str]], step: Optional[DurationArg]) -> Request:
    p = list(filters)
    if step is not None:
        p.append(("step", duration_param(step)))
    return Request("GET", "/api/v1/logs/volume", p, result=_volume_data)


def req_metrics(params: List[Tuple[str, str]]) -> Request:
    return Request("GET", "/api/v1/metrics", params, result=metrics_result)


def req_log_page(filters: List[Tuple[str, str]], size: Optional[int], cursor: Optional[str]) -> Request:
    p = list(filters)
    if size is not None:
        p.append(("limit", str(size)))
    if cursor is not None:
        p.append(("cursor", cursor))
    return Request("GET", "/api/v1/logs", p, result=log_page)


def _accepted(doc: Any) -> int:
    return int(doc.get("accepted", 0)) if isinstance(doc, dict) else 0


def push_log_requests(
    records: Union[Iterable[Any], bytes, bytearray, memoryview, str],
    gzip: Optional[bool],
    batch_size: int,
) -> Iterator[Request]:
    """The requests that store ``records`` (see ``Client.push_logs``)."""
    if isinstance(records, (bytes, bytearray, memoryview, str)):
        bodies: Iterable[Tuple[bytes, int]] = [(raw_body(records), -1)]
    else:
        bodies = ndjson_batches(records, batch_size, DEFAULT_BATCH_BYTES)
    for body, _n in bodies:
        data, enc = maybe_gzip(body, gzip)
        yield Request(
            "POST", "/api/v1/logs", [], data, {"Content-Type": "application/x-ndjson", **enc}, _accepted
        )


def push_metric_requests(
    samples: Union[Iterable[Any], bytes, bytearray, memoryview, str],
    openmetrics: bool,
    gzip: Optional[bool],
    batch_size: int,
) -> Iterator[Request]:
    """The requests that store ``samples`` (see ``Client.push_metrics``)."""
    ctype = (
        "application/openmetrics-text; version=1.0.0; charset=utf-8"
        if openmetrics
        else "text/plain; version=0.0.4; charset=utf-8"
    )
    if isinstance(samples, (bytes, bytearray, memoryview, str)):
        bodies: Iterable[Tuple[bytes, int]] = [(raw_body(samples), -1)]
    else:
        if openmetrics:
            raise ValueError("openmetrics=True applies to exposition text, not to samples")
        bodies = exposition_batches(samples, batch_size)
    for body, _n in bodies:
        data, enc = maybe_gzip(body, gzip)
        yield Request(
            "POST", "/api/v1/import/prometheus", [], data, {"Content-Type": ctype, **enc}, _accepted
        )


class PageState:
    """Where a paginated log query is: the next page's size and cursor,
    and how many records are still wanted (``limit``)."""

    def __init__(
        self,
        filters: List[Tuple[str, str]],
        page_size: Optional[int],
        limit: Optional[int],
        cursor: Optional[str],
    ) -> None:
        if page_size is not None and page_size <= 0:
            raise ValueError("page_size must be positive")
        if limit is not None and limit < 0:
            raise ValueError("limit must not be negative")
        self.filters = filters
        self.page_size = page_size
        self.left = limit
        self.cursor = cursor
        self.pages = 0
        self.done = limit == 0
        self.started = False

    def start(self) -> None:
        if self.started:
            raise RuntimeError("log query results iterate once; query again (or pass cursor=)")
        self.started = True

    def next_request(self) -> Request:
        size = self.page_size
        if self.left is not None:
            size = min(size, self.left) if size is not None else self.left
        return req_log_page(self.filters, size, self.cursor)

    def took(self, page: Tuple[List[Dict[str, Any]], Optional[str]]) -> List[Dict[str, Any]]:
        """The records of a fetched page to hand out; updates the state."""
        records, nxt = page
        prev = self.cursor
        self.pages += 1
        self.cursor = nxt
        if self.left is not None:
            records = records[: self.left]
            self.left -= len(records)
        # An empty page that points back where it was would loop forever.
        if nxt is None or self.left == 0 or (not records and nxt == prev):
            self.done = True
        return records


def tail_request(filters: List[Tuple[str, str]]) -> Tuple[str, List[Tuple[str, str]], Dict[str, str]]:
    return (
        "/api/v1/logs/tail",
        filters,
        {"Accept": "text/event-stream", "Cache-Control": "no-cache"},
    )


def tls_context(
    ssl_context: Optional[_ssl.SSLContext],
    ca_file: Optional[str],
    verify: bool,
    client_cert: Optional[str],
    client_key: Optional[str],
) -> Optional[_ssl.SSLContext]:
    """The TLS context of an ``https://`` client: ``ssl_context`` as given,
    else the system's default trust store, or only the CAs of ``ca_file``
    (PEM) when set; ``verify=False`` turns certificate and host name checks
    off (testing only); ``client_cert`` (PEM, with the key unless
    ``client_key`` names it) is presented for mTLS. ``None`` when nothing
    was asked for (the default context is made on first use)."""
    if ssl_context is not None:
        if ca_file or not verify or client_cert:
            raise ValueError("pass either ssl_context or ca_file/verify/client_cert, not both")
        return ssl_context
    if ca_file is None and verify and client_cert is None:
        return None
    ctx = _ssl.create_default_context(cafile=ca_file)
    ctx.minimum_version = _ssl.TLSVersion.TLSv1_2
    if not verify:
        ctx.check_hostname = False
        ctx.verify_mode = _ssl.CERT_NONE
    if client_cert is not None:
        ctx.load_cert_chain(client_cert, client_key)
    return ctx
