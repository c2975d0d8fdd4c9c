"""Killkrill's parsers and aggregation engine for Python, at native speed.

Everything here is implemented in Rust (killkrill-core) and exposed through
the native module ``killkrill._killkrill``; the behaviour, limits and the
canonical JSON form (``to_dict()``) are exactly those of the ``killkrill``
binary.

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

__all__ = [
    "Aggregator",
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
