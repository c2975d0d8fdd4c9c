//! Page cursors: the `(timestamp, id)` of the last record of a page, as an
//! opaque string.
//!
//! Opaque so clients do not build them (the layout may change: the first
//! byte is a version) and URL-safe so they travel in a query string.

use std::fmt;
use std::str::FromStr;

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;

use crate::event::{EventId, Timestamp};

const VERSION: u8 = 1;

/// Where the next page starts: strictly after this record key in the
/// query's order.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Cursor {
    /// Timestamp of the last record returned.
    pub timestamp: Timestamp,
    /// Id of the last record returned.
    pub id: EventId,
}

/// The text is not a cursor this build issued.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid cursor: pass back the next_cursor of a previous page unchanged")]
pub struct InvalidCursor;

impl fmt::Display for Cursor {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut b = [0u8; 25];
        b[0] = VERSION;
        b[1..9].copy_from_slice(&self.timestamp.as_nanos().to_be_bytes());
        b[9..].copy_from_slice(&self.id.to_bytes());
        f.write_str(&URL_SAFE_NO_PAD.encode(b))
    }
}

impl FromStr for Cursor {
    type Err = InvalidCursor;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let b = URL_SAFE_NO_PAD.decode(s).map_err(|_| InvalidCursor)?;
        if b.len() != 25 || b[0] != VERSION {
            return Err(InvalidCursor);
        }
        let mut ts = [0u8; 8];
        ts.copy_from_slice(&b[1..9]);
        let mut id = [0u8; 16];
        id.copy_from_slice(&b[9..]);
        Ok(Cursor {
            timestamp: Timestamp::from_nanos(i64::from_be_bytes(ts)),
            id: EventId::from_bytes(id),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_and_rejects() {
        let c = Cursor {
            timestamp: Timestamp::from_nanos(-5),
            id: EventId::from_u128(u128::MAX - 3),
        };
        let s = c.to_string();
        assert!(
            s.bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
        );
        assert_eq!(s.parse::<Cursor>(), Ok(c));
        for bad in ["", "abc", "!!!!", &s[..s.len() - 2]] {
            assert_eq!(bad.parse::<Cursor>(), Err(InvalidCursor), "{bad}");
        }
    }
}
