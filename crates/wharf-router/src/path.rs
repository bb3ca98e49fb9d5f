//! The one normalisation of a request's path, applied on every transport (the HTTP/1.1 fast path,
//! hyper's HTTP/1.1, h2c and h2 over TLS) before the route is chosen and before its access rules
//! are checked; what the instance gets is the path that was matched.
//!
//! Without it a route's `allow_from` or `basic_auth` could be walked around: the router matched
//! the raw path (`/%61dmin`, `//admin`, `/x/../admin`) while the instance, like most servers,
//! normalises it and serves `/admin` (issue 12, item 1). The steps, in order:
//!
//! 1. percent-encoded unreserved characters (`A-Z a-z 0-9 - . _ ~`, RFC 3986 section 2.3) are
//!    decoded, and the hex digits of the other escapes are upper-cased (section 6.2.2.1);
//! 2. an encoded `/` (`%2F`) or `\` (`%5C`), a literal `\`, an encoded NUL (`%00`) or a `%` not
//!    followed by two hex digits is refused with 400: an encoded slash cannot be decoded
//!    without changing which segments the path has, and kept encoded it is decoded by some
//!    instances (and by Windows file servers for `\`) and not by others, so whatever the router
//!    matched, the instance could read another path. nginx refuses a decoded NUL and bad escapes
//!    the same way (`ngx_http_parse_complex_uri`); Apache refuses `%2F` by default
//!    (`AllowEncodedSlashes Off`);
//! 3. runs of `/` are merged into one, as nginx does with `merge_slashes on` (its default);
//! 4. `.` and `..` segments are removed (RFC 3986 section 5.2.4); `..` never climbs above `/`.
//!
//! The query is not touched. A path that is already normal is returned as it is, without a copy.

use std::borrow::Cow;

/// Why a path is refused (a 400 that says so).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PathError(&'static str);

impl std::fmt::Display for PathError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "the request's path {}", self.0)
    }
}

impl std::error::Error for PathError {}

/// The normal form of `path` (the part of the target before `?`), or why it is refused. A path
/// that does not start with `/` (`*`, an authority) is returned unchanged.
pub fn normalise(path: &str) -> Result<Cow<'_, str>, PathError> {
    if !path.starts_with('/') || is_normal(path.as_bytes()) {
        return Ok(Cow::Borrowed(path));
    }
    let decoded = decode(path.as_bytes())?;
    Ok(Cow::Owned(remove_dot_segments(&decoded)))
}

/// Whether `path` (starting with `/`) needs no change: no `\`, no escape but upper-case ones
/// of characters that stay encoded, no empty, `.` or `..` segment. One pass, no allocation: the
/// common case.
fn is_normal(path: &[u8]) -> bool {
    let mut segment_start = 0;
    for (i, &b) in path.iter().enumerate() {
        match b {
            b'\\' => return false,
            b'%' => {
                let kept = match (path.get(i + 1), path.get(i + 2)) {
                    (Some(&hi), Some(&lo)) if upper_hex(hi) && upper_hex(lo) => {
                        let c = (hex(hi).unwrap_or(0) << 4) | hex(lo).unwrap_or(0);
                        !unreserved(c) && !matches!(c, b'/' | b'\\' | 0)
                    }
                    _ => false,
                };
                if !kept {
                    return false;
                }
            }
            b'/' => {
                if i > 0 && !segment_ok(&path[segment_start..i]) {
                    return false;
                }
                segment_start = i + 1;
            }
            _ => {}
        }
    }
    // The last segment may be empty (a trailing `/`), but not `.` or `..`.
    let last = &path[segment_start..];
    last != b"." && last != b".."
}

/// A segment between two `/`: not empty, not `.`, not `..`.
fn segment_ok(segment: &[u8]) -> bool {
    !segment.is_empty() && segment != b"." && segment != b".."
}

fn hex(b: u8) -> Option<u8> {
    match b {
        b'0'..=b'9' => Some(b - b'0'),
        b'a'..=b'f' => Some(b - b'a' + 10),
        b'A'..=b'F' => Some(b - b'A' + 10),
        _ => None,
    }
}

fn upper_hex(b: u8) -> bool {
    b.is_ascii_digit() || (b'A'..=b'F').contains(&b)
}

fn unreserved(b: u8) -> bool {
    b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~')
}

/// Step 1 and 2: unreserved characters decoded, other escapes kept (upper-cased), the
/// dangerous ones refused.
fn decode(path: &[u8]) -> Result<String, PathError> {
    const HEX: &[u8; 16] = b"0123456789ABCDEF";
    let mut out = String::with_capacity(path.len());
    let mut i = 0;
    while i < path.len() {
        let b = path[i];
        match b {
            b'\\' => return Err(PathError("contains a backslash")),
            b'%' => {
                let (Some(hi), Some(lo)) = (
                    path.get(i + 1).copied().and_then(hex),
                    path.get(i + 2).copied().and_then(hex),
                ) else {
                    return Err(PathError("has a `%` not followed by two hex digits"));
                };
                let c = (hi << 4) | lo;
                match c {
                    b'/' | b'\\' => {
                        return Err(PathError(
                            "contains an encoded `/` or `\\` (%2F, %5C), which instances decode differently",
                        ));
                    }
                    0 => return Err(PathError("contains an encoded NUL (%00)")),
                    _ if unreserved(c) => out.push(char::from(c)),
                    _ => {
                        out.push('%');
                        out.push(char::from(HEX[usize::from(hi)]));
                        out.push(char::from(HEX[usize::from(lo)]));
                    }
                }
                i += 3;
                continue;
            }
            // Non-ASCII bytes cannot be in a `&str` path that hyper or the fast path accepted,
            // but a caller may pass one: kept as they are.
            _ => {}
        }
        // Copy a run of plain bytes at once (they are whole UTF-8 sequences: the run ends at an
        // ASCII byte or the end).
        let run = path[i..]
            .iter()
            .position(|&c| c == b'%' || c == b'\\')
            .map_or(path.len(), |n| i + n);
        out.push_str(std::str::from_utf8(&path[i..run]).unwrap_or_default());
        i = run;
    }
    Ok(out)
}

/// Steps 3 and 4: `//` merged, `.` and `..` segments removed. `path` starts with `/`.
fn remove_dot_segments(path: &str) -> String {
    let mut out = String::with_capacity(path.len());
    // Segments after the first `/`; a trailing `/` (or a last `.` or `..`) leaves the path
    // ending in `/`, as RFC 3986 does.
    let mut segments = path[1..].split('/').peekable();
    let mut trailing_slash = false;
    while let Some(segment) = segments.next() {
        let last = segments.peek().is_none();
        match segment {
            "" | "." => trailing_slash = last,
            ".." => {
                match out.rfind('/') {
                    Some(i) => out.truncate(i),
                    None => out.clear(),
                }
                trailing_slash = last;
            }
            s => {
                out.push('/');
                out.push_str(s);
                trailing_slash = false;
            }
        }
    }
    if out.is_empty() || trailing_slash {
        out.push('/');
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn n(p: &str) -> Result<String, PathError> {
        normalise(p).map(Cow::into_owned)
    }

    #[test]
    fn normal_paths_are_borrowed() {
        for p in [
            "/",
            "/admin",
            "/admin/",
            "/a/b.txt",
            "/a/.hidden",
            "/a/..b",
            "/a/b..",
            "*",
        ] {
            assert!(matches!(normalise(p), Ok(Cow::Borrowed(_))), "{p}");
        }
    }

    #[test]
    fn every_trick_of_issue_12_lands_on_the_real_path() {
        for (raw, want) in [
            ("/%61dmin/secret.txt", "/admin/secret.txt"),
            ("//admin/secret.txt", "/admin/secret.txt"),
            ("/x/../admin/secret.txt", "/admin/secret.txt"),
            ("/./admin/secret.txt", "/admin/secret.txt"),
            ("/%2e/admin/secret.txt", "/admin/secret.txt"),
            ("/%2E%2E/admin", "/admin"),
            ("/x/%2e%2e/admin", "/admin"),
            ("/../../admin", "/admin"),
            ("/admin/.", "/admin/"),
            ("/admin/x/..", "/admin/"),
            ("///", "/"),
            ("/a//b///c", "/a/b/c"),
            ("/%7euser", "/~user"),
            ("/a%3fb", "/a%3Fb"),
            ("/caf%c3%a9", "/caf%C3%A9"),
        ] {
            assert_eq!(n(raw).as_deref(), Ok(want), "{raw}");
        }
    }

    #[test]
    fn encoded_separators_and_bad_escapes_are_refused() {
        for raw in [
            "/admin%2fsecret.txt",
            "/admin%2Fsecret.txt",
            "/admin%5csecret.txt",
            "/admin\\secret.txt",
            "/a%00",
            "/a%",
            "/a%4",
            "/a%zz",
        ] {
            assert!(n(raw).is_err(), "{raw}");
        }
    }

    #[test]
    fn normalising_twice_changes_nothing() {
        for raw in [
            "/a/./b/../c//d/%2e%2e/e",
            "/%41%42/../%43",
            "/x/..",
            "/caf%c3%a9",
        ] {
            let once = n(raw).expect("normal");
            assert_eq!(n(&once).expect("normal"), once, "{raw}");
            assert!(matches!(normalise(&once), Ok(Cow::Borrowed(_))), "{once}");
        }
    }
}
