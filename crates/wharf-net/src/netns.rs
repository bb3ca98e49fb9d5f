//! Network namespaces, held by a descriptor in the daemon (never bind-mounted): a namespace lives
//! as long as the daemon holds it or a process runs in it, so when the daemon dies (and its
//! instances with it, see `wharf_runtime::native`) the kernel removes the namespaces and the
//! veths in them by itself; only bridges and rules are left for `recover`.
//!
//! Processes join one through `/proc/<daemon pid>/fd/<n>` (the shim opens that path and
//! `setns`es), which names the namespace for as long as the descriptor is open.
//!
//! Entering a namespace is per thread: creating one, or opening a netlink socket inside one,
//! happens on a short-lived thread of its own, so that no thread of the daemon's runtime ever
//! changes namespace.

use std::io;
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::path::PathBuf;

use rustix::fs::{Mode, OFlags};
use rustix::thread::{LinkNameSpaceType, UnshareFlags};
use tokio::sync::oneshot;

use crate::link::Netlink;

#[derive(Debug)]
pub(crate) struct NetNs {
    fd: OwnedFd,
}

impl NetNs {
    /// A new, empty network namespace (only a loopback, down).
    pub(crate) async fn create() -> io::Result<NetNs> {
        let fd = on_own_thread(|| {
            // SAFETY: a new network namespace for this thread only; it shares no descriptors.
            unsafe { rustix::thread::unshare_unsafe(UnshareFlags::NEWNET)? };
            Ok(rustix::fs::open(
                "/proc/thread-self/ns/net",
                OFlags::RDONLY | OFlags::CLOEXEC,
                Mode::empty(),
            )?)
        })
        .await?;
        Ok(NetNs { fd })
    }

    /// The path through which another process joins it.
    pub(crate) fn path(&self) -> PathBuf {
        use std::os::fd::AsRawFd;
        PathBuf::from(format!(
            "/proc/{}/fd/{}",
            std::process::id(),
            self.fd.as_raw_fd()
        ))
    }

    /// Its inode: how `/proc/<pid>/ns/net` links name it (`net:[<inode>]`).
    pub(crate) fn inode(&self) -> u64 {
        rustix::fs::fstat(&self.fd).map(|s| s.st_ino).unwrap_or(0)
    }

    pub(crate) fn fd(&self) -> BorrowedFd<'_> {
        self.fd.as_fd()
    }

    /// A netlink connection inside this namespace (its socket stays there, whichever thread
    /// uses it).
    pub(crate) async fn netlink(&self) -> io::Result<Netlink> {
        let fd = self.fd.try_clone()?;
        let runtime = tokio::runtime::Handle::current();
        on_own_thread(move || {
            rustix::thread::move_into_link_name_space(
                fd.as_fd(),
                Some(LinkNameSpaceType::Network),
            )?;
            let _entered = runtime.enter();
            Netlink::connect()
        })
        .await
    }
}

/// Runs `f` on a new thread that ends with it.
async fn on_own_thread<T: Send + 'static>(
    f: impl FnOnce() -> io::Result<T> + Send + 'static,
) -> io::Result<T> {
    let (tx, rx) = oneshot::channel();
    std::thread::Builder::new()
        .name("wharf-netns".into())
        .spawn(move || {
            let _ = tx.send(f());
        })?;
    rx.await
        .map_err(|_| io::Error::other("the namespace thread panicked"))?
}
