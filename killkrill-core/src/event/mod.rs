//! The event model: what every source is parsed into and every store keeps.
//!
//! Two kinds of event flow through Killkrill: [`LogRecord`]s and
//! [`MetricSample`]s. Both carry a [`Tenant`] (set by the receiver), integer
//! nanosecond [`Timestamp`]s in UTC, and — for logs — a time-ordered
//! [`EventId`]. The canonical JSON form of a log record lives in [`log`].

mod facility;
mod fields;
mod id;
mod log;
mod metric;
mod severity;
mod tenant;
mod timestamp;

pub use facility::{Facility, UnknownFacility};
pub use fields::{FieldValue, SdElement, format_float};
pub use id::{EventId, EventIdGenerator, InvalidEventId};
pub use log::LogRecord;
pub use metric::{Exemplar, Label, Labels, MetricMetadata, MetricSample, MetricText, MetricType};
pub use severity::{Severity, UnknownSeverity};
pub use tenant::{InvalidTenant, Tenant};
pub use timestamp::{
    Civil, NANOS_PER_DAY, NANOS_PER_MILLI, NANOS_PER_SEC, Timestamp, TimestampError,
    civil_from_days, days_from_civil, days_in_month, is_leap_year, parse_rfc3339_prefix,
};

/// Either kind of event.
#[derive(Debug, Clone, PartialEq)]
pub enum Event {
    /// A log record.
    Log(LogRecord),
    /// A metric sample.
    Metric(MetricSample),
}
