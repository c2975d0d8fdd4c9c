//! Loki push.
