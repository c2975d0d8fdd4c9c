//! Turning a sender's label list into a series name and a [`Labels`] set.
//!
//! Prometheus sends labels sorted and unique, with `__name__` among them. We check
//! rather than trust: a duplicate name or a missing `__name__` is an error naming the
//! label (as Prometheus's own receiver does), and an empty value means "no label",
//! as everywhere in Prometheus.

use crate::event::{Label, Labels, MetricText};

use super::Limits;
use super::error::SeriesProblem;

/// At most the first 64 bytes of a label name, for an error message.
fn shown(name: &str) -> String {
    let mut end = name.len().min(64);
    while !name.is_char_boundary(end) {
        end -= 1;
    }
    if end < name.len() {
        format!("{:?}…", &name[..end])
    } else {
        format!("{name:?}")
    }
}

/// Checks a label's name and value against the length limits; called before a
/// label is copied anywhere.
///
/// # Errors
/// [`SeriesProblem::LabelTooLong`] naming the label and the part.
pub(super) fn check_label(name: &str, value: &str, limits: &Limits) -> Result<(), SeriesProblem> {
    for (part, len, max) in [
        ("name", name.len(), limits.max_label_name_bytes),
        ("value", value.len(), limits.max_label_value_bytes),
    ] {
        if len > max {
            return Err(SeriesProblem::LabelTooLong {
                label: shown(name),
                part,
                len,
                max,
            });
        }
    }
    Ok(())
}

/// Splits `labels` into the metric name and the other labels (sorted, empty values
/// removed).
///
/// # Errors
/// [`SeriesProblem`] for a missing `__name__`, an empty or duplicate label name,
/// more than `max_labels_per_series` labels, or a name or value over its length
/// limit.
pub(super) fn split_name(
    mut labels: Vec<Label>,
    limits: &Limits,
) -> Result<(MetricText, Labels), SeriesProblem> {
    if labels.len() > limits.max_labels_per_series {
        return Err(SeriesProblem::TooManyLabels {
            count: labels.len(),
            max: limits.max_labels_per_series,
        });
    }
    for l in &labels {
        check_label(&l.name, &l.value, limits)?;
    }
    if let Some(i) = labels.iter().position(|l| l.name.is_empty()) {
        return Err(SeriesProblem::EmptyLabelName(i));
    }
    if !labels.is_sorted_by(|a, b| a.name <= b.name) {
        labels.sort_unstable_by(|a, b| a.name.cmp(&b.name));
    }
    if let Some(w) = labels.windows(2).find(|w| w[0].name == w[1].name) {
        return Err(SeriesProblem::DuplicateLabel(w[0].name.to_string()));
    }
    let name = match labels.binary_search_by(|l| l.name.as_str().cmp("__name__")) {
        Ok(i) => labels.remove(i).value,
        Err(_) => return Err(SeriesProblem::MissingName),
    };
    if name.is_empty() {
        return Err(SeriesProblem::MissingName);
    }
    labels.retain(|l| !l.value.is_empty());
    Ok((name, Labels::from_sorted(labels)))
}

/// Exemplar labels: no `__name__` needed, empty values dropped, duplicates an error.
/// Their lengths are checked by the caller, before they are copied.
pub(super) fn exemplar_labels(mut labels: Vec<Label>) -> Result<Labels, SeriesProblem> {
    labels.sort_unstable_by(|a, b| a.name.cmp(&b.name));
    if let Some(w) = labels.windows(2).find(|w| w[0].name == w[1].name) {
        return Err(SeriesProblem::DuplicateLabel(w[0].name.to_string()));
    }
    labels.retain(|l| !l.value.is_empty() && l.name != "__name__");
    Ok(Labels::from_sorted(labels))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn l(pairs: &[(&str, &str)]) -> Vec<Label> {
        pairs
            .iter()
            .map(|(n, v)| Label {
                name: (*n).into(),
                value: (*v).into(),
            })
            .collect()
    }

    #[test]
    fn table() {
        type Case<'a> = (
            &'a [(&'a str, &'a str)],
            Result<(&'a str, &'a str), SeriesProblem>,
        );
        let cases: &[Case] = &[
            (
                &[("__name__", "up"), ("job", "p")],
                Ok(("up", r#"{"job":"p"}"#)),
            ),
            (
                &[("z", "1"), ("__name__", "up"), ("a", "")],
                Ok(("up", r#"{"z":"1"}"#)),
            ),
            (&[("job", "p")], Err(SeriesProblem::MissingName)),
            (&[("__name__", "")], Err(SeriesProblem::MissingName)),
            (
                &[("__name__", "x"), ("", "v")],
                Err(SeriesProblem::EmptyLabelName(1)),
            ),
            (
                &[("__name__", "x"), ("a", "1"), ("a", "2")],
                Err(SeriesProblem::DuplicateLabel("a".into())),
            ),
            (
                &[("__name__", "x"), ("a", "1"), ("b", "2"), ("c", "3")],
                Err(SeriesProblem::TooManyLabels { count: 4, max: 3 }),
            ),
            (
                &[("__name__", "x"), ("long_name", "1")],
                Err(SeriesProblem::LabelTooLong {
                    label: "\"long_name\"".into(),
                    part: "name",
                    len: 9,
                    max: 8,
                }),
            ),
            (
                &[("__name__", "a_long_name"), ("a", "1")],
                Err(SeriesProblem::LabelTooLong {
                    label: "\"__name__\"".into(),
                    part: "value",
                    len: 11,
                    max: 10,
                }),
            ),
            (&[("__name__", "ten_bytes_")], Ok(("ten_bytes_", "{}"))),
        ];
        let limits = Limits {
            max_labels_per_series: 3,
            max_label_name_bytes: 8,
            max_label_value_bytes: 10,
            ..Limits::default()
        };
        for (input, want) in cases {
            let got = split_name(l(input), &limits)
                .map(|(n, ls)| (n.to_string(), serde_json::to_string(&ls).unwrap()));
            let want = want.clone().map(|(n, j)| (n.to_owned(), j.to_owned()));
            assert_eq!(got, want, "{input:?}");
        }
    }

    #[test]
    fn long_names_are_cut_in_messages() {
        assert_eq!(shown("ab"), "\"ab\"");
        let long = "é".repeat(40); // 80 bytes, cut at a char boundary
        assert_eq!(shown(&long), format!("{:?}…", "é".repeat(32)));
    }
}
