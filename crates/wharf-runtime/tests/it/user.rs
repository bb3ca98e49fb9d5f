//! Running as `user:` (root only: without root, instances run as the daemon's user).

use std::ffi::CString;

use nix::unistd::{User, getgrouplist};
use wharf_runtime::{ExitStatus, Runtime, RuntimeError, Stream};

use crate::support::*;

async fn ids(user: &str, ns: bool) -> Vec<String> {
    let mut spec = sh("id -u; id -g; id -G");
    spec.user = Some(user.into());
    let (lines, status) = finish(runtime(ns).start(&spec).await.expect("start")).await;
    assert_eq!(status, ExitStatus::Code(0));
    texts(&lines, Stream::Stdout)
}

#[tokio::test]
async fn runs_as_a_named_user_with_its_groups() {
    require_root!();
    let nobody = User::from_name("nobody")
        .expect("passwd")
        .expect("user nobody");
    let name = CString::new("nobody").expect("name");
    let mut groups: Vec<String> = getgrouplist(&name, nobody.gid)
        .expect("groups")
        .iter()
        .map(|g| g.to_string())
        .collect();
    groups.dedup();
    for ns in modes() {
        let out = ids("nobody", ns).await;
        assert_eq!(out[0], nobody.uid.to_string(), "pid_namespace={ns}");
        assert_eq!(out[1], nobody.gid.to_string());
        assert_eq!(out[2], groups.join(" "));
    }
}

#[tokio::test]
async fn runs_as_numeric_ids_without_passwd_entries() {
    require_root!();
    for ns in modes() {
        assert_eq!(ids("4321:8765", ns).await, ["4321", "8765", "8765"]);
    }
}

#[tokio::test]
async fn an_unknown_user_is_a_start_error() {
    require_root!();
    let mut spec = spec(&["true"]);
    spec.user = Some("no-such-user-wharf".into());
    match runtime(true).start(&spec).await {
        Err(RuntimeError::Start { reason, .. }) => {
            assert_eq!(
                reason,
                "unknown user `no-such-user-wharf` (not in /etc/passwd)"
            )
        }
        Err(e) => panic!("wrong error: {e}"),
        Ok(_) => panic!("started as an unknown user"),
    }
}
