//! Bounds on a query's text, checked before it is parsed.
//!
//! The parser builds the expression tree without recursion, but everything
//! after it walks the tree recursively: planning, rollup planning,
//! evaluation, pretty-printing and even dropping the `Box<Expr>` chain. A
//! query such as `1*1*1*…` with tens of thousands of operators, or as many
//! nested parentheses, would overflow a thread's stack and abort the whole
//! process. So a query is refused, as bad data naming the limit, when it is
//! longer than [`MAX_QUERY_BYTES`] or when its text could build a tree
//! deeper than [`MAX_NESTING`].
//!
//! The depth bound is lexical and conservative (never below the real
//! depth): a bracket group (`(…)`, `[…]`) is one level plus the deepest
//! group inside it plus every operator character (`+ - * / % ^ = ! < >`)
//! and set-operator keyword (`and`, `or`, `unless`, `atan2`) directly in
//! it, since a chain of `n` operators parses into `n` nested nodes. A
//! selector's `{…}` is a leaf (its matchers are not tree nodes); string
//! literals are skipped. So a long but shallow query (twenty summed terms)
//! stays far below the limit, while `1*1*…` or `((((…))))` reach it.

use crate::error::QueryError;

/// Longest query text, bytes.
pub const MAX_QUERY_BYTES: usize = 64 * 1024;

/// Deepest expression tree a query may parse into (as estimated by
/// `depth_bound`).
pub const MAX_NESTING: usize = 256;

/// Refuses a query too long or too deeply nested to evaluate safely.
///
/// # Errors
/// `BadData` naming the limit.
pub fn check(query: &str) -> Result<(), QueryError> {
    if query.len() > MAX_QUERY_BYTES {
        return Err(QueryError::BadData(format!(
            "the query is {} bytes long, at most {MAX_QUERY_BYTES}",
            query.len()
        )));
    }
    let n = depth_bound(query);
    if n > MAX_NESTING {
        return Err(QueryError::BadData(format!(
            "the query nests {n} levels of operators and brackets, at most {MAX_NESTING}"
        )));
    }
    Ok(())
}

/// Skips the string literal opening at `b[i]`; returns the index of its
/// closing quote (or the end). Backslash escapes in `'…'` and `"…"` only.
fn skip_string(b: &[u8], mut i: usize) -> usize {
    let quote = b[i];
    i += 1;
    while i < b.len() && b[i] != quote {
        if b[i] == b'\\' && quote != b'`' {
            i += 1;
        }
        i += 1;
    }
    i
}

/// Skips the `#` comment at `b[i]`; returns the index of its newline (or
/// the end).
fn skip_comment(b: &[u8], mut i: usize) -> usize {
    while i < b.len() && b[i] != b'\n' {
        i += 1;
    }
    i
}

/// An upper bound of the depth of the tree `q` parses into (see the module
/// docs).
fn depth_bound(q: &str) -> usize {
    let b = q.as_bytes();
    // Per open group: (operators directly in it, deepest group inside it).
    let mut stack: Vec<(usize, usize)> = vec![(0, 0)];
    let close = |stack: &mut Vec<(usize, usize)>| {
        if stack.len() > 1 {
            let (ops, child) = stack.pop().unwrap_or_default();
            if let Some(parent) = stack.last_mut() {
                parent.1 = parent.1.max(ops + child + 1);
            }
        }
    };
    let mut i = 0usize;
    while i < b.len() {
        match b[i] {
            b'"' | b'\'' | b'`' => i = skip_string(b, i),
            // A comment, to the end of the line (as the lexer reads it: a
            // quote in it opens no string).
            b'#' => i = skip_comment(b, i),
            b'{' => {
                // A selector's matchers: a leaf, skipped to its `}`.
                while i < b.len() && b[i] != b'}' {
                    if matches!(b[i], b'"' | b'\'' | b'`') {
                        i = skip_string(b, i);
                    } else if b[i] == b'#' {
                        i = skip_comment(b, i);
                    }
                    i += 1;
                }
            }
            b'(' | b'[' => stack.push((0, 0)),
            b')' | b']' => close(&mut stack),
            b'+' | b'-' | b'*' | b'/' | b'%' | b'^' | b'=' | b'!' | b'<' | b'>' => {
                // `==`, `!=`, `<=`, `>=` are one operator.
                if matches!(b[i], b'=' | b'!' | b'<' | b'>') && b.get(i + 1) == Some(&b'=') {
                    i += 1;
                }
                if let Some(top) = stack.last_mut() {
                    top.0 += 1;
                }
            }
            c if c.is_ascii_alphabetic() || c == b'_' => {
                let start = i;
                while i + 1 < b.len() && (b[i + 1].is_ascii_alphanumeric() || b[i + 1] == b'_') {
                    i += 1;
                }
                let word = &b[start..=i];
                if [&b"and"[..], b"or", b"unless", b"atan2"]
                    .iter()
                    .any(|k| word.eq_ignore_ascii_case(k))
                    && let Some(top) = stack.last_mut()
                {
                    top.0 += 1;
                }
            }
            _ => {}
        }
        i += 1;
    }
    // Groups left open (the parser refuses them) count as closed here.
    while stack.len() > 1 {
        close(&mut stack);
    }
    let (ops, child) = stack[0];
    ops + child
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn depth_bounds() {
        assert_eq!(depth_bound("up"), 0);
        assert_eq!(depth_bound("1 + 2 * 3"), 2);
        // Matchers and strings are leaves: rate( [ ] ) is two groups.
        assert_eq!(depth_bound(r#"rate(x{a="(+\"}", b=~'+'}[5m])"#), 2);
        assert_eq!(depth_bound("a and b or c unless d"), 3);
        assert_eq!(depth_bound("AND android orbit"), 1);
        assert_eq!(depth_bound("((1))"), 2);
        assert_eq!(depth_bound("-(1 - 2)"), 3);
        // Twenty summed terms: the chain, plus the deepest term.
        let terms: Vec<String> = (0..20)
            .map(|i| format!(r#"sum by (job) (rate(m{i}{{job="a",code=~"5.."}}[5m]))"#))
            .collect();
        assert_eq!(depth_bound(&terms.join(" + ")), 19 + 3);
        // A comment is skipped to its line's end; a quote in it opens no
        // string (review: `1 # "` hid a 20,000-operator chain).
        let hidden = format!("1 # \"\n{}\n# \"", "*1".repeat(300));
        assert_eq!(depth_bound(&hidden), 300);
        assert_eq!(depth_bound("x{a=\"b\" # }\n} * 2"), 1);
        // Two-character comparisons are one operator each.
        assert_eq!(depth_bound("a == 1 or b != 2 or c >= 3 or d <= 4"), 7);
        let alerts: Vec<String> = (1..=86)
            .map(|j| format!(r#"up{{job="j{j}"}} == 0"#))
            .collect();
        assert_eq!(depth_bound(&alerts.join(" or ")), 85 + 86);
        // Unbalanced input ends the scan without panicking.
        assert_eq!(depth_bound("x{a=\"(((\\"), 0);
        assert_eq!(depth_bound("((("), 3);
        assert_eq!(depth_bound(")))"), 0);
    }

    #[test]
    fn refuses_long_and_deep_queries() {
        let deep = format!("1{}", "*1".repeat(MAX_NESTING));
        assert!(check(&deep).is_ok());
        let deeper = format!("{deep}*1");
        let e = check(&deeper).unwrap_err();
        assert!(
            e.to_string()
                .contains("nests 257 levels of operators and brackets, at most 256"),
            "{e}"
        );
        let long = format!("x{{a=\"{}\"}}", "y".repeat(MAX_QUERY_BYTES));
        let e = check(&long).unwrap_err();
        assert!(e.to_string().contains("at most 65536"), "{e}");
    }
}
