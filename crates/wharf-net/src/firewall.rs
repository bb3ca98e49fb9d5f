//! Forwarding and NAT rules: wharf's own table (nftables) or chains (iptables), one per scope,
//! rewritten whole whenever a network comes or goes, and removed whole. Nothing else is changed,
//! but for the jumps into wharf's iptables chains.
//!
//! For each bridge, in this order (the order is what makes it work):
//!
//! 1. traffic within the bridge is accepted (needed where `br_netfilter` sends bridged frames
//!    through the forward hook, as it does wherever Docker runs);
//! 2. traffic between this bridge and any other wharf bridge (`wb-*`, any daemon's) is dropped:
//!    that is network isolation;
//! 3. an `internal` network's traffic to or from anywhere else is dropped; otherwise traffic out
//!    of the bridge is accepted, and into it only as replies;
//! 4. outbound traffic of a non-internal network is masqueraded.
//!
//! Which tool: iptables when the machine has it, else nftables. A forward-hook `accept` in a
//! table of our own does not override a `drop` in another (Docker sets the iptables FORWARD
//! policy to DROP), so where iptables is present our accepts must be in its FORWARD chain.
//! Both yield the same rules (`iptables-nft` writes nftables rules anyway).

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::Arc;
use std::sync::atomic::{AtomicU8, Ordering};

use tokio::io::AsyncWriteExt;

use crate::NetError;
use crate::ipam::Ipv4Net;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FirewallKind {
    Iptables,
    Nftables,
}

impl FirewallKind {
    /// iptables when installed (see the module docs), else nftables, else none.
    pub fn detect() -> Option<FirewallKind> {
        if find_program("iptables").is_some() && find_program("iptables-restore").is_some() {
            Some(FirewallKind::Iptables)
        } else if find_program("nft").is_some() {
            Some(FirewallKind::Nftables)
        } else {
            None
        }
    }
}

/// What the rules need to know about one bridge.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BridgeRules {
    pub ifname: String,
    pub subnet: Ipv4Net,
    pub internal: bool,
}

/// Matches every wharf bridge, of any daemon.
const ALL_BRIDGES_NFT: &str = "wb-*";
const ALL_BRIDGES_IPT: &str = "wb-+";

/// The nftables table of a scope.
pub fn nft_table(scope: &str) -> String {
    format!("wharf_{scope}")
}

/// The iptables chain (in the filter and nat tables) of a scope.
pub fn iptables_chain(scope: &str) -> String {
    format!("WHARF-{scope}")
}

fn iptables_comment(scope: &str) -> String {
    format!("wharf {scope}")
}

/// An nft script that replaces the scope's table atomically.
pub fn nft_script(scope: &str, bridges: &[BridgeRules]) -> String {
    let table = nft_table(scope);
    let mut forward = String::new();
    let mut nat = String::new();
    for b in bridges {
        let i = &b.ifname;
        forward.push_str(&format!("\t\tiifname \"{i}\" oifname \"{i}\" accept\n"));
        forward.push_str(&format!(
            "\t\tiifname \"{i}\" oifname \"{ALL_BRIDGES_NFT}\" drop\n"
        ));
        forward.push_str(&format!(
            "\t\toifname \"{i}\" iifname \"{ALL_BRIDGES_NFT}\" drop\n"
        ));
        if b.internal {
            forward.push_str(&format!("\t\tiifname \"{i}\" drop\n"));
            forward.push_str(&format!("\t\toifname \"{i}\" drop\n"));
        } else {
            forward.push_str(&format!("\t\tiifname \"{i}\" accept\n"));
            forward.push_str(&format!(
                "\t\toifname \"{i}\" ct state established,related accept\n"
            ));
            forward.push_str(&format!("\t\toifname \"{i}\" drop\n"));
            nat.push_str(&format!(
                "\t\tip saddr {} oifname != \"{i}\" masquerade\n",
                b.subnet.normalized()
            ));
        }
    }
    format!(
        "table inet {table}\ndelete table inet {table}\ntable inet {table} {{\n\
         \tchain forward {{\n\t\ttype filter hook forward priority filter; policy accept;\n{forward}\t}}\n\
         \tchain postrouting {{\n\t\ttype nat hook postrouting priority srcnat; policy accept;\n{nat}\t}}\n}}\n"
    )
}

/// An iptables-restore script (for `--noflush`) that replaces the scope's chains.
pub fn iptables_script(scope: &str, bridges: &[BridgeRules]) -> String {
    let chain = iptables_chain(scope);
    let mut filter = format!("*filter\n:{chain} - [0:0]\n");
    let mut nat = format!("*nat\n:{chain} - [0:0]\n");
    for b in bridges {
        let i = &b.ifname;
        filter.push_str(&format!("-A {chain} -i {i} -o {i} -j ACCEPT\n"));
        filter.push_str(&format!("-A {chain} -i {i} -o {ALL_BRIDGES_IPT} -j DROP\n"));
        filter.push_str(&format!("-A {chain} -o {i} -i {ALL_BRIDGES_IPT} -j DROP\n"));
        if b.internal {
            filter.push_str(&format!("-A {chain} -i {i} -j DROP\n"));
            filter.push_str(&format!("-A {chain} -o {i} -j DROP\n"));
        } else {
            filter.push_str(&format!("-A {chain} -i {i} -j ACCEPT\n"));
            filter.push_str(&format!(
                "-A {chain} -o {i} -m conntrack --ctstate RELATED,ESTABLISHED -j ACCEPT\n"
            ));
            filter.push_str(&format!("-A {chain} -o {i} -j DROP\n"));
            nat.push_str(&format!(
                "-A {chain} -s {} ! -o {i} -j MASQUERADE\n",
                b.subnet.normalized()
            ));
        }
    }
    format!("{filter}COMMIT\n{nat}COMMIT\n")
}

/// `script` (an iptables-restore script of `*filter` and `*nat` sections) with each table's jump
/// into the scope's chain added first in its section: `-I` (with `position` " 1") to install them,
/// `-D` to remove them before the chains go.
fn with_jumps(script: &str, scope: &str, command: &str, position: &str) -> String {
    let mut out = script.to_string();
    for (table, builtin, rule) in iptables_jumps(scope) {
        let rule: Vec<String> = rule
            .into_iter()
            .map(|w| {
                if w.contains(' ') {
                    format!("\"{w}\"")
                } else {
                    w
                }
            })
            .collect();
        let header = format!("*{table}\n");
        let line = format!("{command} {builtin}{position} {}\n", rule.join(" "));
        let Some(at) = out.find(&header) else {
            continue;
        };
        let at = if command == "-I" {
            // Last in the section: the chain and its rules are there by then.
            out[at..].find("COMMIT\n").map_or(out.len(), |n| at + n)
        } else {
            // First: the jump goes before its chain is flushed and deleted.
            at + header.len()
        };
        out.insert_str(at, &line);
    }
    out
}

/// The jumps into the scope's chains: (table, built-in chain, rule after the chain name).
fn iptables_jumps(scope: &str) -> [(&'static str, &'static str, Vec<String>); 2] {
    let rule = || {
        vec![
            "-m".to_string(),
            "comment".into(),
            "--comment".into(),
            iptables_comment(scope),
            "-j".into(),
            iptables_chain(scope),
        ]
    };
    [
        ("filter", "FORWARD", rule()),
        ("nat", "POSTROUTING", rule()),
    ]
}

/// What a [`Firewall`] knows of the jumps into its iptables chains, from its own changes.
const JUMPS_UNKNOWN: u8 = 0;
const JUMPS_PRESENT: u8 = 1;
const JUMPS_ABSENT: u8 = 2;

#[derive(Clone, Debug)]
pub(crate) struct Firewall {
    pub(crate) kind: FirewallKind,
    pub(crate) scope: String,
    /// Whether this firewall installed the jumps (`JUMPS_PRESENT`) or removed them
    /// (`JUMPS_ABSENT`) last. Every iptables command costs 3-15 ms here (iptables-nft reads the
    /// whole ruleset each time): when the state is known, `apply` and `remove` are one
    /// `iptables-restore` each, instead of three and up to eight commands.
    jumps: Arc<AtomicU8>,
}

impl Firewall {
    pub(crate) fn new(kind: FirewallKind, scope: String) -> Firewall {
        Firewall {
            kind,
            scope,
            jumps: Arc::new(AtomicU8::new(JUMPS_UNKNOWN)),
        }
    }

    /// Makes the scope's rules those of `bridges`.
    pub(crate) async fn apply(&self, bridges: &[BridgeRules]) -> Result<(), NetError> {
        match self.kind {
            FirewallKind::Nftables => {
                run("nft", &["-f", "-"], Some(&nft_script(&self.scope, bridges))).await?;
            }
            FirewallKind::Iptables => {
                let chains = iptables_script(&self.scope, bridges);
                if self.jumps.load(Ordering::SeqCst) == JUMPS_ABSENT {
                    // The chains and the jumps in one transaction.
                    let script = with_jumps(&chains, &self.scope, "-I", " 1");
                    if run("iptables-restore", &["-w", "--noflush"], Some(&script))
                        .await
                        .is_ok()
                    {
                        self.jumps.store(JUMPS_PRESENT, Ordering::SeqCst);
                        return Ok(());
                    }
                }
                run(
                    "iptables-restore",
                    &["-w", "--noflush"],
                    Some(&iptables_script(&self.scope, bridges)),
                )
                .await?;
                for (table, builtin, rule) in iptables_jumps(&self.scope) {
                    let mut check = vec!["-w", "-t", table, "-C", builtin];
                    check.extend(rule.iter().map(String::as_str));
                    if run("iptables", &check, None).await.is_err() {
                        let mut insert = vec!["-w", "-t", table, "-I", builtin, "1"];
                        insert.extend(rule.iter().map(String::as_str));
                        run("iptables", &insert, None).await?;
                    }
                }
                self.jumps.store(JUMPS_PRESENT, Ordering::SeqCst);
            }
        }
        Ok(())
    }

    /// Removes the scope's table or chains, if there are any; says whether there were.
    pub(crate) async fn remove(&self) -> Result<bool, NetError> {
        match self.kind {
            FirewallKind::Nftables => {
                let table = nft_table(&self.scope);
                if run("nft", &["list", "table", "inet", &table], None)
                    .await
                    .is_err()
                {
                    return Ok(false);
                }
                run("nft", &["delete", "table", "inet", &table], None).await?;
                Ok(true)
            }
            FirewallKind::Iptables => {
                let chain = iptables_chain(&self.scope);
                if self.jumps.load(Ordering::SeqCst) == JUMPS_PRESENT {
                    // Installed by this firewall: the jumps and the chains in one transaction
                    // (it fails as a whole if someone removed a jump meanwhile).
                    let mut script = String::new();
                    for table in ["filter", "nat"] {
                        script.push_str(&format!("*{table}\n-F {chain}\n-X {chain}\nCOMMIT\n"));
                    }
                    let script = with_jumps(&script, &self.scope, "-D", "");
                    if run("iptables-restore", &["-w", "--noflush"], Some(&script))
                        .await
                        .is_ok()
                    {
                        self.jumps.store(JUMPS_ABSENT, Ordering::SeqCst);
                        return Ok(true);
                    }
                }
                let mut found = false;
                for (table, builtin, rule) in iptables_jumps(&self.scope) {
                    let mut delete = vec!["-w", "-t", table, "-D", builtin];
                    delete.extend(rule.iter().map(String::as_str));
                    // One jump normally; more if someone duplicated it.
                    for _ in 0..16 {
                        if run("iptables", &delete, None).await.is_err() {
                            break;
                        }
                        found = true;
                    }
                    if run("iptables", &["-w", "-t", table, "-F", &chain], None)
                        .await
                        .is_ok()
                    {
                        found = true;
                        run("iptables", &["-w", "-t", table, "-X", &chain], None).await?;
                    }
                }
                self.jumps.store(JUMPS_ABSENT, Ordering::SeqCst);
                Ok(found)
            }
        }
    }

    /// Whether anything of the scope is installed (for tests and `recover`).
    pub(crate) async fn present(&self) -> bool {
        match self.kind {
            FirewallKind::Nftables => run(
                "nft",
                &["list", "table", "inet", &nft_table(&self.scope)],
                None,
            )
            .await
            .is_ok(),
            FirewallKind::Iptables => {
                let chain = iptables_chain(&self.scope);
                let mut any = false;
                for table in ["filter", "nat"] {
                    if let Ok(rules) = run("iptables", &["-w", "-t", table, "-S"], None).await {
                        any |= rules.contains(&chain);
                    }
                }
                any
            }
        }
    }
}

/// `program` in PATH or in the sbin directories (often missing from a daemon's PATH).
pub(crate) fn find_program(program: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&path)
        .chain(["/usr/sbin", "/sbin", "/usr/bin", "/bin"].map(PathBuf::from))
        .map(|dir| dir.join(program))
        .find(|p| is_executable(p))
}

fn is_executable(p: &Path) -> bool {
    use std::os::unix::fs::PermissionsExt;
    std::fs::metadata(p).is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
}

/// Runs a firewall command; its standard output on success.
async fn run(program: &str, args: &[&str], input: Option<&str>) -> Result<String, NetError> {
    let fail = |reason: String| NetError::Firewall {
        command: format!("{program} {}", args.join(" ")),
        reason,
    };
    let path = find_program(program).ok_or_else(|| fail("not installed".into()))?;
    let mut child = tokio::process::Command::new(path)
        .args(args)
        .stdin(if input.is_some() {
            Stdio::piped()
        } else {
            Stdio::null()
        })
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .map_err(|e| fail(e.to_string()))?;
    if let (Some(text), Some(mut stdin)) = (input, child.stdin.take()) {
        stdin
            .write_all(text.as_bytes())
            .await
            .map_err(|e| fail(format!("cannot write its input: {e}")))?;
    }
    let out = child
        .wait_with_output()
        .await
        .map_err(|e| fail(e.to_string()))?;
    if out.status.success() {
        Ok(String::from_utf8_lossy(&out.stdout).into_owned())
    } else {
        let stderr = String::from_utf8_lossy(&out.stderr);
        let reason: Vec<&str> = stderr
            .lines()
            .filter(|l| !l.contains("iptables-legacy tables present"))
            .collect();
        Err(fail(reason.join("; ").trim().to_string()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn bridges() -> Vec<BridgeRules> {
        vec![
            BridgeRules {
                ifname: "wb-ab12-proxy0".into(),
                subnet: "10.213.0.0/24".parse().unwrap(),
                internal: false,
            },
            BridgeRules {
                ifname: "wb-ab12-back00".into(),
                subnet: "10.213.1.0/24".parse().unwrap(),
                internal: true,
            },
        ]
    }

    #[test]
    fn nft_rules() {
        assert_eq!(
            nft_script("ab12", &bridges()),
            r#"table inet wharf_ab12
delete table inet wharf_ab12
table inet wharf_ab12 {
	chain forward {
		type filter hook forward priority filter; policy accept;
		iifname "wb-ab12-proxy0" oifname "wb-ab12-proxy0" accept
		iifname "wb-ab12-proxy0" oifname "wb-*" drop
		oifname "wb-ab12-proxy0" iifname "wb-*" drop
		iifname "wb-ab12-proxy0" accept
		oifname "wb-ab12-proxy0" ct state established,related accept
		oifname "wb-ab12-proxy0" drop
		iifname "wb-ab12-back00" oifname "wb-ab12-back00" accept
		iifname "wb-ab12-back00" oifname "wb-*" drop
		oifname "wb-ab12-back00" iifname "wb-*" drop
		iifname "wb-ab12-back00" drop
		oifname "wb-ab12-back00" drop
	}
	chain postrouting {
		type nat hook postrouting priority srcnat; policy accept;
		ip saddr 10.213.0.0/24 oifname != "wb-ab12-proxy0" masquerade
	}
}
"#
        );
    }

    #[test]
    fn iptables_rules() {
        assert_eq!(
            iptables_script("ab12", &bridges()),
            "*filter
:WHARF-ab12 - [0:0]
-A WHARF-ab12 -i wb-ab12-proxy0 -o wb-ab12-proxy0 -j ACCEPT
-A WHARF-ab12 -i wb-ab12-proxy0 -o wb-+ -j DROP
-A WHARF-ab12 -o wb-ab12-proxy0 -i wb-+ -j DROP
-A WHARF-ab12 -i wb-ab12-proxy0 -j ACCEPT
-A WHARF-ab12 -o wb-ab12-proxy0 -m conntrack --ctstate RELATED,ESTABLISHED -j ACCEPT
-A WHARF-ab12 -o wb-ab12-proxy0 -j DROP
-A WHARF-ab12 -i wb-ab12-back00 -o wb-ab12-back00 -j ACCEPT
-A WHARF-ab12 -i wb-ab12-back00 -o wb-+ -j DROP
-A WHARF-ab12 -o wb-ab12-back00 -i wb-+ -j DROP
-A WHARF-ab12 -i wb-ab12-back00 -j DROP
-A WHARF-ab12 -o wb-ab12-back00 -j DROP
COMMIT
*nat
:WHARF-ab12 - [0:0]
-A WHARF-ab12 -s 10.213.0.0/24 ! -o wb-ab12-proxy0 -j MASQUERADE
COMMIT
"
        );
    }

    #[test]
    fn jumps_join_the_chains_transaction() {
        let chains = "*filter\n:WHARF-ab12 - [0:0]\n-A WHARF-ab12 -j DROP\nCOMMIT\n*nat\n:WHARF-ab12 - [0:0]\nCOMMIT\n";
        assert_eq!(
            with_jumps(chains, "ab12", "-I", " 1"),
            "*filter\n:WHARF-ab12 - [0:0]\n-A WHARF-ab12 -j DROP\n\
             -I FORWARD 1 -m comment --comment \"wharf ab12\" -j WHARF-ab12\nCOMMIT\n\
             *nat\n:WHARF-ab12 - [0:0]\n\
             -I POSTROUTING 1 -m comment --comment \"wharf ab12\" -j WHARF-ab12\nCOMMIT\n"
        );
        let removal = "*filter\n-F WHARF-ab12\n-X WHARF-ab12\nCOMMIT\n";
        assert_eq!(
            with_jumps(removal, "ab12", "-D", ""),
            "*filter\n-D FORWARD -m comment --comment \"wharf ab12\" -j WHARF-ab12\n\
             -F WHARF-ab12\n-X WHARF-ab12\nCOMMIT\n"
        );
    }
}
