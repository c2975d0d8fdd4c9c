//! Snappy *block* format with a size limit, as remote_write and Loki push use it.
//!
//! Both protocols compress the whole body as one raw snappy block (not the framed
//! stream format). A block starts with its decompressed length as a varint, so a
//! 100-byte body can claim gigabytes: the claim is checked against the limit before
//! anything is allocated.

/// Why a body could not be decompressed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SnappyError {
    /// The decompressed length in the block header is over the limit.
    #[error("snappy body decompresses to {length} bytes, more than the limit of {max} bytes")]
    TooLarge {
        /// Length the header announces.
        length: usize,
        /// The limit.
        max: usize,
    },
    /// The bytes are not a snappy block.
    #[error("body is not valid snappy block-format data: {0}")]
    Invalid(String),
}

/// The decompressed length a snappy block announces in its header (unchecked:
/// for deciding how to decode it, not for trusting it); `None` when the header is
/// not a valid varint.
pub fn announced_len(body: &[u8]) -> Option<usize> {
    snap::raw::decompress_len(body).ok()
}

/// Decompresses a snappy block of at most `max` decompressed bytes.
///
/// # Errors
/// [`SnappyError::TooLarge`] when the header announces more than `max` bytes (checked
/// before allocating); [`SnappyError::Invalid`] when the data is corrupt or truncated.
pub fn decompress_block(body: &[u8], max: usize) -> Result<Vec<u8>, SnappyError> {
    let length =
        snap::raw::decompress_len(body).map_err(|e| SnappyError::Invalid(e.to_string()))?;
    if length > max {
        return Err(SnappyError::TooLarge { length, max });
    }
    let mut out = vec![0; length];
    let n = snap::raw::Decoder::new()
        .decompress(body, &mut out)
        .map_err(|e| SnappyError::Invalid(e.to_string()))?;
    out.truncate(n);
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_and_limits() {
        let data = b"hello hello hello hello".repeat(10);
        let body = snap::raw::Encoder::new().compress_vec(&data).unwrap();
        assert_eq!(decompress_block(&body, data.len()).unwrap(), data);
        assert_eq!(
            decompress_block(&body, data.len() - 1),
            Err(SnappyError::TooLarge {
                length: data.len(),
                max: data.len() - 1
            })
        );
        // A header claiming 128 MiB followed by nothing: rejected without allocating.
        let bomb = [0x80, 0x80, 0x80, 0x40];
        assert!(matches!(
            decompress_block(&bomb, 1 << 20),
            Err(SnappyError::TooLarge { .. })
        ));
        for bad in [&b""[..], &body[..body.len() - 3], b"\x05\xff\xff"] {
            assert!(
                matches!(decompress_block(bad, 1 << 20), Err(SnappyError::Invalid(_))),
                "{bad:?}"
            );
        }
        // Framed snappy (the stream format) is not the block format.
        let mut framed = Vec::new();
        {
            use std::io::Write;
            let mut w = snap::write::FrameEncoder::new(&mut framed);
            w.write_all(&data).unwrap();
        }
        assert!(decompress_block(&framed, 1 << 20).is_err());
    }
}
