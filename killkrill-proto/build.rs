//! Compiles the `.proto` files in `proto/` with protox (a Rust protobuf compiler, so
//! no system `protoc` is needed) and generates prost messages, plus tonic service code
//! when the `grpc` feature is on.

use std::path::Path;

const PROTOS: &[&str] = &[
    "remote.proto",
    "types.proto",
    "io/prometheus/write/v2/types.proto",
    "logproto/push.proto",
    "killkrill/v1/records.proto",
    "killkrill/v1/ingest.proto",
    "killkrill/v1/query.proto",
];

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let root = Path::new("proto");
    println!("cargo:rerun-if-changed=proto");
    let files: Vec<_> = PROTOS.iter().map(|p| root.join(p)).collect();
    let fds = protox::compile(&files, [root])?;
    let grpc = std::env::var_os("CARGO_FEATURE_GRPC").is_some();
    tonic_prost_build::configure()
        .build_server(grpc)
        .build_client(grpc)
        // The generated `connect` helpers need tonic's transport; callers build
        // their own channel instead.
        .build_transport(false)
        .compile_fds(fds)?;
    Ok(())
}
