//! Label sets and label matchers.
//!
//! A label set is a `Vec<(String, String)>` sorted by name, with the metric
//! name under `__name__` like everywhere in Prometheus. Matchers are our own
//! type (not the parser's) so a data source never has to name the parser crate.

use regex::Regex;

use crate::error::QueryError;

/// The label that holds the metric name.
pub const METRIC_NAME: &str = "__name__";

/// A sorted label set.
pub type Labels = Vec<(String, String)>;

/// The value of `name` in a sorted label set, `""` when absent (Prometheus semantics).
pub fn get<'a>(labels: &'a [(String, String)], name: &str) -> &'a str {
    match labels.binary_search_by(|(k, _)| k.as_str().cmp(name)) {
        Ok(i) => labels[i].1.as_str(),
        Err(_) => "",
    }
}

/// Sets (or with an empty value, removes) a label, keeping the set sorted.
pub fn set(labels: &mut Labels, name: &str, value: &str) {
    match labels.binary_search_by(|(k, _)| k.as_str().cmp(name)) {
        Ok(i) => {
            if value.is_empty() {
                labels.remove(i);
            } else {
                labels[i].1 = value.to_string();
            }
        }
        Err(i) => {
            if !value.is_empty() {
                labels.insert(i, (name.to_string(), value.to_string()));
            }
        }
    }
}

/// Removes the metric name.
pub fn drop_name(labels: &mut Labels) {
    labels.retain(|(k, _)| k != METRIC_NAME);
}

/// Sorts and removes empty values, so any list of pairs becomes a valid label set.
pub fn normalize(mut labels: Labels) -> Labels {
    labels.retain(|(_, v)| !v.is_empty());
    labels.sort();
    labels.dedup_by(|a, b| a.0 == b.0);
    labels
}

/// Renders a label set the way Prometheus prints it in messages: `{a="1", b="2"}`.
pub fn display(labels: &[(String, String)]) -> String {
    let inner: Vec<String> = labels.iter().map(|(k, v)| format!("{k}={v:?}")).collect();
    format!("{{{}}}", inner.join(", "))
}

/// How a matcher compares.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MatchOp {
    /// `=`
    Equal,
    /// `!=`
    NotEqual,
    /// `=~` (anchored at both ends)
    Regex,
    /// `!~` (anchored at both ends)
    NotRegex,
}

/// One label matcher. A missing label matches as the empty string.
#[derive(Debug, Clone)]
pub struct Matcher {
    /// Label name.
    pub name: String,
    /// Comparison.
    pub op: MatchOp,
    /// The value or the (unanchored) regular expression as written.
    pub value: String,
    regex: Option<Regex>,
}

impl PartialEq for Matcher {
    fn eq(&self, other: &Self) -> bool {
        self.name == other.name && self.op == other.op && self.value == other.value
    }
}

impl Matcher {
    /// Builds a matcher; regexes are anchored (`^(?:re)$`) like Prometheus's.
    ///
    /// # Errors
    /// `BadData` when the regular expression does not compile.
    pub fn new(name: &str, op: MatchOp, value: &str) -> Result<Self, QueryError> {
        let regex = match op {
            MatchOp::Regex | MatchOp::NotRegex => {
                Some(Regex::new(&format!("^(?s:{value})$")).map_err(|e| {
                    QueryError::BadData(format!("invalid regular expression {value:?}: {e}"))
                })?)
            }
            MatchOp::Equal | MatchOp::NotEqual => None,
        };
        Ok(Matcher {
            name: name.to_string(),
            op,
            value: value.to_string(),
            regex,
        })
    }

    /// `name="value"`.
    pub fn equal(name: &str, value: &str) -> Self {
        Matcher {
            name: name.to_string(),
            op: MatchOp::Equal,
            value: value.to_string(),
            regex: None,
        }
    }

    /// Whether a label value (`""` when the label is absent) matches.
    pub fn matches_value(&self, v: &str) -> bool {
        match (self.op, &self.regex) {
            (MatchOp::Equal, _) => self.value == v,
            (MatchOp::NotEqual, _) => self.value != v,
            (MatchOp::Regex, Some(r)) => r.is_match(v),
            (MatchOp::NotRegex, Some(r)) => !r.is_match(v),
            (MatchOp::Regex | MatchOp::NotRegex, None) => false,
        }
    }

    /// Whether a label set matches.
    pub fn matches(&self, labels: &[(String, String)]) -> bool {
        self.matches_value(get(labels, &self.name))
    }
}

/// Whether every matcher matches.
pub fn matches_all(matchers: &[Matcher], labels: &[(String, String)]) -> bool {
    matchers.iter().all(|m| m.matches(labels))
}

/// Parses a series selector such as `up{job="x"}` (the `match[]` parameter).
///
/// # Errors
/// `BadData` when it is not a plain vector selector.
pub fn parse_selector(text: &str) -> Result<Vec<Vec<Matcher>>, QueryError> {
    crate::shape::check(text)?;
    let expr = promql_parser::parser::parse(text).map_err(QueryError::BadData)?;
    match expr {
        promql_parser::parser::Expr::VectorSelector(vs) => selector_matchers(&vs),
        _ => Err(QueryError::BadData(format!(
            "invalid parameter \"match[]\": {text:?} is not a series selector"
        ))),
    }
}

/// Our matchers for a parsed vector selector: one set per `or` alternative.
pub(crate) fn selector_matchers(
    vs: &promql_parser::parser::VectorSelector,
) -> Result<Vec<Vec<Matcher>>, QueryError> {
    let convert = |ms: &[promql_parser::label::Matcher]| -> Result<Vec<Matcher>, QueryError> {
        let mut out = Vec::with_capacity(ms.len() + 1);
        if let Some(name) = &vs.name {
            out.push(Matcher::equal(METRIC_NAME, name));
        }
        for m in ms {
            use promql_parser::label::MatchOp as P;
            let op = match m.op {
                P::Equal => MatchOp::Equal,
                P::NotEqual => MatchOp::NotEqual,
                P::Re(_) => MatchOp::Regex,
                P::NotRe(_) => MatchOp::NotRegex,
            };
            out.push(Matcher::new(&m.name, op, &m.value)?);
        }
        Ok(out)
    };
    if vs.matchers.or_matchers.is_empty() {
        Ok(vec![convert(&vs.matchers.matchers)?])
    } else {
        vs.matchers
            .or_matchers
            .iter()
            .map(|set| convert(set))
            .collect()
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn regex_matchers_are_anchored() {
        let m = Matcher::new("job", MatchOp::Regex, "api|web").unwrap();
        assert!(m.matches_value("api"));
        assert!(!m.matches_value("api2"));
        assert!(!m.matches_value("xapi"));
        let n = Matcher::new("job", MatchOp::NotRegex, "a.*").unwrap();
        assert!(!n.matches_value("abc"));
        assert!(n.matches_value("ba"));
        assert!(n.matches_value(""));
    }

    #[test]
    fn missing_label_matches_empty() {
        let labels = vec![("a".to_string(), "1".to_string())];
        assert!(Matcher::equal("b", "").matches(&labels));
        assert!(
            !Matcher::new("b", MatchOp::NotEqual, "")
                .unwrap()
                .matches(&labels)
        );
    }

    #[test]
    fn selector_parse() {
        let sets = parse_selector(r#"up{job=~"a.*", env!="prod"}"#).unwrap();
        assert_eq!(sets.len(), 1);
        assert_eq!(sets[0][0], Matcher::equal("__name__", "up"));
        assert_eq!(sets[0].len(), 3);
        assert!(parse_selector("sum(up)").is_err());
    }
}
