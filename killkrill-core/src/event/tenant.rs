//! Tenants: every record, series, block and query belongs to exactly one.

use std::fmt;
use std::sync::Arc;

/// A tenant name: 1..=64 bytes of `[A-Za-z0-9_.-]`, cheap to clone.
#[derive(Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Tenant(Arc<str>);

/// The text is not a valid tenant name.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid tenant {0:?}: expected 1 to 64 characters of A-Z, a-z, 0-9, '_', '.', '-'")]
pub struct InvalidTenant(pub String);

impl Tenant {
    /// The longest tenant name.
    pub const MAX_LEN: usize = 64;

    /// Validates and wraps a tenant name.
    ///
    /// # Errors
    /// [`InvalidTenant`] when empty, longer than 64 bytes, or containing a
    /// character outside `[A-Za-z0-9_.-]`.
    pub fn new(name: &str) -> Result<Self, InvalidTenant> {
        let ok = !name.is_empty()
            && name.len() <= Self::MAX_LEN
            && name
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'.' | b'-'));
        if ok {
            Ok(Tenant(Arc::from(name)))
        } else {
            Err(InvalidTenant(name.to_owned()))
        }
    }

    /// The name.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl Default for Tenant {
    /// The `default` tenant every installation starts with.
    fn default() -> Self {
        static DEFAULT: std::sync::OnceLock<Tenant> = std::sync::OnceLock::new();
        DEFAULT.get_or_init(|| Tenant(Arc::from("default"))).clone()
    }
}

impl fmt::Debug for Tenant {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(&*self.0, f)
    }
}

impl fmt::Display for Tenant {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::str::FromStr for Tenant {
    type Err = InvalidTenant;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Tenant::new(s)
    }
}

impl AsRef<str> for Tenant {
    fn as_ref(&self) -> &str {
        &self.0
    }
}

impl serde::Serialize for Tenant {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.0)
    }
}

impl<'de> serde::Deserialize<'de> for Tenant {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = <std::borrow::Cow<'de, str>>::deserialize(d)?;
        Tenant::new(&s).map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn validation() {
        for good in ["default", "team-a", "a.b_c", &"x".repeat(64)] {
            assert_eq!(Tenant::new(good).unwrap().as_str(), good);
        }
        for bad in ["", "a b", "x/y", "é", &"x".repeat(65)] {
            assert!(Tenant::new(bad).is_err(), "{bad:?}");
        }
        assert_eq!(Tenant::default().as_str(), "default");
    }
}
