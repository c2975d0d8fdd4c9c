//! From stream replies to deliveries: the `XREADGROUP` reply is walked by
//! hand, moving each batch's bytes out of the reply (redis-rs's
//! `StreamReadReply` copies the whole reply once more and builds a map per
//! entry), and the batches are decoded on blocking threads, several at a
//! time, not one after another on the caller's task.

use std::sync::Arc;

use killkrill_core::pipeline::{Batch, BatchCodec, CodecError, Delivery, DeliveryId};
use redis::Value;

use super::{RedisStreamsQueue, file_undecodable, parse_id, rerr};

/// One stream entry: its id and the bytes of its `b` field (empty when the
/// field is missing, which then fails to decode and is quarantined).
pub(super) struct RawEntry {
    pub id: String,
    pub bytes: Vec<u8>,
    /// How many times it has been delivered (1 for a first read).
    pub attempts: u32,
}

fn text(v: Value) -> Option<String> {
    match v {
        Value::BulkString(b) => String::from_utf8(b).ok(),
        Value::SimpleString(s) => Some(s),
        Value::VerbatimString { text, .. } => Some(text),
        _ => None,
    }
}

/// The `b` field of an entry's field list (`[f1, v1, f2, v2, ...]`, or a
/// map in RESP3).
fn field_b(fields: Value) -> Vec<u8> {
    let pairs: Vec<(Value, Value)> = match fields {
        Value::Array(items) => {
            let mut it = items.into_iter();
            let mut out = Vec::new();
            while let (Some(k), Some(v)) = (it.next(), it.next()) {
                out.push((k, v));
            }
            out
        }
        Value::Map(m) => m,
        _ => Vec::new(),
    };
    for (k, v) in pairs {
        let is_b = match &k {
            Value::BulkString(b) => b == b"b",
            Value::SimpleString(s) => s == "b",
            _ => false,
        };
        if is_b && let Value::BulkString(bytes) = v {
            return bytes;
        }
    }
    Vec::new()
}

/// The entries of a list of `[id, fields]` pairs (the body of one stream in
/// an `XREADGROUP` reply, or the claimed list of `XAUTOCLAIM`). Entries
/// whose fields are nil (deleted while pending) are left out; their ids go
/// to `deleted`.
pub(super) fn entries_of_list(v: Value, out: &mut Vec<RawEntry>, deleted: &mut Vec<String>) {
    let Value::Array(items) = v else { return };
    for item in items {
        let Value::Array(pair) = item else { continue };
        let mut pair = pair.into_iter();
        let (Some(id), Some(fields)) = (pair.next(), pair.next()) else {
            continue;
        };
        let Some(id) = text(id) else { continue };
        if matches!(fields, Value::Nil) {
            deleted.push(id);
            continue;
        }
        out.push(RawEntry {
            id,
            bytes: field_b(fields),
            attempts: 1,
        });
    }
}

/// The entries of an `XREADGROUP` reply (nil when nothing came; an array of
/// `[key, entries]` in RESP2, a map of key to entries in RESP3).
pub(super) fn entries_of_read_reply(v: Value) -> Vec<RawEntry> {
    let mut out = Vec::new();
    match v {
        Value::Array(streams) => {
            for s in streams {
                if let Value::Array(kv) = s {
                    let mut kv = kv.into_iter();
                    let _key = kv.next();
                    if let Some(list) = kv.next() {
                        entries_of_list(list, &mut out, &mut Vec::new());
                    }
                }
            }
        }
        Value::Map(streams) => {
            for (_key, list) in streams {
                entries_of_list(list, &mut out, &mut Vec::new());
            }
        }
        _ => {}
    }
    out
}

/// An `XAUTOCLAIM` reply: `[next id, claimed entries]`, and from Redis 7
/// `[next id, claimed entries, ids deleted while pending]`. Returns the
/// claimed entries and the ids of entries deleted while pending: Redis 6.2
/// lists those among the claimed ones with nil fields and keeps them in the
/// pending list (they must be acknowledged, or they stay there for good);
/// Redis 7 has already removed them from it.
pub(super) fn autoclaim_reply(v: Value) -> (Vec<RawEntry>, Vec<String>) {
    let (mut claimed, mut deleted) = (Vec::new(), Vec::new());
    if let Value::Array(parts) = v {
        let mut parts = parts.into_iter().skip(1);
        if let Some(list) = parts.next() {
            entries_of_list(list, &mut claimed, &mut deleted);
        }
        if let Some(Value::Array(ids)) = parts.next() {
            deleted.extend(ids.into_iter().filter_map(text));
        }
    }
    (claimed, deleted)
}

/// Below this many entries a dequeue decodes on the caller's task: handing
/// work to a thread costs more than decoding a few batches.
const PARALLEL_FROM: usize = 8;

type Decoded = (RawEntry, Result<Batch, CodecError>);

fn decode_all(codec: BatchCodec, entries: Vec<RawEntry>) -> Vec<Decoded> {
    entries
        .into_iter()
        .map(|e| {
            let r = codec.decode(&e.bytes);
            (e, r)
        })
        .collect()
}

/// Decodes every entry, in order; many at once are split over blocking
/// threads (one part per available core).
async fn decode_entries(codec: BatchCodec, mut entries: Vec<RawEntry>) -> Vec<Decoded> {
    let cores = std::thread::available_parallelism().map_or(1, std::num::NonZeroUsize::get);
    if entries.len() < PARALLEL_FROM || cores < 2 {
        return decode_all(codec, entries);
    }
    let parts = cores.min(entries.len() / (PARALLEL_FROM / 2)).max(1);
    let per = entries.len().div_ceil(parts);
    let mut chunks = Vec::with_capacity(parts);
    while entries.len() > per {
        let rest = entries.split_off(per);
        chunks.push(std::mem::replace(&mut entries, rest));
    }
    chunks.push(entries);
    let mut handles = Vec::with_capacity(chunks.len());
    let mut chunks = chunks.into_iter();
    // The first part on this task, the others on blocking threads.
    let first = chunks.next().unwrap_or_default();
    for c in chunks {
        handles.push(tokio::task::spawn_blocking(move || decode_all(codec, c)));
    }
    let mut out = decode_all(codec, first);
    for h in handles {
        match h.await {
            Ok(mut part) => out.append(&mut part),
            // A decoder panic: a bug, not a property of the data.
            Err(e) => std::panic::resume_unwind(e.into_panic()),
        }
    }
    out
}

impl RedisStreamsQueue {
    /// Turns stream entries into deliveries; undecodable ones are filed or
    /// quarantined and acknowledged.
    pub(super) async fn deliveries(
        &self,
        entries: Vec<RawEntry>,
    ) -> Result<Vec<Delivery>, killkrill_core::pipeline::QueueError> {
        let decoded = decode_entries(self.codec, entries).await;
        let mut out = Vec::with_capacity(decoded.len());
        for (e, r) in decoded {
            let attempts = e.attempts.max(1);
            let Some(id) = parse_id(&e.id) else {
                // Redis ids are always `ms-seq`; this is not a Redis stream.
                tracing::error!(id = %e.id, stream = %self.key, "unreadable stream entry id");
                continue;
            };
            match r {
                Ok(batch) => out.push(Delivery {
                    id: DeliveryId::from_u128(id),
                    batch: Arc::new(batch),
                    attempts,
                }),
                Err(err) => {
                    let filed = file_undecodable(
                        "redis",
                        self.opts.dead_letter.as_ref(),
                        &e.bytes,
                        &err,
                        attempts,
                    )
                    .await;
                    if !filed {
                        let _: String = redis::cmd("XADD")
                            .arg(&self.quarantine)
                            .arg("*")
                            .arg("b")
                            .arg(&e.bytes[..])
                            .arg("error")
                            .arg(err.to_string())
                            .arg("id")
                            .arg(&e.id)
                            .query_async(&mut self.conn.clone())
                            .await
                            .map_err(|e| rerr("quarantining an entry", &e))?;
                    }
                    killkrill_core::pipeline::Queue::ack(self, &[DeliveryId::from_u128(id)])
                        .await?;
                }
            }
        }
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn bulk(s: &[u8]) -> Value {
        Value::BulkString(s.to_vec())
    }

    #[test]
    fn read_replies_in_resp2_and_resp3_give_ids_and_bytes() {
        let entry = |id: &str, b: &[u8]| {
            Value::Array(vec![
                bulk(id.as_bytes()),
                Value::Array(vec![bulk(b"x"), bulk(b"1"), bulk(b"b"), bulk(b)]),
            ])
        };
        let list = Value::Array(vec![
            entry("1-0", b"one"),
            Value::Array(vec![bulk(b"2-0"), Value::Nil]),
            entry("3-1", b"three"),
        ]);
        let resp2 = Value::Array(vec![Value::Array(vec![bulk(b"k"), list.clone()])]);
        let resp3 = Value::Map(vec![(bulk(b"k"), list)]);
        for v in [resp2, resp3] {
            let got: Vec<(String, Vec<u8>)> = entries_of_read_reply(v)
                .into_iter()
                .map(|e| (e.id, e.bytes))
                .collect();
            assert_eq!(
                got,
                vec![
                    ("1-0".to_owned(), b"one".to_vec()),
                    ("3-1".to_owned(), b"three".to_vec())
                ]
            );
        }
        assert!(entries_of_read_reply(Value::Nil).is_empty());
        // An entry without a `b` field has no bytes (and will not decode).
        let odd = Value::Array(vec![Value::Array(vec![
            bulk(b"k"),
            Value::Array(vec![Value::Array(vec![
                bulk(b"4-0"),
                Value::Array(vec![bulk(b"c"), bulk(b"x")]),
            ])]),
        ])]);
        let got = entries_of_read_reply(odd);
        assert_eq!(got.len(), 1);
        assert!(got[0].bytes.is_empty());
    }

    #[test]
    fn autoclaim_replies_give_claimed_entries_and_deleted_ids() {
        let entry = |id: &str, b: &[u8]| {
            Value::Array(vec![
                bulk(id.as_bytes()),
                Value::Array(vec![bulk(b"b"), bulk(b)]),
            ])
        };
        // Redis 6.2: deleted entries come as [id, nil] among the claimed.
        let v62 = Value::Array(vec![
            bulk(b"0-0"),
            Value::Array(vec![
                Value::Array(vec![bulk(b"1-0"), Value::Nil]),
                entry("2-0", b"two"),
                Value::Array(vec![bulk(b"3-0"), Value::Nil]),
            ]),
        ]);
        let (claimed, deleted) = autoclaim_reply(v62);
        assert_eq!(
            claimed.iter().map(|e| e.id.as_str()).collect::<Vec<_>>(),
            ["2-0"]
        );
        assert_eq!(claimed[0].bytes, b"two");
        assert_eq!(deleted, ["1-0", "3-0"]);
        // Redis 7: a third element lists them.
        let v7 = Value::Array(vec![
            bulk(b"5-0"),
            Value::Array(vec![entry("4-0", b"four")]),
            Value::Array(vec![bulk(b"1-5"), bulk(b"2-5")]),
        ]);
        let (claimed, deleted) = autoclaim_reply(v7);
        assert_eq!(claimed.len(), 1);
        assert_eq!(deleted, ["1-5", "2-5"]);
        let (claimed, deleted) = autoclaim_reply(Value::Nil);
        assert!(claimed.is_empty() && deleted.is_empty());
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn parallel_decoding_keeps_the_order_and_reports_bad_entries() {
        use killkrill_core::event::{Tenant, Timestamp};
        use killkrill_core::pipeline::BatchId;
        let codec = BatchCodec::new();
        let entries: Vec<RawEntry> = (0..37u128)
            .map(|i| RawEntry {
                id: format!("{i}-0"),
                bytes: if i == 20 {
                    b"not a batch".to_vec()
                } else {
                    codec
                        .encode_to_vec(&Batch::new(
                            BatchId::from_u128(i),
                            Tenant::default(),
                            Timestamp::from_millis(1),
                        ))
                        .unwrap()
                },
                attempts: 1,
            })
            .collect();
        let out = decode_entries(codec, entries).await;
        assert_eq!(out.len(), 37);
        for (i, (e, r)) in out.iter().enumerate() {
            assert_eq!(e.id, format!("{i}-0"));
            match r {
                Ok(b) => assert_eq!(b.id, BatchId::from_u128(i as u128)),
                Err(_) => assert_eq!(i, 20),
            }
        }
    }
}
