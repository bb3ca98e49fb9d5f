//! Names: each instance's own `/etc/hosts` and `/etc/resolv.conf`, bind-mounted over the
//! machine's in the instance's private mount namespace (as `ip netns exec` does with
//! `/etc/netns/<name>/`).
//!
//! The hosts file lists, for every network the instance is attached to, every running instance
//! on it under its instance name (`edd-db-1`), its service name (`db`; one line per replica, so a
//! service with three replicas resolves to three addresses), its aliases on that network and its
//! `hostname:`. Names of instances on networks it is not attached to are not there, and nothing
//! else answers for them: they do not resolve.
//!
//! Files are rewritten in place (never replaced by a rename): a bind mount pins the inode it was
//! made from, so a renamed-over file would never be seen by the instance.

use std::io::{self, Seek, SeekFrom, Write};
use std::net::IpAddr;
use std::path::Path;

/// One line of a hosts file.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct HostEntry {
    pub addr: IpAddr,
    pub names: Vec<String>,
}

const HEADER: &str = "# managed by wharf: rewritten as the project's instances start and stop\n";

/// The text of a hosts file: localhost, then `entries` (names de-duplicated per line, empty
/// lines left out).
pub fn hosts_text(entries: &[HostEntry]) -> String {
    let mut text = String::from(HEADER);
    text.push_str("127.0.0.1\tlocalhost\n");
    text.push_str("::1\tlocalhost ip6-localhost ip6-loopback\n");
    for e in entries {
        let mut names: Vec<&str> = Vec::new();
        for n in &e.names {
            if !n.is_empty() && !names.contains(&n.as_str()) {
                names.push(n);
            }
        }
        if !names.is_empty() {
            text.push_str(&format!("{}\t{}\n", e.addr, names.join(" ")));
        }
    }
    text
}

/// The text of a resolv.conf: `nameservers`, with the `search`, `domain` and `options` lines
/// of the machine's own file (`host`).
pub fn resolv_text(host: &str, nameservers: &[IpAddr]) -> String {
    let mut text = String::from("# managed by wharf\n");
    if nameservers.is_empty() {
        text.push_str(
            "# no nameserver reachable from instances: only the project's names resolve\n",
        );
    }
    for ns in nameservers {
        text.push_str(&format!("nameserver {ns}\n"));
    }
    for line in host.lines() {
        let key = line.split_whitespace().next().unwrap_or("");
        if matches!(key, "search" | "domain" | "options") {
            text.push_str(line.trim());
            text.push('\n');
        }
    }
    text
}

/// The nameservers of the machine's resolv.conf that an instance can reach: not loopback ones
/// (127.0.0.53 of systemd-resolved answers only on the host's own loopback).
pub fn reachable_nameservers(host: &str) -> Vec<IpAddr> {
    host.lines()
        .filter_map(|l| {
            let mut words = l.split_whitespace();
            (words.next() == Some("nameserver"))
                .then(|| words.next())
                .flatten()
                .and_then(|a| a.parse::<IpAddr>().ok())
        })
        .filter(|a| !a.is_loopback())
        .collect()
}

/// Writes `text` over the file's content without replacing the file (see the module docs).
/// Creates the file when it does not exist yet.
pub fn write_in_place(path: &Path, text: &str) -> io::Result<()> {
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(false)
        .open(path)?;
    f.seek(SeekFrom::Start(0))?;
    f.write_all(text.as_bytes())?;
    f.set_len(text.len() as u64)?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lists_every_address_with_its_names() {
        let entries = vec![
            HostEntry {
                addr: "10.213.0.2".parse().unwrap(),
                names: vec!["edd-web-1".into(), "web".into(), "web".into()],
            },
            HostEntry {
                addr: "10.213.0.3".parse().unwrap(),
                names: vec!["edd-web-2".into(), "web".into()],
            },
            HostEntry {
                addr: "10.213.0.4".parse().unwrap(),
                names: vec![],
            },
        ];
        assert_eq!(
            hosts_text(&entries),
            "# managed by wharf: rewritten as the project's instances start and stop\n\
             127.0.0.1\tlocalhost\n\
             ::1\tlocalhost ip6-localhost ip6-loopback\n\
             10.213.0.2\tedd-web-1 web\n\
             10.213.0.3\tedd-web-2 web\n"
        );
    }

    #[test]
    fn resolv_keeps_search_and_options_and_drops_loopback_nameservers() {
        let host = "nameserver 127.0.0.53\nnameserver 10.255.255.53\nsearch example.org\noptions edns0 trust-ad\n";
        let ns = reachable_nameservers(host);
        assert_eq!(ns, vec!["10.255.255.53".parse::<IpAddr>().unwrap()]);
        assert_eq!(
            resolv_text(host, &ns),
            "# managed by wharf\nnameserver 10.255.255.53\nsearch example.org\noptions edns0 trust-ad\n"
        );
        assert!(resolv_text(host, &[]).contains("no nameserver"));
    }

    #[test]
    fn rewrites_keep_the_inode() {
        use std::os::unix::fs::MetadataExt;
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("hosts");
        write_in_place(&path, "a long first version\n").unwrap();
        let inode = std::fs::metadata(&path).unwrap().ino();
        write_in_place(&path, "short\n").unwrap();
        assert_eq!(std::fs::read_to_string(&path).unwrap(), "short\n");
        assert_eq!(std::fs::metadata(&path).unwrap().ino(), inode);
    }
}
