//! The `.env` / `env_file` format, parsed the way Docker Compose v2 parses it.
//!
//! The reference is the `dotenv` package of `compose-spec/compose-go` (v2.x,
//! `dotenv/parser.go` and `dotenv/godotenv.go`, itself derived from
//! `joho/godotenv`); this is a reimplementation of its behaviour, and
//! interpolation is done by [`crate::interpolate::interpolate`].
//!
//! The format, statement by statement:
//!
//! * A leading UTF-8 byte order mark is ignored. Blank lines and lines whose
//!   first non-blank character is `#` are skipped.
//! * `KEY=VALUE`, also `KEY: VALUE` (YAML style), optionally preceded by
//!   `export ` (`export` then at least one blank). Blanks around the key, the
//!   `=` and the value are ignored.
//! * A key is made of letters, digits, `_`, `.`, `-`, `[` and `]` (any other
//!   character is an error with its line number); it cannot contain blanks.
//!   `=value` (empty key) is accepted, as compose-go does.
//! * Unquoted values run to the end of the line; ` #` (space, hash) starts a
//!   comment; trailing blanks (including the `\r` of Windows line endings) are
//!   removed. A `#` not preceded by a space is part of the value.
//! * `'single quoted'` values are literal: no escapes, no interpolation, except
//!   that `\'` stands for `'` (a backslash before any other character is kept).
//!   They may span lines.
//! * `"double quoted"` values may span lines; `\"` stands for `"`, then the
//!   escapes `\a \b \f \n \r \t \v \\ \"` and the octal `\0NNN` are expanded,
//!   `\$` gives a literal `$`, and any other backslash is kept as is (`\x41`
//!   stays `\x41`). The result is interpolated.
//! * After a closing quote, the rest of the line may hold a ` # comment` or
//!   further statements (`A="1" B=2` sets both), as in compose-go.
//! * Unquoted and double-quoted values are interpolated with the full Compose
//!   syntax (`$VAR`, `${VAR:-default}`, `${VAR:?err}`, `$$`...). A variable is
//!   looked up first with `lookup` (for the project `.env` that is the process
//!   environment), then among the keys already parsed from this file (their
//!   latest value): compose-go's order, which lets the shell environment
//!   override the file.
//! * A line holding only a key (`KEY`) takes the value from `lookup` at parse
//!   time, as compose-go does. When `lookup` has no value, compose-go leaves
//!   the key out; here it is returned as `(KEY, None)` so that callers can
//!   report it, and filtering out `None` gives compose-go's result. Such an
//!   unresolved key never replaces a value set earlier in the file and is
//!   invisible to interpolation.
//!
//! The result keeps each key once, at the position of its first appearance,
//! with the value of its last assignment (compose-go returns an unordered map,
//! where the last assignment wins too).
//!
//! Deliberate differences from compose-go, besides the `None` above: a bare
//! key on the last line without a trailing newline is a bare key (compose-go
//! reads it as the value of an empty key); a key with a tab or another blank
//! inside is an error (compose-go only rejects the space character); error
//! line numbers point at the offending line (compose-go's counter may drift
//! after multi-line values).

use std::collections::HashMap;
use std::fmt;

use crate::interpolate::interpolate;

/// Why [`parse_dotenv`] failed.
#[derive(Debug, Clone, PartialEq)]
pub struct DotenvError {
    /// The line of the error, 1-based.
    pub line: u32,
    /// What is wrong: lowercase, no trailing period, no line number.
    pub message: String,
}

impl fmt::Display for DotenvError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "line {}: {}", self.line, self.message)
    }
}

impl std::error::Error for DotenvError {}

/// Parses the content of a `.env` or `env_file` file.
///
/// `lookup` resolves variables (`None` meaning unset), both for interpolation
/// and for bare `KEY` lines. Returns the keys in order of first appearance;
/// the value is `None` only for a bare `KEY` line that `lookup` cannot resolve
/// (see the module documentation).
pub fn parse_dotenv(
    text: &str,
    lookup: &dyn Fn(&str) -> Option<String>,
) -> Result<Vec<(String, Option<String>)>, DotenvError> {
    let src = text.strip_prefix('\u{FEFF}').unwrap_or(text);
    let mut parser = Parser {
        src,
        lookup,
        entries: Vec::new(),
        index: HashMap::new(),
    };
    parser.run()?;
    Ok(parser.entries)
}

/// Parses an `env_file` written with `format: raw`: each value exactly as written, with no quote
/// removal, no escapes and no interpolation.
///
/// This is the parser of `docker run --env-file` (docker/cli's `kvfile.ParseFromReader`), which
/// docker/compose registers with compose-go as the `raw` format (`rawEnv` in
/// `cmd/compose/compose.go`): a leading byte order mark is ignored; leading blanks of a line are
/// removed and trailing ones kept, as part of the value; blank lines and lines starting with `#`
/// are skipped; the key is everything before the first `=` and cannot be empty or contain a space
/// or a tab; a line without `=` takes its value from `lookup`, or is left out (`None`) when
/// `lookup` has none. Later assignments of a key win; keys keep the position of their first.
pub fn parse_raw_env(
    text: &str,
    lookup: &dyn Fn(&str) -> Option<String>,
) -> Result<Vec<(String, Option<String>)>, DotenvError> {
    let src = text.strip_prefix('\u{FEFF}').unwrap_or(text);
    let mut entries: Vec<(String, Option<String>)> = Vec::new();
    let mut index: HashMap<String, usize> = HashMap::new();
    for (number, line) in src.lines().enumerate() {
        let line_number = u32::try_from(number + 1).unwrap_or(u32::MAX);
        let line = line.trim_start();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let (key, value) = match line.split_once('=') {
            Some((key, value)) => (key, Some(value.to_string())),
            None => (line, None),
        };
        if key.is_empty() {
            return Err(DotenvError {
                line: line_number,
                message: format!("no variable name before `=` in {line:?}"),
            });
        }
        if key.contains([' ', '\t']) {
            return Err(DotenvError {
                line: line_number,
                message: format!("variable name {key:?} cannot contain whitespace"),
            });
        }
        let value = value.or_else(|| lookup(key));
        match index.get(key) {
            Some(&at) => {
                if value.is_some() {
                    entries[at].1 = value;
                }
            }
            None => {
                index.insert(key.to_string(), entries.len());
                entries.push((key.to_string(), value));
            }
        }
    }
    Ok(entries)
}

/// Blanks that do not end a line (compose-go's `isSpace`).
fn is_blank(c: char) -> bool {
    matches!(
        c,
        '\t' | '\u{0B}' | '\u{0C}' | '\r' | ' ' | '\u{85}' | '\u{A0}'
    )
}

fn is_key_char(c: char) -> bool {
    matches!(c, '_' | '.' | '-' | '[' | ']') || c.is_alphabetic() || c.is_numeric()
}

/// The first index at or after `from` whose character does not satisfy `skip`.
fn skip_while(s: &str, from: usize, skip: impl Fn(char) -> bool) -> usize {
    s[from..]
        .char_indices()
        .find(|&(_, c)| !skip(c))
        .map_or(s.len(), |(i, _)| from + i)
}

/// The text from `from` to the end of its line.
fn rest_of_line(s: &str, from: usize) -> &str {
    s[from..].split('\n').next().unwrap_or("")
}

struct Parser<'a> {
    src: &'a str,
    lookup: &'a dyn Fn(&str) -> Option<String>,
    entries: Vec<(String, Option<String>)>,
    /// Position of each key in `entries`.
    index: HashMap<String, usize>,
}

impl Parser<'_> {
    fn run(&mut self) -> Result<(), DotenvError> {
        let mut pos = 0;
        loop {
            pos = skip_while(self.src, pos, char::is_whitespace);
            if pos >= self.src.len() {
                return Ok(());
            }
            if self.src[pos..].starts_with('#') {
                match self.src[pos..].find('\n') {
                    Some(newline) => pos += newline,
                    None => return Ok(()),
                }
                continue;
            }
            pos = self.statement(pos)?;
        }
    }

    /// Parses the statement starting at `start`; returns where parsing resumes.
    fn statement(&mut self, start: usize) -> Result<usize, DotenvError> {
        let src = self.src;
        let mut key_start = start;
        if let Some(after) = src[start..].strip_prefix("export")
            && after.starts_with([' ', '\t', '\n', '\u{0C}', '\r'])
        {
            key_start = skip_while(src, start + "export".len(), is_blank);
        }

        let mut terminator = None;
        for (offset, c) in src[key_start..].char_indices() {
            let at = key_start + offset;
            match c {
                '=' | ':' | '\n' => {
                    terminator = Some((at, c));
                    break;
                }
                c if is_blank(c) || is_key_char(c) => {}
                c => {
                    return Err(self.error(
                        at,
                        format!(
                            "unexpected character {:?} in variable name {:?}; a name may only \
                             contain letters, digits, _, ., -, [ and ]",
                            c.to_string(),
                            rest_of_line(src, key_start),
                        ),
                    ));
                }
            }
        }
        // Without a terminator the key is the last line of the file.
        let (key_end, separator) = terminator.map_or((src.len(), '\n'), |(at, c)| (at, c));
        let next = (key_end + separator.len_utf8()).min(src.len());
        let key = src[key_start..key_end].trim_end_matches(char::is_whitespace);
        if key.contains(is_blank) {
            return Err(self.error(
                key_start,
                format!("variable name {key:?} cannot contain whitespace"),
            ));
        }

        if separator == '\n' {
            self.inherit(key);
            return Ok(next);
        }

        let value_start = skip_while(src, next, is_blank);
        let (value, resume) = match src[value_start..].chars().next() {
            Some(quote @ ('"' | '\'')) => self.quoted(key, value_start, quote)?,
            _ => self.unquoted(key, value_start)?,
        };
        self.set(key, Some(value));
        Ok(resume)
    }

    /// A value without quotes, from `start` to the end of the line.
    fn unquoted(&self, key: &str, start: usize) -> Result<(String, usize), DotenvError> {
        let line = rest_of_line(self.src, start);
        let end = start + line.len();
        let resume = (end + 1).min(self.src.len());
        let value = line.split(" #").next().unwrap_or("");
        let value = value.trim_end_matches(char::is_whitespace);
        Ok((self.expand(key, start, value)?, resume))
    }

    /// A value in `quote`s whose opening quote is at `start`.
    fn quoted(&self, key: &str, start: usize, quote: char) -> Result<(String, usize), DotenvError> {
        let body = start + quote.len_utf8();
        let mut raw = String::new();
        let mut escaped = false;
        for (offset, c) in self.src[body..].char_indices() {
            if escaped {
                escaped = false;
                if c != quote {
                    raw.push('\\');
                }
                raw.push(c);
            } else if c == '\\' {
                escaped = true;
            } else if c == quote {
                let resume = body + offset + c.len_utf8();
                let value = if quote == '"' {
                    self.expand(key, start, &expand_escapes(&raw))?
                } else {
                    raw
                };
                return Ok((value, resume));
            } else {
                raw.push(c);
            }
        }
        Err(self.error(
            start,
            format!(
                "unterminated quoted value {}; end the value with a closing {quote}",
                rest_of_line(self.src, start).trim_end_matches(char::is_whitespace),
            ),
        ))
    }

    /// Interpolates `value` (starting at `start`) of `key`.
    fn expand(&self, key: &str, start: usize, value: &str) -> Result<String, DotenvError> {
        let mapping = |name: &str| {
            (self.lookup)(name).or_else(|| {
                self.index
                    .get(name)
                    .and_then(|&i| self.entries.get(i))
                    .and_then(|(_, v)| v.clone())
            })
        };
        interpolate(value, &mapping)
            .map_err(|e| self.error(start, format!("in the value of {key:?}: {}", e.message)))
    }

    /// A bare `KEY` line: its value comes from `lookup`.
    fn inherit(&mut self, key: &str) {
        if key.is_empty() {
            return;
        }
        match (self.lookup)(key) {
            Some(value) => self.set(key, Some(value)),
            None => {
                if !self.index.contains_key(key) {
                    self.set(key, None);
                }
            }
        }
    }

    fn set(&mut self, key: &str, value: Option<String>) {
        if let Some(&i) = self.index.get(key)
            && let Some(entry) = self.entries.get_mut(i)
        {
            entry.1 = value;
            return;
        }
        self.index.insert(key.to_owned(), self.entries.len());
        self.entries.push((key.to_owned(), value));
    }

    fn error(&self, offset: usize, message: String) -> DotenvError {
        let end = offset.min(self.src.len());
        let newlines = self.src.as_bytes()[..end]
            .iter()
            .filter(|&&b| b == b'\n')
            .count();
        DotenvError {
            line: u32::try_from(newlines + 1).unwrap_or(u32::MAX),
            message,
        }
    }
}

/// Expands the backslash escapes of a double-quoted value, as compose-go's
/// `expandEscapes`: `\a \b \f \n \r \t \v \" \\` and `\0NNN` (three octal
/// digits, at most `\0377`) become the character; `\$` becomes `$$` so that
/// interpolation yields a literal `$`; anything else, including `\c` and a
/// malformed `\0...`, is kept verbatim.
fn expand_escapes(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = String::with_capacity(s.len());
    let mut i = 0;
    while let Some(offset) = s[i..].find('\\') {
        let at = i + offset;
        out.push_str(&s[i..at]);
        let simple = match bytes.get(at + 1) {
            Some(b'a') => Some("\u{07}"),
            Some(b'b') => Some("\u{08}"),
            Some(b'f') => Some("\u{0C}"),
            Some(b'n') => Some("\n"),
            Some(b'r') => Some("\r"),
            Some(b't') => Some("\t"),
            Some(b'v') => Some("\u{0B}"),
            Some(b'"') => Some("\""),
            Some(b'\\') => Some("\\"),
            Some(b'$') => Some("$$"),
            Some(b'c') => Some("\\c"),
            _ => None,
        };
        if let Some(replacement) = simple {
            out.push_str(replacement);
            i = at + 2;
        } else if bytes.get(at + 1) == Some(&b'0') {
            let digits_start = at + 2;
            let count = bytes[digits_start..]
                .iter()
                .take(3)
                .take_while(|b| b.is_ascii_digit())
                .count();
            let end = digits_start + count;
            match octal_byte(&bytes[digits_start..end]) {
                Some(b) => out.push(char::from(b)),
                None => out.push_str(&s[at..end]),
            }
            i = end;
        } else {
            out.push('\\');
            i = at + 1;
        }
    }
    out.push_str(&s[i..]);
    out
}

/// The value of exactly three octal digits, if it fits in a byte.
fn octal_byte(digits: &[u8]) -> Option<u8> {
    if digits.len() != 3 {
        return None;
    }
    let mut value: u32 = 0;
    for &d in digits {
        if !(b'0'..=b'7').contains(&d) {
            return None;
        }
        value = value * 8 + u32::from(d - b'0');
    }
    u8::try_from(value).ok()
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn no_env(_: &str) -> Option<String> {
        None
    }

    fn parse(text: &str) -> Vec<(String, Option<String>)> {
        match parse_dotenv(text, &no_env) {
            Ok(entries) => entries,
            Err(e) => panic!("{text:?} failed: {e}"),
        }
    }

    /// The entries of `text`, all expected to have a value.
    fn pairs(text: &str) -> Vec<(String, String)> {
        parse(text)
            .into_iter()
            .map(|(k, v)| match v {
                Some(v) => (k, v),
                None => panic!("{k} has no value in {text:?}"),
            })
            .collect()
    }

    fn kv(list: &[(&str, &str)]) -> Vec<(String, String)> {
        list.iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect()
    }

    /// Asserts that `text` defines exactly `key` with `value`.
    fn single(text: &str, key: &str, value: &str) {
        assert_eq!(pairs(text), kv(&[(key, value)]), "{text:?}");
    }

    fn parse_err(text: &str) -> DotenvError {
        match parse_dotenv(text, &no_env) {
            Ok(entries) => panic!("{text:?} gave {entries:?} instead of an error"),
            Err(e) => e,
        }
    }

    #[test]
    fn basic_assignments() {
        single("FOO=bar", "FOO", "bar");
        single("FOO =bar", "FOO", "bar");
        single("FOO= bar", "FOO", "bar");
        single("FOO = bar ", "FOO", "bar");
        single("FOO=foobar=", "FOO", "foobar=");
        single("FOO.BAR=foobar", "FOO.BAR", "foobar");
        single("OPTION_A=1:B", "OPTION_A", "1:B");
        single(
            "OPTION_A=postgres://localhost:5432/database?sslmode=disable",
            "OPTION_A",
            "postgres://localhost:5432/database?sslmode=disable",
        );
        single("=\"value\"", "", "value");
        single("a[1]=c", "a[1]", "c");
        single("VAR-WITH-DASHES=dashes", "VAR-WITH-DASHES", "dashes");
        single(
            "árvíztűrő-TÜKÖRFÚRÓGÉP=ÁRVÍZTŰRŐ-tükörfúrógép",
            "árvíztűrő-TÜKÖRFÚRÓGÉP",
            "ÁRVÍZTŰRŐ-tükörfúrógép",
        );
    }

    #[test]
    fn yaml_style_separator() {
        single("OPTION_A: 1", "OPTION_A", "1");
        single("OPTION_A: Foo=bar", "OPTION_A", "Foo=bar");
    }

    #[test]
    fn leading_whitespace_and_export() {
        single(" KEY =value", "KEY", "value");
        single("   KEY=value", "KEY", "value");
        single("\tKEY=value", "KEY", "value");
        single("export OPTION_A=2", "OPTION_A", "2");
        single("export OPTION_B='\\n'", "OPTION_B", "\\n");
        single("export exportFoo=2", "exportFoo", "2");
        single("exportFOO=2", "exportFOO", "2");
        single("export_FOO =2", "export_FOO", "2");
        single("export.FOO= 2", "export.FOO", "2");
        single("export\tOPTION_A=2", "OPTION_A", "2");
        single("  export OPTION_A=2", "OPTION_A", "2");
        single("\texport OPTION_A=2", "OPTION_A", "2");
        single("export OPTION_A=\"export A\"", "OPTION_A", "export A");
        single("export=1", "export", "1");
    }

    #[test]
    fn comments_and_blank_lines() {
        for text in [
            "",
            "\n",
            "\r\n",
            "\t\t ",
            "# Comment",
            "\t # comment",
            "#A=1\n  # B=2\n",
        ] {
            assert_eq!(parse(text), Vec::new(), "{text:?}");
        }
        assert_eq!(
            pairs("# head\nA=1\n\n  # indented\nB=2 # tail\n#C=3"),
            kv(&[("A", "1"), ("B", "2")])
        );
    }

    #[test]
    fn inline_comments() {
        single("FOO=bar # this is foo", "FOO", "bar");
        single("FOO=bar #this is foo", "FOO", "bar");
        single("FOO=bar #", "FOO", "bar");
        single(
            "FOO=123#not-an-inline-comment",
            "FOO",
            "123#not-an-inline-comment",
        );
        single(
            "FOO=bar\t# tab is not a comment start",
            "FOO",
            "bar\t# tab is not a comment start",
        );
        single("FOO= #bar", "FOO", "#bar");
        single("FOO=\"bar#baz\"", "FOO", "bar#baz");
        single("FOO=\"bar#baz\"#", "FOO", "bar#baz");
        single("FOO=\"bar#baz\" # comment", "FOO", "bar#baz");
        single("FOO='bar#baz' # comment", "FOO", "bar#baz");
        single("FOO=\"bar#baz#bang\" # comment", "FOO", "bar#baz#bang");
        single("FOO=\"ba#r\"", "FOO", "ba#r");
        single("FOO='ba#r'", "FOO", "ba#r");
    }

    #[test]
    fn quoted_values() {
        single("FOO=\"bar\"", "FOO", "bar");
        single("FOO='bar'", "FOO", "bar");
        single(r#"FOO="escaped\"bar""#, "FOO", "escaped\"bar");
        single(r#"FOO="\"quoted\"""#, "FOO", "\"quoted\"");
        single(r#"FOO="'d'""#, "FOO", "'d'");
        single(r"FOO='it\'s'", "FOO", "it's");
        single(r"FOO='a\nb\\c'", "FOO", r"a\nb\\c");
        single(r#"FOO="a\\""#, "FOO", "a\\");
        single("FOO=\"\"", "FOO", "");
        single("FOO=''", "FOO", "");
        single("FOO=\"  padded  \"", "FOO", "  padded  ");
    }

    #[test]
    fn quoted_fixture() {
        let text = "OPTION_A='1'\nOPTION_B='2'\nOPTION_C=''\nOPTION_D='\\n'\nOPTION_E=\"1\"\n\
                    OPTION_F=\"2\"\nOPTION_G=\"\"\nOPTION_H=\"\\n\"\nOPTION_I = \"echo 'asd'\"\n\
                    OPTION_J = 'first line\nsecond line\nthird line\nand so on'\n\
                    OPTION_Z = \"last value\"\n";
        assert_eq!(
            pairs(text),
            kv(&[
                ("OPTION_A", "1"),
                ("OPTION_B", "2"),
                ("OPTION_C", ""),
                ("OPTION_D", "\\n"),
                ("OPTION_E", "1"),
                ("OPTION_F", "2"),
                ("OPTION_G", ""),
                ("OPTION_H", "\n"),
                ("OPTION_I", "echo 'asd'"),
                ("OPTION_J", "first line\nsecond line\nthird line\nand so on"),
                ("OPTION_Z", "last value"),
            ])
        );
    }

    #[test]
    fn multi_line_values() {
        single(
            "TEST_URLS=\"stratum+tcp://stratum.antpool.com:3333\nstratum+tcp://stratum.antpool.com:443\"",
            "TEST_URLS",
            "stratum+tcp://stratum.antpool.com:3333\nstratum+tcp://stratum.antpool.com:443",
        );
        assert_eq!(
            pairs("A='x\ny'\nB=\"$A\nz\"\nC=3"),
            kv(&[("A", "x\ny"), ("B", "x\ny\nz"), ("C", "3")])
        );
    }

    #[test]
    fn escapes_in_double_quotes() {
        single(r#"FOO="bar\nbaz""#, "FOO", "bar\nbaz");
        single(r#"FOO="a\tb""#, "FOO", "a\tb");
        single(r"FOO=a\tb", "FOO", r"a\tb");
        single(
            r#"KEY="Z\aZ\bZ\fZ\nZ\rZ\tZ\vZ\\Z\0123Z""#,
            "KEY",
            "Z\u{07}Z\u{08}Z\u{0C}Z\nZ\rZ\tZ\u{0B}Z\\ZSZ",
        );
        single(r#"FOO="bar\n\ b\az""#, "FOO", "bar\n\\ b\u{07}z");
        single(r#"FOO="bar\\\n\ b\az""#, "FOO", "bar\\\n\\ b\u{07}z");
        single(r#"FOO="bar\\r\ b\az""#, "FOO", "bar\\r\\ b\u{07}z");
        single(r#"KEY="\0123""#, "KEY", "S");
        single(r#"KEY="\0377""#, "KEY", "\u{FF}");
        single(r#"KEY="\0400""#, "KEY", r"\0400");
        single(r#"KEY="\012""#, "KEY", r"\012");
        single(r#"KEY="\0""#, "KEY", r"\0");
        single(r#"KEY="\01234""#, "KEY", "S4");
        single(r#"KEY="\c""#, "KEY", r"\c");
        single(r#"KEY="\x07""#, "KEY", r"\x07");
        single(r#"KEY="\u12e4""#, "KEY", r"\u12e4");
        single(r#"KEY="\U00101234""#, "KEY", r"\U00101234");
    }

    #[test]
    fn interpolation() {
        assert_eq!(
            pairs("FOO=test\nBAR=$FOO"),
            kv(&[("FOO", "test"), ("BAR", "test")])
        );
        assert_eq!(
            pairs("FOO=test\nBAR=${FOO}bar"),
            kv(&[("FOO", "test"), ("BAR", "testbar")])
        );
        single("BAR=$FOO", "BAR", "");
        assert_eq!(
            pairs("FOO=test\nBAR=\"quote $FOO\""),
            kv(&[("FOO", "test"), ("BAR", "quote test")])
        );
        single("BAR='quote $FOO'", "BAR", "quote $FOO");
        single(r#"FOO="foo\$BAR""#, "FOO", "foo$BAR");
        single(r#"FOO="foo\${BAR}""#, "FOO", "foo${BAR}");
        assert_eq!(
            pairs("FOO=test\nBAR=\"foo\\${FOO} ${FOO}\""),
            kv(&[("FOO", "test"), ("BAR", "foo${FOO} test")])
        );
        single("FOO=$$BAR", "FOO", "$BAR");
        single(r"FOO=\$BAR", "FOO", "\\");
        single("PRICE=5$", "PRICE", "5$");
    }

    #[test]
    fn interpolation_operators() {
        let env = |name: &str| match name {
            "EMPTY_VAR" => Some(String::new()),
            "TEST_VAR" => Some("Test Value".to_owned()),
            _ => None,
        };
        let cases = [
            ("RESULT=${UNSET_VAR:-Default Value}", "Default Value"),
            ("RESULT=${EMPTY_VAR:-Default Value}", "Default Value"),
            ("RESULT=${TEST_VAR:-Default Value}", "Test Value"),
            ("RESULT=${UNSET_VAR-Default Value}", "Default Value"),
            ("RESULT=${EMPTY_VAR-Default Value}", ""),
            ("RESULT=${TEST_VAR-Default Value}", "Test Value"),
            ("RESULT=${TEST_VAR:?Default Value}", "Test Value"),
            ("RESULT=${EMPTY_VAR?Test error}", ""),
            ("RESULT=${TEST_VAR+set}", "set"),
        ];
        for (text, value) in cases {
            assert_eq!(
                parse_dotenv(text, &env),
                Ok(vec![("RESULT".to_owned(), Some(value.to_owned()))]),
                "{text}"
            );
        }
        for (text, variable) in [
            ("RESULT=${UNSET_VAR:?Test error}", "UNSET_VAR"),
            ("RESULT=${EMPTY_VAR:?Test error}", "EMPTY_VAR"),
            ("RESULT=${UNSET_VAR?Test error}", "UNSET_VAR"),
        ] {
            assert_eq!(
                parse_dotenv(text, &env),
                Err(DotenvError {
                    line: 1,
                    message: format!(
                        "in the value of \"RESULT\": required variable {variable} is missing a value: Test error"
                    ),
                }),
                "{text}"
            );
        }
    }

    #[test]
    fn substitution_fixture() {
        let text = "OPTION_A=${OPTION_A:-1}\nOPTION_B=${OPTION_A}\nOPTION_C=$OPTION_B\n\
                    OPTION_D=${OPTION_A}_${OPTION_B}\nOPTION_E=${OPTION_NOT_DEFINED}\n";
        assert_eq!(
            pairs(text),
            kv(&[
                ("OPTION_A", "1"),
                ("OPTION_B", "1"),
                ("OPTION_C", "1"),
                ("OPTION_D", "1_1"),
                ("OPTION_E", ""),
            ])
        );
        // The environment wins over earlier keys of the file.
        let env = |name: &str| (name == "OPTION_A").then(|| "env".to_owned());
        assert_eq!(
            parse_dotenv(text, &env),
            Ok(vec![
                ("OPTION_A".to_owned(), Some("env".to_owned())),
                ("OPTION_B".to_owned(), Some("env".to_owned())),
                ("OPTION_C".to_owned(), Some("env".to_owned())),
                ("OPTION_D".to_owned(), Some("env_env".to_owned())),
                ("OPTION_E".to_owned(), Some(String::new())),
            ])
        );
    }

    #[test]
    fn lookup_comes_before_the_file() {
        let env = |name: &str| (name == "A").then(|| "from-env".to_owned());
        assert_eq!(
            parse_dotenv("A=from-file\nB=$A", &env),
            Ok(vec![
                ("A".to_owned(), Some("from-file".to_owned())),
                ("B".to_owned(), Some("from-env".to_owned())),
            ])
        );
    }

    #[test]
    fn bare_keys_take_their_value_from_lookup() {
        let env = |name: &str| {
            (name == "VAR_TO_BE_LOADED_FROM_OS_ENV").then(|| "SOME_RANDOM_VALUE".to_owned())
        };
        let text = "VAR_TO_BE_LOADED_FROM_OS_ENV\nfoo=bar\nVARIABLE_NOT_FOUND\nbar=baz\n";
        assert_eq!(
            parse_dotenv(text, &env),
            Ok(vec![
                (
                    "VAR_TO_BE_LOADED_FROM_OS_ENV".to_owned(),
                    Some("SOME_RANDOM_VALUE".to_owned())
                ),
                ("foo".to_owned(), Some("bar".to_owned())),
                ("VARIABLE_NOT_FOUND".to_owned(), None),
                ("bar".to_owned(), Some("baz".to_owned())),
            ])
        );
        // Last line without a newline, CRLF, surrounding blanks.
        assert_eq!(
            parse_dotenv("  KEY \r\nVAR_TO_BE_LOADED_FROM_OS_ENV", &env),
            Ok(vec![
                ("KEY".to_owned(), None),
                (
                    "VAR_TO_BE_LOADED_FROM_OS_ENV".to_owned(),
                    Some("SOME_RANDOM_VALUE".to_owned())
                ),
            ])
        );
        // An unresolved bare key keeps an earlier value and stays unset for
        // interpolation.
        assert_eq!(pairs("A=1\nA\nB=$A"), kv(&[("A", "1"), ("B", "1")]));
        assert_eq!(
            parse("A\nB=${A-unset}"),
            vec![
                ("A".to_owned(), None),
                ("B".to_owned(), Some("unset".to_owned()))
            ]
        );
        assert_eq!(parse("export\n"), Vec::new());
    }

    #[test]
    fn repeated_keys_keep_first_position_and_last_value() {
        assert_eq!(
            pairs("A=1\nB=2\nA=3\nC=$A"),
            kv(&[("A", "3"), ("B", "2"), ("C", "3")])
        );
        assert_eq!(pairs("A=1\nA=${A}2"), kv(&[("A", "12")]));
    }

    #[test]
    fn several_statements_after_a_quote() {
        assert_eq!(pairs("A=\"1\" B=2"), kv(&[("A", "1"), ("B", "2")]));
        assert_eq!(pairs("A='1'B='2'"), kv(&[("A", "1"), ("B", "2")]));
    }

    #[test]
    fn empty_values() {
        assert_eq!(
            pairs("A=\nB=   \nC=\r\nD=\t\nE="),
            kv(&[("A", ""), ("B", ""), ("C", ""), ("D", ""), ("E", "")])
        );
        // As in compose-go, a `#` right after the blanks that follow `=` is
        // not a comment: a comment needs a space before it within the value.
        assert_eq!(
            pairs("D= # comment\nE=x # comment"),
            kv(&[("D", "# comment"), ("E", "x")])
        );
    }

    #[test]
    fn windows_line_endings_and_bom() {
        let text = "\u{FEFF}OPTION_A=1\r\nOPTION_B='2'\r\nOPTION_C=\"3\"\r\n# c\r\n\r\nexport OPTION_D=4 # x\r\nOPTION_E: 5\r\n";
        assert_eq!(
            pairs(text),
            kv(&[
                ("OPTION_A", "1"),
                ("OPTION_B", "2"),
                ("OPTION_C", "3"),
                ("OPTION_D", "4"),
                ("OPTION_E", "5"),
            ])
        );
        // Only a leading BOM is skipped.
        assert_eq!(parse_err("A=1\n\u{FEFF}B=2").line, 2);
    }

    #[test]
    fn invalid_key_names() {
        assert_eq!(
            parse_err("%!(EXTRA string)=foo"),
            DotenvError {
                line: 1,
                message: "unexpected character \"%\" in variable name \"%!(EXTRA string)=foo\"; \
                          a name may only contain letters, digits, _, ., -, [ and ]"
                    .to_owned(),
            }
        );
        assert_eq!(
            parse_err("A=1\n# c\nlol$wut"),
            DotenvError {
                line: 3,
                message: "unexpected character \"$\" in variable name \"lol$wut\"; \
                          a name may only contain letters, digits, _, ., -, [ and ]"
                    .to_owned(),
            }
        );
        assert_eq!(parse_err("A='x\ny'\nKEY # comment\n").line, 3);
        assert_eq!(
            parse_err("A=1\nB=2\n\nFOO BAR=1"),
            DotenvError {
                line: 4,
                message: "variable name \"FOO BAR\" cannot contain whitespace".to_owned(),
            }
        );
        assert_eq!(parse_err("FOO\tBAR=1").line, 1);
        assert_eq!(parse_err("FOO BAR\n").line, 1);
    }

    #[test]
    fn unterminated_quotes() {
        for text in [
            "KEY=\"",
            "KEY=\"value",
            "KEY=\"value\\\"",
            "KEY=\"value'",
            "KEY='",
            "KEY='value",
            "KEY='value\\'",
            "KEY='value\"",
        ] {
            let e = parse_err(text);
            assert_eq!(e.line, 1, "{text}");
            assert!(
                e.message.starts_with("unterminated quoted value "),
                "{text}: {e}"
            );
        }
        assert_eq!(
            parse_err("A=1\nKEY=\"value\nmore\n"),
            DotenvError {
                line: 2,
                message: "unterminated quoted value \"value; end the value with a closing \""
                    .to_owned(),
            }
        );
    }

    #[test]
    fn interpolation_errors_have_the_line() {
        assert_eq!(
            parse_err("A=1\nB=${A\n"),
            DotenvError {
                line: 2,
                message: "in the value of \"B\": invalid interpolation format for \"${A\": \
                          unclosed \"${\"; close it with \"}\" on the same line or escape a \
                          literal $ as $$"
                    .to_owned(),
            }
        );
        let e = parse_err("A=1\nPW=\"${PW:?set it in .env}\"");
        assert_eq!(e.line, 2);
        assert_eq!(
            e.to_string(),
            "line 2: in the value of \"PW\": required variable PW is missing a value: set it in .env"
        );
    }

    #[test]
    fn escape_expansion() {
        assert_eq!(expand_escapes(r"a\$b"), "a$$b");
        assert_eq!(expand_escapes(r"\\n"), r"\n");
        assert_eq!(expand_escapes("\\"), "\\");
        assert_eq!(expand_escapes(r"\09"), r"\09");
        assert_eq!(expand_escapes(r"é\té"), "é\té");
    }

    proptest! {
        #[test]
        fn never_panics(text in any::<String>()) {
            let _ = parse_dotenv(&text, &no_env);
        }

        #[test]
        fn never_panics_on_dotenv_soup(text in r#"[A-Z=:#'"\\$ {}\-\t\r\nxé]{0,60}"#) {
            let _ = parse_dotenv(&text, &|name: &str| (name == "A").then(|| "v".to_owned()));
        }

        #[test]
        fn simple_assignments_round_trip(
            entries in proptest::collection::vec(("[A-Z_][A-Z0-9_]{0,6}", "[a-z0-9_./:@-]{0,8}"), 0..6)
        ) {
            let text: String = entries.iter().map(|(k, v)| format!("{k}={v}\n")).collect();
            let mut expected: Vec<(String, Option<String>)> = Vec::new();
            for (k, v) in &entries {
                match expected.iter_mut().find(|(key, _)| key == k) {
                    Some(entry) => entry.1 = Some(v.clone()),
                    None => expected.push((k.clone(), Some(v.clone()))),
                }
            }
            prop_assert_eq!(parse_dotenv(&text, &no_env), Ok(expected));
        }

        #[test]
        fn single_quotes_are_literal(value in r"[^'\\]{0,20}") {
            prop_assert_eq!(
                parse_dotenv(&format!("K='{value}'"), &no_env),
                Ok(vec![("K".to_owned(), Some(value.clone()))])
            );
        }
    }
}
