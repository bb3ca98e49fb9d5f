//! Compose variable interpolation of one string value.
//!
//! Implements the syntax of the Compose specification, section "Interpolation"
//! (`12-interpolation.md`), with the exact behaviour of Docker Compose v2, whose
//! reference is the `template` package of `compose-spec/compose-go` (v2.x,
//! `template/template.go`). The code here is a reimplementation, not a port: the
//! Go code matches one regular expression and then counts braces, and this module
//! reproduces the result of that procedure with a hand-written scanner.
//!
//! Accepted forms (`NAME` matches `[_a-zA-Z][_a-zA-Z0-9]*`):
//!
//! | form               | result                                                    |
//! |--------------------|-----------------------------------------------------------|
//! | `$$`               | a literal `$`                                             |
//! | `$NAME`, `${NAME}` | the value of `NAME`, or the empty string if it is unset   |
//! | `${NAME:-default}` | `default` if `NAME` is unset or empty, else its value     |
//! | `${NAME-default}`  | `default` if `NAME` is unset, else its value              |
//! | `${NAME:?message}` | an error if `NAME` is unset or empty, else its value      |
//! | `${NAME?message}`  | an error if `NAME` is unset, else its value               |
//! | `${NAME:+alt}`     | `alt` if `NAME` is set and not empty, else its value      |
//! | `${NAME+alt}`      | `alt` if `NAME` is set, else the empty string             |
//!
//! Details that follow compose-go:
//!
//! * `default`, `alt` and `message` are themselves interpolated, so templates
//!   nest (`${A:-${B:-x}}`); they are interpolated only when they are used, so an
//!   error inside an unused default is not reported (compose-go v2.13 order).
//! * A `$` followed by anything else than `$`, `{` or a name start (a digit,
//!   `-`, `}`, a space, the end of the string, ...) is kept as a literal `$`.
//! * `${` must be followed by a name, then either `}` or an operator whose
//!   closing `}` is on the same line; anything else (`${`, `${}`, `${ A}`,
//!   `${A }`, `${A!}`, a default running past the end of the line) is an
//!   [`InterpolationErrorKind::InvalidTemplate`] error.
//! * The argument of an operator ends at the first `}` that balances the
//!   opening `${`, counting every `{` inside it (so `${A:-{x}}` has the default
//!   `{x}`); without a balancing `}` it runs to the last `}` of the line.
//! * The operator is the one right after the name; later operator characters
//!   belong to the argument (`${A-x:?y}` has the default `x:?y`).
//! * The first error from the left is returned.
//!
//! Deliberate differences: compose-go matches names case-insensitively with
//! Unicode case folding, so it also accepts the Kelvin sign and the long s
//! (`ſ`) in names; here names are ASCII only. Nesting of templates inside
//! arguments is limited to [`MAX_NESTING`] levels (an error beyond), so that no
//! input can exhaust the stack. An unset variable without operator silently
//! becomes the empty string (compose-go logs a warning; callers that want one
//! can detect unset names with their `lookup`).

use std::fmt;

/// How many templates may be nested in one another (through defaults,
/// alternatives and messages) before interpolation gives up with an error.
pub const MAX_NESTING: usize = 64;

/// Why [`interpolate`] failed.
#[derive(Debug, Clone, PartialEq)]
pub struct InterpolationError {
    /// The kind of failure, for callers that react to it.
    pub kind: InterpolationErrorKind,
    /// A message for humans: lowercase, no trailing period.
    pub message: String,
}

/// The kinds of [`InterpolationError`].
#[derive(Debug, Clone, PartialEq)]
pub enum InterpolationErrorKind {
    /// `${VAR:?msg}` or `${VAR?msg}` met an unset (or, for `:?`, empty) variable.
    Required {
        /// The name of the variable that has no value.
        variable: String,
    },
    /// The string contains a malformed `${...}`.
    InvalidTemplate,
}

impl fmt::Display for InterpolationError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for InterpolationError {}

/// Interpolates the Compose string `input`, resolving variables with `lookup`
/// (`None` means unset, `Some("")` means set and empty).
///
/// ```text
/// interpolate("${HOST:-localhost}:$$PORT", ..) == Ok("localhost:$PORT") // HOST unset
/// ```
pub fn interpolate(
    input: &str,
    lookup: &dyn Fn(&str) -> Option<String>,
) -> Result<String, InterpolationError> {
    interpolate_reporting_unset(input, lookup, &|_| {})
}

/// [`interpolate`], calling `unset` with the name of every variable written without a default
/// (`$NAME`, `${NAME}`) that `lookup` does not know and that therefore becomes an empty string:
/// compose-go's `DefaultReplacementAppliedFunc` warns about exactly these.
pub fn interpolate_reporting_unset(
    input: &str,
    lookup: &dyn Fn(&str) -> Option<String>,
    unset: &dyn Fn(&str),
) -> Result<String, InterpolationError> {
    Interpolator {
        input,
        lookup,
        unset,
    }
    .substitute(input, 0)
}

/// The operators allowed after a name in `${NAME<op>arg}`.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Op {
    /// `:-`
    DefaultIfEmpty,
    /// `-`
    DefaultIfUnset,
    /// `:?`
    ErrorIfEmpty,
    /// `?`
    ErrorIfUnset,
    /// `:+`
    AltIfNonEmpty,
    /// `+`
    AltIfSet,
}

struct Interpolator<'a> {
    /// The whole value, quoted in error messages.
    input: &'a str,
    lookup: &'a dyn Fn(&str) -> Option<String>,
    /// Told about every variable without a default that is not set.
    unset: &'a dyn Fn(&str),
}

fn is_name_start(b: u8) -> bool {
    b == b'_' || b.is_ascii_alphabetic()
}

fn is_name_char(b: u8) -> bool {
    b == b'_' || b.is_ascii_alphanumeric()
}

/// The end of the name that starts at `start` (which must be a name start).
fn name_end(bytes: &[u8], start: usize) -> usize {
    let len = bytes[start..]
        .iter()
        .take_while(|&&b| is_name_char(b))
        .count();
    start + len
}

/// The operator at `at`, if any, with its length in bytes.
fn operator_at(bytes: &[u8], at: usize) -> Option<(Op, usize)> {
    let colon = bytes.get(at) == Some(&b':');
    let sign = bytes.get(if colon { at + 1 } else { at })?;
    let op = match (colon, sign) {
        (true, b'-') => Op::DefaultIfEmpty,
        (false, b'-') => Op::DefaultIfUnset,
        (true, b'?') => Op::ErrorIfEmpty,
        (false, b'?') => Op::ErrorIfUnset,
        (true, b'+') => Op::AltIfNonEmpty,
        (false, b'+') => Op::AltIfSet,
        _ => return None,
    };
    Some((op, if colon { 2 } else { 1 }))
}

/// Index of the `}` that balances the `{` of a template `s` starting with
/// `${`. Every `{` opens a level and the character after it is skipped, as
/// compose-go's `getFirstBraceClosingIndex` does.
fn balancing_brace(s: &[u8]) -> Option<usize> {
    let mut open: i64 = 0;
    let mut i = 0;
    while i < s.len() {
        if s[i] == b'}' {
            open -= 1;
            if open == 0 {
                return Some(i);
            }
        }
        if s[i] == b'{' {
            open += 1;
            i += 1;
        }
        i += 1;
    }
    None
}

/// Caches, for the line being scanned, its end and its last `}`.
#[derive(Default)]
struct LineCache {
    /// Byte range of the cached line content (`start..end`, `end` at the
    /// newline or the end of the string).
    start: usize,
    end: usize,
    last_brace: Option<usize>,
    valid: bool,
}

impl LineCache {
    /// The end of the line containing `at` and the last `}` on that line.
    fn line_of(&mut self, s: &str, at: usize) -> (usize, Option<usize>) {
        if !(self.valid && self.start <= at && at <= self.end) {
            let start = s[..at].rfind('\n').map_or(0, |p| p + 1);
            let end = s[at..].find('\n').map_or(s.len(), |p| at + p);
            self.start = start;
            self.end = end;
            self.last_brace = s[start..end].rfind('}').map(|p| start + p);
            self.valid = true;
        }
        (self.end, self.last_brace)
    }
}

impl Interpolator<'_> {
    /// The value of a variable written without a default: empty, and reported, when unset.
    fn plain(&self, name: &str) -> String {
        match (self.lookup)(name) {
            Some(value) => value,
            None => {
                (self.unset)(name);
                String::new()
            }
        }
    }

    fn substitute(&self, template: &str, depth: usize) -> Result<String, InterpolationError> {
        if !template.contains('$') {
            return Ok(template.to_owned());
        }
        if depth >= MAX_NESTING {
            return Err(self.invalid(format!(
                "templates are nested more than {MAX_NESTING} levels deep; \
                 simplify the defaults or escape a literal $ as $$"
            )));
        }
        let bytes = template.as_bytes();
        let mut out = String::with_capacity(template.len());
        let mut lines = LineCache::default();
        let mut i = 0;
        while let Some(offset) = template[i..].find('$') {
            let start = i + offset;
            out.push_str(&template[i..start]);
            match bytes.get(start + 1) {
                Some(b'$') => {
                    out.push('$');
                    i = start + 2;
                }
                Some(&b) if is_name_start(b) => {
                    let end = name_end(bytes, start + 1);
                    out.push_str(&self.plain(&template[start + 1..end]));
                    i = end;
                }
                Some(b'{') => {
                    let (value, end) = self.braced(template, start, depth, &mut lines)?;
                    out.push_str(&value);
                    i = end;
                }
                _ => {
                    out.push('$');
                    i = start + 1;
                }
            }
        }
        out.push_str(&template[i..]);
        Ok(out)
    }

    /// Replaces the `${...}` starting at `start`; returns its value and the
    /// index where scanning resumes.
    ///
    /// compose-go first matches up to the last `}` of the line, cuts that match
    /// at the balancing `}`, and interpolates the text after the cut on its
    /// own. That text ends with the last `}` of the line, so interpolating it
    /// separately gives the same result as resuming the scan at the cut, which
    /// is what happens here.
    fn braced(
        &self,
        template: &str,
        start: usize,
        depth: usize,
        lines: &mut LineCache,
    ) -> Result<(String, usize), InterpolationError> {
        let bytes = template.as_bytes();
        let name_start = start + 2;
        let (line_end, last_brace) = lines.line_of(template, name_start);
        if !bytes.get(name_start).is_some_and(|&b| is_name_start(b)) {
            return Err(self.malformed(template, start, line_end));
        }
        let name_stop = name_end(bytes, name_start);
        let name = &template[name_start..name_stop];

        let Some((op, op_len)) = operator_at(bytes, name_stop) else {
            if bytes.get(name_stop) == Some(&b'}') {
                return Ok((self.plain(name), name_stop + 1));
            }
            return Err(self.malformed(template, start, line_end));
        };
        let arg_start = name_stop + op_len;
        let match_end = match last_brace {
            Some(brace) if brace >= arg_start => brace + 1,
            _ => return Err(self.malformed(template, start, line_end)),
        };
        let head_end =
            balancing_brace(&bytes[start..match_end]).map_or(match_end, |p| start + p + 1);
        // `head_end - 1` is a `}` at or after `arg_start`.
        let arg = &template[arg_start..head_end - 1];

        let value = (self.lookup)(name);
        let result = match op {
            Op::DefaultIfEmpty => match value {
                Some(v) if !v.is_empty() => v,
                _ => self.substitute(arg, depth + 1)?,
            },
            Op::DefaultIfUnset => match value {
                Some(v) => v,
                None => self.substitute(arg, depth + 1)?,
            },
            Op::AltIfNonEmpty => match value {
                Some(v) if !v.is_empty() => self.substitute(arg, depth + 1)?,
                other => other.unwrap_or_default(),
            },
            Op::AltIfSet => match value {
                Some(_) => self.substitute(arg, depth + 1)?,
                None => String::new(),
            },
            Op::ErrorIfEmpty => match value {
                Some(v) if !v.is_empty() => v,
                _ => return Err(self.required(name, arg, depth)),
            },
            Op::ErrorIfUnset => match value {
                Some(v) => v,
                None => return Err(self.required(name, arg, depth)),
            },
        };
        Ok((result, head_end))
    }

    fn required(&self, name: &str, arg: &str, depth: usize) -> InterpolationError {
        let reason = match self.substitute(arg, depth + 1) {
            Ok(reason) => reason,
            Err(err) => return err,
        };
        let message = if reason.is_empty() {
            format!("required variable {name} is missing a value")
        } else {
            format!("required variable {name} is missing a value: {reason}")
        };
        InterpolationError {
            kind: InterpolationErrorKind::Required {
                variable: name.to_owned(),
            },
            message,
        }
    }

    /// The error for a `${` at `start` that is not a valid template.
    fn malformed(&self, template: &str, start: usize, line_end: usize) -> InterpolationError {
        const ESCAPE: &str = "escape a literal $ as $$";
        let after = &template[start + 2..line_end.max(start + 2)];
        let Some(close) = after.find('}') else {
            return self.invalid(format!(
                "unclosed \"${{\"; close it with \"}}\" on the same line or {ESCAPE}"
            ));
        };
        let fragment = &template[start..start + 2 + close + 1];
        let inner = &after.as_bytes()[..close];
        let reason = match inner.first() {
            None => format!("{fragment:?} has no variable name; write ${{NAME}} or {ESCAPE}"),
            Some(&b) if !is_name_start(b) => format!(
                "{fragment:?} does not start with a variable name \
                 ([_a-zA-Z][_a-zA-Z0-9]*); {ESCAPE}"
            ),
            Some(_) => {
                let stop = name_end(inner, 0);
                let name = &after[..stop];
                let rest = &after[stop..close];
                let take = if rest.starts_with(':') { 2 } else { 1 };
                let unexpected: String = rest.chars().take(take).collect();
                format!(
                    "unexpected {unexpected:?} after variable name {name:?} in {fragment:?}; \
                     expected \"}}\" or one of :-, -, :?, ?, :+, +; {ESCAPE}"
                )
            }
        };
        self.invalid(reason)
    }

    fn invalid(&self, reason: String) -> InterpolationError {
        InterpolationError {
            kind: InterpolationErrorKind::InvalidTemplate,
            message: format!(
                "invalid interpolation format for {:?}: {reason}",
                self.input
            ),
        }
    }
}

/// A variable a Compose file uses, as compose-go's `template.ExtractVariables` describes it
/// (`config --variables`).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Variable {
    pub name: String,
    /// The default of `${NAME:-default}` or `${NAME-default}`, else empty.
    pub default_value: String,
    /// The alternative of `${NAME:+alt}` or `${NAME+alt}`, else empty.
    pub presence_value: String,
    /// Written `${NAME:?message}` or `${NAME?message}` at least once.
    pub required: bool,
}

/// Adds the variables that `input` uses to `out`, as compose-go's `ExtractVariables` finds them
/// with its pattern: `$NAME`, `${NAME}` and `${NAME<op>arg}` (whose argument ends at the last `}`
/// of the line), not `$$`; the variables inside a default, alternative or message too. A variable
/// used several times is required as soon as one use is, and keeps the first default and
/// alternative given (`combineVariable`). A malformed `${` is left out (compose-go lists it as a
/// variable with an empty name).
pub fn extract_variables(input: &str, out: &mut std::collections::BTreeMap<String, Variable>) {
    let mut found = Vec::new();
    extract(input, &mut found, 0);
    for v in found {
        match out.get_mut(&v.name) {
            None => {
                out.insert(v.name.clone(), v);
            }
            Some(existing) => {
                existing.required |= v.required;
                if existing.default_value.is_empty() {
                    existing.default_value = v.default_value;
                }
                if existing.presence_value.is_empty() {
                    existing.presence_value = v.presence_value;
                }
            }
        }
    }
}

fn extract(s: &str, found: &mut Vec<Variable>, depth: usize) {
    if depth > MAX_NESTING {
        return;
    }
    let b = s.as_bytes();
    let mut i = 0;
    while i < b.len() {
        if b[i] != b'$' {
            i += 1;
            continue;
        }
        match b.get(i + 1) {
            Some(b'$') => i += 2,
            Some(&c) if is_name_start(c) => {
                let end = name_end(b, i + 1);
                found.push(Variable {
                    name: s[i + 1..end].to_string(),
                    ..Variable::default()
                });
                i = end;
            }
            Some(b'{') if b.get(i + 2).is_some_and(|&c| is_name_start(c)) => {
                let end = name_end(b, i + 2);
                let line_end = b[i..]
                    .iter()
                    .position(|&c| c == b'\n')
                    .map_or(b.len(), |p| i + p);
                // The pattern's match: `${NAME}`, or `${NAME<op>...}` up to the line's last `}`.
                let close = if operator_at(b, end).is_some() {
                    b[end..line_end]
                        .iter()
                        .rposition(|&c| c == b'}')
                        .map(|p| end + p)
                        .or_else(|| (b.get(end) == Some(&b'}')).then_some(end))
                } else {
                    (b.get(end) == Some(&b'}')).then_some(end)
                };
                let Some(close) = close else {
                    i += 2;
                    continue;
                };
                let m = &s[i..=close];
                let mut val = &s[i + 2..close];
                if let Some(first) = balancing_brace(m.as_bytes())
                    && first > 0
                {
                    val = &m[2..first];
                    if m.len() > first + 1 {
                        extract(&m[first + 1..], found, depth + 1);
                    }
                }
                let name_len = val.bytes().take_while(|&c| is_name_char(c)).count();
                let (name, rest) = val.split_at(name_len);
                let mut v = Variable {
                    name: name.to_string(),
                    ..Variable::default()
                };
                let mut nested = "";
                if let Some(m) = rest.strip_prefix(":?").or_else(|| rest.strip_prefix('?')) {
                    v.required = true;
                    nested = m;
                } else if let Some(d) = rest.strip_prefix(":-").or_else(|| rest.strip_prefix('-')) {
                    v.default_value = d.to_string();
                    nested = d;
                } else if let Some(a) = rest.strip_prefix(":+").or_else(|| rest.strip_prefix('+')) {
                    v.presence_value = a.to_string();
                    nested = a;
                }
                found.push(v);
                if !nested.is_empty() {
                    extract(nested, found, depth + 1);
                }
                i = close + 1;
            }
            _ => i += 1,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn variables(inputs: &[&str]) -> Vec<(String, String, String, bool)> {
        let mut out = std::collections::BTreeMap::new();
        for i in inputs {
            extract_variables(i, &mut out);
        }
        out.into_values()
            .map(|v| (v.name, v.default_value, v.presence_value, v.required))
            .collect()
    }

    fn var(
        name: &str,
        default: &str,
        presence: &str,
        required: bool,
    ) -> (String, String, String, bool) {
        (name.into(), default.into(), presence.into(), required)
    }

    #[test]
    fn variables_are_extracted_as_compose_go_does() {
        assert_eq!(
            variables(&["$A ${B} ${C:-x} ${D-y} ${E:?m} ${F?m} ${G:+p} ${H+q} $$I"]),
            [
                var("A", "", "", false),
                var("B", "", "", false),
                var("C", "x", "", false),
                var("D", "y", "", false),
                var("E", "", "", true),
                var("F", "", "", true),
                var("G", "", "p", false),
                var("H", "", "q", false),
            ]
        );
        // Nested templates in defaults, alternatives and messages; text after the first
        // balancing brace is searched too.
        assert_eq!(
            variables(&["${A:-${B:-z}}-${C:?${D}} ${E:-{x}}"]),
            [
                var("A", "${B:-z}", "", false),
                var("B", "z", "", false),
                var("C", "", "", true),
                var("D", "", "", false),
                var("E", "{x}", "", false),
            ]
        );
        // Several uses: required once required, the first default and alternative kept.
        assert_eq!(
            variables(&["${A}", "${A:-one}", "${A:?m}", "${A:-two}"]),
            [var("A", "one", "", true)]
        );
        // Malformed templates are left out.
        assert_eq!(variables(&["${", "${}", "${ A}", "${A!}", "$1"]), []);
    }
    use proptest::prelude::*;
    use std::collections::HashMap;

    /// The mapping of compose-go's template tests: `FOO=first`, `BAR=""`.
    fn defaults(name: &str) -> Option<String> {
        match name {
            "FOO" => Some("first".to_owned()),
            "BAR" => Some(String::new()),
            _ => None,
        }
    }

    fn ok(template: &str) -> String {
        match interpolate(template, &defaults) {
            Ok(s) => s,
            Err(e) => panic!("{template:?} failed: {}", e.message),
        }
    }

    fn err(template: &str) -> InterpolationError {
        match interpolate(template, &defaults) {
            Ok(s) => panic!("{template:?} gave {s:?} instead of an error"),
            Err(e) => e,
        }
    }

    #[test]
    fn plain_strings_and_escapes() {
        assert_eq!(ok("foo"), "foo");
        assert_eq!(ok(""), "");
        assert_eq!(ok("$${foo}"), "${foo}");
        assert_eq!(ok("$$FOO"), "$FOO");
        assert_eq!(ok("$$$FOO"), "$first");
        assert_eq!(ok("$$$$"), "$$");
    }

    #[test]
    fn lone_dollar_stays_literal() {
        for t in [
            "a $ string",
            "^REGEX$",
            "$}",
            "$",
            "$1",
            "$-x",
            "cost: 5$ or 6$!",
            "$é",
        ] {
            assert_eq!(ok(t), t);
        }
    }

    #[test]
    fn named_and_braced() {
        assert_eq!(ok("This $FOO var"), "This first var");
        assert_eq!(ok("This ${FOO} var"), "This first var");
        assert_eq!(ok("This ${missing} var"), "This  var");
        assert_eq!(ok("This ${BAR} var"), "This  var");
        assert_eq!(ok("$FOO$FOO"), "firstfirst");
        assert_eq!(ok("${FOO}${FOO}"), "firstfirst");
        // A name stops at the first character that is not [_a-zA-Z0-9].
        assert_eq!(ok("$FOO-bar"), "first-bar");
        assert_eq!(ok("$FOO.bar"), "first.bar");
        assert_eq!(ok("$FOObar"), "");
        assert_eq!(ok("${FOO}bar"), "firstbar");
        assert_eq!(ok("$_"), "");
    }

    #[test]
    fn defaults_and_alternatives() {
        assert_eq!(ok("ok ${missing:-def}"), "ok def");
        assert_eq!(ok("ok ${missing-def}"), "ok def");
        assert_eq!(ok("ok ${BAR:-def}"), "ok def");
        assert_eq!(ok("ok ${FOO:-def}"), "ok first");
        assert_eq!(ok("ok ${BAR-def}"), "ok ");
        assert_eq!(ok("ok ${FOO-def}"), "ok first");
        assert_eq!(ok("ok ${UNSET_VAR:+presence_value}"), "ok ");
        assert_eq!(ok("ok ${UNSET_VAR+presence_value}"), "ok ");
        assert_eq!(ok("ok ${FOO:+presence_value}"), "ok presence_value");
        assert_eq!(ok("ok ${FOO+presence_value}"), "ok presence_value");
        assert_eq!(ok("ok ${BAR+presence_value}"), "ok presence_value");
        assert_eq!(ok("ok ${BAR:+presence_value}"), "ok ");
        assert_eq!(ok("ok ${BAR:-/non:-alphanumeric}"), "ok /non:-alphanumeric");
        assert_eq!(ok("${missing:-}"), "");
        assert_eq!(ok("${missing:-a b  c}"), "a b  c");
    }

    #[test]
    fn outer_text_does_not_change_the_operator() {
        let cases = [
            ("-ok ${BAR:-defaultValue}", "-ok defaultValue"),
            ("+ok ${UNSET:-${BAR-defaultValue}}", "+ok "),
            ("-ok ${FOO:-defaultValue}", "-ok first"),
            (":-ok ${UNSET-defaultValue}", ":-ok defaultValue"),
            (":-ok ${BAR-defaultValue}", ":-ok "),
            (":?ok ${BAR-defaultValue}", ":?ok "),
            (":?ok ${BAR:-defaultValue}", ":?ok defaultValue"),
            (":+ok ${BAR:-defaultValue}", ":+ok defaultValue"),
            ("+ok ${BAR-defaultValue}", "+ok "),
            ("?ok ${BAR:-defaultValue}", "?ok defaultValue"),
        ];
        for (template, expected) in cases {
            assert_eq!(ok(template), expected, "{template}");
        }
    }

    #[test]
    fn nested_templates() {
        let cases = [
            ("ok ${UNSET_VAR-$FOO}", "ok first"),
            ("ok ${UNSET_VAR-${FOO}}", "ok first"),
            ("ok ${UNSET_VAR-${FOO} ${FOO}}", "ok first first"),
            ("ok ${BAR:-$FOO}", "ok first"),
            ("ok ${BAR:-${FOO}}", "ok first"),
            ("ok ${BAR:-${FOO} ${FOO}}", "ok first first"),
            ("ok ${BAR+$FOO}", "ok first"),
            ("ok ${BAR+$FOO ${FOO:+second}}", "ok first second"),
            ("${A:-${B:-x}}", "x"),
            ("${A:-${B:-${C:-deep}}}", "deep"),
            ("${A:-${FOO:-x}}", "first"),
            ("${A:-$$}", "$"),
            ("${A:-$${B}}", "${B}"),
        ];
        for (template, expected) in cases {
            assert_eq!(ok(template), expected, "{template}");
        }
    }

    #[test]
    fn operator_is_the_first_after_the_name() {
        assert_eq!(ok("${UNSET_VAR-myerror?msg}"), "myerror?msg");
        assert_eq!(ok("${FOO?bar-baz}"), "first");
        assert_eq!(ok("${UNSET-x:?y}"), "x:?y");
        assert_eq!(ok("${UNSET:-a-b}"), "a-b");
        assert_eq!(ok("${UNSET-a:-b}"), "a:-b");
        assert_eq!(
            ok("${BAR:-default_value_for_empty_var}"),
            "default_value_for_empty_var"
        );
        let e = err("${UNSET_VAR?bar-baz}");
        assert_eq!(
            e.message,
            "required variable UNSET_VAR is missing a value: bar-baz"
        );
    }

    #[test]
    fn several_templates_on_one_line() {
        assert_eq!(ok("${A:-x} and ${B:-y}"), "x and y");
        assert_eq!(ok("${A:-x}}"), "x}");
        assert_eq!(ok("${A-}}}"), "}}");
        assert_eq!(ok("${A:-x} ${FOO} $FOO ${B+z}."), "x first first .");
        assert_eq!(ok("a${A:-1}b${A:-2}c"), "a1b2c");
    }

    #[test]
    fn braces_inside_arguments() {
        // Every `{` opens a level, as in compose-go.
        assert_eq!(ok("${A:-{x}}"), "{x}");
        assert_eq!(ok("${A:-{x}"), "{x");
        assert_eq!(ok("${A:-{}}"), "{}");
        assert_eq!(ok(r#"${A:-{"k": 1}}"#), r#"{"k": 1}"#);
        // The `}` closing a default's `{` does not end the template...
        assert_eq!(ok("${FOO:-{x}}"), "first");
        assert_eq!(ok("${FOO:-{x}}y"), "firsty");
        // ...and, as in compose-go, the character right after a `{` is
        // skipped while counting, so `{}` opens a level that `}` closes later.
        assert_eq!(ok("${FOO:-{}}}"), "first");
        assert_eq!(ok("${FOO:-{}}"), "first");
    }

    #[test]
    fn templates_end_on_their_line() {
        assert_eq!(ok("${A:-x}\n}"), "x\n}");
        assert_eq!(
            ok("line1 $FOO\nline2 ${FOO}\n"),
            "line1 first\nline2 first\n"
        );
        assert_eq!(ok("${A:-x}\n${B:-y}"), "x\ny");
        assert_eq!(ok("${A:-x\r}"), "x\r");
        let e = err("${A:-x\ny}");
        assert_eq!(e.kind, InterpolationErrorKind::InvalidTemplate);
    }

    #[test]
    fn required_variables() {
        let cases = [
            (
                "not ok ${UNSET_VAR:?Mandatory Variable Unset}",
                "UNSET_VAR",
                "required variable UNSET_VAR is missing a value: Mandatory Variable Unset",
            ),
            (
                "not ok ${BAR:?Mandatory Variable Empty}",
                "BAR",
                "required variable BAR is missing a value: Mandatory Variable Empty",
            ),
            (
                "not ok ${UNSET_VAR:?}",
                "UNSET_VAR",
                "required variable UNSET_VAR is missing a value",
            ),
            (
                "not ok ${UNSET_VAR?Mandatory Variable Unset}",
                "UNSET_VAR",
                "required variable UNSET_VAR is missing a value: Mandatory Variable Unset",
            ),
            (
                "not ok ${UNSET_VAR?}",
                "UNSET_VAR",
                "required variable UNSET_VAR is missing a value",
            ),
            (
                "not ok ${UNSET_VAR:?Mandatory Variable ${FOO}}",
                "UNSET_VAR",
                "required variable UNSET_VAR is missing a value: Mandatory Variable first",
            ),
            (
                "not ok ${UNSET_VAR?Mandatory Variable ${FOO}}",
                "UNSET_VAR",
                "required variable UNSET_VAR is missing a value: Mandatory Variable first",
            ),
            (
                "${DB_PASSWORD:?set it in .env}",
                "DB_PASSWORD",
                "required variable DB_PASSWORD is missing a value: set it in .env",
            ),
        ];
        for (template, variable, message) in cases {
            let e = err(template);
            assert_eq!(
                e,
                InterpolationError {
                    kind: InterpolationErrorKind::Required {
                        variable: variable.to_owned()
                    },
                    message: message.to_owned(),
                },
                "{template}"
            );
            assert_eq!(e.to_string(), message);
        }
    }

    #[test]
    fn required_variables_that_have_a_value() {
        assert_eq!(ok("ok ${FOO:?err}"), "ok first");
        assert_eq!(ok("ok ${FOO?err}"), "ok first");
        assert_eq!(ok("ok ${BAR?err}"), "ok ");
        // The message is only interpolated when it is reported.
        assert_eq!(ok("ok ${FOO:?${}}"), "ok first");
    }

    #[test]
    fn unused_arguments_are_not_interpolated() {
        assert_eq!(ok("${FOO:-${MISSING:?boom}}"), "first");
        assert_eq!(ok("${UNSET:+${MISSING:?boom}}"), "");
        let e = err("${UNSET:-${MISSING:?boom}}");
        assert_eq!(
            e.message,
            "required variable MISSING is missing a value: boom"
        );
    }

    #[test]
    fn first_error_wins() {
        let e = err("${A:?first} ${B:?second}");
        assert_eq!(e.message, "required variable A is missing a value: first");
        let e = err("${ bad} ${B:?second}");
        assert_eq!(e.kind, InterpolationErrorKind::InvalidTemplate);
        let e = err("${A:?${ bad}}");
        assert_eq!(e.kind, InterpolationErrorKind::InvalidTemplate);
    }

    #[test]
    fn invalid_templates() {
        for template in ["${", "${}", "${ }", "${ foo}", "${foo }", "${foo!}", "${1}"] {
            assert_eq!(
                err(template).kind,
                InterpolationErrorKind::InvalidTemplate,
                "{template}"
            );
        }
    }

    #[test]
    fn invalid_template_messages() {
        let cases = [
            (
                "${FOO",
                r#"invalid interpolation format for "${FOO": unclosed "${"; close it with "}" on the same line or escape a literal $ as $$"#,
            ),
            (
                "x ${A:-b",
                r#"invalid interpolation format for "x ${A:-b": unclosed "${"; close it with "}" on the same line or escape a literal $ as $$"#,
            ),
            (
                "a${}b",
                r#"invalid interpolation format for "a${}b": "${}" has no variable name; write ${NAME} or escape a literal $ as $$"#,
            ),
            (
                "${ foo}",
                r#"invalid interpolation format for "${ foo}": "${ foo}" does not start with a variable name ([_a-zA-Z][_a-zA-Z0-9]*); escape a literal $ as $$"#,
            ),
            (
                "${foo!}",
                r#"invalid interpolation format for "${foo!}": unexpected "!" after variable name "foo" in "${foo!}"; expected "}" or one of :-, -, :?, ?, :+, +; escape a literal $ as $$"#,
            ),
            (
                "${foo:x}",
                r#"invalid interpolation format for "${foo:x}": unexpected ":x" after variable name "foo" in "${foo:x}"; expected "}" or one of :-, -, :?, ?, :+, +; escape a literal $ as $$"#,
            ),
            (
                "${A:-x\ny}",
                r#"invalid interpolation format for "${A:-x\ny}": unclosed "${"; close it with "}" on the same line or escape a literal $ as $$"#,
            ),
        ];
        for (template, message) in cases {
            let e = err(template);
            assert_eq!(e.kind, InterpolationErrorKind::InvalidTemplate);
            assert_eq!(e.message, message, "{template}");
        }
    }

    #[test]
    fn nesting_limit() {
        let mut deep = String::from("x");
        for _ in 0..MAX_NESTING {
            deep = format!("${{A:-{deep}}}");
        }
        assert_eq!(ok(&deep), "x");
        let too_deep = format!("${{A:-{deep}}}");
        assert_eq!(err(&too_deep).kind, InterpolationErrorKind::InvalidTemplate);
        let unclosed = "${A:-".repeat(100_000);
        assert_eq!(err(&unclosed).kind, InterpolationErrorKind::InvalidTemplate);
        let huge = format!("{}x{}", "${A:-".repeat(100_000), "}".repeat(100_000));
        assert_eq!(err(&huge).kind, InterpolationErrorKind::InvalidTemplate);
    }

    #[test]
    fn lookup_sees_exact_names() {
        let seen = std::cell::RefCell::new(Vec::new());
        let lookup = |name: &str| {
            seen.borrow_mut().push(name.to_owned());
            None
        };
        let out = interpolate("$a1_b-$_X ${Y:-$Z} ${W+$V}", &lookup);
        assert_eq!(out, Ok("-  ".to_owned()));
        assert_eq!(*seen.borrow(), ["a1_b", "_X", "Y", "Z", "W"]);
    }

    fn env_strategy() -> impl Strategy<Value = HashMap<String, String>> {
        proptest::collection::hash_map("[A-D]", "[a-z$ ]{0,4}", 0..4)
    }

    fn with_env<'a>(env: &'a HashMap<String, String>) -> impl Fn(&str) -> Option<String> + 'a {
        move |name: &str| env.get(name).cloned()
    }

    proptest! {
        #[test]
        fn never_panics(input in any::<String>(), env in env_strategy()) {
            let _ = interpolate(&input, &with_env(&env));
        }

        #[test]
        fn never_panics_on_template_soup(
            input in r"[${}:?+\-AB_1 \né]{0,40}",
            env in env_strategy(),
        ) {
            let _ = interpolate(&input, &with_env(&env));
        }

        #[test]
        fn strings_without_dollar_are_unchanged(input in "[^$]*") {
            prop_assert_eq!(interpolate(&input, &defaults), Ok(input.clone()));
        }

        #[test]
        fn double_dollar_is_a_dollar(prefix in "[^$]*", suffix in "[^$]*") {
            let input = format!("{prefix}$${suffix}");
            prop_assert_eq!(interpolate(&input, &defaults), Ok(format!("{prefix}${suffix}")));
        }

        #[test]
        fn soft_default(value in proptest::option::of("[a-z ]{0,3}"), default in "[a-z ]{0,5}") {
            let lookup = |name: &str| if name == "V" { value.clone() } else { None };
            let expected = match &value {
                Some(v) if !v.is_empty() => v.clone(),
                _ => default.clone(),
            };
            prop_assert_eq!(interpolate(&format!("${{V:-{default}}}"), &lookup), Ok(expected));
        }

        #[test]
        fn hard_default(value in proptest::option::of("[a-z ]{0,3}"), default in "[a-z ]{0,5}") {
            let lookup = |name: &str| if name == "V" { value.clone() } else { None };
            let expected = value.clone().unwrap_or_else(|| default.clone());
            prop_assert_eq!(interpolate(&format!("${{V-{default}}}"), &lookup), Ok(expected));
        }

        #[test]
        fn escaping_every_dollar_round_trips(input in any::<String>(), extra in r"[${}:?\-A]{0,20}") {
            for original in [input, extra] {
                let escaped = original.replace('$', "$$");
                prop_assert_eq!(interpolate(&escaped, &defaults), Ok(original));
            }
        }
    }
}
