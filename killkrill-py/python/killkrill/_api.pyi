"""Type stubs for ``killkrill._api``: the client's errors and result types
(re-exported from ``killkrill``) and the helpers both clients share."""

import datetime as _dt
import ssl
from dataclasses import dataclass
from typing import Any, Dict, Iterable, Iterator, List, Mapping, Optional, Sequence, Tuple, Union

USER_AGENT: str
DEFAULT_TIMEOUT: float
DEFAULT_BATCH_SIZE: int
DEFAULT_BATCH_BYTES: int
MAX_RESPONSE_BYTES: int
GZIP_MIN_BYTES: int

TimeArg = Union[int, float, str, _dt.datetime, _dt.timedelta]
DurationArg = Union[int, float, str, _dt.timedelta]
LogRecordDict = Dict[str, Any]

from ._errors import ApiError as ApiError
from ._errors import ProtocolError as ProtocolError
from ._errors import TailDisconnected as TailDisconnected
from ._errors import decode_json as decode_json
from ._errors import error_from_response as error_from_response
from ._errors import prometheus_data as prometheus_data
from ._sse import CLOSE_EVENTS as CLOSE_EVENTS
from ._sse import GAP_EVENTS as GAP_EVENTS
from ._sse import HEARTBEAT_EVENTS as HEARTBEAT_EVENTS
from ._sse import MAX_EVENT_BYTES as MAX_EVENT_BYTES
from ._sse import SseEvent as SseEvent
from ._sse import SseParser as SseParser
from ._sse import tail_item as tail_item

@dataclass(frozen=True)
class Endpoint:
    scheme: str
    host: str
    port: int
    prefix: str
    @staticmethod
    def parse(url: str) -> Endpoint: ...
    def target(self, path: str, params: Optional[Sequence[Tuple[str, str]]] = None) -> str: ...
    def host_header(self) -> str: ...

def base_headers(
    endpoint: Endpoint, api_key: Optional[str], extra: Optional[Mapping[str, str]]
) -> Dict[str, str]: ...
def rfc3339_from_ns(ns: int) -> str: ...
def ns_from_datetime(t: _dt.datetime) -> int: ...
def time_param(t: TimeArg, now_ns: Optional[int] = None) -> str: ...
def duration_param(d: DurationArg) -> str: ...
def log_filter_params(
    query: Optional[str],
    severity: Optional[str],
    host: Optional[str],
    app: Optional[str],
    source: Optional[str],
    fields: Optional[Mapping[str, Any]],
    start: Optional[TimeArg],
    end: Optional[TimeArg],
) -> List[Tuple[str, str]]: ...
def matcher_params(match: Union[str, Sequence[str], None]) -> List[Tuple[str, str]]: ...
def range_params(start: Optional[TimeArg], end: Optional[TimeArg]) -> List[Tuple[str, str]]: ...
def ingest_form(record: Any) -> Mapping[str, Any]: ...
def ndjson_batches(
    records: Iterable[Any], batch_size: int, batch_bytes: int
) -> Iterator[Tuple[bytes, int]]: ...
def exposition_batches(samples: Iterable[Any], batch_size: int) -> Iterator[Tuple[bytes, int]]: ...
def maybe_gzip(body: bytes, gzip: Optional[bool]) -> Tuple[bytes, Dict[str, str]]: ...
def raw_body(data: Union[bytes, bytearray, memoryview, str]) -> bytes: ...
def ns_from_prometheus(t: Union[int, float, str]) -> int: ...

@dataclass(frozen=True)
class Series:
    """One series of a PromQL result: labels and ``(timestamp_ns, value)`` points."""

    labels: Dict[str, str]
    points: List[Tuple[int, float]]
    @property
    def value(self) -> float: ...
    @property
    def timestamp(self) -> int: ...

@dataclass(frozen=True)
class QueryResult:
    """A PromQL answer: ``type``, ``series`` (vector/matrix), ``scalar``, ``raw``."""

    type: str
    series: List[Series]
    scalar: Optional[Tuple[int, Union[float, str]]]
    raw: Dict[str, Any]
    def __len__(self) -> int: ...
    def __iter__(self) -> Iterator[Series]: ...

def query_result(data: Any) -> QueryResult: ...
def log_page(doc: Any) -> Tuple[List[LogRecordDict], Optional[str]]: ...
def path_segment(s: str) -> str: ...
def metrics_params(
    name: Optional[str],
    match: Optional[str],
    labels: Optional[Mapping[str, str]],
    start: Optional[TimeArg],
    end: Optional[TimeArg],
    step: Optional[DurationArg],
    resolution: Optional[DurationArg],
    aggregation: Optional[str],
) -> List[Tuple[str, str]]: ...
def metrics_result(doc: Any) -> QueryResult: ...

@dataclass(frozen=True)
class Request:
    method: str
    path: str
    params: List[Tuple[str, str]]
    body: Optional[bytes] = ...
    headers: Optional[Dict[str, str]] = ...
    result: Any = ...
    def read(self, status: int, headers: Mapping[str, str], body: bytes) -> Any: ...

def req_query(promql: str, time: Optional[TimeArg], timeout: Optional[DurationArg]) -> Request: ...
def req_query_range(
    promql: str, start: TimeArg, end: TimeArg, step: DurationArg, timeout: Optional[DurationArg]
) -> Request: ...
def req_series(
    match: Union[str, Sequence[str]], start: Optional[TimeArg], end: Optional[TimeArg]
) -> Request: ...
def req_labels(
    match: Union[str, Sequence[str], None], start: Optional[TimeArg], end: Optional[TimeArg]
) -> Request: ...
def req_label_values(
    name: str, match: Union[str, Sequence[str], None], start: Optional[TimeArg], end: Optional[TimeArg]
) -> Request: ...
def req_volume(filters: List[Tuple[str, str]], step: Optional[DurationArg]) -> Request: ...
def req_metrics(params: List[Tuple[str, str]]) -> Request: ...
def req_log_page(filters: List[Tuple[str, str]], size: Optional[int], cursor: Optional[str]) -> Request: ...
def push_log_requests(
    records: Union[Iterable[Any], bytes, bytearray, memoryview, str], gzip: Optional[bool], batch_size: int
) -> Iterator[Request]: ...
def push_metric_requests(
    samples: Union[Iterable[Any], bytes, bytearray, memoryview, str],
    openmetrics: bool,
    gzip: Optional[bool],
    batch_size: int,
) -> Iterator[Request]: ...

class PageState:
    filters: List[Tuple[str, str]]
    page_size: Optional[int]
    left: Optional[int]
    cursor: Optional[str]
    pages: int
    done: bool
    started: bool
    def __init__(
        self,
        filters: List[Tuple[str, str]],
        page_size: Optional[int],
        limit: Optional[int],
        cursor: Optional[str],
    ) -> None: ...
    def start(self) -> None: ...
    def next_request(self) -> Request: ...
    def took(self, page: Tuple[List[LogRecordDict], Optional[str]]) -> List[LogRecordDict]: ...

def tail_request(filters: List[Tuple[str, str]]) -> Tuple[str, List[Tuple[str, str]], Dict[str, str]]: ...

def tls_context(
    ssl_context: Optional[ssl.SSLContext],
    ca_file: Optional[str],
    verify: bool,
    client_cert: Optional[str],
    client_key: Optional[str],
) -> Optional[ssl.SSLContext]: ...
