//! PostgreSQL binary `COPY` of blocks: the fastest way to put rows in.
//!
//! Binary format: a signature and two zero words, then per row a field
//! count and each field as a 32-bit length and its bytes (integers
//! big-endian), then a `-1` trailer. Nothing is escaped, so a block's
//! payload goes over the wire as it is.

use killkrill_core::event::Timestamp;
use killkrill_core::logblock::EncodedBlock;
use killkrill_core::storage::StoreError;
use sqlx::postgres::PgConnection;

use crate::error::Context;

const SIGNATURE: &[u8] = b"PGCOPY\n\xff\r\n\0";

fn field(out: &mut Vec<u8>, b: &[u8]) {
    out.extend_from_slice(&(b.len() as i32).to_be_bytes());
    out.extend_from_slice(b);
}

/// The COPY payload for `blocks` (9 columns, see the migration).
pub(crate) fn copy_payload(blocks: &[&EncodedBlock], created_at: i64) -> Vec<u8> {
    let size: usize = blocks.iter().map(|b| b.payload.len() + 256).sum();
    let mut out = Vec::with_capacity(size + 32);
    out.extend_from_slice(SIGNATURE);
    out.extend_from_slice(&0i32.to_be_bytes());
    out.extend_from_slice(&0i32.to_be_bytes());
    for b in blocks {
        let s = &b.summary;
        out.extend_from_slice(&9i16.to_be_bytes());
        field(&mut out, s.tenant.as_str().as_bytes());
        field(&mut out, &s.id.to_bytes());
        field(&mut out, &s.min_ts.as_nanos().to_be_bytes());
        field(&mut out, &s.max_ts.as_nanos().to_be_bytes());
        field(&mut out, &i64::from(s.count).to_be_bytes());
        field(&mut out, &s.summary_bytes());
        field(&mut out, &s.token_bytes());
        field(&mut out, &b.payload);
        field(&mut out, &created_at.to_be_bytes());
    }
    out.extend_from_slice(&(-1i16).to_be_bytes());
    out
}

/// COPYs blocks into `log_blocks` on an open transaction.
pub(crate) async fn copy_blocks(
    conn: &mut PgConnection,
    blocks: &[&EncodedBlock],
) -> Result<(), StoreError> {
    if blocks.is_empty() {
        return Ok(());
    }
    let data = copy_payload(blocks, Timestamp::now().as_nanos());
    let mut copy = conn
        .copy_in_raw(
            "COPY log_blocks (tenant, block_id, min_ts, max_ts, record_count, summary, tokens, payload, created_at) FROM STDIN WITH (FORMAT binary)",
        )
        .await
        .ctx("starting COPY of log blocks")?;
    if let Err(e) = copy.send(data).await {
        // Leave the connection usable; the COPY error is the one to report.
        if let Err(abort) = copy.abort("send failed").await {
            tracing::warn!(error = %abort, "aborting a failed COPY");
        }
        return Err(crate::error::db_error("sending COPY data", e));
    }
    copy.finish().await.ctx("finishing COPY of log blocks")?;
    Ok(())
}
