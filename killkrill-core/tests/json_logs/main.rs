//! Integration tests of the JSON logs parser through its public API.

mod brief;
mod errors;
mod mapping;
mod roundtrip;
mod shapes;
