//! A service scaled to 300 instances natively: every instance gets its own address on the
//! project's network (past the 254 of a /24) and every hosts file lists all of them.
//!
//! Pins two bugs: each native network was a /24, so the 254th instance got no address; and
//! every start rebuilt every hosts file of the network from every instance, so 300 instances
//! took minutes to start (274 were running after 240 s) and `down` about two more.

use std::collections::BTreeSet;
use std::io::Write;
use std::time::Duration;

use crate::stack::Stack;

const REPLICAS: u32 = 300;

/// Whether wharf isolates instances here (as root: namespaces and bridges); says so loudly when
/// it does not, since without root instances share the machine's network and have no address
/// of their own.
fn root(test: &str) -> bool {
    use std::os::unix::fs::MetadataExt;
    if std::fs::metadata("/proc/self").is_ok_and(|m| m.uid() == 0) {
        return true;
    }
    let _ = writeln!(
        std::io::stderr(),
        "\n!!! SKIPPED {test}: native networks need root; CI runs it as root\n"
    );
    false
}

/// What `ip -4 -o addr show dev eth0` says in instance `n` of web: its `address/prefix`.
fn eth0_of(stack: &Stack, n: u32) -> String {
    let out = stack
        .wharf()
        .args(["exec", "--index", &n.to_string(), "web"])
        .args(["ip", "-4", "-o", "addr", "show", "dev", "eth0"])
        .output()
        .expect("wharf runs");
    let text = String::from_utf8_lossy(&out.stdout).to_string();
    assert!(
        out.status.success(),
        "exec in web-{n}: {text}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    text.split_whitespace()
        .skip_while(|w| *w != "inet")
        .nth(1)
        .unwrap_or_else(|| panic!("no address on eth0 of web-{n}: {text}"))
        .to_string()
}

#[test]
fn a_service_scaled_to_300_gets_an_address_for_each_instance() {
    if !root("a_service_scaled_to_300_gets_an_address_for_each_instance") {
        return;
    }
    let stack = Stack::new(&format!(
        "name: scale\nservices:\n  web:\n    command: [\"sleep\", \"600\"]\n    deploy: {{replicas: {REPLICAS}}}\n"
    ));
    // A bound for a hang, not a measurement: it takes seconds.
    stack
        .wharf()
        .args(["up", "-d", "--wait", "--wait-timeout", "240"])
        .timeout(Duration::from_secs(300))
        .assert()
        .success();
    let mut seen = BTreeSet::new();
    for n in [1, 253, 254, 255, 256, REPLICAS] {
        let addr = eth0_of(&stack, n);
        assert!(addr.ends_with("/20"), "web-{n} has {addr}");
        assert!(seen.insert(addr.clone()), "{addr} given twice");
    }
    let out = stack
        .wharf()
        .args(["exec", "--index", "300", "web", "cat", "/etc/hosts"])
        .output()
        .expect("wharf runs");
    let hosts = String::from_utf8_lossy(&out.stdout);
    let listed = hosts.lines().filter(|l| l.contains("scale-web-")).count();
    assert_eq!(listed, REPLICAS as usize, "{hosts}");
    stack
        .wharf()
        .args(["down"])
        .timeout(Duration::from_secs(300))
        .assert()
        .success();
}
