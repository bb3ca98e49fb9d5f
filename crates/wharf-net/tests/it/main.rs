//! wharf-net against the real kernel: bridges, namespaces and veths. The tests need root
//! (network namespaces, bridges, firewall rules); without it they say so loudly and pass, as
//! the Docker tests do without an engine. No test sends a packet anywhere.

mod addresses;

/// Whether this process may create namespaces and links; says so loudly when it may not.
pub(crate) fn root(test: &str) -> bool {
    use std::io::Write;
    use std::os::unix::fs::MetadataExt;
    if std::fs::metadata("/proc/self").is_ok_and(|m| m.uid() == 0) {
        return true;
    }
    let _ = writeln!(
        std::io::stderr(),
        "\n!!! SKIPPED {test}: it needs root (network namespaces and bridges); CI runs it as root\n"
    );
    false
}
