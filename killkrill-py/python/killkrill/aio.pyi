"""Type stubs for ``killkrill.aio``: the asyncio client."""

import ssl
from typing import Any, AsyncIterator, Dict, Iterable, List, Mapping, Optional, Sequence, Tuple, Union

from ._api import DurationArg, LogRecordDict, QueryResult, Request, TimeArg

Samples = Union[Iterable[Any], bytes, bytearray, str]
Records = Union[Iterable[Any], bytes, bytearray, str]
Match = Union[str, Sequence[str]]

class AsyncClient:
    """The asyncio twin of ``killkrill.Client`` (one per event loop)."""

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
    async def __aenter__(self) -> AsyncClient: ...
    async def __aexit__(self, *exc: Any) -> None: ...
    async def aclose(self) -> None: ...
    async def push_logs(
        self, records: Records, *, gzip: Optional[bool] = None, batch_size: Optional[int] = None
    ) -> int: ...
    async def push_metrics(
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
    ) -> AsyncLogPages: ...
    async def log_volume(
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
    ) -> AsyncTail: ...
    async def query(
        self, promql: str, time: Optional[TimeArg] = None, *, timeout: Optional[DurationArg] = None
    ) -> QueryResult: ...
    async def query_range(
        self,
        promql: str,
        start: TimeArg,
        end: TimeArg,
        step: DurationArg,
        *,
        timeout: Optional[DurationArg] = None,
    ) -> QueryResult: ...
    async def series(
        self, match: Match, *, start: Optional[TimeArg] = None, end: Optional[TimeArg] = None
    ) -> List[Dict[str, str]]: ...
    async def labels(
        self, match: Optional[Match] = None, *, start: Optional[TimeArg] = None, end: Optional[TimeArg] = None
    ) -> List[str]: ...
    async def label_values(
        self,
        name: str,
        match: Optional[Match] = None,
        *,
        start: Optional[TimeArg] = None,
        end: Optional[TimeArg] = None,
    ) -> List[str]: ...
    async def query_metrics(
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
    async def ready(self) -> bool: ...
    async def _send(
        self,
        method: str,
        path: str,
        params: Optional[Sequence[Tuple[str, str]]] = None,
        body: Optional[bytes] = None,
        headers: Optional[Mapping[str, str]] = None,
    ) -> Tuple[int, Dict[str, str], bytes]: ...
    async def _call(self, req: Request) -> Any: ...
    async def _push(self, requests: Iterable[Request]) -> int: ...

class AsyncLogPages:
    """The records of a log query, a page at a time; ``async for`` once."""

    @property
    def cursor(self) -> Optional[str]: ...
    @property
    def pages(self) -> int: ...
    def __aiter__(self) -> AsyncIterator[LogRecordDict]: ...
    async def to_list(self) -> List[LogRecordDict]: ...

class AsyncTail:
    """A live tail; ``async for`` records, ``aclose()`` to end it."""

    status: Optional[int]
    @property
    def heartbeats(self) -> int: ...
    async def open(self) -> AsyncTail: ...
    async def __aenter__(self) -> AsyncTail: ...
    async def __aexit__(self, *exc: Any) -> None: ...
    def __aiter__(self) -> AsyncTail: ...
    async def __anext__(self) -> LogRecordDict: ...
    async def aclose(self) -> None: ...
