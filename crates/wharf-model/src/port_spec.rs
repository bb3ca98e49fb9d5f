//! The short syntax of a service's `ports:` entries, `[[IP:]HOST[-HOST]:]CONTAINER[-CONTAINER][/PROTO]`,
//! expanded into the long form the way Docker Compose v2 does it.
//!
//! compose-go's `types.ParsePortConfig` hands the string to `nat.ParsePortSpecs` from
//! `github.com/docker/go-connections` and turns each resulting binding into one long-form entry:
//!
//! - the string is split on `:`; the last part is the container port, the one before it the host
//!   port, and everything before that (rejoined with `:`) the host IP, so unbracketed IPv6 works
//!   (`::1:80:80`) as well as bracketed (`[::1]:80:80`, brackets removed);
//! - the IP must be a literal IPv4 or IPv6 address (no hostnames, no zones) and is kept as written;
//! - ports are decimal 0-65535; a range is `START-END` with `END >= START` (as in go-connections, a
//!   third `-` part is ignored);
//! - the protocol, everything after the first `/`, is `tcp` (default), `udp` or `sctp`,
//!   case-insensitive, stored lowercase (`80/udp/x` is an error, as in go-connections v0.6+; v0.5
//!   ignored the extra part);
//! - a container range needs no host port or a host range of the same size, and maps port by port;
//! - a host range with a single container port stays one entry whose `published` is the whole range
//!   (`"8000-8010:80"` gives `published: "8000-8010"`, `target: 80`): the engine picks a free port;
//! - entries come out sorted by the string `"<target>/<proto>"`, so `9999-10000` gives 10000 first.

use std::net::IpAddr;

/// One long-form port entry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PortSpec {
    pub host_ip: Option<String>,
    /// A host port (`"8080"`) or a range to pick from (`"8000-8010"`).
    pub published: Option<String>,
    pub target: u16,
    /// `"tcp"`, `"udp"` or `"sctp"`.
    pub protocol: String,
}

/// Parses a short-syntax port entry into its long-form entries.
pub fn parse_port(s: &str) -> Result<Vec<PortSpec>, String> {
    let fail = |why: String| format!("invalid port spec {s:?}: {why}");

    let parts: Vec<&str> = s.split(':').collect();
    let (ip, host, container_and_proto) = match parts.as_slice() {
        [container] => (String::new(), "", *container),
        [host, container] => (String::new(), *host, *container),
        [ip @ .., host, container] => (ip.join(":"), *host, *container),
        [] => (String::new(), "", ""),
    };

    let (container, proto) = match container_and_proto.split_once('/') {
        Some((port, "")) => (port, "tcp"),
        Some((port, proto)) => (port, proto),
        None => (container_and_proto, "tcp"),
    };
    if container.is_empty() {
        return Err(fail("missing container port".to_string()));
    }
    let protocol = proto.to_lowercase();
    if !matches!(protocol.as_str(), "tcp" | "udp" | "sctp") {
        return Err(fail(format!(
            "invalid protocol {proto:?} (expected tcp, udp or sctp)"
        )));
    }

    let host_ip = if ip.is_empty() {
        None
    } else {
        Some(parse_host_ip(&ip).ok_or_else(|| fail(format!("invalid IP address {ip:?}")))?)
    };

    let (start, end) = parse_range(container)
        .map_err(|why| fail(format!("invalid container port {container:?}: {why}")))?;
    let host_range = if host.is_empty() {
        None
    } else {
        let (host_start, host_end) =
            parse_range(host).map_err(|why| fail(format!("invalid host port {host:?}: {why}")))?;
        if end - start != host_end - host_start && start != end {
            return Err(fail(format!(
                "container port range {container:?} and host port range {host:?} have different sizes"
            )));
        }
        Some((host_start, host_end))
    };

    let mut specs: Vec<PortSpec> = (start..=end)
        .map(|target| {
            let published = host_range.map(|(host_start, host_end)| {
                if start == end && host_start != host_end {
                    format!("{host_start}-{host_end}")
                } else {
                    // Same size as the container range, so this stays within u16.
                    (u32::from(host_start) + u32::from(target - start)).to_string()
                }
            });
            PortSpec {
                host_ip: host_ip.clone(),
                published,
                target,
                protocol: protocol.clone(),
            }
        })
        .collect();
    // compose-go sorts the `"<port>/<proto>"` keys as strings; the protocol is the same for all.
    specs.sort_by_cached_key(|spec| spec.target.to_string());
    Ok(specs)
}

/// The host IP as go-connections accepts it: brackets stripped (`[::1]`), then a literal address.
fn parse_host_ip(ip: &str) -> Option<String> {
    let bare = match ip.strip_prefix('[') {
        // Go's net.SplitHostPort(ip + ":"): the first ']' must be the last character, and no other
        // bracket may appear.
        Some(rest) => {
            let inner = rest.strip_suffix(']')?;
            if inner.contains(['[', ']']) {
                return None;
            }
            inner
        }
        None => ip,
    };
    // Go's net.ParseIP: dotted-quad IPv4 without leading zeros, or IPv6 without a zone, which is
    // what Rust's parser accepts too.
    bare.parse::<IpAddr>().ok()?;
    Some(bare.to_string())
}

/// go-connections' `ParsePortRange`: `PORT` or `START-END` (parts after a second `-` are ignored).
fn parse_range(range: &str) -> Result<(u16, u16), String> {
    let mut parts = range.split('-');
    let start = parse_number(parts.next().unwrap_or_default())?;
    let end = match parts.next() {
        Some(end) => parse_number(end)?,
        None => start,
    };
    if end < start {
        return Err("the range ends before it starts".to_string());
    }
    Ok((start, end))
}

/// Go's `strconv.ParseUint(s, 10, 16)`.
fn parse_number(s: &str) -> Result<u16, String> {
    if s.is_empty() || !s.bytes().all(|b| b.is_ascii_digit()) {
        return Err("not a number".to_string());
    }
    let value = s
        .bytes()
        .try_fold(0u32, |acc, b| {
            let next = acc * 10 + u32::from(b - b'0');
            (next <= u32::from(u16::MAX)).then_some(next)
        })
        .ok_or_else(|| "out of range (0-65535)".to_string())?;
    u16::try_from(value).map_err(|_| "out of range (0-65535)".to_string())
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn spec(
        host_ip: Option<&str>,
        published: Option<&str>,
        target: u16,
        protocol: &str,
    ) -> PortSpec {
        PortSpec {
            host_ip: host_ip.map(str::to_string),
            published: published.map(str::to_string),
            target,
            protocol: protocol.to_string(),
        }
    }

    fn ok(s: &str) -> Vec<PortSpec> {
        match parse_port(s) {
            Ok(v) => v,
            Err(e) => panic!("{s:?} should parse, got {e}"),
        }
    }

    fn err(s: &str) -> String {
        match parse_port(s) {
            Ok(v) => panic!("{s:?} should fail, got {v:?}"),
            Err(e) => e,
        }
    }

    #[test]
    fn compose_spec_examples() {
        assert_eq!(ok("3000"), [spec(None, None, 3000, "tcp")]);
        assert_eq!(
            ok("3000-3005"),
            (3000..=3005)
                .map(|p| spec(None, None, p, "tcp"))
                .collect::<Vec<_>>()
        );
        assert_eq!(ok("8000:8000"), [spec(None, Some("8000"), 8000, "tcp")]);
        assert_eq!(
            ok("9090-9091:8080-8081"),
            [
                spec(None, Some("9090"), 8080, "tcp"),
                spec(None, Some("9091"), 8081, "tcp"),
            ]
        );
        assert_eq!(ok("49100:22"), [spec(None, Some("49100"), 22, "tcp")]);
        assert_eq!(
            ok("127.0.0.1:8001:8001"),
            [spec(Some("127.0.0.1"), Some("8001"), 8001, "tcp")]
        );
        assert_eq!(
            ok("127.0.0.1:5000-5010:5000-5010"),
            (0..=10)
                .map(|i| {
                    let port = 5000 + i;
                    spec(Some("127.0.0.1"), Some(&port.to_string()), port, "tcp")
                })
                .collect::<Vec<_>>()
        );
        assert_eq!(ok("6060:6060/udp"), [spec(None, Some("6060"), 6060, "udp")]);
        assert_eq!(
            ok("[::1]:6001:6001"),
            [spec(Some("::1"), Some("6001"), 6001, "tcp")]
        );
    }

    #[test]
    fn host_range_with_single_container_port_stays_a_range() {
        assert_eq!(
            ok("127.0.0.1:5000-5010:5000"),
            [spec(Some("127.0.0.1"), Some("5000-5010"), 5000, "tcp")]
        );
        assert_eq!(
            ok("8000-8010:80"),
            [spec(None, Some("8000-8010"), 80, "tcp")]
        );
        assert_eq!(
            ok("12400-12500:1240"),
            [spec(None, Some("12400-12500"), 1240, "tcp")]
        );
        assert_eq!(ok("8000-8000:80"), [spec(None, Some("8000"), 80, "tcp")]);
    }

    #[test]
    fn go_connections_cases() {
        assert_eq!(
            ok("0.0.0.0:1234-1235:3333-3334/tcp"),
            [
                spec(Some("0.0.0.0"), Some("1234"), 3333, "tcp"),
                spec(Some("0.0.0.0"), Some("1235"), 3334, "tcp"),
            ]
        );
        assert_eq!(
            ok("[2001:4860:0:2001::68]::333"),
            [spec(Some("2001:4860:0:2001::68"), None, 333, "tcp")]
        );
        assert_eq!(
            ok("[::1]:80:80"),
            [spec(Some("::1"), Some("80"), 80, "tcp")]
        );
        assert_eq!(
            ok("2001:4860:0:2001::68::333"),
            [spec(Some("2001:4860:0:2001::68"), None, 333, "tcp")]
        );
        assert_eq!(ok("::1:80:80"), [spec(Some("::1"), Some("80"), 80, "tcp")]);
        assert_eq!(ok("::::80"), [spec(Some("::"), None, 80, "tcp")]);
        assert_eq!(
            ok("192.168.1.100::80"),
            [spec(Some("192.168.1.100"), None, 80, "tcp")]
        );
        assert_eq!(
            ok("192.168.1.100:8080:80"),
            [spec(Some("192.168.1.100"), Some("8080"), 80, "tcp")]
        );
        assert_eq!(
            ok("192.168.1.100::6000/udp"),
            [spec(Some("192.168.1.100"), None, 6000, "udp")]
        );
        assert_eq!(ok("1234/tcp"), [spec(None, None, 1234, "tcp")]);
        assert_eq!(ok("2345/udp"), [spec(None, None, 2345, "udp")]);
        assert_eq!(ok("3456/sctp"), [spec(None, None, 3456, "sctp")]);
        assert_eq!(ok("1234:1234/tcp"), [spec(None, Some("1234"), 1234, "tcp")]);
        assert_eq!(
            ok("2345-2347/udp"),
            [
                spec(None, None, 2345, "udp"),
                spec(None, None, 2346, "udp"),
                spec(None, None, 2347, "udp"),
            ]
        );
    }

    #[test]
    fn details() {
        assert_eq!(ok("80/UDP"), [spec(None, None, 80, "udp")]);
        assert_eq!(ok("80/"), [spec(None, None, 80, "tcp")]);
        assert_eq!(ok("0"), [spec(None, None, 0, "tcp")]);
        assert_eq!(ok("65535"), [spec(None, None, 65535, "tcp")]);
        assert_eq!(ok("0080:080"), [spec(None, Some("80"), 80, "tcp")]);
        assert_eq!(ok(":80:80"), [spec(None, Some("80"), 80, "tcp")]);
        assert_eq!(ok(":80"), [spec(None, None, 80, "tcp")]);
        assert_eq!(
            ok("[1.2.3.4]:80:80"),
            [spec(Some("1.2.3.4"), Some("80"), 80, "tcp")]
        );
        assert_eq!(
            ok("::ffff:10.0.0.1:80:80"),
            [spec(Some("::ffff:10.0.0.1"), Some("80"), 80, "tcp")]
        );
        // Sorted as strings, like compose-go's sort of "<port>/<proto>" keys.
        assert_eq!(
            ok("9998-10001"),
            [10000, 10001, 9998, 9999].map(|p| spec(None, None, p, "tcp"))
        );
        assert_eq!(
            ok("19998-20001:9998-10001/udp"),
            [
                (10000, "20000"),
                (10001, "20001"),
                (9998, "19998"),
                (9999, "19999")
            ]
            .map(|(p, h)| spec(None, Some(h), p, "udp"))
        );
        // go-connections ignores a third part of a range.
        assert_eq!(
            ok("8000-8001-9999"),
            [spec(None, None, 8000, "tcp"), spec(None, None, 8001, "tcp")]
        );
        assert_eq!(ok("0-65535").len(), 65536);
    }

    #[test]
    fn errors() {
        assert_eq!(err(""), r#"invalid port spec "": missing container port"#);
        assert_eq!(
            err("/udp"),
            r#"invalid port spec "/udp": missing container port"#
        );
        assert_eq!(
            err("80:"),
            r#"invalid port spec "80:": missing container port"#
        );
        assert_eq!(
            err("80/xyz"),
            r#"invalid port spec "80/xyz": invalid protocol "xyz" (expected tcp, udp or sctp)"#
        );
        assert_eq!(
            err("80/udp/tcp"),
            r#"invalid port spec "80/udp/tcp": invalid protocol "udp/tcp" (expected tcp, udp or sctp)"#
        );
        assert_eq!(
            err("65536"),
            r#"invalid port spec "65536": invalid container port "65536": out of range (0-65535)"#
        );
        assert_eq!(
            err("99999999999999999999:80"),
            r#"invalid port spec "99999999999999999999:80": invalid host port "99999999999999999999": out of range (0-65535)"#
        );
        assert_eq!(
            err("asdf"),
            r#"invalid port spec "asdf": invalid container port "asdf": not a number"#
        );
        assert_eq!(
            err("+80"),
            r#"invalid port spec "+80": invalid container port "+80": not a number"#
        );
        assert_eq!(
            err(" 80"),
            r#"invalid port spec " 80": invalid container port " 80": not a number"#
        );
        assert_eq!(
            err("1234-1230"),
            r#"invalid port spec "1234-1230": invalid container port "1234-1230": the range ends before it starts"#
        );
        assert_eq!(
            err("80-"),
            r#"invalid port spec "80-": invalid container port "80-": not a number"#
        );
        assert_eq!(
            err("192.168.1.100"),
            r#"invalid port spec "192.168.1.100": invalid container port "192.168.1.100": not a number"#
        );
        assert_eq!(
            err("192.168.1.100:-1:-1"),
            r#"invalid port spec "192.168.1.100:-1:-1": invalid container port "-1": not a number"#
        );
        assert_eq!(
            err("x:80"),
            r#"invalid port spec "x:80": invalid host port "x": not a number"#
        );
        assert_eq!(
            err("80:8080-8081"),
            r#"invalid port spec "80:8080-8081": container port range "8080-8081" and host port range "80" have different sizes"#
        );
        assert_eq!(
            err("9090-9092:8080-8081"),
            r#"invalid port spec "9090-9092:8080-8081": container port range "8080-8081" and host port range "9090-9092" have different sizes"#
        );
        assert_eq!(
            err("localhost:1234:1234/tcp"),
            r#"invalid port spec "localhost:1234:1234/tcp": invalid IP address "localhost""#
        );
        assert_eq!(
            err("127.0.1:8080:80"),
            r#"invalid port spec "127.0.1:8080:80": invalid IP address "127.0.1""#
        );
        assert_eq!(
            err("01.2.3.4:80:80"),
            r#"invalid port spec "01.2.3.4:80:80": invalid IP address "01.2.3.4""#
        );
        assert_eq!(
            err("256.0.0.1:80:80"),
            r#"invalid port spec "256.0.0.1:80:80": invalid IP address "256.0.0.1""#
        );
        assert_eq!(
            err("[::1:80:80"),
            r#"invalid port spec "[::1:80:80": invalid IP address "[::1""#
        );
        assert_eq!(
            err("[::1]x:80:80"),
            r#"invalid port spec "[::1]x:80:80": invalid IP address "[::1]x""#
        );
        assert_eq!(
            err("[[::1]]:80:80"),
            r#"invalid port spec "[[::1]]:80:80": invalid IP address "[[::1]]""#
        );
        assert_eq!(
            err("[]:80:80"),
            r#"invalid port spec "[]:80:80": invalid IP address "[]""#
        );
        assert_eq!(
            err("[fe80::1%eth0]:80:80"),
            r#"invalid port spec "[fe80::1%eth0]:80:80": invalid IP address "[fe80::1%eth0]""#
        );
        assert_eq!(
            err("${HOST_IP}:${HOST_PORT}:80"),
            r#"invalid port spec "${HOST_IP}:${HOST_PORT}:80": invalid IP address "${HOST_IP}""#
        );
    }

    proptest! {
        #[test]
        fn never_panics(s in "\\PC*") {
            let _ = parse_port(&s);
        }

        #[test]
        fn never_panics_on_port_like_input(s in "[\\[\\]0-9a-f.:/-]{0,24}(/(tcp|UDP|sctp|x))?") {
            let _ = parse_port(&s);
        }

        #[test]
        fn ranges_map_port_by_port(start in 0u16..60000, len in 0u16..20, host_start in 0u16..60000) {
            let end = start + len;
            let host_end = host_start + len;
            let specs = parse_port(&format!("{host_start}-{host_end}:{start}-{end}/udp")).unwrap_or_default();
            prop_assert_eq!(specs.len(), usize::from(len) + 1);
            for spec in specs {
                let offset = spec.target - start;
                let expected_host = if len == 0 { host_start } else { host_start + offset };
                prop_assert_eq!(spec.published, Some((expected_host).to_string()));
                prop_assert_eq!(spec.protocol.as_str(), "udp");
            }
        }
    }
}
