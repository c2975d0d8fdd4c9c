//! Cutting a batch of records into encoded blocks, in parallel.
//!
//! A batch is grouped by tenant, sorted by `(timestamp, id)` (so blocks have
//! tight time spans and the query engine can skip them), stripped of
//! repeated ids, cut into blocks of at most `max_records` records and
//! `max_raw_bytes` bytes, and each block is summarised and compressed on its
//! own thread. The cut is a pure function of the batch, so a redelivered
//! batch yields the same block ids (see [`BlockId`]).

use std::collections::HashSet;

use super::encode::{FrameDicts, compress_frame, encode_frame_with_dicts};
use super::summary::{NO_SEVERITY, ValueSet, field_hash_with};
use super::tokenizer::{for_each_token, token_hash};
use super::{BlockError, BlockId, BlockSummary, Bloom};
use crate::event::{FieldValue, LogRecord, Tenant, Timestamp};

/// How blocks are cut and encoded.
#[derive(Debug, Clone, PartialEq)]
pub struct BlockOptions {
    /// Most records per block.
    pub max_records: usize,
    /// Most uncompressed bytes (approximately) per block; keeps a block under
    /// database packet and Galera writeset limits whatever the messages' size.
    pub max_raw_bytes: usize,
    /// zstd level (1..=19; 1 to 3 are the useful ones here).
    pub zstd_level: i32,
    /// Target false-positive rate of the bloom filters. 0.1% by default:
    /// measured on realistic logs, it costs 8.2 bytes/record against 5.5
    /// at 1% (+5% of the stored size) and makes a rare-token search decode
    /// a tenth as many blocks that do not hold the token.
    pub bloom_fp: f64,
    /// Encoder threads used for a batch of several blocks.
    pub threads: usize,
}

impl Default for BlockOptions {
    fn default() -> Self {
        BlockOptions {
            max_records: 4096,
            max_raw_bytes: 8 << 20,
            zstd_level: 1,
            bloom_fp: 0.001,
            threads: std::thread::available_parallelism().map_or(1, |n| n.get()),
        }
    }
}

/// A block ready to store: its summary (with token filter) and payload.
#[derive(Debug, Clone, PartialEq)]
pub struct EncodedBlock {
    /// What the store keeps as columns.
    pub summary: BlockSummary,
    /// The compressed records.
    pub payload: Vec<u8>,
}

type HashSet64 = HashSet<u64, super::hashing::FastBuild>;

fn approx_size(r: &LogRecord) -> usize {
    let s = |o: &Option<String>| o.as_ref().map_or(0, String::len);
    48 + r.message.as_ref().map_or(0, Vec::len)
        + s(&r.host)
        + s(&r.app)
        + s(&r.procid)
        + s(&r.msgid)
        + s(&r.source)
        + s(&r.parse_error)
        + r.structured_data
            .iter()
            .map(|e| {
                e.id.len()
                    + e.params
                        .iter()
                        .map(|(k, v)| k.len() + v.len() + 2)
                        .sum::<usize>()
            })
            .sum::<usize>()
        + r.attributes
            .iter()
            .map(|(k, v)| {
                k.len()
                    + 2
                    + match v {
                        FieldValue::Str(s) => s.len(),
                        _ => 24,
                    }
            })
            .sum::<usize>()
}

/// Cuts a batch into encoded blocks (see the module docs).
///
/// # Errors
/// [`BlockError::InvalidRecord`] when a record has no id or no tenant (the
/// receiver assigns both; a store cannot invent them without breaking
/// idempotency), [`BlockError::Compress`] if zstd fails.
pub fn build_blocks(
    mut records: Vec<LogRecord>,
    opts: &BlockOptions,
) -> Result<Vec<EncodedBlock>, BlockError> {
    for (index, r) in records.iter().enumerate() {
        if r.id.is_none() {
            return Err(BlockError::InvalidRecord {
                index,
                reason: "has no id",
            });
        }
        if r.tenant.is_none() {
            return Err(BlockError::InvalidRecord {
                index,
                reason: "has no tenant",
            });
        }
    }
    // Receivers mostly hand over batches already in order; checking is
    // cheaper than moving ~300-byte records around.
    let key = |r: &LogRecord| (r.tenant.clone(), r.timestamp, r.id);
    if !records.is_sorted_by(|a, b| {
        (a.tenant.as_ref(), a.timestamp, a.id) <= (b.tenant.as_ref(), b.timestamp, b.id)
    }) {
        records.sort_by_cached_key(key);
    }
    records.dedup_by(|b, a| a.tenant == b.tenant && a.id == b.id && a.timestamp == b.timestamp);

    // Cut points: tenant changes, record count, byte size.
    let max_records = opts.max_records.max(1);
    let mut chunks: Vec<std::ops::Range<usize>> = Vec::new();
    let mut start = 0;
    let mut bytes = 0;
    for i in 0..records.len() {
        let sz = approx_size(&records[i]);
        let cut = i > start
            && (records[i].tenant != records[start].tenant
                || i - start >= max_records
                || bytes + sz > opts.max_raw_bytes);
        if cut {
            chunks.push(start..i);
            start = i;
            bytes = 0;
        }
        bytes += sz;
    }
    if start < records.len() {
        chunks.push(start..records.len());
    }

    // Each chunk's records are dropped right after it is encoded, by the
    // thread that encoded it: their memory is still in cache then, and the
    // frees run in parallel. Dropping the whole batch at the end (one
    // thread, cold memory) was most of the encoder's malloc/free time.
    let threads = opts.threads.clamp(1, chunks.len().max(1));
    let mut parts: Vec<Vec<(usize, &mut [LogRecord])>> = (0..threads).map(|_| Vec::new()).collect();
    let mut rest: &mut [LogRecord] = &mut records;
    let mut at = 0;
    for (c, range) in chunks.iter().enumerate() {
        let (_, tail) = std::mem::take(&mut rest).split_at_mut(range.start - at);
        let (chunk, tail) = tail.split_at_mut(range.len());
        rest = tail;
        at = range.end;
        parts[c % threads].push((c, chunk));
    }
    if threads == 1 {
        return parts
            .pop()
            .unwrap_or_default()
            .into_iter()
            .map(|(_, c)| encode_and_drop(c, opts))
            .collect();
    }
    let mut done: Vec<Vec<(usize, Result<EncodedBlock, BlockError>)>> = Vec::new();
    std::thread::scope(|s| {
        let handles: Vec<_> = parts
            .into_iter()
            .map(|part| {
                s.spawn(move || {
                    part.into_iter()
                        .map(|(c, chunk)| (c, encode_and_drop(chunk, opts)))
                        .collect::<Vec<_>>()
                })
            })
            .collect();
        for h in handles {
            match h.join() {
                Ok(p) => done.push(p),
                Err(panic) => std::panic::resume_unwind(panic),
            }
        }
    });
    let mut out: Vec<(usize, Result<EncodedBlock, BlockError>)> =
        done.into_iter().flatten().collect();
    out.sort_by_key(|(c, _)| *c);
    out.into_iter().map(|(_, b)| b).collect()
}

/// Encodes a chunk, then drops its records' contents (leaving defaults,
/// which own no memory).
fn encode_and_drop(
    chunk: &mut [LogRecord],
    opts: &BlockOptions,
) -> Result<EncodedBlock, BlockError> {
    let block = encode_chunk(chunk, opts);
    for r in chunk.iter_mut() {
        drop(std::mem::take(r));
    }
    block
}

fn encode_chunk(records: &[LogRecord], opts: &BlockOptions) -> Result<EncodedBlock, BlockError> {
    let tenant = records
        .first()
        .and_then(|r| r.tenant.clone())
        .unwrap_or_default();
    let id = BlockId::for_records(&tenant, records.iter().filter_map(|r| r.id));
    encode_block(tenant, id, records, opts)
}

/// Encodes records that are already sorted by `(timestamp, id)`, free of
/// repeated ids and of one tenant, as one block with the given id.
///
/// # Errors
/// [`BlockError::Compress`] if zstd fails.
pub fn encode_block(
    tenant: Tenant,
    id: BlockId,
    records: &[LogRecord],
    opts: &BlockOptions,
) -> Result<EncodedBlock, BlockError> {
    let mut severity_counts = [0u32; 9];
    // Realistic logs have a few distinct tokens per record (request ids,
    // sizes, durations): sized for that, the set grows once or not at all.
    let mut tokens = HashSet64::with_capacity_and_hasher(
        records.len() * 3,
        super::hashing::FastBuild::default(),
    );
    let mut buf = Vec::new();
    let mut name_buf = String::new();
    let mut field_buf = Vec::new();
    let mut text_buf = String::new();
    // Direct-mapped cache of recently added hashes: common tokens repeat in
    // almost every record, and a cache hit is far cheaper than a set insert.
    let mut recent = vec![0u64; 4096];
    let mut add = |h: u64| {
        let slot = &mut recent[(h as usize) & 4095];
        if *slot != h {
            *slot = h;
            tokens.insert(h);
        }
    };
    for r in records {
        severity_counts[r.severity.map_or(NO_SEVERITY, |s| usize::from(s.code()))] += 1;
        if let Some(m) = &r.message {
            for_each_token(m, &mut buf, |t| add(token_hash(t)));
        }
        for el in &r.structured_data {
            for (k, v) in &el.params {
                for_each_token(v.as_bytes(), &mut buf, |t| add(token_hash(t)));
                name_buf.clear();
                name_buf.push_str(&el.id);
                name_buf.push('.');
                name_buf.push_str(k);
                add(field_hash_with(&mut field_buf, &name_buf, v));
            }
        }
        for (k, v) in &r.attributes {
            let text: &str = match v {
                FieldValue::Str(s) => s,
                FieldValue::Int(i) => {
                    use std::fmt::Write as _;
                    // The same digits as `to_text`, without its String.
                    text_buf.clear();
                    let _infallible = write!(text_buf, "{i}");
                    &text_buf
                }
                other => {
                    use std::fmt::Write as _;
                    text_buf.clear();
                    // Writing into a String cannot fail.
                    let _infallible = write!(text_buf, "{other}");
                    &text_buf
                }
            };
            for_each_token(text.as_bytes(), &mut buf, |t| add(token_hash(t)));
            add(field_hash_with(&mut field_buf, k, text));
        }
    }
    let mut bloom = Bloom::with_capacity(tokens.len(), opts.bloom_fp);
    for h in tokens {
        bloom.insert(h);
    }
    let (frame, dicts) = encode_frame_with_dicts(records);
    let payload = compress_frame(&frame, opts.zstd_level)?;
    drop(frame);
    let FrameDicts {
        hosts: (hosts, host_missing),
        apps: (apps, app_missing),
        sources: (sources, source_missing),
    } = dicts;
    let min_ts = records.first().map_or(Timestamp::EPOCH, |r| r.timestamp);
    let max_ts = records.last().map_or(Timestamp::EPOCH, |r| r.timestamp);
    Ok(EncodedBlock {
        summary: BlockSummary {
            tenant,
            id,
            min_ts,
            max_ts,
            count: records.len() as u32,
            severity_counts,
            hosts: ValueSet::build(hosts, host_missing, opts.bloom_fp),
            apps: ValueSet::build(apps, app_missing, opts.bloom_fp),
            sources: ValueSet::build(sources, source_missing, opts.bloom_fp),
            tokens: Some(std::sync::Arc::new(bloom)),
        },
        payload,
    })
}
