//! `test` and `[` evaluated without an exec, as a shell evaluates its builtin `test`.
//!
//! Health checks such as `["CMD", "test", "-f", "/run/app/ready"]` or
//! `["CMD-SHELL", "[ -S /run/app.sock ]"]` run every `start_interval` while a service starts. On
//! most machines the exec is the whole cost of such a probe: the loader, the C library's start-up
//! (on virtual machines its CPU feature detection traps to the hypervisor, about 0.7 ms per exec
//! on the machines wharf is tested on) and the program's own start-up, for a single `stat`. So
//! when a command is the system's `test` or `[` (or `/bin/sh -c` of one, with nothing the shell
//! would expand), the forked child still enters the instance's namespaces, directory and user
//! (`native/enter.rs`), and then answers with `stat`/`lstat`/`faccessat` itself and exits with
//! `test`'s status, instead of exec'ing the program.
//!
//! The expression is compiled here, in the daemon, before the fork: strings and integers are
//! compared at once, and the child only has file tests left, which are raw syscalls. Only what
//! POSIX specifies for up to four arguments is compiled (the forms are unambiguous there);
//! anything else (`-a`/`-o` chains, `-nt`, `-ef`, `-t`, integers with spaces, an unknown operator,
//! a syntax error that `test` would report) returns `None`, and the real program runs, so the
//! answer, and the message of a mistake, are always `test`'s own.

use std::ffi::CString;

use nix::libc;

/// Where the system's `test` lives; a `test` found elsewhere on `PATH` (a user's own script) is
/// exec'd.
const SYSTEM_TEST: &[&str] = &["/usr/bin/test", "/bin/test", "/usr/bin/[", "/bin/["];

/// Shells whose `-c` string is read here when it is one plain `test` command.
const SHELLS: &[&str] = &["/bin/sh", "/usr/bin/sh", "sh"];

/// A compiled `test` expression: what the child evaluates.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct Builtin {
    negate: bool,
    check: Check,
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Check {
    /// Already decided from strings or integers.
    Constant(bool),
    File(FileTest, CString),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum FileTest {
    Exists,
    Regular,
    Directory,
    Block,
    Character,
    Fifo,
    Socket,
    Symlink,
    NonEmpty,
    Readable,
    Writable,
    Executable,
    SetUid,
    SetGid,
    Sticky,
    OwnedByUser,
    OwnedByGroup,
}

impl Builtin {
    /// The expression `argv` runs, when it is the system's `test` (`path_of_program` says where
    /// `execvp` would find `argv[0]`; asked only when `argv[0]` is named `test` or `[`) or a
    /// shell's `-c` of one.
    pub(super) fn compile(
        argv: &[String],
        path_of_program: impl FnOnce() -> Option<String>,
    ) -> Option<Builtin> {
        let (first, rest) = argv.split_first()?;
        if SHELLS.contains(&first.as_str()) {
            return match rest {
                [c, script] if c == "-c" => {
                    let words = plain_words(script)?;
                    let (name, args) = words.split_first()?;
                    expression(name, &args.iter().map(|s| s.as_str()).collect::<Vec<_>>())
                }
                _ => None,
            };
        }
        let name = first.rsplit('/').next()?;
        if !matches!(name, "test" | "[") || !SYSTEM_TEST.contains(&path_of_program()?.as_str()) {
            return None;
        }
        expression(name, &rest.iter().map(String::as_str).collect::<Vec<_>>())
    }

    /// In the forked child: `test`'s exit status. Raw syscalls only (no allocation).
    pub(super) fn status(&self) -> i32 {
        let value = match &self.check {
            Check::Constant(value) => *value,
            Check::File(test, path) => file_test(*test, path),
        };
        if value != self.negate { 0 } else { 1 }
    }
}

/// The words of a shell command with nothing to expand, quote or redirect; `None` otherwise.
fn plain_words(script: &str) -> Option<Vec<String>> {
    let plain = |c: char| c.is_ascii_alphanumeric() || "_-./:@%+=,!^[]".contains(c);
    let words: Vec<String> = script
        .split_ascii_whitespace()
        .map(str::to_string)
        .collect();
    // `[` and `]` are pattern characters, except as whole words (the command `[` and its end).
    let safe = words
        .iter()
        .all(|w| w.chars().all(plain) && (w == "[" || w == "]" || !w.contains(['[', ']'])));
    (safe && !words.is_empty()).then_some(words)
}

fn expression(name: &str, args: &[&str]) -> Option<Builtin> {
    let args = match name {
        "test" => args,
        "[" => match args.split_last() {
            Some((&"]", inner)) => inner,
            _ => return None,
        },
        _ => return None,
    };
    let (negate, check) = match args {
        [] => (false, Check::Constant(false)),
        [a] => (false, Check::Constant(!a.is_empty())),
        [a, b] => two(a, b)?,
        [a, b, c] => three(a, b, c)?,
        ["!", a, b, c] => {
            let (negate, check) = three(a, b, c)?;
            (!negate, check)
        }
        ["(", a, b, ")"] => two(a, b)?,
        _ => return None,
    };
    Some(Builtin { negate, check })
}

fn two(a: &str, b: &str) -> Option<(bool, Check)> {
    if a == "!" {
        return Some((true, Check::Constant(!b.is_empty())));
    }
    let test = match a {
        "-n" => return Some((false, Check::Constant(!b.is_empty()))),
        "-z" => return Some((false, Check::Constant(b.is_empty()))),
        "-e" => FileTest::Exists,
        "-f" => FileTest::Regular,
        "-d" => FileTest::Directory,
        "-b" => FileTest::Block,
        "-c" => FileTest::Character,
        "-p" => FileTest::Fifo,
        "-S" => FileTest::Socket,
        "-h" | "-L" => FileTest::Symlink,
        "-s" => FileTest::NonEmpty,
        "-r" => FileTest::Readable,
        "-w" => FileTest::Writable,
        "-x" => FileTest::Executable,
        "-u" => FileTest::SetUid,
        "-g" => FileTest::SetGid,
        "-k" => FileTest::Sticky,
        "-O" => FileTest::OwnedByUser,
        "-G" => FileTest::OwnedByGroup,
        _ => return None,
    };
    Some((false, Check::File(test, CString::new(b).ok()?)))
}

fn three(a: &str, op: &str, b: &str) -> Option<(bool, Check)> {
    let int = |s: &str| -> Option<i64> {
        let digits = s.strip_prefix('-').unwrap_or(s);
        let plain = !digits.is_empty() && digits.bytes().all(|c| c.is_ascii_digit());
        if plain { s.parse().ok() } else { None }
    };
    let value = match op {
        "=" | "==" => a == b,
        "!=" => a != b,
        "-a" => !a.is_empty() && !b.is_empty(),
        "-o" => !a.is_empty() || !b.is_empty(),
        "-eq" => int(a)? == int(b)?,
        "-ne" => int(a)? != int(b)?,
        "-lt" => int(a)? < int(b)?,
        "-le" => int(a)? <= int(b)?,
        "-gt" => int(a)? > int(b)?,
        "-ge" => int(a)? >= int(b)?,
        _ if a == "!" => {
            let (negate, check) = two(op, b)?;
            return Some((!negate, check));
        }
        _ if a == "(" && b == ")" => !op.is_empty(),
        _ => return None,
    };
    Some((false, Check::Constant(value)))
}

/// One file test with raw syscalls, as GNU `test` makes them (`stat`, `lstat` for `-h`,
/// `faccessat(AT_EACCESS)` for `-r`/`-w`/`-x`).
fn file_test(test: FileTest, path: &CString) -> bool {
    let access = |mode: libc::c_int| -> bool {
        // SAFETY: a NUL-terminated path; faccessat has no other preconditions.
        unsafe { libc::faccessat(libc::AT_FDCWD, path.as_ptr(), mode, libc::AT_EACCESS) == 0 }
    };
    match test {
        FileTest::Readable => return access(libc::R_OK),
        FileTest::Writable => return access(libc::W_OK),
        FileTest::Executable => return access(libc::X_OK),
        _ => {}
    }
    // SAFETY: an all-zero `stat` is a valid value to be overwritten.
    let mut st: libc::stat = unsafe { std::mem::zeroed() };
    // SAFETY: a NUL-terminated path and a buffer of the right type.
    let found = unsafe {
        if test == FileTest::Symlink {
            libc::lstat(path.as_ptr(), &mut st)
        } else {
            libc::stat(path.as_ptr(), &mut st)
        }
    } == 0;
    if !found {
        return false;
    }
    let kind = st.st_mode & libc::S_IFMT;
    match test {
        FileTest::Exists => true,
        FileTest::Regular => kind == libc::S_IFREG,
        FileTest::Directory => kind == libc::S_IFDIR,
        FileTest::Block => kind == libc::S_IFBLK,
        FileTest::Character => kind == libc::S_IFCHR,
        FileTest::Fifo => kind == libc::S_IFIFO,
        FileTest::Socket => kind == libc::S_IFSOCK,
        FileTest::Symlink => kind == libc::S_IFLNK,
        FileTest::NonEmpty => st.st_size > 0,
        FileTest::SetUid => st.st_mode & libc::S_ISUID != 0,
        FileTest::SetGid => st.st_mode & libc::S_ISGID != 0,
        FileTest::Sticky => st.st_mode & libc::S_ISVTX != 0,
        // SAFETY: geteuid/getegid have no preconditions.
        FileTest::OwnedByUser => st.st_uid == unsafe { libc::geteuid() },
        FileTest::OwnedByGroup => st.st_gid == unsafe { libc::getegid() },
        // Answered above.
        FileTest::Readable | FileTest::Writable | FileTest::Executable => false,
    }
}

#[cfg(test)]
mod tests {
    use std::os::unix::fs::PermissionsExt;
    use std::process::Command;

    use super::*;

    fn words(s: &str) -> Vec<String> {
        s.split(' ').map(str::to_string).collect()
    }

    /// The status `test` itself gives, and the builtin's, for the same arguments.
    fn both(args: &[&str]) -> (i32, Option<i32>) {
        let real = Command::new("/usr/bin/test")
            .args(args)
            .status()
            .unwrap()
            .code()
            .unwrap();
        let mut argv = vec!["test".to_string()];
        argv.extend(args.iter().map(|s| s.to_string()));
        let builtin = Builtin::compile(&argv, || Some("/usr/bin/test".into())).map(|b| b.status());
        (real, builtin)
    }

    #[test]
    fn answers_as_the_system_test_does() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("file");
        std::fs::write(&file, "x").unwrap();
        let empty = dir.path().join("empty");
        std::fs::write(&empty, "").unwrap();
        let script = dir.path().join("script");
        std::fs::write(&script, "#!/bin/sh\n").unwrap();
        std::fs::set_permissions(&script, std::fs::Permissions::from_mode(0o4755)).unwrap();
        let link = dir.path().join("link");
        std::os::unix::fs::symlink(&file, &link).unwrap();
        let dangling = dir.path().join("dangling");
        std::os::unix::fs::symlink(dir.path().join("nowhere"), &dangling).unwrap();
        let missing = dir.path().join("missing");
        let d = dir.path().to_str().unwrap();
        let paths = [&file, &empty, &script, &link, &dangling, &missing]
            .map(|p| p.to_str().unwrap().to_string());
        let mut cases: Vec<Vec<String>> = Vec::new();
        for op in [
            "-e", "-f", "-d", "-b", "-c", "-p", "-S", "-h", "-L", "-s", "-r", "-w", "-x", "-u",
            "-g", "-k", "-O", "-G",
        ] {
            for p in paths.iter().map(String::as_str).chain([d, "/dev/null"]) {
                cases.push(vec![op.into(), p.into()]);
                cases.push(vec!["!".into(), op.into(), p.into()]);
            }
        }
        for case in [
            "",
            "x",
            "! x",
            "! ''",
            "-n x",
            "-z x",
            "a = a",
            "a = b",
            "a != b",
            "a == a",
            "-f",
            "3 -lt 10",
            "10 -le 10",
            "-3 -gt -4",
            "1 -eq 2",
            "1 -ne 2",
            "7 -ge 8",
            "! a = a",
            "( x )",
            "( -f /etc/passwd )",
            "x -a ''",
            "x -o ''",
            "! -z ''",
        ] {
            cases.push(if case.is_empty() {
                Vec::new()
            } else {
                words(case)
                    .into_iter()
                    .map(|w| if w == "''" { String::new() } else { w })
                    .collect()
            });
        }
        for case in cases {
            let args: Vec<&str> = case.iter().map(String::as_str).collect();
            let (real, builtin) = both(&args);
            assert_eq!(Some(real), builtin, "test {args:?}");
        }
    }

    #[test]
    fn leaves_what_it_does_not_compile_to_the_program() {
        for args in [
            "-t 1",
            "a < b",
            "a -nt b",
            "a -ef b",
            "x -a y -o z",
            "-q x",
            "1 -eq x",
            "' 1' -eq 1",
            "a b",
            "a b c d e",
        ] {
            let mut argv = vec!["test".to_string()];
            argv.extend(words(args));
            assert_eq!(
                Builtin::compile(&argv, || Some("/usr/bin/test".into())),
                None,
                "{args}"
            );
        }
        // A `test` of the user's own.
        let argv = words("test -f /x");
        assert_eq!(
            Builtin::compile(&argv, || Some("/opt/app/bin/test".into())),
            None
        );
        assert_eq!(Builtin::compile(&argv, || None), None);
        // `[` needs its `]`.
        assert_eq!(
            Builtin::compile(&words("[ -f /x"), || Some("/usr/bin/[".into())),
            None
        );
        // Other programs.
        assert_eq!(
            Builtin::compile(&words("true"), || Some("/usr/bin/true".into())),
            None
        );
    }

    #[test]
    fn reads_a_shell_command_only_when_nothing_would_be_expanded() {
        let sh = |script: &str| {
            Builtin::compile(
                &["/bin/sh".to_string(), "-c".to_string(), script.to_string()],
                || None,
            )
        };
        assert!(sh("test -f /run/ready").is_some());
        assert!(sh("[ -S /run/app.sock ]").is_some());
        assert!(sh("  test   -d /tmp ").is_some());
        for script in [
            "test -f $HOME/x",
            "test -f ~/x",
            "test -f /x && echo ok",
            "test -f /x; true",
            "test -f '/a b'",
            "test -f /x*",
            "test -f /x[1]",
            "test -f `pwd`",
            "test -f /x > /dev/null",
            "curl -f http://localhost/",
            "",
        ] {
            assert_eq!(sh(script), None, "{script}");
        }
        assert_eq!(sh("test -f /etc/passwd").map(|b| b.status()), Some(0));
        assert_eq!(sh("! test -f /etc/passwd"), None);
        assert_eq!(sh("[ ! -e /nonexistent ]").map(|b| b.status()), Some(0));
    }
}
