"""Killkrill's parsers and aggregation engine for Python, at native speed,
and a client for a running ``killkrill serve``.

The parsers and the aggregation engine are implemented in Rust
(killkrill-core) and exposed through the native module
``killkrill._killkrill``; the behaviour, limits and the canonical JSON form
(``to_dict()``) are exactly those of the ``killkrill`` binary. The client
(:class:`Client`, :class:`AsyncClient`) is pure Python on the standard
library.

Timestamps are integers: nanoseconds since the Unix epoch, UTC.
"""

from ._killkrill import (
    Aggregator,
    BadFrame,
    ConfigError,
    Exemplar,
    Exposition,
    Framer,
    JsonLogBatch,
    JsonLogsError,
    LogRecord,
    MetricFamily,
    MetricMetadata,
    MetricSample,
    ParseError,
    PrometheusParseError,
    RemoteWriteError,
    Rollup,
    SyslogMessage,
    SyslogParseError,
    SyslogParser,
    WriteBatch,
    __version__,
    datagram_message,
    decode_remote_write,
    merge_rollups,
    parse_json_logs,
    parse_prometheus,
    parse_syslog,
    remote_write_version,
)
from ._api import ApiError, ProtocolError, QueryResult, Series, TailDisconnected
from .aio import AsyncClient, AsyncLogPages, AsyncTail
from .client import Client, LogPages, Tail

__all__ = [
    "Aggregator",
    "ApiError",
    "AsyncClient",
    "AsyncLogPages",
    "AsyncTail",
    "Client",
    "LogPages",
    "ProtocolError",
    "QueryResult",
    "Series",
    "Tail",
    "TailDisconnected",
    "BadFrame",
    "ConfigError",
    "Exemplar",
    "Exposition",
    "Framer",
    "JsonLogBatch",
    "JsonLogsError",
    "LogRecord",
    "MetricFamily",
    "MetricMetadata",
    "MetricSample",
    "ParseError",
    "PrometheusParseError",
    "RemoteWriteError",
    "Rollup",
    "SyslogMessage",
    "SyslogParseError",
    "SyslogParser",
    "WriteBatch",
    "__version__",
    "datagram_message",
    "decode_remote_write",
    "merge_rollups",
    "parse_json_logs",
    "parse_prometheus",
    "parse_syslog",
    "remote_write_version",
]
