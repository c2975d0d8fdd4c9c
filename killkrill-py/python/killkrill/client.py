"""The synchronous client for a running ``killkrill serve``.

Built on the standard library's :mod:`http.client` alone, so ``pip install
killkrill`` pulls in nothing. Connections are kept alive and pooled (one per
concurrent thread); a reused connection that the server had closed while it
was idle is replaced and the request sent once more — it was never read, so
nothing is stored twice. Every other failure is raised, never retried.
"""

from __future__ import annotations

import http.client
import socket
import ssl
import threading
from typing import Any, Dict, Iterable, Iterator, List, Mapping, Optional, Sequence, Tuple, Union

from . import _api
from ._api import (
    ApiError,
    DurationArg,
    Endpoint,
    ProtocolError,
    QueryResult,
    SseParser,
    TimeArg,
)

_STALE = (http.client.RemoteDisconnected, ConnectionResetError, BrokenPipeError, ConnectionAbortedError)


class Client:
    """A client for one Killkrill server.

    ``url`` is the HTTP listener (``http://host:port``, optionally with a
    path prefix behind a proxy); ``api_key`` is sent as
    ``Authorization: Bearer <key>``; ``timeout`` (seconds) bounds connecting
    and each read. For ``https://``: ``ca_file`` (PEM) trusts only those
    CAs (a private CA, the server's self-signed certificate), ``verify=False``
    turns verification off (testing only), ``client_cert``/``client_key``
    (PEM) are presented when the server asks for a client certificate
    (mTLS); or pass a ready ``ssl_context``. Thread-safe; use it as a context manager or call
    :meth:`close`.
    """

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
        self._idle: List[http.client.HTTPConnection] = []
        self._lock = threading.Lock()
        self._closed = False
        self.url = url

    def __repr__(self) -> str:
        auth = ", api_key=***" if "Authorization" in self._headers else ""
        return f"Client({self.url!r}{auth})"

    def __enter__(self) -> "Client":
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()

    def close(self) -> None:
        """Closes the pooled connections (open tails keep theirs)."""
        with self._lock:
            self._closed = True
            idle, self._idle = self._idle, []
        for c in idle:
            c.close()

    # --- transport ---------------------------------------------------------

    def _connect(self, timeout: Optional[float]) -> http.client.HTTPConnection:
        e = self._endpoint
        conn: http.client.HTTPConnection
        if e.scheme == "https":
            ctx = self._ssl or ssl.create_default_context()
            conn = http.client.HTTPSConnection(e.host, e.port, timeout=timeout, context=ctx)
        else:
            conn = http.client.HTTPConnection(e.host, e.port, timeout=timeout)
        conn.connect()
        # Small requests go out at once (Python < 3.11 leaves Nagle on, and
        # with the server's delayed ACK a request can wait 40 ms).
        if conn.sock is not None:
            conn.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        return conn

    def _take(self) -> Tuple[http.client.HTTPConnection, bool]:
        with self._lock:
            if self._closed:
                raise RuntimeError("the client is closed")
            if self._idle:
                return self._idle.pop(), True
        return self._connect(self._timeout), False

    def _give_back(self, conn: http.client.HTTPConnection) -> None:
        with self._lock:
            if not self._closed and len(self._idle) < 16:
                self._idle.append(conn)
                return
        conn.close()

    def _send(
        self,
        method: str,
        path: str,
        params: Optional[Sequence[Tuple[str, str]]] = None,
        body: Optional[bytes] = None,
        headers: Optional[Mapping[str, str]] = None,
    ) -> Tuple[int, Dict[str, str], bytes]:
        target = self._endpoint.target(path, params)
        h = dict(self._headers)
        if headers:
            h.update(headers)
        if body is not None:
            h["Content-Length"] = str(len(body))
        for attempt in (0, 1):
            conn, reused = self._take()
            try:
                try:
                    conn.request(method, target, body=body, headers=h)
                    resp = conn.getresponse()
                except _STALE:
                    # Nothing of an answer came: on a pooled connection the
                    # server had closed it, and never read this request.
                    if reused and attempt == 0:
                        conn.close()
                        continue
                    raise
                data = _read_bounded(resp)
            except BaseException:
                conn.close()
                raise
            if resp.will_close:
                conn.close()
            else:
                self._give_back(conn)
            return resp.status, _lower(resp.getheaders()), data
        raise AssertionError("unreachable")

    def _call(self, req: _api.Request) -> Any:
        return req.read(*self._send(req.method, req.path, req.params, req.body, req.headers))

    # --- ingest -----------------------------------------------------------------

    def _push(self, requests: Iterable[_api.Request]) -> int:
        """Sends the requests in order; the total accepted, or the error of
        the first refused one with ``accepted`` set to the total before it."""
        total = 0
        for req in requests:
            try:
                total += self._call(req)
            except ApiError as e:
                e.accepted = total
                raise
        return total

    def push_logs(
        self,
        records: Union[Iterable[Any], bytes, bytearray, str],
        *,
        gzip: Optional[bool] = None,
        batch_size: Optional[int] = None,
    ) -> int:
        """Stores log records; returns how many the server accepted.

        ``records`` is an iterable of dicts (JSON log objects, read with the
        server's aliases: ``msg``, ``level``, ``ts``, ...) or killkrill
        records (``LogRecord``, ``SyslogMessage``), sent as NDJSON in
        requests of at most ``batch_size`` records; or ``bytes``/``str``
        that already are a JSON or NDJSON body, sent as is. ``gzip``
        compresses the bodies (None: those of 64 KiB or more).

        Each request is stored whole or refused whole. When a later request
        fails, the :class:`ApiError` says in ``accepted`` how many records
        the earlier ones stored.
        """
        return self._push(_api.push_log_requests(records, gzip, batch_size or self._batch_size))

    def push_metrics(
        self,
        samples: Union[Iterable[Any], bytes, bytearray, str],
        *,
        openmetrics: bool = False,
        gzip: Optional[bool] = None,
        batch_size: Optional[int] = None,
    ) -> int:
        """Stores metric samples; returns how many the server accepted.

        ``samples`` is Prometheus exposition text (``str``/``bytes``; with
        ``openmetrics=True``, OpenMetrics text), or an iterable of
        ``killkrill.MetricSample``, dicts ``{"name", "labels", "value",
        "timestamp" (ns, optional), "type" (optional)}`` or tuples
        ``(name, labels, value[, timestamp_ns])``, encoded as text 0.0.4
        (timestamps in milliseconds, as the format has them).
        """
        return self._push(
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
    ) -> "LogPages":
        """Iterates over the matching records (canonical JSON dicts), page
        after page, following ``next_cursor``; a page is fetched only when
        the previous one is used up.

        ``query`` is full text; ``severity`` this or more severe;
        ``fields`` ``{name: value}`` structured data or attribute filters;
        ``start``/``end``: ``int`` ns, ``float`` s, ``datetime``,
        ``timedelta`` (from now, resolved once) or ``str`` (sent as is);
        ``order`` ``"desc"`` (newest first) or ``"asc"``; ``page_size``
        records per request (the server's default when None); ``limit``
        stops after that many records in all; ``cursor`` resumes where an
        earlier iteration's :attr:`LogPages.cursor` was.
        """
        filters = _api.log_filter_params(query, severity, host, app, source, fields, start, end)
        if order is not None:
            filters.append(("order", order))
        return LogPages(self, _api.PageState(filters, page_size, limit, cursor))

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
    ) -> List[Dict[str, Any]]:
        """Record counts per time bucket, split by severity:
        ``[{"start": RFC 3339, "total": n, "by_severity": {...}}, ...]``."""
        filters = _api.log_filter_params(query, severity, host, app, source, fields, start, end)
        return self._call(_api.req_volume(filters, step))

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
    ) -> "Tail":
        """A live tail: iterate to receive each new matching record (a
        canonical JSON dict) as the server stores it. Heartbeats are
        skipped. The stream is never reconnected: it ends when
        :meth:`Tail.close` is called (or the ``with`` block ends), when the
        server closes it (iteration stops) or ends it with a reason
        (:class:`killkrill.TailDisconnected`). ``read_timeout`` (seconds,
        default none) raises ``TimeoutError`` when not even a heartbeat
        arrived for that long."""
        filters = _api.log_filter_params(query, severity, host, app, source, fields, None, None)
        return Tail(self, filters, read_timeout)

    # --- metrics --------------------------------------------------------------------

    def query(
        self,
        promql: str,
        time: Optional[TimeArg] = None,
        *,
        timeout: Optional[DurationArg] = None,
    ) -> QueryResult:
        """A PromQL instant query (``/api/v1/query``) at ``time`` (default:
        the server's now)."""
        return self._call(_api.req_query(promql, time, timeout))

    def query_range(
        self,
        promql: str,
        start: TimeArg,
        end: TimeArg,
        step: DurationArg,
        *,
        timeout: Optional[DurationArg] = None,
    ) -> QueryResult:
        """A PromQL range query (``/api/v1/query_range``): a matrix."""
        return self._call(_api.req_query_range(promql, start, end, step, timeout))

    def series(
        self,
        match: Union[str, Sequence[str]],
        *,
        start: Optional[TimeArg] = None,
        end: Optional[TimeArg] = None,
    ) -> List[Dict[str, str]]:
        """The label sets of the series that match any selector in ``match``."""
        return self._call(_api.req_series(match, start, end))

    def labels(
        self,
        match: Union[str, Sequence[str], None] = None,
        *,
        start: Optional[TimeArg] = None,
        end: Optional[TimeArg] = None,
    ) -> List[str]:
        """Label names (of the series matching ``match``, if given)."""
        return self._call(_api.req_labels(match, start, end))

    def label_values(
        self,
        name: str,
        match: Union[str, Sequence[str], None] = None,
        *,
        start: Optional[TimeArg] = None,
        end: Optional[TimeArg] = None,
    ) -> List[str]:
        """The values of label ``name``."""
        return self._call(_api.req_label_values(name, match, start, end))

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
    ) -> QueryResult:
        """The native metric query (``GET /api/v1/metrics``): series chosen
        by ``name``, a selector ``match`` and/or ``labels``; raw samples or
        the rollups of ``resolution`` (``"1m"``, ...); ``aggregation``
        (``avg``, ``sum``, ``max``, ``increase``, ``p99``, ...) per ``step``.
        A matrix whose series carry ``__name__``."""
        params = _api.metrics_params(name, match, labels, start, end, step, resolution, aggregation)
        return self._call(_api.req_metrics(params))

    # --- operations -------------------------------------------------------------------

    def ready(self) -> bool:
        """True when ``/readyz`` answers 200."""
        status, _, _ = self._send("GET", "/readyz")
        return status == 200


class LogPages:
    """The records of a log query, fetched a page at a time. Iterate over it
    once; ``cursor`` is the ``next_cursor`` of the last page fetched (None
    at the end), ``pages`` how many pages were fetched."""

    def __init__(self, client: Client, state: _api.PageState) -> None:
        self._client = client
        self._state = state

    @property
    def cursor(self) -> Optional[str]:
        return self._state.cursor

    @property
    def pages(self) -> int:
        return self._state.pages

    def __iter__(self) -> Iterator[Dict[str, Any]]:
        self._state.start()
        return self._records()

    def _records(self) -> Iterator[Dict[str, Any]]:
        st = self._state
        while not st.done:
            yield from st.took(self._client._call(st.next_request()))

    def to_list(self) -> List[Dict[str, Any]]:
        """All the records, as a list."""
        return list(self)


class Tail:
    """A live tail stream; see :meth:`Client.tail`."""

    def __init__(self, client: Client, params: List[Tuple[str, str]], read_timeout: Optional[float]) -> None:
        self._client = client
        self._params = params
        self._read_timeout = read_timeout
        self._conn: Optional[http.client.HTTPConnection] = None
        self._resp: Optional[http.client.HTTPResponse] = None
        self._parser = SseParser()
        self._pending: List[_api.SseEvent] = []
        self._closed = False
        self._beats = 0
        self.status: Optional[int] = None

    @property
    def heartbeats(self) -> int:
        """Heartbeats (comments and heartbeat events) received so far."""
        return self._parser.comments + self._beats

    def open(self) -> "Tail":
        """Connects and waits for the server's answer (raises
        :class:`ApiError` when it refuses). Iterating opens it too; open it
        first to know the subscription is in place before writing."""
        if self._resp is not None:
            return self
        if self._closed:
            raise RuntimeError("the tail is closed")
        c = self._client
        conn = c._connect(c._timeout)
        path, params, extra = _api.tail_request(self._params)
        target = c._endpoint.target(path, params)
        h = dict(c._headers)
        h.update(extra)
        try:
            conn.request("GET", target, headers=h)
            resp = conn.getresponse()
            self.status = resp.status
            if resp.status >= 400:
                body = _read_bounded(resp)
                raise _api.error_from_response(resp.status, _lower(resp.getheaders()), body)
            ctype = resp.getheader("content-type", "")
            if not ctype.startswith("text/event-stream"):
                raise ProtocolError(f"tail answered {resp.status} with {ctype!r}, not an event stream")
            if conn.sock is not None:
                conn.sock.settimeout(self._read_timeout)
        except BaseException:
            conn.close()
            raise
        self._conn, self._resp = conn, resp
        return self

    def __enter__(self) -> "Tail":
        return self.open()

    def __exit__(self, *exc: Any) -> None:
        self.close()

    def __iter__(self) -> Iterator[Dict[str, Any]]:
        return self

    def __next__(self) -> Dict[str, Any]:
        if self._closed:
            raise StopIteration
        self.open()
        assert self._resp is not None
        while True:
            while self._pending:
                ev = self._pending.pop(0)
                try:
                    item = _api.tail_item(ev, self.status or 200)
                except (_api.TailDisconnected, ProtocolError):
                    # The server ended the stream: nothing more comes.
                    self.close()
                    raise
                if item is None:
                    if ev.event not in _api.GAP_EVENTS:
                        self._beats += 1
                    continue
                return item
            try:
                chunk = self._resp.read1(65536)
            except Exception as e:
                # Closed from another thread (http.client then fails in
                # whatever way the half-closed response leads it to).
                if self._closed:
                    raise StopIteration from None
                self.close()
                if isinstance(e, (socket.timeout, TimeoutError)):
                    raise TimeoutError(f"no event from the tail for {self._read_timeout} s") from None
                if isinstance(e, http.client.HTTPException):
                    # IncompleteRead and friends: the stream was cut, not ended.
                    raise ConnectionResetError(f"the tail's connection was cut: {e!r}") from e
                raise
            if not chunk:
                self.close()
                raise StopIteration
            self._pending.extend(self._parser.feed(chunk))

    def close(self) -> None:
        """Ends the stream; safe to call from another thread to stop a
        blocked iteration, and more than once."""
        self._closed = True
        conn, self._conn = self._conn, None
        if conn is not None:
            sock = conn.sock
            if sock is not None:
                try:
                    sock.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass
            conn.close()


def _read_bounded(resp: http.client.HTTPResponse) -> bytes:
    # Never `read(huge)`: before Python 3.11 that allocates the whole amount.
    n = resp.getheader("content-length")
    if n is not None and n.strip().isdigit():
        if int(n) > _api.MAX_RESPONSE_BYTES:
            raise ProtocolError(f"response of {n} bytes is larger than {_api.MAX_RESPONSE_BYTES}")
        return resp.read(int(n)) + resp.read()
    parts: List[bytes] = []
    size = 0
    while True:
        chunk = resp.read1(65536)
        if not chunk:
            return b"".join(parts)
        size += len(chunk)
        if size > _api.MAX_RESPONSE_BYTES:
            raise ProtocolError(f"response larger than {_api.MAX_RESPONSE_BYTES} bytes")
        parts.append(chunk)


def _lower(headers: List[Tuple[str, str]]) -> Dict[str, str]:
    return {k.lower(): v for k, v in headers}
