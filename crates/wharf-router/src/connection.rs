//! Limits on client connections: how many one client address may hold open at once, and how long
//! a connection served by hyper (h2c, h2 over TLS, HTTP/1.1 over TLS or handed over by the fast
//! path) may stay open with no request in progress (issue 12, item 4: idle h2c connections used
//! to stay open for ever, and a few hundred of them starved the router).

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::sync::Notify;
use tokio::time::Instant;

/// Open connections per client address, shared by every listener and thread of a router.
#[derive(Debug)]
pub(crate) struct ClientLimits {
    max: usize,
    open: Mutex<HashMap<IpAddr, usize>>,
}

/// A client connection counted against its address until dropped.
pub(crate) struct Admitted {
    limits: Arc<ClientLimits>,
    ip: IpAddr,
}

impl ClientLimits {
    pub(crate) fn new(max: usize) -> Arc<ClientLimits> {
        Arc::new(ClientLimits {
            max: max.max(1),
            open: Mutex::new(HashMap::new()),
        })
    }

    /// Counts a new connection from `ip`, or `None` when it already holds the maximum.
    pub(crate) fn admit(self: &Arc<Self>, ip: IpAddr) -> Option<Admitted> {
        let mut open = self.open.lock().unwrap_or_else(|e| e.into_inner());
        let n = open.entry(ip).or_insert(0);
        if *n >= self.max {
            return None;
        }
        *n += 1;
        Some(Admitted {
            limits: self.clone(),
            ip,
        })
    }

    /// Connections `ip` holds open now.
    #[cfg(test)]
    fn open(&self, ip: IpAddr) -> usize {
        let open = self.open.lock().unwrap_or_else(|e| e.into_inner());
        open.get(&ip).copied().unwrap_or(0)
    }
}

impl Drop for Admitted {
    fn drop(&mut self) {
        let mut open = self.limits.open.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(n) = open.get_mut(&self.ip) {
            *n -= 1;
            if *n == 0 {
                open.remove(&self.ip);
            }
        }
    }
}

/// Whether a connection has requests in progress, and since when it has had none.
#[derive(Debug)]
pub(crate) struct Activity {
    busy: AtomicUsize,
    idle_since: Mutex<Instant>,
    changed: Notify,
}

/// A request in progress, until its answer is sent (or dropped).
#[derive(Debug)]
pub(crate) struct Busy(Arc<Activity>);

impl Activity {
    pub(crate) fn new() -> Arc<Activity> {
        Arc::new(Activity {
            busy: AtomicUsize::new(0),
            idle_since: Mutex::new(Instant::now()),
            changed: Notify::new(),
        })
    }

    pub(crate) fn begin(self: &Arc<Self>) -> Busy {
        self.busy.fetch_add(1, Ordering::SeqCst);
        self.changed.notify_waiters();
        Busy(self.clone())
    }

    /// Completes once the connection has had no request in progress for `timeout`.
    pub(crate) async fn idle_for(&self, timeout: Duration) {
        loop {
            // Registered before the state is read, so that no change is missed.
            let changed = self.changed.notified();
            if self.busy.load(Ordering::SeqCst) > 0 {
                changed.await;
                continue;
            }
            let since = *self.idle_since.lock().unwrap_or_else(|e| e.into_inner());
            let deadline = since + timeout;
            if Instant::now() >= deadline {
                return;
            }
            tokio::select! {
                () = tokio::time::sleep_until(deadline) => {}
                () = changed => {}
            }
        }
    }
}

impl Drop for Busy {
    fn drop(&mut self) {
        if self.0.busy.fetch_sub(1, Ordering::SeqCst) == 1 {
            *self.0.idle_since.lock().unwrap_or_else(|e| e.into_inner()) = Instant::now();
        }
        self.0.changed.notify_waiters();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_client_holds_at_most_the_maximum_and_gets_them_back() {
        let limits = ClientLimits::new(2);
        let a: IpAddr = [10, 0, 0, 1].into();
        let b: IpAddr = [10, 0, 0, 2].into();
        let first = limits.admit(a).expect("first");
        let second = limits.admit(a).expect("second");
        assert!(limits.admit(a).is_none());
        assert!(
            limits.admit(b).is_some(),
            "another client is not limited by a's"
        );
        drop(first);
        let third = limits.admit(a).expect("room again");
        drop((second, third));
        assert_eq!(limits.open(a), 0);
    }

    #[tokio::test(start_paused = true)]
    async fn idle_means_no_request_in_progress_for_the_whole_timeout() {
        let activity = Activity::new();
        let timeout = Duration::from_secs(60);
        let busy = activity.begin();
        // Busy for longer than the timeout: not idle.
        let waited = tokio::time::timeout(Duration::from_secs(120), activity.idle_for(timeout));
        assert!(waited.await.is_err());
        drop(busy);
        let start = Instant::now();
        activity.idle_for(timeout).await;
        assert_eq!(start.elapsed(), timeout);
    }
}
