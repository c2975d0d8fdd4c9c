//! Turning a sender's label list into a series name and a [`Labels`] set.
//!
//! Prometheus sends labels sorted and unique, with `__name__` among them. We check
//! rather than trust: a duplicate name or a missing `__name__` is an error naming the
//! label (as Prometheus's own receiver does), and an empty value means "no label",
//! as everywhere in Prometheus.

use crate::event::{Label, Labels, MetricText};

use super::error::SeriesProblem;

/// Splits `labels` into the metric name and the other labels (sorted, empty values
/// removed).
///
/// # Errors
/// [`SeriesProblem`] for a missing `__name__`, an empty or duplicate label name, or
/// more than `max_labels` labels.
pub(super) fn split_name(
    mut labels: Vec<Label>,
    max_labels: usize,
) -> Result<(MetricText, Labels), SeriesProblem> {
    if labels.len() > max_labels {
        return Err(SeriesProblem::TooManyLabels {
            count: labels.len(),
            max: max_labels,
        });
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
        ];
        for (input, want) in cases {
            let got = split_name(l(input), 3)
                .map(|(n, ls)| (n.to_string(), serde_json::to_string(&ls).unwrap()));
            let want = want.clone().map(|(n, j)| (n.to_owned(), j.to_owned()));
            assert_eq!(got, want, "{input:?}");
        }
    }
}
