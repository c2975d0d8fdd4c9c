//! The `killkrill` binary. All logic lives in the library; see `killkrill_svc::cli`.

/// mimalloc instead of glibc's allocator: the ingest path allocates and
/// frees per record, and glibc's malloc/free took about 38% of a loaded
/// `serve`'s CPU samples (docs/src/benchmarks/load.md).
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> std::process::ExitCode {
    killkrill_svc::cli::run(std::env::args_os())
}
