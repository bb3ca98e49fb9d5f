//! The short syntax of a service's `volumes:` entries, `[SOURCE:]TARGET[:MODE]`, as compose-go's
//! `format.ParseVolume` reads it for Docker Compose.
//!
//! - The spec is cut at `:`, except right after a single letter (a Windows drive, `C:\data`) and
//!   inside `${...}` (left by an escaped `$${...}`). One part is the target of an anonymous volume;
//!   two are source and target; a third holds the modes; more is an error ("too many colons"), as is
//!   an empty part. A spec of one or two bytes is always an anonymous volume's target.
//! - The source is a bind mount when it starts with `/`, `.` or `~`, is a Windows named pipe (`\\`),
//!   or starts with a drive letter and `:`; anything else names a volume.
//! - Modes are comma-separated: `ro`, `rw` (the last one wins), `nocopy`, SELinux relabelling `z` or
//!   `Z`, and propagation `rprivate`, `private`, `rshared`, `shared`, `rslave`, `slave`. They are
//!   recorded whatever the kind of mount, as compose-go does.
//!
//! Paths are kept as written; making relative bind sources absolute is the caller's job.
//!
//! Unlike compose-go, which silently ignores them, an unknown mode is an error, and so is an
//! unterminated `${`, for which compose-go returns a volume without a target. The special case some
//! compose-go v2 releases had for specs containing `/dev` twice (split at `:/dev`, meant for
//! `devices:`, which no longer goes through this parser) is not reproduced.

/// Whether a short-syntax volume mounts a host path or a named (or anonymous) volume.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum VolumeKind {
    Bind,
    Volume,
}

/// A parsed short-syntax volume entry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VolumeSpec {
    pub kind: VolumeKind,
    /// The host path or volume name; `None` for an anonymous volume.
    pub source: Option<String>,
    pub target: String,
    pub read_only: bool,
    /// `"z"` (shared) or `"Z"` (private) SELinux relabelling.
    pub selinux: Option<String>,
    /// Mount propagation: `rprivate`, `private`, `rshared`, `shared`, `rslave` or `slave`.
    pub propagation: Option<String>,
    pub nocopy: bool,
}

const PROPAGATIONS: [&str; 6] = [
    "rprivate", "private", "rshared", "shared", "rslave", "slave",
];

/// compose-go appends a NUL to the spec to mark its end (so a NUL inside the spec acts as one too).
const END: char = '\0';

/// Parses a short-syntax volume entry.
pub fn parse_volume(s: &str) -> Result<VolumeSpec, String> {
    let fail = |why: &str| format!("invalid volume spec {s:?}: {why}");
    let mut volume = VolumeSpec {
        kind: VolumeKind::Volume,
        source: None,
        target: String::new(),
        read_only: false,
        selinux: None,
        propagation: None,
        nocopy: false,
    };
    match s.len() {
        0 => return Err(fail("empty spec")),
        1 | 2 => {
            volume.target = s.to_string();
            return Ok(volume);
        }
        _ => {}
    }

    let bytes = s.as_bytes();
    let mut buffer = String::new();
    let mut substitution_depth = 0usize;
    let chars = s.char_indices().chain(std::iter::once((s.len(), END)));
    for (i, c) in chars {
        if c == '$' && bytes.get(i + 1) == Some(&b'{') {
            substitution_depth += 1;
            buffer.push(c);
            continue;
        }
        if c == '}' && substitution_depth > 0 {
            substitution_depth -= 1;
            buffer.push(c);
            continue;
        }
        if is_windows_drive(&buffer, c) {
            buffer.push(c);
        } else if (c == ':' || c == END) && substitution_depth == 0 {
            take_section(c, &buffer, &mut volume).map_err(|why| fail(&why))?;
            buffer.clear();
        } else {
            buffer.push(c);
        }
    }

    if substitution_depth > 0 {
        return Err(fail("unterminated \"${\""));
    }
    if volume.target.is_empty() {
        return Err(fail("missing target"));
    }
    if volume.source.as_deref().is_some_and(is_file_path) {
        volume.kind = VolumeKind::Bind;
    }
    Ok(volume)
}

/// A single letter followed by `:` is a Windows drive, not a separator.
fn is_windows_drive(buffer: &str, c: char) -> bool {
    let mut chars = buffer.chars();
    c == ':'
        && matches!((chars.next(), chars.next()), (Some(letter), None) if letter.is_alphabetic())
}

/// Stores one `:`-separated section (compose-go's `populateFieldFromBuffer`).
fn take_section(separator: char, section: &str, volume: &mut VolumeSpec) -> Result<(), String> {
    if section.is_empty() {
        return Err("empty section between colons".to_string());
    }
    if volume.source.is_none() {
        if separator == END {
            // Only a target: an anonymous volume.
            volume.target = section.to_string();
        } else {
            volume.source = Some(section.to_string());
        }
        return Ok(());
    }
    if volume.target.is_empty() {
        volume.target = section.to_string();
        return Ok(());
    }
    if separator == ':' {
        return Err("too many colons".to_string());
    }
    for mode in section.split(',') {
        match mode {
            "ro" => volume.read_only = true,
            "rw" => volume.read_only = false,
            "nocopy" => volume.nocopy = true,
            "z" | "Z" => volume.selinux = Some(mode.to_string()),
            _ if PROPAGATIONS.contains(&mode) => volume.propagation = Some(mode.to_string()),
            _ => {
                return Err(format!(
                    "unknown mode {mode:?} (expected ro, rw, z, Z, nocopy or a propagation: {})",
                    PROPAGATIONS.join(", ")
                ));
            }
        }
    }
    Ok(())
}

/// Whether a source is a host path rather than a volume name (compose-go's `isFilePath`).
fn is_file_path(source: &str) -> bool {
    if source.starts_with(['.', '/', '~']) || source.starts_with(r"\\") {
        return true;
    }
    let mut chars = source.chars();
    matches!((chars.next(), chars.next()), (Some(letter), Some(':')) if letter.is_alphabetic())
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn anonymous(target: &str) -> VolumeSpec {
        VolumeSpec {
            kind: VolumeKind::Volume,
            source: None,
            target: target.to_string(),
            read_only: false,
            selinux: None,
            propagation: None,
            nocopy: false,
        }
    }

    fn bind(source: &str, target: &str) -> VolumeSpec {
        VolumeSpec {
            kind: VolumeKind::Bind,
            source: Some(source.to_string()),
            ..anonymous(target)
        }
    }

    fn named(source: &str, target: &str) -> VolumeSpec {
        VolumeSpec {
            kind: VolumeKind::Volume,
            source: Some(source.to_string()),
            ..anonymous(target)
        }
    }

    fn ok(s: &str) -> VolumeSpec {
        match parse_volume(s) {
            Ok(v) => v,
            Err(e) => panic!("{s:?} should parse, got {e}"),
        }
    }

    fn err(s: &str) -> String {
        match parse_volume(s) {
            Ok(v) => panic!("{s:?} should fail, got {v:?}"),
            Err(e) => e,
        }
    }

    #[test]
    fn anonymous_volumes() {
        for path in [
            "/path",
            "/path/foo",
            ".",
            "/a",
            "ab",
            "::",
            r"C:\path",
            r"Z:\path\foo",
        ] {
            assert_eq!(ok(path), anonymous(path));
        }
        assert_eq!(ok(r"d:\"), anonymous(r"d:\"));
        assert_eq!(
            ok(r"c:\Program Files (x86)"),
            anonymous(r"c:\Program Files (x86)")
        );
        // A single letter before a colon is always a drive, even on Linux.
        assert_eq!(ok("a:/foo"), anonymous("a:/foo"));
    }

    #[test]
    fn bind_mounts() {
        for path in ["./foo", "~/thing", "../other", "/foo", "/home/user", "."] {
            assert_eq!(ok(&format!("{path}:/target")), bind(path, "/target"));
            assert_eq!(ok(&format!(r"{path}:d:\target")), bind(path, r"d:\target"));
        }
        assert_eq!(ok(r"D:\path:d:\target"), bind(r"D:\path", r"d:\target"));
        assert_eq!(
            ok(r"\\.\pipe\docker_engine:\\.\pipe\inside"),
            bind(r"\\.\pipe\docker_engine", r"\\.\pipe\inside")
        );
        assert_eq!(
            ok("c:/:d:/forward/slashes"),
            bind("c:/", "d:/forward/slashes")
        );
        assert_eq!(ok(r"c:\:..\"), bind(r"c:\", r"..\"));
        assert_eq!(ok("/tmp/x/y:/foo/x/y"), bind("/tmp/x/y", "/foo/x/y"));
        assert_eq!(
            ok(r"c:\program files:d:\s p a c e"),
            bind(r"c:\program files", r"d:\s p a c e")
        );
    }

    #[test]
    fn named_volumes() {
        assert_eq!(ok("data:/var/lib/data"), named("data", "/var/lib/data"));
        assert_eq!(ok("0123456789name:d:"), named("0123456789name", "d:"));
        assert_eq!(ok("MiXeDcAsEnAmE:D:"), named("MiXeDcAsEnAmE", "D:"));
        assert_eq!(ok("a\u{754c}:/x"), named("a\u{754c}", "/x"));
        assert_eq!(ok("${VOL}:/data"), named("${VOL}", "/data"));
        assert_eq!(ok("vol:/a/${X:-b}:ro").target, "/a/${X:-b}");
    }

    #[test]
    fn modes() {
        assert_eq!(
            ok("/source:/target:ro"),
            VolumeSpec {
                read_only: true,
                ..bind("/source", "/target")
            }
        );
        assert_eq!(ok("./foo:/target:rw"), bind("./foo", "/target"));
        assert_eq!(ok("./foo:/target:ro,rw"), bind("./foo", "/target"));
        assert_eq!(
            ok("/source:/target:slave"),
            VolumeSpec {
                propagation: Some("slave".into()),
                ..bind("/source", "/target")
            }
        );
        assert_eq!(
            ok("/source:/target:ro,z"),
            VolumeSpec {
                read_only: true,
                selinux: Some("z".into()),
                ..bind("/source", "/target")
            }
        );
        assert_eq!(
            ok("/source:/target:ro,Z"),
            VolumeSpec {
                read_only: true,
                selinux: Some("Z".into()),
                ..bind("/source", "/target")
            }
        );
        assert_eq!(
            ok(r"C:\source\foo:D:\target:ro,rprivate"),
            VolumeSpec {
                read_only: true,
                propagation: Some("rprivate".into()),
                ..bind(r"C:\source\foo", r"D:\target")
            }
        );
        assert_eq!(
            ok("name:/target:nocopy"),
            VolumeSpec {
                nocopy: true,
                ..named("name", "/target")
            }
        );
        assert_eq!(
            ok("/src:/target:rw,z,shared,nocopy"),
            VolumeSpec {
                selinux: Some("z".into()),
                propagation: Some("shared".into()),
                nocopy: true,
                ..bind("/src", "/target")
            }
        );
        assert_eq!(
            ok("name:/target:Z,rshared"),
            VolumeSpec {
                selinux: Some("Z".into()),
                propagation: Some("rshared".into()),
                ..named("name", "/target")
            }
        );
        assert_eq!(ok(r"d:\pathandmode:rw"), bind(r"d:\pathandmode", "rw"));
    }

    #[test]
    fn errors() {
        assert_eq!(err(""), r#"invalid volume spec "": empty spec"#);
        assert_eq!(
            err("/foo:/foo:ro:foo"),
            r#"invalid volume spec "/foo:/foo:ro:foo": too many colons"#
        );
        assert_eq!(
            err(":foo"),
            r#"invalid volume spec ":foo": empty section between colons"#
        );
        assert_eq!(
            err("/foo::ro"),
            r#"invalid volume spec "/foo::ro": empty section between colons"#
        );
        assert_eq!(
            err("/foo:"),
            r#"invalid volume spec "/foo:": empty section between colons"#
        );
        assert_eq!(
            err(r":C:\foo:d:"),
            r#"invalid volume spec ":C:\\foo:d:": empty section between colons"#
        );
        assert_eq!(
            err("/dev/usb-0:1.3:1.0-port0:/dev/usb-0:1.3:1.0-port0"),
            r#"invalid volume spec "/dev/usb-0:1.3:1.0-port0:/dev/usb-0:1.3:1.0-port0": too many colons"#
        );
        assert_eq!(
            err("name:/target:bogus"),
            r#"invalid volume spec "name:/target:bogus": unknown mode "bogus" (expected ro, rw, z, Z, nocopy or a propagation: rprivate, private, rshared, shared, rslave, slave)"#
        );
        assert!(err("name:/target:nocopy,subpath=etc").contains(r#"unknown mode "subpath=etc""#));
        assert!(err("/a:/b:RW").contains(r#"unknown mode "RW""#));
        assert!(err("/a:/b:ro,").contains(r#"unknown mode """#));
        assert_eq!(
            err("${abc"),
            r#"invalid volume spec "${abc": unterminated "${""#
        );
        assert_eq!(
            err("/a:/b/${X"),
            r#"invalid volume spec "/a:/b/${X": unterminated "${""#
        );
    }

    #[test]
    fn volume_split_cases() {
        // compose-go's TestParseVolumeSplitCases: whether a source is found (valid modes only).
        let cases: &[(&str, bool)] = &[
            (r"C:\foo:d:", true),
            ("/foo:/bar:ro", true),
            (r"C:\foo\:/foo", true),
            (r"d:\", false),
            ("d:", false),
            (r"d:\path", false),
            (r"d:\path with space", false),
            (r"c:\:d:\", true),
            (r"c:\windows\:d:", true),
            (r"c:\windows:d:\s p a c e", true),
            (r"c:\program files:d:\s p a c e i n h o s t d i r", true),
            ("0123456789name:d:", true),
            ("MiXeDcAsEnAmE:d:", true),
            ("name:D:", true),
            ("c:/:d:/forward/slashes/are/good/too", true),
            (r"c:\Windows", false),
            (r"c:\Program Files (x86)", false),
            (".", false),
            (r"..\", false),
            (r"c:\:..\", true),
            (r"c:\:d:\:rw", true),
            ("/tmp/x/y:/foo/x/y", true),
        ];
        for &(input, has_source) in cases {
            assert_eq!(ok(input).source.is_some(), has_source, "{input:?}");
        }
    }

    proptest! {
        #[test]
        fn never_panics(s in "\\PC*") {
            let _ = parse_volume(&s);
        }

        #[test]
        fn never_panics_on_volume_like_input(s in "[a-zC:/.~\\\\${},\u{0}\u{e9}]{0,24}(:(ro|rw|z|Z|nocopy|slave|x)(,ro)?)?") {
            let _ = parse_volume(&s);
        }

        #[test]
        fn absolute_bind_round_trips(
            source in "/[a-z0-9_.-]{0,10}(/[a-z0-9_.-]{1,10}){0,3}",
            target in "/[a-z0-9_.-]{1,10}(/[a-z0-9_.-]{1,10}){0,3}",
            ro in any::<bool>(),
        ) {
            let spec = format!("{source}:{target}:{}", if ro { "ro" } else { "rw" });
            let parsed = parse_volume(&spec);
            prop_assert_eq!(parsed, Ok(VolumeSpec { read_only: ro, ..bind(&source, &target) }));
        }
    }
}
