//! Label matchers: the `=`, `!=`, `=~`, `!~` of PromQL selectors.
//!
//! Semantics follow Prometheus exactly, so the PromQL evaluator can hand its
//! selectors over unchanged:
//! - a label that a series does not have matches as the empty string
//!   (`{env=""}` selects series without `env`, `{env!=""}` those with it);
//! - the metric name is the label `__name__`;
//! - regexes are fully anchored (`=~"a|b"` means `^(?:a|b)$`).
//!
//! Regexes come from query strings, so they are bounded: the pattern may be
//! at most [`MAX_REGEX_LEN`] bytes and its compiled program at most
//! [`MAX_REGEX_PROGRAM`] bytes. A bigger one is refused with
//! [`MatcherError::TooBig`] instead of letting one query eat memory.

use regex::{Regex, RegexBuilder};

/// Longest regex pattern accepted, in bytes.
pub const MAX_REGEX_LEN: usize = 4 * 1024;
/// Largest compiled regex accepted, in bytes (the `regex` crate's size limit).
pub const MAX_REGEX_PROGRAM: usize = 1 << 20;

/// How a matcher compares.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum MatchOp {
    /// `=`: equal.
    Eq,
    /// `!=`: not equal.
    Ne,
    /// `=~`: matches the anchored regex.
    Re,
    /// `!~`: does not match the anchored regex.
    Nre,
}

impl MatchOp {
    /// The PromQL spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            MatchOp::Eq => "=",
            MatchOp::Ne => "!=",
            MatchOp::Re => "=~",
            MatchOp::Nre => "!~",
        }
    }
}

/// A matcher cannot be built.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum MatcherError {
    /// The regex does not parse.
    #[error("invalid regex for label {label:?}: {message}")]
    InvalidRegex {
        /// The label the matcher is on.
        label: String,
        /// What the regex parser said.
        message: String,
    },
    /// The regex is longer or compiles bigger than allowed.
    #[error("regex for label {label:?} is too big: {what} (limit {limit} bytes)")]
    TooBig {
        /// The label the matcher is on.
        label: String,
        /// Pattern length or compiled size.
        what: &'static str,
        /// The limit that was exceeded.
        limit: usize,
    },
    /// The label name is empty.
    #[error("label matcher with an empty label name")]
    EmptyName,
}

/// One label matcher, e.g. `job=~"api|web"`.
#[derive(Debug, Clone)]
pub struct LabelMatcher {
    /// Label name (`__name__` for the metric name).
    pub name: String,
    /// Comparison.
    pub op: MatchOp,
    /// Value or regex pattern (unanchored, as written in PromQL).
    pub value: String,
    regex: Option<Regex>,
}

impl PartialEq for LabelMatcher {
    fn eq(&self, other: &Self) -> bool {
        self.name == other.name && self.op == other.op && self.value == other.value
    }
}

impl LabelMatcher {
    /// Builds a matcher, compiling regexes anchored and size-limited.
    ///
    /// # Errors
    /// [`MatcherError`] for an empty name, a regex that does not parse, or
    /// one over [`MAX_REGEX_LEN`] / [`MAX_REGEX_PROGRAM`].
    pub fn new(
        name: impl Into<String>,
        op: MatchOp,
        value: impl Into<String>,
    ) -> Result<Self, MatcherError> {
        let (name, value) = (name.into(), value.into());
        if name.is_empty() {
            return Err(MatcherError::EmptyName);
        }
        let regex = match op {
            MatchOp::Eq | MatchOp::Ne => None,
            MatchOp::Re | MatchOp::Nre => {
                if value.len() > MAX_REGEX_LEN {
                    return Err(MatcherError::TooBig {
                        label: name,
                        what: "pattern length",
                        limit: MAX_REGEX_LEN,
                    });
                }
                let re = RegexBuilder::new(&format!("^(?:{value})$"))
                    .size_limit(MAX_REGEX_PROGRAM)
                    .dfa_size_limit(MAX_REGEX_PROGRAM)
                    .build()
                    .map_err(|e| match e {
                        regex::Error::CompiledTooBig(_) => MatcherError::TooBig {
                            label: name.clone(),
                            what: "compiled size",
                            limit: MAX_REGEX_PROGRAM,
                        },
                        other => MatcherError::InvalidRegex {
                            label: name.clone(),
                            message: other.to_string(),
                        },
                    })?;
                Some(re)
            }
        };
        Ok(LabelMatcher {
            name,
            op,
            value,
            regex,
        })
    }

    /// `name = value`.
    pub fn eq(name: impl Into<String>, value: impl Into<String>) -> Self {
        LabelMatcher {
            name: name.into(),
            op: MatchOp::Eq,
            value: value.into(),
            regex: None,
        }
    }

    /// `name != value`.
    pub fn ne(name: impl Into<String>, value: impl Into<String>) -> Self {
        LabelMatcher {
            name: name.into(),
            op: MatchOp::Ne,
            value: value.into(),
            regex: None,
        }
    }

    /// Whether a label value matches (`None`, an absent label, counts as `""`).
    pub fn matches(&self, value: Option<&str>) -> bool {
        let v = value.unwrap_or("");
        match (self.op, &self.regex) {
            (MatchOp::Eq, _) => v == self.value,
            (MatchOp::Ne, _) => v != self.value,
            (MatchOp::Re, Some(re)) => re.is_match(v),
            (MatchOp::Nre, Some(re)) => !re.is_match(v),
            // Unreachable by construction; a regex matcher without a regex
            // matches nothing rather than everything.
            (MatchOp::Re | MatchOp::Nre, None) => false,
        }
    }

    /// Whether a series (metric name and labels) matches.
    pub fn matches_series(&self, name: &str, labels: &crate::event::Labels) -> bool {
        if self.name == "__name__" {
            self.matches(Some(name))
        } else {
            self.matches(labels.get(&self.name))
        }
    }

    /// The metric name when this is `__name__ = "x"` (lets stores narrow the
    /// candidate series by name before matching).
    pub fn exact_name(&self) -> Option<&str> {
        (self.name == "__name__" && self.op == MatchOp::Eq).then_some(self.value.as_str())
    }
}

impl std::fmt::Display for LabelMatcher {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}{}{:?}", self.name, self.op.as_str(), self.value)
    }
}

/// Whether a series matches every matcher.
pub fn matches_all(matchers: &[LabelMatcher], name: &str, labels: &crate::event::Labels) -> bool {
    matchers.iter().all(|m| m.matches_series(name, labels))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::event::Labels;

    #[test]
    fn table() {
        let labels = Labels::from_pairs([("job", "api"), ("env", "prod")]);
        let cases: &[(&str, MatchOp, &str, bool)] = &[
            ("job", MatchOp::Eq, "api", true),
            ("job", MatchOp::Eq, "ap", false),
            ("job", MatchOp::Ne, "api", false),
            ("job", MatchOp::Ne, "web", true),
            ("job", MatchOp::Re, "a.*", true),
            ("job", MatchOp::Re, "p", false),
            ("job", MatchOp::Re, "api|web", true),
            ("job", MatchOp::Nre, "web|db", true),
            ("job", MatchOp::Nre, "a.i", false),
            ("missing", MatchOp::Eq, "", true),
            ("missing", MatchOp::Ne, "", false),
            ("env", MatchOp::Ne, "", true),
            ("missing", MatchOp::Re, ".*", true),
            ("missing", MatchOp::Re, ".+", false),
            ("__name__", MatchOp::Eq, "up", true),
            ("__name__", MatchOp::Re, "u.", true),
            ("__name__", MatchOp::Nre, "up", false),
        ];
        for (name, op, value, want) in cases {
            let m = LabelMatcher::new(*name, *op, *value).unwrap();
            assert_eq!(m.matches_series("up", &labels), *want, "{m}");
        }
    }

    #[test]
    fn bad_and_big_regexes_are_refused_clearly() {
        let e = LabelMatcher::new("job", MatchOp::Re, "(").unwrap_err();
        assert!(matches!(e, MatcherError::InvalidRegex { .. }), "{e}");
        let long = "a".repeat(MAX_REGEX_LEN + 1);
        let e = LabelMatcher::new("job", MatchOp::Re, long).unwrap_err();
        assert!(e.to_string().contains("too big"), "{e}");
        // Short pattern, huge program: counted repetition of a Unicode class.
        let e = LabelMatcher::new("job", MatchOp::Nre, r"\w{1000}\w{1000}").unwrap_err();
        assert!(
            matches!(
                e,
                MatcherError::TooBig {
                    what: "compiled size",
                    ..
                }
            ),
            "{e}"
        );
        assert_eq!(
            LabelMatcher::new("", MatchOp::Eq, "x").unwrap_err(),
            MatcherError::EmptyName
        );
    }
}
