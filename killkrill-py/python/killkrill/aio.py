"""The asyncio client for a running ``killkrill serve``.

HTTP/1.1 is spoken directly over :func:`asyncio.open_connection` (with TLS
for ``https://``), so the asyncio client, like the synchronous one, needs
nothing outside the standard library: no event-loop-specific HTTP package
to pin, and a tail is one socket read per chunk with nothing in between.
The API needs little of HTTP — requests with a ``Content-Length`` body;
answers with ``Content-Length``, chunked or close-delimited bodies — and
that is all this module speaks. Keep-alive connections are pooled per
client (one client per event loop).
"""

from __future__ import annotations

import asyncio
import ssl
from typing import (
    Any,
    AsyncIterator,
    Dict,
    Iterable,
    List,
    Mapping,
    Optional,
    Sequence,
    Tuple,
    Union,
)

from . import _api
from ._api import ApiError, DurationArg, Endpoint, ProtocolError, QueryResult, SseParser, TimeArg

_MAX_HEADER_LINES = 100
_STALE = (ConnectionResetError, BrokenPipeError, ConnectionAbortedError, asyncio.IncompleteReadError)


class _Stale(Exception):
    """A pooled connection the server had closed (nothing was read)."""


class _Conn:
    """One HTTP/1.1 connection."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader = reader
        self.writer = writer
        self.reusable = False

    def close(self) -> None:
        self.writer.close()

    async def request(
        self, method: str, target: str, headers: Mapping[str, str], body: Optional[bytes], reused: bool
    ) -> "_Response":
        head = [f"{method} {target} HTTP/1.1"]
        for k, v in headers.items():
            head.append(f"{k}: {v}")
        if body is not None:
            head.append(f"Content-Length: {len(body)}")
        data = ("\r\n".join(head) + "\r\n\r\n").encode("latin-1")
        answered = False
        try:
            self.writer.write(data + body if body is not None else data)
            await self.writer.drain()
            while True:
                line = await self.reader.readline()
                if not line:
                    raise (
                        _Stale()
                        if reused
                        else ConnectionResetError("the server closed the connection before answering")
                    )
                answered = True
                status, http10 = _status_line(line)
                hdrs = await self._headers()
                if 100 <= status < 200:
                    continue
                break
        except _STALE as e:
            # Only a connection that answered nothing was stale: the server
            # never read the request, so sending it again stores nothing twice.
            if reused and not answered:
                raise _Stale() from e
            raise
        resp = _Response(self, method, status, hdrs)
        conn_hdr = hdrs.get("connection", "").lower()
        self.reusable = not http10 and "close" not in conn_hdr
        return resp

    async def _headers(self) -> Dict[str, str]:
        out: Dict[str, str] = {}
        for _ in range(_MAX_HEADER_LINES):
            line = await self.reader.readline()
            if not line:
                raise ProtocolError("the connection closed inside the response headers")
            if line in (b"\r\n", b"\n"):
                return out
            name, sep, value = line.decode("latin-1").partition(":")
            if not sep:
                raise ProtocolError(f"bad response header line {line[:100]!r}")
            key = name.strip().lower()
            v = value.strip()
            out[key] = f"{out[key]}, {v}" if key in out else v
        raise ProtocolError(f"more than {_MAX_HEADER_LINES} response header lines")


def _status_line(line: bytes) -> Tuple[int, bool]:
    parts = line.decode("latin-1").split(None, 2)
    if len(parts) < 2 or not parts[0].startswith("HTTP/1.") or not parts[1].isdigit():
        raise ProtocolError(f"not an HTTP/1.x status line: {line[:100]!r}")
    return int(parts[1]), parts[0] == "HTTP/1.0"


class _Response:
    """An answer whose body is read in chunks (``chunk``) or whole (``read``)."""

    def __init__(self, conn: _Conn, method: str, status: int, headers: Dict[str, str]) -> None:
        self.conn = conn
        self.status = status
        self.headers = headers
        te = headers.get("transfer-encoding", "").lower()
        self._chunked = "chunked" in te
        length = headers.get("content-length")
        if method == "HEAD" or status in (204, 304):
            self._left: Optional[int] = 0
        elif self._chunked:
            self._left = None
        elif length is not None:
            if not length.strip().isdigit():
                raise ProtocolError(f"bad Content-Length {length!r}")
            self._left = int(length)
        else:
            self._left = None
            conn.reusable = False  # the body ends when the server closes
        self._chunk_left = 0
        self.done = self._left == 0

    async def chunk(self) -> bytes:
        """The next piece of the body; b"" at its end."""
        if self.done:
            return b""
        r = self.conn.reader
        if self._chunked:
            if self._chunk_left == 0:
                size_line = await r.readline()
                if not size_line:
                    raise ProtocolError("the connection closed inside a chunked body")
                try:
                    size = int(size_line.split(b";", 1)[0].strip(), 16)
                except ValueError:
                    raise ProtocolError(f"bad chunk size line {size_line[:100]!r}") from None
                if size == 0:
                    # Trailers, then the blank line.
                    while True:
                        t = await r.readline()
                        if t in (b"\r\n", b"\n", b""):
                            break
                    self.done = True
                    return b""
                self._chunk_left = size
            data = await r.read(min(self._chunk_left, 65536))
            if not data:
                raise ProtocolError("the connection closed inside a chunk")
            self._chunk_left -= len(data)
            if self._chunk_left == 0:
                await r.readexactly(2)
            return data
        if self._left is None:
            data = await r.read(65536)
            if not data:
                self.done = True
            return data
        data = await r.read(min(self._left, 65536))
        if not data:
            raise ProtocolError(f"the connection closed with {self._left} body bytes missing")
        self._left -= len(data)
        self.done = self._left == 0
        return data

    async def read(self, limit: int = _api.MAX_RESPONSE_BYTES) -> bytes:
        parts: List[bytes] = []
        size = 0
        while True:
            c = await self.chunk()
            if not c:
                return b"".join(parts)
            size += len(c)
            if size > limit:
                raise ProtocolError(f"response larger than {limit} bytes")
            parts.append(c)


class AsyncClient:
    """The asyncio twin of :class:`killkrill.Client`: the same methods, as
    coroutines (``query_logs`` and ``tail`` are async iterators). Use it as
    ``async with AsyncClient(url) as c:`` or call :meth:`aclose`."""

    def __init__(
        self,
        url: str,
        api_key: Optional[str] = None,
        *,
        timeout: Optional[float] = _api.DEFAULT_TIMEOUT,
        headers: Optional[Mapping[str, str]] = None,
        ssl_context: Optional[ssl.SSLContext] = None,
        batch_size: int = _api.DEFAULT_BATCH_SIZE,
        ca_file: Optional[str] = None,
        verify: bool = True,
        client_cert: Optional[str] = None,
        client_key: Optional[str] = None,
    ) -> None:
        self._endpoint = Endpoint.parse(url)
        self._headers = _api.base_headers(self._endpoint, api_key, headers)
        self._timeout = timeout
        self._ssl = _api.tls_context(ssl_context, ca_file, verify, client_cert, client_key)
        self._batch_size = batch_size
        self._idle: List[_Conn] = []
        self._closed = False
        self.url = url

    def __repr__(self) -> str:
        auth = ", api_key=***" if "Authorization" in self._headers else ""
        return f"AsyncClient({self.url!r}{auth})"

    async def __aenter__(self) -> "AsyncClient":
        return self

    async def __aexit__(self, *exc: Any) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        """Closes the pooled connections (open tails keep theirs)."""
        self._closed = True
        idle, self._idle = self._idle, []
        for c in idle:
            c.close()
        for c in idle:
            try:
                await c.writer.wait_closed()
            except OSError:
                pass

    # --- transport ---------------------------------------------------------

    async def _connect(self) -> _Conn:
        e = self._endpoint
        ctx: Optional[ssl.SSLContext] = None
        if e.scheme == "https":
            ctx = self._ssl or ssl.create_default_context()
        reader, writer = await _timed(
            asyncio.open_connection(e.host, e.port, ssl=ctx, limit=_api.MAX_EVENT_BYTES), self._timeout
        )
        return _Conn(reader, writer)

    async def _send(
        self,
        method: str,
        path: str,
        params: Optional[Sequence[Tuple[str, str]]] = None,
        body: Optional[bytes] = None,
        headers: Optional[Mapping[str, str]] = None,
    ) -> Tuple[int, Dict[str, str], bytes]:
        if self._closed:
            raise RuntimeError("the client is closed")
        target = self._endpoint.target(path, params)
        h = dict(self._headers)
        if headers:
            h.update(headers)
        for attempt in (0, 1):
            reused = bool(self._idle) and attempt == 0
            conn = self._idle.pop() if reused else await self._connect()
            try:
                resp = await _timed(conn.request(method, target, h, body, reused), self._timeout)
                data = await _timed(resp.read(), self._timeout)
            except _Stale:
                conn.close()
                continue
            except BaseException:
                conn.close()
                raise
            if conn.reusable and not self._closed and len(self._idle) < 16:
                self._idle.append(conn)
            else:
                conn.close()
            return resp.status, resp.headers, data
        raise ConnectionResetError("the server closed the connection before answering")

    async def _call(self, req: _api.Request) -> Any:
        return req.read(*await self._send(req.method, req.path, req.params, req.body, req.headers))

    # --- ingest -----------------------------------------------------------------

    async def _push(self, requests: Iterable[_api.Request]) -> int:
        """Sends the requests in order; the total accepted, or the error of
        the first refused one with ``accepted`` set to the total before it."""
        total = 0
        for req in requests:
            try:
                total += await self._call(req)
            except ApiError as e:
                e.accepted = total
                raise
        return total

    async def push_logs(
        self,
        records: Union[Iterable[Any], bytes, bytearray, str],
        *,
        gzip: Optional[bool] = None,
        batch_size: Optional[int] = None,
    ) -> int:
        """See :meth:`killkrill.Client.push_logs`."""
        return await self._push(_api.push_log_requests(records, gzip, batch_size or self._batch_size))

    async def push_metrics(
        self,
        samples: Union[Iterable[Any], bytes, bytearray, str],
        *,
        openmetrics: bool = False,
        gzip: Optional[bool] = None,
        batch_size: Optional[int] = None,
    ) -> int:
        """See :meth:`killkrill.Client.push_metrics`."""
        return await self._push(
            _api.push_metric_requests(samples, openmetrics, gzip, batch_size or self._batch_size)
        )

    # --- logs ---------------------------------------------------------------------

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
    ) -> "AsyncLogPages":
        """See :meth:`killkrill.Client.query_logs`; ``async for`` over it."""
        filters = _api.log_filter_params(query, severity, host, app, source, fields, start, end)
        if order is not None:
            filters.append(("order", order))
        return AsyncLogPages(self, _api.PageState(filters, page_size, limit, cursor))

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
    ) -> List[Dict[str, Any]]:
        """See :meth:`killkrill.Client.log_volume`."""
        filters = _api.log_filter_params(query, severity, host, app, source, fields, start, end)
        return await self._call(_api.req_volume(filters, step))

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
    ) -> "AsyncTail":
        """See :meth:`killkrill.Client.tail`; ``async with`` / ``async for``."""
        filters = _api.log_filter_params(query, severity, host, app, source, fields, None, None)
        return AsyncTail(self, filters, read_timeout)

    # --- metrics --------------------------------------------------------------------

    async def query(
        self, promql: str, time: Optional[TimeArg] = None, *, timeout: Optional[DurationArg] = None
    ) -> QueryResult:
        """See :meth:`killkrill.Client.query`."""
        return await self._call(_api.req_query(promql, time, timeout))

    async def query_range(
        self,
        promql: str,
        start: TimeArg,
        end: TimeArg,
        step: DurationArg,
        *,
        timeout: Optional[DurationArg] = None,
    ) -> QueryResult:
        """See :meth:`killkrill.Client.query_range`."""
        return await self._call(_api.req_query_range(promql, start, end, step, timeout))

    async def series(
        self,
        match: Union[str, Sequence[str]],
        *,
        start: Optional[TimeArg] = None,
        end: Optional[TimeArg] = None,
    ) -> List[Dict[str, str]]:
        """See :meth:`killkrill.Client.series`."""
        return await self._call(_api.req_series(match, start, end))

    async def labels(
        self,
        match: Union[str, Sequence[str], None] = None,
        *,
        start: Optional[TimeArg] = None,
        end: Optional[TimeArg] = None,
    ) -> List[str]:
        """See :meth:`killkrill.Client.labels`."""
        return await self._call(_api.req_labels(match, start, end))

    async def label_values(
        self,
        name: str,
        match: Union[str, Sequence[str], None] = None,
        *,
        start: Optional[TimeArg] = None,
        end: Optional[TimeArg] = None,
    ) -> List[str]:
        """See :meth:`killkrill.Client.label_values`."""
        return await self._call(_api.req_label_values(name, match, start, end))

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
    ) -> QueryResult:
        """See :meth:`killkrill.Client.query_metrics`."""
        params = _api.metrics_params(name, match, labels, start, end, step, resolution, aggregation)
        return await self._call(_api.req_metrics(params))

    async def ready(self) -> bool:
        """True when ``/readyz`` answers 200."""
        status, _, _ = await self._send("GET", "/readyz")
        return status == 200


class AsyncLogPages:
    """The records of a log query, fetched a page at a time; ``async for``
    over it once. ``cursor`` and ``pages`` as in :class:`killkrill.LogPages`."""

    def __init__(self, client: AsyncClient, state: _api.PageState) -> None:
        self._client = client
        self._state = state

    @property
    def cursor(self) -> Optional[str]:
        return self._state.cursor

    @property
    def pages(self) -> int:
        return self._state.pages

    def __aiter__(self) -> AsyncIterator[Dict[str, Any]]:
        self._state.start()
        return self._records()

    async def _records(self) -> AsyncIterator[Dict[str, Any]]:
        st = self._state
        while not st.done:
            for r in st.took(await self._client._call(st.next_request())):
                yield r

    async def to_list(self) -> List[Dict[str, Any]]:
        """All the records, as a list."""
        return [r async for r in self]


class AsyncTail:
    """A live tail stream; see :meth:`killkrill.Client.tail`."""

    def __init__(
        self, client: AsyncClient, params: List[Tuple[str, str]], read_timeout: Optional[float]
    ) -> None:
        self._client = client
        self._params = params
        self._read_timeout = read_timeout
        self._conn: Optional[_Conn] = None
        self._resp: Optional[_Response] = None
        self._parser = SseParser()
        self._pending: List[_api.SseEvent] = []
        self._closed = False
        self._beats = 0
        self.status: Optional[int] = None

    @property
    def heartbeats(self) -> int:
        """Heartbeats (comments and heartbeat events) received so far."""
        return self._parser.comments + self._beats

    async def open(self) -> "AsyncTail":
        """Connects and waits for the server's answer; see :meth:`killkrill.Tail.open`."""
        if self._resp is not None:
            return self
        if self._closed:
            raise RuntimeError("the tail is closed")
        c = self._client
        conn = await c._connect()
        path, params, extra = _api.tail_request(self._params)
        h = dict(c._headers)
        h.update(extra)
        try:
            resp = await _timed(
                conn.request("GET", c._endpoint.target(path, params), h, None, False), c._timeout
            )
            self.status = resp.status
            if resp.status >= 400:
                body = await _timed(resp.read(), c._timeout)
                raise _api.error_from_response(resp.status, resp.headers, body)
            ctype = resp.headers.get("content-type", "")
            if not ctype.startswith("text/event-stream"):
                raise ProtocolError(f"tail answered {resp.status} with {ctype!r}, not an event stream")
        except BaseException:
            conn.close()
            raise
        self._conn, self._resp = conn, resp
        return self

    async def __aenter__(self) -> "AsyncTail":
        return await self.open()

    async def __aexit__(self, *exc: Any) -> None:
        await self.aclose()

    def __aiter__(self) -> "AsyncTail":
        return self

    async def __anext__(self) -> Dict[str, Any]:
        if self._closed:
            raise StopAsyncIteration
        await self.open()
        assert self._resp is not None
        while True:
            while self._pending:
                ev = self._pending.pop(0)
                try:
                    item = _api.tail_item(ev, self.status or 200)
                except (_api.TailDisconnected, ProtocolError):
                    # The server ended the stream: nothing more comes.
                    await self.aclose()
                    raise
                if item is None:
                    if ev.event not in _api.GAP_EVENTS:
                        self._beats += 1
                    continue
                return item
            try:
                chunk = await _timed(self._resp.chunk(), self._read_timeout)
            except asyncio.TimeoutError:
                await self.aclose()
                raise TimeoutError(f"no event from the tail for {self._read_timeout} s") from None
            except (OSError, ProtocolError, asyncio.IncompleteReadError) as e:
                if self._closed:
                    raise StopAsyncIteration from None
                await self.aclose()
                if isinstance(e, OSError):
                    raise
                raise ConnectionResetError(f"the tail's connection was cut: {e}") from e
            if not chunk:
                await self.aclose()
                raise StopAsyncIteration
            self._pending.extend(self._parser.feed(chunk))

    async def aclose(self) -> None:
        """Ends the stream (more than once is fine)."""
        self._closed = True
        conn, self._conn = self._conn, None
        if conn is not None:
            conn.close()
            try:
                await conn.writer.wait_closed()
            except OSError:
                pass


async def _timed(aw: Any, timeout: Optional[float]) -> Any:
    if timeout is None:
        return await aw
    return await asyncio.wait_for(aw, timeout)
