//! The `killkrill` binary. All logic lives in the library; see `killkrill_svc::cli`.

fn main() -> std::process::ExitCode {
    killkrill_svc::cli::run(std::env::args_os())
}
