//! # killkrill-proto
//!
//! Protobuf messages and gRPC services that Killkrill speaks, generated at build time
//! from the `.proto` files in `proto/` with [protox](https://docs.rs/protox) (a Rust
//! protobuf compiler: building needs no system `protoc`).
//!
//! - [`prometheus`]: Prometheus remote write 1.0 (`prometheus.WriteRequest`).
//! - [`prometheus_v2`]: Prometheus remote write 2.0 (`io.prometheus.write.v2.Request`),
//!   whose series refer to strings in a per-request symbols table.
//! - [`logproto`]: Loki's push API (`logproto.PushRequest`).
//! - [`killkrill`]: Killkrill's own ingest and query services and their records
//!   (`killkrill.v1`).
//!
//! Why a crate of its own: generated code is large and slow to compile, and the wire
//! schemas are a contract with other programs that should be reviewed on their own.
//! The tonic client/server code is behind the `grpc` feature (on by default), so
//! `killkrill-core` depends on this crate with `default-features = false` and gets
//! plain prost messages without tonic.
//!
//! The remote-write schemas are copied from Prometheus (Apache-2.0) with the gogoproto
//! options removed, as each file says at its top; the Loki schema was written from
//! Loki's public wire format, with the same package, names and field numbers.

/// Prometheus remote write 1.0 (package `prometheus`).
#[allow(missing_docs, clippy::all, rustdoc::all)]
pub mod prometheus {
    include!(concat!(env!("OUT_DIR"), "/prometheus.rs"));
}

/// Prometheus remote write 2.0 (package `io.prometheus.write.v2`).
#[allow(missing_docs, clippy::all, rustdoc::all)]
pub mod prometheus_v2 {
    include!(concat!(env!("OUT_DIR"), "/io.prometheus.write.v2.rs"));
}

/// Loki's push API (package `logproto`).
#[allow(missing_docs, clippy::all, rustdoc::all)]
pub mod logproto {
    include!(concat!(env!("OUT_DIR"), "/logproto.rs"));
}

/// Killkrill's own services and records.
pub mod killkrill {
    /// Version 1 of Killkrill's gRPC API (package `killkrill.v1`).
    #[allow(missing_docs, clippy::all, rustdoc::all)]
    pub mod v1 {
        include!(concat!(env!("OUT_DIR"), "/killkrill.v1.rs"));
    }
}

/// The `Content-Type` parameter value that selects remote write 2.0.
pub const REMOTE_WRITE_V2_PROTO: &str = "io.prometheus.write.v2.Request";
/// The `Content-Type` parameter value that names remote write 1.0.
pub const REMOTE_WRITE_V1_PROTO: &str = "prometheus.WriteRequest";

#[cfg(test)]
mod tests;
