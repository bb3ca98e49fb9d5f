//! Network namespaces, held by a descriptor in the daemon (never bind-mounted): a namespace lives
//! as long as the daemon holds it or a process runs in it, so when the daemon dies (and its
//! instances with it, see `wharf_runtime::native`) the kernel removes the namespaces and the
//! veths in them by itself; only bridges and rules are left for `recover`.
//!
//! Processes join one through `/proc/<daemon pid>/fd/<n>` (the shim opens that path and
//! `setns`es), which names the namespace for as long as the descriptor is open.
//!
//! Entering a namespace is per thread: creating one, or opening a netlink socket inside one,
//! happens on a long-lived thread of this module's, which goes back to the daemon's namespace
//! after each job, so that no thread of the daemon's runtime ever changes namespace. (A thread per
//! job cost a thread creation per namespace and per socket, and left the memory the socket and
//! its task were given stranded in the allocator's pages of a thread that had exited: about
//! 3 MB of resident memory with 50 instances.)

use std::io;
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::path::PathBuf;
use std::sync::Mutex;

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
        let fd = on_namespace_thread(|| {
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
        on_namespace_thread(move || {
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

type Job = Box<dyn FnOnce() + Send>;

/// Runs `f` on the namespace thread, which returns to the daemon's network namespace afterwards.
/// If it cannot, it ends, and the next job starts a new one.
async fn on_namespace_thread<T: Send + 'static>(
    f: impl FnOnce() -> io::Result<T> + Send + 'static,
) -> io::Result<T> {
    let (tx, rx) = oneshot::channel();
    submit(Box::new(move || {
        let _ = tx.send(f());
    }))?;
    rx.await
        .map_err(|_| io::Error::other("the namespace thread ended before answering"))?
}

fn submit(mut job: Job) -> io::Result<()> {
    static THREAD: Mutex<Option<std::sync::mpsc::Sender<Job>>> = Mutex::new(None);
    let mut thread = THREAD.lock().unwrap_or_else(|p| p.into_inner());
    for _ in 0..2 {
        let jobs = match thread.as_ref() {
            Some(jobs) => jobs.clone(),
            None => {
                let jobs = start_thread()?;
                *thread = Some(jobs.clone());
                jobs
            }
        };
        match jobs.send(job) {
            Ok(()) => return Ok(()),
            // The thread ended (it could not come back home): start another.
            Err(std::sync::mpsc::SendError(returned)) => {
                job = returned;
                *thread = None;
            }
        }
    }
    Err(io::Error::other("the namespace thread cannot be started"))
}

fn start_thread() -> io::Result<std::sync::mpsc::Sender<Job>> {
    let home = rustix::fs::open(
        "/proc/thread-self/ns/net",
        OFlags::RDONLY | OFlags::CLOEXEC,
        Mode::empty(),
    )?;
    let (jobs, queue) = std::sync::mpsc::channel::<Job>();
    std::thread::Builder::new()
        .name("wharf-netns".into())
        .spawn(move || {
            for job in queue {
                // A panicking job drops its answer: the caller gets an error.
                let _ = std::panic::catch_unwind(std::panic::AssertUnwindSafe(job));
                let back = rustix::thread::move_into_link_name_space(
                    home.as_fd(),
                    Some(LinkNameSpaceType::Network),
                );
                if back.is_err() {
                    break;
                }
            }
        })?;
    Ok(jobs)
}
