//! What the load benchmark needs from inside the crate (not a public API).

use killkrill_core::logblock::EncodedBlock;

/// The binary COPY payload the store sends, for the `psql \copy` baseline.
pub fn pg_copy_payload(blocks: &[&EncodedBlock]) -> Vec<u8> {
    crate::logs::copy::copy_payload(blocks, 0)
}
