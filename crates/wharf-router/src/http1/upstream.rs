//! Keep-alive connections to instances for the fast path: one pool per serving thread (each
//! [`Router`](crate::Router) clone that `serve_on_threads` makes has its own), so a connection is
//! only ever driven by the thread that made it and checking one out is an uncontended lock.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::Mutex;
use std::time::Duration;

use tokio::net::TcpStream;
use tokio::time::Instant;

/// Idle connections kept per instance address (and thread); more are closed.
const MAX_IDLE_PER_ADDR: usize = 512;
/// Response bytes read at once.
pub(crate) const READ_BUFFER: usize = 32 * 1024;

/// A connection to an instance and the buffer its responses are read into.
pub(crate) struct UpstreamConn {
    pub stream: TcpStream,
    pub buf: Vec<u8>,
    /// It served a request before (then a failure before any answer may be the instance
    /// having closed it while idle).
    pub reused: bool,
}

impl UpstreamConn {
    pub(crate) fn new(stream: TcpStream) -> UpstreamConn {
        UpstreamConn {
            stream,
            buf: Vec::with_capacity(READ_BUFFER),
            reused: false,
        }
    }

    /// Whether the instance has not closed it (nothing to read, no end of stream): asks the
    /// socket only when the runtime's readiness says there might be something.
    pub(crate) fn looks_alive(&self) -> bool {
        let mut byte = [0u8; 1];
        matches!(self.stream.try_read(&mut byte), Err(e) if e.kind() == std::io::ErrorKind::WouldBlock)
    }
}

struct Idle {
    conn: UpstreamConn,
    since: Instant,
}

/// Idle connections by instance address, newest last.
pub(crate) struct UpstreamPool {
    idle: Mutex<Idles>,
    timeout: Duration,
}

struct Idles {
    by_addr: HashMap<SocketAddr, Vec<Idle>>,
    /// When every address's list was last rid of expired connections: an instance that went
    /// away (a replaced replica has a new address) is never asked for again, so its idle
    /// connections are closed by this sweep, at most one timeout after they were last used.
    swept: Instant,
}

impl std::ops::Deref for Idles {
    type Target = HashMap<SocketAddr, Vec<Idle>>;
    fn deref(&self) -> &Self::Target {
        &self.by_addr
    }
}

impl std::ops::DerefMut for Idles {
    fn deref_mut(&mut self) -> &mut Self::Target {
        &mut self.by_addr
    }
}

impl UpstreamPool {
    pub(crate) fn new(timeout: Duration) -> UpstreamPool {
        UpstreamPool {
            idle: Mutex::new(Idles {
                by_addr: HashMap::new(),
                swept: Instant::now(),
            }),
            timeout,
        }
    }

    /// The most recently used idle connection to `addr` that has not idled too long at `now`.
    pub(crate) fn checkout(&self, addr: SocketAddr, now: Instant) -> Option<UpstreamConn> {
        let mut idle = self.idle.lock().unwrap_or_else(|p| p.into_inner());
        let list = idle.get_mut(&addr)?;
        while let Some(i) = list.pop() {
            if now.duration_since(i.since) < self.timeout {
                let mut conn = i.conn;
                conn.reused = true;
                return Some(conn);
            }
        }
        None
    }

    /// Keeps `conn` for the next request to `addr`; closes those idle too long.
    pub(crate) fn checkin(&self, addr: SocketAddr, conn: UpstreamConn) {
        let now = Instant::now();
        let mut idle = self.idle.lock().unwrap_or_else(|p| p.into_inner());
        if now.duration_since(idle.swept) >= self.timeout / 4 {
            idle.swept = now;
            let timeout = self.timeout;
            idle.by_addr.retain(|_, list| {
                list.retain(|i| now.duration_since(i.since) < timeout);
                !list.is_empty()
            });
        }
        let list = idle.entry(addr).or_default();
        let expired = list
            .iter()
            .take_while(|i| now.duration_since(i.since) >= self.timeout)
            .count();
        list.drain(..expired);
        if list.len() < MAX_IDLE_PER_ADDR {
            list.push(Idle { conn, since: now });
        }
    }

    #[cfg(test)]
    fn idle(&self, addr: SocketAddr) -> usize {
        self.idle
            .lock()
            .map(|m| m.get(&addr).map_or(0, Vec::len))
            .unwrap_or(0)
    }
}

#[cfg(test)]
mod tests {
    use tokio::net::TcpListener;

    use super::*;

    #[tokio::test(start_paused = true)]
    async fn idle_connections_expire() {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let addr = listener.local_addr().expect("addr");
        let pool = UpstreamPool::new(Duration::from_secs(90));
        let conn = UpstreamConn::new(TcpStream::connect(addr).await.expect("connect"));
        assert!(!conn.reused);
        pool.checkin(addr, conn);
        let again = pool.checkout(addr, Instant::now()).expect("kept");
        assert!(again.reused);
        pool.checkin(addr, again);
        tokio::time::advance(Duration::from_secs(91)).await;
        assert!(
            pool.checkout(addr, Instant::now()).is_none(),
            "idle too long"
        );
        let conn = UpstreamConn::new(TcpStream::connect(addr).await.expect("connect"));
        pool.checkin(addr, conn);
        tokio::time::advance(Duration::from_secs(91)).await;
        let conn = UpstreamConn::new(TcpStream::connect(addr).await.expect("connect"));
        pool.checkin(addr, conn);
        assert_eq!(pool.idle(addr), 1, "the expired one was closed");
    }

    #[tokio::test(start_paused = true)]
    async fn connections_to_an_address_never_asked_again_are_closed() {
        let gone = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let gone_addr = gone.local_addr().expect("addr");
        let other = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let other_addr = other.local_addr().expect("addr");
        let pool = UpstreamPool::new(Duration::from_secs(90));
        let conn = UpstreamConn::new(TcpStream::connect(gone_addr).await.expect("connect"));
        pool.checkin(gone_addr, conn);
        assert_eq!(pool.idle(gone_addr), 1);
        tokio::time::advance(Duration::from_secs(91)).await;
        // Traffic to another instance only.
        let conn = UpstreamConn::new(TcpStream::connect(other_addr).await.expect("connect"));
        pool.checkin(other_addr, conn);
        assert_eq!(pool.idle(gone_addr), 0, "swept");
        assert_eq!(pool.idle(other_addr), 1);
    }

    #[tokio::test]
    async fn a_closed_connection_does_not_look_alive() {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let addr = listener.local_addr().expect("addr");
        let conn = UpstreamConn::new(TcpStream::connect(addr).await.expect("connect"));
        let (server, _) = listener.accept().await.expect("accept");
        assert!(conn.looks_alive());
        drop(server);
        conn.stream.readable().await.expect("readable");
        assert!(!conn.looks_alive());
    }
}
