//! Keeping secrets out of `Debug` output.
//!
//! Config types that hold a password, a key or a URL that may carry
//! credentials write their `Debug` by hand (destructuring every field, so
//! a new field cannot be forgotten) and show secrets through these:
//! [`Redacted`] says whether a secret is set and nothing else;
//! [`url_without_password`] keeps a URL readable without its password.

use std::borrow::Cow;
use std::fmt;

/// Shown instead of a secret.
pub const REDACTED: &str = "<redacted>";

/// `Debug` of an optional secret: `Some(<redacted>)` or `None`.
#[derive(Clone, Copy)]
pub struct Redacted<'a, T>(pub &'a Option<T>);

impl<T> fmt::Debug for Redacted<'_, T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.0 {
            Some(_) => write!(f, "Some({REDACTED})"),
            None => f.write_str("None"),
        }
    }
}

/// Query parameters whose values are secrets (by a substring of the name,
/// ASCII case-insensitive).
const SECRET_PARAMS: [&str; 5] = ["pass", "pwd", "secret", "token", "key"];

/// `u` with the password of its userinfo and the values of secret-looking
/// query parameters (`password=`, `sslpassword=`, `token=`, ...) replaced by
/// [`REDACTED`]: `postgres://app:<redacted>@db:5432/kk`. Anything that
/// does not parse as `scheme://...` is returned whole, as there is nothing
/// to find a password in.
pub fn url_without_password(u: &str) -> Cow<'_, str> {
    let Some(scheme_end) = u.find("://") else {
        return Cow::Borrowed(u);
    };
    let rest = &u[scheme_end + 3..];
    let auth_end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
    let authority = &rest[..auth_end];
    let mut out = String::with_capacity(u.len());
    out.push_str(&u[..scheme_end + 3]);
    let mut changed = false;
    match authority.rfind('@') {
        Some(at) => {
            let userinfo = &authority[..at];
            match userinfo.split_once(':') {
                Some((user, _)) => {
                    out.push_str(user);
                    out.push(':');
                    out.push_str(REDACTED);
                    changed = true;
                }
                None => out.push_str(userinfo),
            }
            out.push_str(&authority[at..]);
        }
        None => out.push_str(authority),
    }
    let tail = &rest[auth_end..];
    let (before_frag, frag) = tail.split_at(tail.find('#').unwrap_or(tail.len()));
    match before_frag.split_once('?') {
        Some((path, query)) => {
            out.push_str(path);
            out.push('?');
            for (i, pair) in query.split('&').enumerate() {
                if i > 0 {
                    out.push('&');
                }
                match pair.split_once('=') {
                    Some((k, _)) if is_secret_param(k) => {
                        out.push_str(k);
                        out.push('=');
                        out.push_str(REDACTED);
                        changed = true;
                    }
                    _ => out.push_str(pair),
                }
            }
        }
        None => out.push_str(before_frag),
    }
    out.push_str(frag);
    if changed {
        Cow::Owned(out)
    } else {
        Cow::Borrowed(u)
    }
}

fn is_secret_param(k: &str) -> bool {
    let k = k.to_ascii_lowercase();
    SECRET_PARAMS.iter().any(|s| k.contains(s))
}

/// `Debug` of an optional URL without its password (see
/// [`url_without_password`]).
#[derive(Clone, Copy)]
pub struct UrlDebug<'a>(pub Option<&'a str>);

impl fmt::Debug for UrlDebug<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.0 {
            Some(u) => write!(f, "Some({:?})", url_without_password(u)),
            None => f.write_str("None"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn passwords_leave_urls() {
        let cases = [
            (
                "postgres://app:s3cret@db:5432/kk",
                "postgres://app:<redacted>@db:5432/kk",
            ),
            (
                "mysql://root@127.0.0.1:3306/test",
                "mysql://root@127.0.0.1:3306/test",
            ),
            ("redis://:s3cret@r:6379/0", "redis://:<redacted>@r:6379/0"),
            (
                "rediss+cluster://u:p%40ss@a:1,b:2",
                "rediss+cluster://u:<redacted>@a:1,b:2",
            ),
            ("postgres://u:a@b@h/db", "postgres://u:<redacted>@h/db"),
            (
                "postgres://h/db?user=u&password=s3cret&sslmode=require",
                "postgres://h/db?user=u&password=<redacted>&sslmode=require",
            ),
            (
                "mysql://h/db?sslPassword=s3cret#frag",
                "mysql://h/db?sslPassword=<redacted>#frag",
            ),
            ("sqlite://killkrill.db", "sqlite://killkrill.db"),
            ("not a url with s3cret", "not a url with s3cret"),
            ("http://h/p?q=1", "http://h/p?q=1"),
        ];
        for (u, want) in cases {
            assert_eq!(url_without_password(u), want, "{u}");
        }
    }

    #[test]
    fn redacted_says_only_whether_it_is_set() {
        let s = Some("s3cret".to_owned());
        assert_eq!(format!("{:?}", Redacted(&s)), "Some(<redacted>)");
        assert_eq!(format!("{:?}", Redacted::<String>(&None)), "None");
        let u = Some("redis://:s3cret@h:6379".to_owned());
        assert_eq!(
            format!("{:?}", UrlDebug(u.as_deref())),
            r#"Some("redis://:<redacted>@h:6379")"#
        );
    }
}
