//! The names of what wharf creates on the host, so that leftovers can be found again and nothing
//! else is ever touched.
//!
//! Linux allows 15 bytes for an interface name, too few for a project and a network: names are
//! `wb-<scope>-<hash>` for bridges and `wv-<scope>-<hash>` for the host end of veths, where
//! `<scope>` (4 characters) tells one daemon's objects from another's (see
//! [`crate::NetConfig::scope`]) and `<hash>` (6 characters) is a hash of the network's (or the
//! instance's and network's) name. A bridge also carries its full name as its alias (`ip link`
//! shows `alias wharf <scope> edd_backend`).

/// Characters of a scope.
pub const SCOPE_LEN: usize = 4;
const HASH_LEN: usize = 6;

pub const BRIDGE_PREFIX: &str = "wb-";
pub const VETH_PREFIX: &str = "wv-";

/// The bridge of the network whose engine-level name is `network`.
pub fn bridge(scope: &str, network: &str) -> String {
    format!("{BRIDGE_PREFIX}{scope}-{}", hash36(network, HASH_LEN))
}

/// The host end of the veth of `instance` on `network`.
pub fn veth(scope: &str, instance: &str, network: &str) -> String {
    format!(
        "{VETH_PREFIX}{scope}-{}",
        hash36(&format!("{instance}\0{network}"), HASH_LEN)
    )
}

/// The bridge's alias: what `ip link` shows under it. Ends with the owning process
/// (`<pid>@<start time>`), so that a bridge whose daemon is gone can be told from one in use.
pub fn bridge_alias(scope: &str, network: &str) -> String {
    format!("wharf {scope} {network} {}", owner())
}

/// This process, as `<pid>@<start time in clock ticks since boot>` (a pid alone can be reused).
pub fn owner() -> String {
    let pid = std::process::id();
    format!("{pid}@{}", start_time(pid).unwrap_or(0))
}

/// Whether the process an alias names as its owner still runs. An alias without an owner is
/// taken as alive: nothing is removed on a guess.
pub fn owner_alive(alias: &str) -> bool {
    let Some((pid, start)) = alias
        .rsplit(' ')
        .next()
        .and_then(|o| o.split_once('@'))
        .and_then(|(p, s)| Some((p.parse::<u32>().ok()?, s.parse::<u64>().ok()?)))
    else {
        return true;
    };
    start_time(pid) == Some(start)
}

/// The scope an alias of ours names.
pub fn alias_scope(alias: &str) -> Option<&str> {
    let mut words = alias.split(' ');
    (words.next() == Some("wharf"))
        .then(|| words.next())
        .flatten()
        .filter(|s| s.len() == SCOPE_LEN)
}

fn start_time(pid: u32) -> Option<u64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // Field 22, counted after the command name (which may contain anything).
    stat[stat.rfind(')')? + 1..]
        .split_whitespace()
        .nth(19)?
        .parse()
        .ok()
}

/// Whether `ifname` is a bridge or veth of `scope`.
pub fn is_ours(scope: &str, ifname: &str) -> bool {
    [BRIDGE_PREFIX, VETH_PREFIX].iter().any(|prefix| {
        ifname
            .strip_prefix(prefix)
            .and_then(|rest| rest.strip_prefix(scope))
            .is_some_and(|rest| rest.starts_with('-'))
    })
}

/// A scope from any text (a state directory's path).
pub fn scope_of(text: &str) -> String {
    hash36(text, SCOPE_LEN)
}

/// FNV-1a, in base 36 (digits and lowercase letters), `len` characters.
pub fn hash36(text: &str, len: usize) -> String {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in text.bytes() {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x0000_0100_0000_01b3);
    }
    const DIGITS: &[u8; 36] = b"0123456789abcdefghijklmnopqrstuvwxyz";
    (0..len)
        .map(|_| {
            let d = DIGITS[(h % 36) as usize] as char;
            h /= 36;
            d
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_fit_in_an_interface_name() {
        let b = bridge("ab12", "a_very_long_project_name_backend");
        let v = veth(
            "ab12",
            "a_very_long_project-web-12",
            "a_very_long_project_backend",
        );
        assert!(b.len() <= 15 && v.len() <= 15, "{b} {v}");
        assert!(b.starts_with("wb-ab12-") && v.starts_with("wv-ab12-"));
        assert_ne!(bridge("ab12", "p_a"), bridge("ab12", "p_b"));
        assert_eq!(bridge("ab12", "p_a"), bridge("ab12", "p_a"));
    }

    #[test]
    fn tells_a_live_owner_from_a_gone_one() {
        let alias = bridge_alias("ab12", "p_default");
        assert!(alias.starts_with("wharf ab12 p_default "));
        assert_eq!(alias_scope(&alias), Some("ab12"));
        assert!(owner_alive(&alias));
        assert!(!owner_alive("wharf ab12 p_default 4194304@1"));
        assert!(owner_alive("wharf ab12 p_default"), "no owner: kept");
        assert_eq!(alias_scope("something else"), None);
    }

    #[test]
    fn recognises_only_its_own_scope() {
        assert!(is_ours("ab12", &bridge("ab12", "x")));
        assert!(is_ours("ab12", &veth("ab12", "i", "x")));
        assert!(!is_ours("ab12", &bridge("ab13", "x")));
        assert!(!is_ours("ab12", "wb-ab123-xxxxxx"));
        assert!(!is_ours("ab12", "docker0"));
        assert!(!is_ours("ab12", "eth0"));
    }
}
