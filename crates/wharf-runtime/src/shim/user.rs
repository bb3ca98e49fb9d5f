//! Compose's `user:` (`name`, `uid`, `name:group`, `uid:gid`, ...) to the credentials the program
//! runs with, looked up in this machine's `/etc/passwd` and `/etc/group` as Docker does in the
//! image's:
//!
//! - a user name must exist; a numeric uid need not (it then runs with gid 0 unless one is given);
//! - without a group, the user's primary group and its supplementary groups from `/etc/group`;
//! - with a group, that group only (no supplementary groups), as runc does.
//!
//! Runs in the shim before it forks (the lookups may load NSS modules; never in a `pre_exec`).

use std::ffi::CString;

use nix::unistd::{Gid, Group, Uid, User, getgrouplist};

#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Credentials {
    pub(crate) uid: Uid,
    pub(crate) gid: Gid,
    /// Supplementary groups (`setgroups`), possibly empty.
    pub(crate) groups: Vec<Gid>,
}

pub(crate) fn resolve(spec: &str) -> Result<Credentials, String> {
    let (user, group) = match spec.split_once(':') {
        Some((u, g)) => (u, Some(g)),
        None => (spec, None),
    };
    if user.is_empty() || group == Some("") {
        return Err(format!(
            "invalid user `{spec}` (expected user, uid, user:group or uid:gid)"
        ));
    }
    let passwd_error = |e: nix::Error| format!("cannot read /etc/passwd: {}", super::describe(e));
    let (uid, entry) = match user.parse::<u32>() {
        Ok(raw) => (
            Uid::from_raw(raw),
            User::from_uid(Uid::from_raw(raw)).map_err(passwd_error)?,
        ),
        Err(_) => {
            let entry = User::from_name(user)
                .map_err(passwd_error)?
                .ok_or_else(|| format!("unknown user `{user}` (not in /etc/passwd)"))?;
            (entry.uid, Some(entry))
        }
    };
    match group {
        Some(group) => {
            let gid = match group.parse::<u32>() {
                Ok(gid) => Gid::from_raw(gid),
                Err(_) => {
                    Group::from_name(group)
                        .map_err(|e| format!("cannot read /etc/group: {}", super::describe(e)))?
                        .ok_or_else(|| format!("unknown group `{group}` (not in /etc/group)"))?
                        .gid
                }
            };
            Ok(Credentials {
                uid,
                gid,
                groups: Vec::new(),
            })
        }
        None => {
            let Some(entry) = entry else {
                return Ok(Credentials {
                    uid,
                    gid: Gid::from_raw(0),
                    groups: Vec::new(),
                });
            };
            let name = CString::new(entry.name.as_bytes())
                .map_err(|_| format!("invalid user name `{}`", entry.name))?;
            let groups = getgrouplist(&name, entry.gid).map_err(|e| {
                format!(
                    "cannot list the groups of `{}`: {}",
                    entry.name,
                    super::describe(e)
                )
            })?;
            Ok(Credentials {
                uid,
                gid: entry.gid,
                groups,
            })
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn resolves_names_and_numbers() {
        let root = resolve("root").expect("root exists");
        assert_eq!((root.uid.as_raw(), root.gid.as_raw()), (0, 0));
        assert!(root.groups.contains(&Gid::from_raw(0)));

        let numeric = resolve("1234:5678").expect("numeric ids need no entry");
        assert_eq!(
            numeric,
            Credentials {
                uid: Uid::from_raw(1234),
                gid: Gid::from_raw(5678),
                groups: vec![]
            }
        );
        // A uid without a passwd entry runs with gid 0, as in Docker.
        let unknown_uid = resolve("54321").expect("numeric uid");
        assert_eq!(unknown_uid.gid, Gid::from_raw(0));

        let with_group = resolve("root:0").expect("root:0");
        assert!(with_group.groups.is_empty());
    }

    #[test]
    fn refuses_unknown_names() {
        assert_eq!(
            resolve("no-such-user-wharf"),
            Err("unknown user `no-such-user-wharf` (not in /etc/passwd)".into())
        );
        assert_eq!(
            resolve("root:no-such-group-wharf"),
            Err("unknown group `no-such-group-wharf` (not in /etc/group)".into())
        );
        assert!(resolve(":0").is_err());
        assert!(resolve("root:").is_err());
    }
}
