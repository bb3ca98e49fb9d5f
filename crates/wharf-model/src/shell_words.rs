//! Splitting a string `command:` / `entrypoint:` (and `healthcheck.test` given as a string) into
//! arguments, the way Docker Compose v2 does it.
//!
//! compose-go calls `shellwords.Parse` from `github.com/mattn/go-shellwords` v1.0.12 with its
//! defaults: no environment expansion and no backtick/`$(...)` execution. That is not a POSIX shell
//! parser, and its quirks are reproduced here:
//!
//! - words are separated by unquoted space, tab, CR or LF; `''` and `""` give empty words;
//! - single quotes keep everything literally, including backslashes;
//! - a backslash outside single quotes makes the next character literal and is dropped, also inside
//!   double quotes (`"a\b"` is `ab`, `\t` is `t`; go-shellwords v1.0.13, used from Compose v5 on,
//!   turns `\t` and `\n` into TAB and LF);
//! - backquotes and `$(`...`)` are kept verbatim in the word, with their quotes and spaces; an
//!   unquoted `(` not right after `$` is an error, and an unquoted `)` opens or closes such a group;
//! - an unquoted `;`, `&`, `|`, `<` or `>` ends parsing, and **the rest of the string is silently
//!   dropped** (`echo a && echo b` is `["echo", "a"]`); before `>`, a word that starts with a digit
//!   (`2>`) is dropped too;
//! - an unterminated quote, backquote or `$(`, or a trailing backslash, is an error.

#[derive(Clone, Copy, PartialEq, Eq)]
enum Word {
    /// No word in progress.
    None,
    /// A word with at least one unquoted (or escaped) character.
    Plain,
    /// A word that ended a quoted section (so it exists even when empty).
    Quoted,
}

/// Splits a Compose command string into its arguments, as go-shellwords v1.0.12 does.
pub fn split_command(s: &str) -> Result<Vec<String>, String> {
    split_command_with_rest(s).map(|(args, _)| args)
}

/// Like [`split_command`], and also returns what Docker Compose silently drops: the rest of the
/// string from the first unquoted `;`, `&`, `|`, `<` or `>` on, if any.
pub fn split_command_with_rest(s: &str) -> Result<(Vec<String>, Option<&str>), String> {
    let mut rest = None;
    let mut args = Vec::new();
    let mut buf = String::new();
    let mut word = Word::None;
    let (mut escaped, mut single, mut double, mut backquote, mut dollar) =
        (false, false, false, false, false);

    for (at, c) in s.char_indices() {
        if escaped {
            buf.push(c);
            escaped = false;
            word = Word::Plain;
            continue;
        }
        if c == '\\' {
            if single {
                buf.push(c);
            } else {
                escaped = true;
            }
            continue;
        }
        if matches!(c, ' ' | '\t' | '\r' | '\n') {
            if single || double || backquote || dollar {
                buf.push(c);
            } else if word != Word::None {
                args.push(std::mem::take(&mut buf));
                word = Word::None;
            }
            continue;
        }
        match c {
            '`' if !single && !double && !dollar => backquote = !backquote,
            ')' if !single && !double && !backquote => dollar = !dollar,
            '(' if !single && !double && !backquote => {
                if !dollar && buf.ends_with('$') {
                    dollar = true;
                    buf.push(c);
                    continue;
                }
                return Err(format!("invalid command line {s:?}: unexpected \"(\""));
            }
            '"' if !single && !dollar => {
                if double {
                    word = Word::Quoted;
                }
                double = !double;
                continue;
            }
            '\'' if !double && !dollar => {
                if single {
                    word = Word::Quoted;
                }
                single = !single;
                continue;
            }
            ';' | '&' | '|' | '<' | '>' if !(single || double || backquote || dollar) => {
                if c == '>' && buf.as_bytes().first().is_some_and(u8::is_ascii_digit) {
                    // A file-descriptor redirection such as `2>`: the digits are not a word.
                    word = Word::None;
                }
                rest = Some(&s[at..]);
                break;
            }
            _ => {}
        }
        word = Word::Plain;
        buf.push(c);
    }

    if word != Word::None {
        args.push(buf);
    }

    let problem = if escaped {
        "trailing backslash"
    } else if single {
        "unterminated single quote"
    } else if double {
        "unterminated double quote"
    } else if backquote {
        "unterminated backquote"
    } else if dollar {
        "unbalanced parentheses"
    } else {
        return Ok((args, rest));
    };
    Err(format!("invalid command line {s:?}: {problem}"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn ok(s: &str) -> Vec<String> {
        match split_command(s) {
            Ok(v) => v,
            Err(e) => panic!("{s:?} should split, got {e}"),
        }
    }

    fn err(s: &str) -> String {
        match split_command(s) {
            Ok(v) => panic!("{s:?} should fail, got {v:?}"),
            Err(e) => e,
        }
    }

    #[test]
    fn reports_the_dropped_rest() {
        let (args, rest) = split_command_with_rest("echo a && echo b").unwrap();
        assert_eq!(args, ["echo", "a"]);
        assert_eq!(rest, Some("&& echo b"));
        assert_eq!(split_command_with_rest("sh -c 'a && b'").unwrap().1, None);
    }

    #[test]
    fn go_shellwords_cases() {
        // The go-shellwords test table.
        let cases: &[(&str, &[&str])] = &[
            (r#""#, &[]),
            (r#""""#, &[""]),
            (r#"''"#, &[""]),
            (r#"var --bar=baz"#, &["var", "--bar=baz"]),
            (r#"var --bar="baz""#, &["var", "--bar=baz"]),
            (r#"var "--bar=baz""#, &["var", "--bar=baz"]),
            (r#"var "--bar='baz'""#, &["var", "--bar='baz'"]),
            ("var --bar=`baz`", &["var", "--bar=`baz`"]),
            (r#"var "--bar=\"baz'""#, &["var", r#"--bar="baz'"#]),
            (r#"var "--bar=\'baz\'""#, &["var", "--bar='baz'"]),
            (r#"var --bar='\'"#, &["var", r"--bar=\"]),
            (r#"var "--bar baz""#, &["var", "--bar baz"]),
            (r#"var --"bar baz""#, &["var", "--bar baz"]),
            (r#"var  --"bar baz""#, &["var", "--bar baz"]),
            (r#"a "b""#, &["a", "b"]),
            (r#"a " b ""#, &["a", " b "]),
            (r#"a "   ""#, &["a", "   "]),
            (r#"a 'b'"#, &["a", "b"]),
            (r#"a ' b '"#, &["a", " b "]),
            (r#"a '   '"#, &["a", "   "]),
            ("foo bar\\  ", &["foo", "bar "]),
            (r#"foo "" bar ''"#, &["foo", "", "bar", ""]),
            // Backtick parsing off: substitutions stay verbatim.
            (r#"echo $(echo "foo")"#, &["echo", r#"$(echo "foo")"#]),
            ("echo $(`echo1)", &["echo", "$(`echo1)"]),
            ("echo `a  b`", &["echo", "`a  b`"]),
            ("echo bar=$(echo 200)cm", &["echo", "bar=$(echo 200)cm"]),
            // Environment parsing off: `$VAR` is literal.
            ("echo $FOO ${BAR}", &["echo", "$FOO", "${BAR}"]),
            // The rest of the line after a control operator or redirection is dropped.
            ("echo foo; seq 1 10", &["echo", "foo"]),
            ("echo a && echo b", &["echo", "a"]),
            ("ls -la 2>foo", &["ls", "-la"]),
            ("ls -la 2a>foo", &["ls", "-la"]),
            ("ls -la a2>foo", &["ls", "-la", "a2"]),
            ("ls -la >foo", &["ls", "-la"]),
            ("cat <in | wc", &["cat"]),
            ("echo a|b", &["echo", "a"]),
            ("echo 'a;b' \"c|d\"", &["echo", "a;b", "c|d"]),
            (r"echo a\;b", &["echo", "a;b"]),
        ];
        for &(input, expected) in cases {
            assert_eq!(ok(input), expected, "{input:?}");
        }
    }

    #[test]
    fn compose_cases() {
        assert_eq!(ok("hello world"), ["hello", "world"]);
        assert_eq!(ok("/bin/sh -c echo"), ["/bin/sh", "-c", "echo"]);
        assert_eq!(
            ok(r#"sh -c "echo hello && sleep 1""#),
            ["sh", "-c", "echo hello && sleep 1"]
        );
        assert_eq!(
            ok(r#"bash -c 'echo "$HOME"'"#),
            ["bash", "-c", r#"echo "$HOME""#]
        );
        assert_eq!(ok("  a\t\tb\r\nc  "), ["a", "b", "c"]);
        assert_eq!(ok("   "), Vec::<String>::new());
        assert_eq!(ok(r"a\ b c"), ["a b", "c"]);
        assert_eq!(ok(r#"'it'\''s'"#), ["it's"]);
        assert_eq!(ok(r#"a"b"'c'd"#), ["abcd"]);
        assert_eq!(
            ok("\"\u{e9}t\u{e9}\" caf\u{e9}"),
            ["\u{e9}t\u{e9}", "caf\u{e9}"]
        );
    }

    #[test]
    fn backslashes_follow_go_shellwords_1_0_12() {
        // Inside double quotes a backslash escapes any character (not POSIX), and `\t` / `\n` are
        // plain `t` / `n` (go-shellwords 1.0.13, used from Compose v5 on, makes them TAB / LF).
        assert_eq!(
            ok(r#"sh -c "printf 'Hello\tworld\n'""#),
            ["sh", "-c", "printf 'Hellotworldn'"]
        );
        assert_eq!(ok(r#""a\\b" "\$x" \"q\""#), [r"a\b", "$x", r#""q""#]);
        assert_eq!(ok(r"'a\nb'"), [r"a\nb"]);
        assert_eq!(ok(r"C:\\dir"), [r"C:\dir"]);
    }

    #[test]
    fn parentheses() {
        assert_eq!(ok("echo $(a b)c"), ["echo", "$(a b)c"]);
        assert_eq!(ok("echo '(x)' \"(y)\""), ["echo", "(x)", "(y)"]);
        // An unquoted `)` toggles the `$(` state, so pairs of them glue words together.
        assert_eq!(ok("a ) b )"), ["a", ") b )"]);
    }

    #[test]
    fn errors() {
        assert_eq!(
            err("foo '"),
            r#"invalid command line "foo '": unterminated single quote"#
        );
        assert_eq!(
            err(r#"foo ""#),
            r#"invalid command line "foo \"": unterminated double quote"#
        );
        assert_eq!(
            err("foo `"),
            r#"invalid command line "foo `": unterminated backquote"#
        );
        assert_eq!(
            err(r"foo \"),
            r#"invalid command line "foo \\": trailing backslash"#
        );
        assert_eq!(
            err("echo $(echo1"),
            r#"invalid command line "echo $(echo1": unbalanced parentheses"#
        );
        assert_eq!(
            err("echo )echo1"),
            r#"invalid command line "echo )echo1": unbalanced parentheses"#
        );
        assert_eq!(
            err("echo $ (echo1"),
            r#"invalid command line "echo $ (echo1": unexpected "(""#
        );
        assert_eq!(
            err("echo (echo1"),
            r#"invalid command line "echo (echo1": unexpected "(""#
        );
        assert_eq!(
            err("echo $((1+2))"),
            r#"invalid command line "echo $((1+2))": unexpected "(""#
        );
        assert_eq!(
            err("f() { :; }"),
            r#"invalid command line "f() { :; }": unexpected "(""#
        );
    }

    proptest! {
        #[test]
        fn never_panics(s in "\\PC*") {
            let _ = split_command(&s);
        }

        #[test]
        fn never_panics_on_shell_like_input(s in "[ a\\\\'\"`$()<>;&|2\t\n]{0,40}") {
            let _ = split_command(&s);
        }

        #[test]
        fn plain_words_split_on_whitespace(words in proptest::collection::vec("[a-zA-Z0-9_./=-]{1,8}", 0..6)) {
            let line = words.join(" \t ");
            prop_assert_eq!(split_command(&line), Ok(words));
        }
    }
}
