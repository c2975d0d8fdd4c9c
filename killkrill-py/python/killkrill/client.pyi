"""Type stubs for ``killkrill.client``: the synchronous client."""

import ssl
from typing import Any, Dict, Iterable, Iterator, List, Mapping, Optional, Sequence, Tuple, Union

from ._api import ApiError as ApiError
from ._api import DurationArg, LogRecordDict, QueryResult, Request, TimeArg

Samples = Union[Iterable[Any], bytes, bytearray, str]
Records = Union[Iterable[Any], bytes, bytearray, str]
Match = Union[str, Sequence[str]]

class Client:
    """A client for one Killkrill server (thread-safe, pooled keep-alive)."""

    url: str
    def __init__(
        self,
        url: str,
        api_key: Optional[str] = None,
        *,
        timeout: Optional[float] = ...,
        headers: Optional[Mapping[str, str]] = None,
        ssl_context: Optional[ssl.SSLContext] = None,
        batch_size: int = ...,
        ca_file: Optional[str] = None,
        verify: bool = True,
        client_cert: Optional[str] = None,
        client_key: Optional[str] = None,
    ) -> None: ...
    def __enter__(self) -> Client: ...
    def __exit__(self, *exc: Any) -> None: ...
    def close(self) -> None: ...
    def push_logs(
        self, records: Records, *, gzip: Optional[bool] = None, batch_size: Optional[int] = None
    ) -> int: ...
    def push_metrics(
        self,
        samples: Samples,
        *,
        openmetrics: bool = False,
        gzip: Optional[bool] = None,
        batch_size: Optional[int] = None,
    ) -> int: ...
    def query_logs(
        self,
        query: Optional[str] = None,
        *,
        severity: Optional[str] = None,
        host: Optional[str] = None,
        app: Optional[str] = None,
        source: Optional[str] = None,
        fields: Optional[Mapping[str, Any]] = None,
        start: Optional[TimeArg] = None,
        end: Optional[TimeArg] = None,
        order: Optional[str] = None,
        page_size: Optional[int] = None,
        limit: Optional[int] = None,
        cursor: Optional[str] = None,
    ) -> LogPages: ...
    def log_volume(
        self,
        query: Optional[str] = None,
        *,
        step: Optional[DurationArg] = None,
        severity: Optional[str] = None,
        host: Optional[str] = None,
        app: Optional[str] = None,
        source: Optional[str] = None,
        fields: Optional[Mapping[str, Any]] = None,
        start: Optional[TimeArg] = None,
        end: Optional[TimeArg] = None,
    ) -> List[Dict[str, Any]]: ...
    def tail(
        self,
        query: Optional[str] = None,
        *,
        severity: Optional[str] = None,
        host: Optional[str] = None,
        app: Optional[str] = None,
        source: Optional[str] = None,
        fields: Optional[Mapping[str, Any]] = None,
        read_timeout: Optional[float] = None,
    ) -> Tail: ...
    def query(
        self, promql: str, time: Optional[TimeArg] = None, *, timeout: Optional[DurationArg] = None
    ) -> QueryResult: ...
    def query_range(
        self,
        promql: str,
        start: TimeArg,
        end: TimeArg,
        step: DurationArg,
        *,
        timeout: Optional[DurationArg] = None,
    ) -> QueryResult: ...
    def series(
        self, match: Match, *, start: Optional[TimeArg] = None, end: Optional[TimeArg] = None
    ) -> List[Dict[str, str]]: ...
    def labels(
        self, match: Optional[Match] = None, *, start: Optional[TimeArg] = None, end: Optional[TimeArg] = None
    ) -> List[str]: ...
    def label_values(
        self,
        name: str,
        match: Optional[Match] = None,
        *,
        start: Optional[TimeArg] = None,
        end: Optional[TimeArg] = None,
    ) -> List[str]: ...
    def query_metrics(
        self,
        name: Optional[str] = None,
        *,
        match: Optional[str] = None,
        labels: Optional[Mapping[str, str]] = None,
        start: Optional[TimeArg] = None,
        end: Optional[TimeArg] = None,
        step: Optional[DurationArg] = None,
        resolution: Optional[DurationArg] = None,
        aggregation: Optional[str] = None,
    ) -> QueryResult: ...
    def ready(self) -> bool: ...
    def _send(
        self,
        method: str,
        path: str,
        params: Optional[Sequence[Tuple[str, str]]] = None,
        body: Optional[bytes] = None,
        headers: Optional[Mapping[str, str]] = None,
    ) -> Tuple[int, Dict[str, str], bytes]: ...
    def _call(self, req: Request) -> Any: ...
    def _push(self, requests: Iterable[Request]) -> int: ...

class LogPages:
    """The records of a log query, a page at a time; iterate once."""

    @property
    def cursor(self) -> Optional[str]: ...
    @property
    def pages(self) -> int: ...
    def __iter__(self) -> Iterator[LogRecordDict]: ...
    def to_list(self) -> List[LogRecordDict]: ...

class Tail:
    """A live tail; iterate for records, ``close()`` to end it."""

    status: Optional[int]
    @property
    def heartbeats(self) -> int: ...
    def open(self) -> Tail: ...
    def __enter__(self) -> Tail: ...
    def __exit__(self, *exc: Any) -> None: ...
    def __iter__(self) -> Iterator[LogRecordDict]: ...
    def __next__(self) -> LogRecordDict: ...
    def close(self) -> None: ...
