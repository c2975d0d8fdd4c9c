//! Log records to and from `killkrill.v1.LogRecord`, the gRPC form.
//!
//! The gRPC message was designed to carry exactly what the canonical JSON form
//! carries; these conversions are where that is proven (a property test sends
//! arbitrary records through and back). The gRPC services in `killkrill-svc`
//! convert with these functions, so REST and gRPC can never disagree on a record.
//!
//! The protobuf severity is the syslog code plus one (0 = not given); the
//! facility is the syslog code; the id is the UUID text; attribute values map to
//! the `FieldValue` oneof, with no variant set meaning null.

use killkrill_proto::killkrill::v1 as pb;

use crate::event::{
    EventId, Facility, FieldValue, LogRecord, SdElement, Severity, Tenant, Timestamp,
};

/// A protobuf record that is not a valid [`LogRecord`].
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ProtoRecordError {
    /// `id` is neither empty nor a UUID.
    #[error("id {0:?} is not a UUID")]
    Id(String),
    /// `tenant` is neither empty nor a valid tenant name.
    #[error(transparent)]
    Tenant(#[from] crate::event::InvalidTenant),
    /// `severity` outside the enum.
    #[error("severity {0} is not one of SEVERITY_UNSPECIFIED..SEVERITY_DEBUG (0..=8)")]
    Severity(i32),
    /// `facility` above 23.
    #[error("facility {0} is not a syslog facility code (0..=23)")]
    Facility(u32),
}

/// The gRPC form of a record.
pub fn log_record_to_proto(r: &LogRecord) -> pb::LogRecord {
    pb::LogRecord {
        id: r.id.map(|id| id.to_string()).unwrap_or_default(),
        tenant: r
            .tenant
            .as_ref()
            .map(|t| t.as_str().to_owned())
            .unwrap_or_default(),
        timestamp_ns: r.timestamp.as_nanos(),
        severity: r.severity.map_or(0, |s| i32::from(s.code()) + 1),
        facility: r.facility.map(|f| u32::from(f.code())),
        host: r.host.clone(),
        app: r.app.clone(),
        procid: r.procid.clone(),
        msgid: r.msgid.clone(),
        structured_data: r
            .structured_data
            .iter()
            .map(|e| pb::SdElement {
                id: e.id.clone(),
                params: e
                    .params
                    .iter()
                    .map(|(name, value)| pb::SdParam {
                        name: name.clone(),
                        value: value.clone(),
                    })
                    .collect(),
            })
            .collect(),
        message: r.message.clone(),
        source: r.source.clone(),
        attributes: r
            .attributes
            .iter()
            .map(|(name, v)| pb::Attribute {
                name: name.clone(),
                value: Some(field_value_to_proto(v)),
            })
            .collect(),
        parse_error: r.parse_error.clone(),
    }
}

fn field_value_to_proto(v: &FieldValue) -> pb::FieldValue {
    use pb::field_value::Kind;
    pb::FieldValue {
        kind: match v {
            FieldValue::Null => None,
            FieldValue::Bool(b) => Some(Kind::BoolValue(*b)),
            FieldValue::Int(i) => Some(Kind::IntValue(*i)),
            FieldValue::Float(f) => Some(Kind::DoubleValue(*f)),
            FieldValue::Str(s) => Some(Kind::StringValue(s.clone())),
        },
    }
}

/// A record from its gRPC form.
///
/// # Errors
/// [`ProtoRecordError`] for an id that is not a UUID, an invalid tenant name, or a
/// severity or facility outside its range.
pub fn log_record_from_proto(p: pb::LogRecord) -> Result<LogRecord, ProtoRecordError> {
    use pb::field_value::Kind;
    let id = if p.id.is_empty() {
        None
    } else {
        Some(
            p.id.parse::<EventId>()
                .map_err(|_| ProtoRecordError::Id(p.id.clone()))?,
        )
    };
    let tenant = if p.tenant.is_empty() {
        None
    } else {
        Some(Tenant::new(&p.tenant)?)
    };
    let severity = match p.severity {
        0 => None,
        n => Some(
            u8::try_from(n - 1)
                .ok()
                .and_then(Severity::from_code)
                .ok_or(ProtoRecordError::Severity(n))?,
        ),
    };
    let facility = match p.facility {
        None => None,
        Some(n) => Some(
            u8::try_from(n)
                .ok()
                .and_then(Facility::from_code)
                .ok_or(ProtoRecordError::Facility(n))?,
        ),
    };
    Ok(LogRecord {
        id,
        tenant,
        timestamp: Timestamp::from_nanos(p.timestamp_ns),
        severity,
        facility,
        host: p.host,
        app: p.app,
        procid: p.procid,
        msgid: p.msgid,
        structured_data: p
            .structured_data
            .into_iter()
            .map(|e| SdElement {
                id: e.id,
                params: e.params.into_iter().map(|p| (p.name, p.value)).collect(),
            })
            .collect(),
        message: p.message,
        source: p.source,
        attributes: p
            .attributes
            .into_iter()
            .map(|a| {
                let v = match a.value.and_then(|v| v.kind) {
                    None => FieldValue::Null,
                    Some(Kind::BoolValue(b)) => FieldValue::Bool(b),
                    Some(Kind::IntValue(i)) => FieldValue::Int(i),
                    Some(Kind::DoubleValue(f)) => FieldValue::Float(f),
                    Some(Kind::StringValue(s)) => FieldValue::Str(s),
                };
                (a.name, v)
            })
            .collect(),
        parse_error: p.parse_error,
    })
}

#[cfg(test)]
mod tests {
    use prop::collection::vec;
    use proptest::prelude::*;
    use prost::Message;

    use super::*;

    fn field_value() -> impl Strategy<Value = FieldValue> {
        prop_oneof![
            Just(FieldValue::Null),
            any::<bool>().prop_map(FieldValue::Bool),
            any::<i64>().prop_map(FieldValue::Int),
            any::<f64>()
                .prop_filter("NaN != NaN", |f| !f.is_nan())
                .prop_map(FieldValue::Float),
            ".{0,8}".prop_map(FieldValue::Str),
        ]
    }

    prop_compose! {
        fn record()(
            id in prop::option::of(any::<u128>()),
            tenant in prop::option::of("[a-z0-9_.-]{1,10}"),
            ts in any::<i64>(),
            severity in prop::option::of(0u8..8),
            facility in prop::option::of(0u8..24),
            host in prop::option::of(".{0,8}"),
            app in prop::option::of(".{0,8}"),
            procid in prop::option::of(".{0,8}"),
            msgid in prop::option::of(".{0,8}"),
            sd in vec((".{1,6}", vec((".{1,6}", ".{0,6}"), 0..3)), 0..3),
            message in prop::option::of(vec(any::<u8>(), 0..20)),
            source in prop::option::of("[a-z-]{1,10}"),
            attributes in vec((".{1,6}", field_value()), 0..4),
            parse_error in prop::option::of(".{0,10}"),
        ) -> LogRecord {
            LogRecord {
                id: id.map(EventId::from_u128),
                tenant: tenant.map(|t| Tenant::new(&t).unwrap()),
                timestamp: Timestamp::from_nanos(ts),
                severity: severity.and_then(Severity::from_code),
                facility: facility.and_then(Facility::from_code),
                host, app, procid, msgid,
                structured_data: sd.into_iter().map(|(id, params)| SdElement { id, params }).collect(),
                message, source, attributes, parse_error,
            }
        }
    }

    proptest! {
        /// Every record survives record -> protobuf bytes -> record unchanged.
        #[test]
        fn round_trip(r in record()) {
            let bytes = log_record_to_proto(&r).encode_to_vec();
            let back = log_record_from_proto(pb::LogRecord::decode(bytes.as_slice()).unwrap()).unwrap();
            prop_assert_eq!(back, r);
        }
    }

    #[test]
    fn invalid_records() {
        let cases: &[(pb::LogRecord, &str)] = &[
            (
                pb::LogRecord {
                    id: "x".into(),
                    ..Default::default()
                },
                "id \"x\" is not a UUID",
            ),
            (
                pb::LogRecord {
                    tenant: "a b".into(),
                    ..Default::default()
                },
                "invalid tenant \"a b\"",
            ),
            (
                pb::LogRecord {
                    severity: 9,
                    ..Default::default()
                },
                "severity 9 is not one of",
            ),
            (
                pb::LogRecord {
                    severity: -1,
                    ..Default::default()
                },
                "severity -1 is not one of",
            ),
            (
                pb::LogRecord {
                    facility: Some(24),
                    ..Default::default()
                },
                "facility 24 is not",
            ),
        ];
        for (p, want) in cases {
            let e = log_record_from_proto(p.clone()).unwrap_err().to_string();
            assert!(e.starts_with(want), "{e}");
        }
        let r = log_record_from_proto(pb::LogRecord {
            severity: 4,
            facility: Some(3),
            ..Default::default()
        })
        .unwrap();
        assert_eq!(
            (r.severity, r.facility),
            (Some(Severity::Error), Some(Facility::Daemon))
        );
    }
}
