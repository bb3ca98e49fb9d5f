//! Published ports (`ports:`): a userspace forwarder in the daemon, one listener per published
//! port of a service, spreading connections over the service's running replicas.
//!
//! Spreading is round robin: each new TCP connection, and each new UDP client (source address
//! and port), goes to the next running replica; a replica that refuses the connection (or does
//! not accept it within [`CONNECT_TIMEOUT`]) is skipped for the next one. So replicas may all
//! listen on the same container port and one host port reaches them all, where Docker fails
//! with "port is already allocated" (docker/cli#3119).
//!
//! The listener is bound when the service's first instance starts (an address in use is an
//! error of that start), on `host_ip` (every address when not given, as Docker does) and the
//! first free port of the published range (an ephemeral port when none is given), and closed
//! when the project is released. Instances see connections coming from their network's gateway
//! address (as with Docker's userland proxy).

use std::collections::{BTreeMap, HashMap};
use std::fmt;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use tokio::net::{TcpListener, TcpStream, UdpSocket};
use tokio::task::JoinHandle;

use crate::NetError;

/// How long a replica may take to accept a forwarded connection before the next one is tried.
pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(2);

/// How long a UDP client's session lives without traffic.
pub const UDP_IDLE: Duration = Duration::from_secs(60);

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Protocol {
    Tcp,
    Udp,
}

impl fmt::Display for Protocol {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Protocol::Tcp => "tcp",
            Protocol::Udp => "udp",
        })
    }
}

/// One entry of `ports:`.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct PortDef {
    /// The host address to listen on; every address when `None`.
    pub host_ip: Option<IpAddr>,
    /// The host port, or a range to take the first free port of; an ephemeral port when `None`.
    pub published: Option<(u16, u16)>,
    /// The port the instances listen on.
    pub target: u16,
    pub protocol: Protocol,
}

impl fmt::Display for PortDef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if let Some(ip) = self.host_ip {
            write!(f, "{ip}:")?;
        }
        match self.published {
            Some((a, b)) if a == b => write!(f, "{a}:")?,
            Some((a, b)) => write!(f, "{a}-{b}:")?,
            None => {}
        }
        write!(f, "{}/{}", self.target, self.protocol)
    }
}

/// A port as published.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Published {
    pub project: String,
    pub service: String,
    pub port: PortDef,
    /// The address the listener is bound to.
    pub bound: SocketAddr,
}

/// The running replicas behind one listener, in round-robin order.
#[derive(Default)]
pub(crate) struct Backends {
    state: Mutex<(Vec<(String, IpAddr)>, usize)>,
}

impl Backends {
    fn lock(&self) -> MutexGuard<'_, (Vec<(String, IpAddr)>, usize)> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    pub(crate) fn add(&self, instance: &str, ip: IpAddr) {
        let mut s = self.lock();
        s.0.retain(|(n, _)| n != instance);
        s.0.push((instance.to_string(), ip));
    }

    pub(crate) fn remove(&self, instance: &str) {
        self.lock().0.retain(|(n, _)| n != instance);
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.lock().0.is_empty()
    }

    /// Every backend, starting with the next one in turn; the turn moves on by one.
    pub(crate) fn next_round(&self) -> Vec<IpAddr> {
        let mut s = self.lock();
        let n = s.0.len();
        if n == 0 {
            return Vec::new();
        }
        let start = s.1 % n;
        s.1 = (start + 1) % n;
        (0..n).map(|i| s.0[(start + i) % n].1).collect()
    }
}

struct Listener {
    bound: SocketAddr,
    backends: Arc<Backends>,
    task: JoinHandle<()>,
}

impl Drop for Listener {
    fn drop(&mut self) {
        self.task.abort();
    }
}

type Key = (String, String, PortDef);

#[derive(Default)]
pub(crate) struct Forwarder {
    listeners: BTreeMap<Key, Listener>,
}

impl Forwarder {
    /// Makes `instance` (at `ip`) a backend of every port of its service, binding the ports not
    /// bound yet; ports the service no longer publishes stop sending to it.
    pub(crate) async fn publish(
        &mut self,
        project: &str,
        service: &str,
        ports: &[PortDef],
        instance: &str,
        ip: IpAddr,
    ) -> Result<(), NetError> {
        for port in ports {
            let key = (project.to_string(), service.to_string(), port.clone());
            if !self.listeners.contains_key(&key) {
                let listener = bind(service, port).await?;
                self.listeners.insert(key.clone(), listener);
            }
            if let Some(l) = self.listeners.get(&key) {
                l.backends.add(instance, ip);
            }
        }
        let stale: Vec<Key> = self
            .listeners
            .iter()
            .filter(|((p, s, port), _)| p == project && s == service && !ports.contains(port))
            .map(|(k, _)| k.clone())
            .collect();
        for key in stale {
            if let Some(l) = self.listeners.get(&key) {
                l.backends.remove(instance);
                if l.backends.is_empty() {
                    self.listeners.remove(&key);
                }
            }
        }
        Ok(())
    }

    /// `instance` stopped: no more connections for it.
    pub(crate) fn withdraw(&mut self, instance: &str) {
        for l in self.listeners.values() {
            l.backends.remove(instance);
        }
    }

    pub(crate) fn close_project(&mut self, project: &str) {
        self.listeners.retain(|(p, _, _), _| p != project);
    }

    pub(crate) fn published(&self, project: &str) -> Vec<Published> {
        self.listeners
            .iter()
            .filter(|((p, _, _), _)| p == project)
            .map(|((p, s, port), l)| Published {
                project: p.clone(),
                service: s.clone(),
                port: port.clone(),
                bound: l.bound,
            })
            .collect()
    }
}

async fn bind(service: &str, port: &PortDef) -> Result<Listener, NetError> {
    let ip = port.host_ip.unwrap_or(IpAddr::V4(Ipv4Addr::UNSPECIFIED));
    let (first, last) = port.published.unwrap_or((0, 0));
    let backends = Arc::new(Backends::default());
    let mut last_error = String::new();
    for p in first..=last {
        let addr = SocketAddr::new(ip, p);
        let bound = match port.protocol {
            Protocol::Tcp => TcpListener::bind(addr).await.and_then(|l| {
                let bound = l.local_addr()?;
                let task = tokio::spawn(serve_tcp(l, Arc::clone(&backends), port.target));
                Ok((bound, task))
            }),
            Protocol::Udp => UdpSocket::bind(addr).await.and_then(|s| {
                let bound = s.local_addr()?;
                let task = tokio::spawn(serve_udp(s, Arc::clone(&backends), port.target));
                Ok((bound, task))
            }),
        };
        match bound {
            Ok((bound, task)) => {
                return Ok(Listener {
                    bound,
                    backends,
                    task,
                });
            }
            Err(e) => last_error = describe(&e),
        }
    }
    Err(NetError::Publish {
        service: service.to_string(),
        port: port.to_string(),
        reason: last_error,
    })
}

fn describe(e: &std::io::Error) -> String {
    let text = e.to_string();
    let text = text.split(" (os error").next().unwrap_or(&text).to_string();
    let mut chars = text.chars();
    match chars.next() {
        Some(c) => c.to_lowercase().chain(chars).collect(),
        None => text,
    }
}

async fn serve_tcp(listener: TcpListener, backends: Arc<Backends>, target: u16) {
    loop {
        let mut client = match listener.accept().await {
            Ok((c, _)) => c,
            Err(_) => {
                // Out of descriptors, mostly: let connections finish before accepting more.
                tokio::time::sleep(Duration::from_millis(100)).await;
                continue;
            }
        };
        let candidates = backends.next_round();
        tokio::spawn(async move {
            for ip in candidates {
                let connect = TcpStream::connect(SocketAddr::new(ip, target));
                if let Ok(Ok(mut upstream)) = tokio::time::timeout(CONNECT_TIMEOUT, connect).await {
                    let _ = upstream.set_nodelay(true);
                    let _ = client.set_nodelay(true);
                    let _ = tokio::io::copy_bidirectional(&mut client, &mut upstream).await;
                    return;
                }
            }
            // No replica took it: the client sees the connection closed.
        });
    }
}

async fn serve_udp(socket: UdpSocket, backends: Arc<Backends>, target: u16) {
    let socket = Arc::new(socket);
    let sessions: Arc<Mutex<HashMap<SocketAddr, Arc<UdpSocket>>>> = Arc::default();
    let mut buf = vec![0u8; 65536];
    loop {
        let Ok((n, client)) = socket.recv_from(&mut buf).await else {
            continue;
        };
        let existing = sessions
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .get(&client)
            .cloned();
        let upstream = match existing {
            Some(u) => u,
            None => {
                let Some(ip) = backends.next_round().first().copied() else {
                    continue; // no running replica: dropped, as UDP is
                };
                let local = match ip {
                    IpAddr::V4(_) => SocketAddr::from((Ipv4Addr::UNSPECIFIED, 0)),
                    IpAddr::V6(_) => SocketAddr::from((std::net::Ipv6Addr::UNSPECIFIED, 0)),
                };
                let Ok(u) = UdpSocket::bind(local).await else {
                    continue;
                };
                if u.connect(SocketAddr::new(ip, target)).await.is_err() {
                    continue;
                }
                let u = Arc::new(u);
                sessions
                    .lock()
                    .unwrap_or_else(|p| p.into_inner())
                    .insert(client, Arc::clone(&u));
                tokio::spawn(udp_replies(
                    Arc::clone(&u),
                    Arc::clone(&socket),
                    client,
                    Arc::clone(&sessions),
                ));
                u
            }
        };
        let _ = upstream.send(&buf[..n]).await;
    }
}

/// Sends a session's replies back to its client until it has been idle for [`UDP_IDLE`].
async fn udp_replies(
    upstream: Arc<UdpSocket>,
    listener: Arc<UdpSocket>,
    client: SocketAddr,
    sessions: Arc<Mutex<HashMap<SocketAddr, Arc<UdpSocket>>>>,
) {
    let mut buf = vec![0u8; 65536];
    while let Ok(Ok(n)) = tokio::time::timeout(UDP_IDLE, upstream.recv(&mut buf)).await {
        let _ = listener.send_to(&buf[..n], client).await;
    }
    sessions
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .remove(&client);
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    #[test]
    fn round_robin_moves_on_by_one() {
        let b = Backends::default();
        assert!(b.next_round().is_empty());
        let ip = |n: u8| IpAddr::V4(Ipv4Addr::new(10, 0, 0, n));
        b.add("a", ip(1));
        b.add("b", ip(2));
        b.add("c", ip(3));
        assert_eq!(b.next_round(), vec![ip(1), ip(2), ip(3)]);
        assert_eq!(b.next_round(), vec![ip(2), ip(3), ip(1)]);
        b.remove("c");
        assert_eq!(b.next_round(), vec![ip(1), ip(2)]);
        assert_eq!(b.next_round(), vec![ip(2), ip(1)]);
    }

    #[test]
    fn describes_ports_as_written() {
        let p = PortDef {
            host_ip: Some("127.0.0.1".parse().unwrap()),
            published: Some((8000, 8010)),
            target: 80,
            protocol: Protocol::Tcp,
        };
        assert_eq!(p.to_string(), "127.0.0.1:8000-8010:80/tcp");
    }

    /// Three "replicas" on 127.0.0.2-4 (all loopback), one published port on 127.0.0.1.
    #[tokio::test]
    async fn spreads_tcp_connections_and_skips_a_replica_that_refuses() {
        let mut replicas = Vec::new();
        let mut target = 0;
        for n in 2..=4u8 {
            let ip = IpAddr::V4(Ipv4Addr::new(127, 0, 0, n));
            let l = TcpListener::bind(SocketAddr::new(ip, target))
                .await
                .unwrap();
            target = l.local_addr().unwrap().port();
            tokio::spawn(async move {
                loop {
                    let (mut c, _) = l.accept().await.unwrap();
                    let _ = c.write_all(&[n]).await;
                }
            });
            replicas.push(ip);
        }
        let mut f = Forwarder::default();
        let port = PortDef {
            host_ip: Some("127.0.0.1".parse().unwrap()),
            published: None,
            target,
            protocol: Protocol::Tcp,
        };
        for (i, ip) in replicas.iter().enumerate() {
            f.publish(
                "p",
                "web",
                std::slice::from_ref(&port),
                &format!("p-web-{i}"),
                *ip,
            )
            .await
            .unwrap();
        }
        // A fourth backend where nothing listens: skipped.
        f.publish(
            "p",
            "web",
            std::slice::from_ref(&port),
            "p-web-9",
            "127.0.0.9".parse().unwrap(),
        )
        .await
        .unwrap();
        let published = f.published("p");
        assert_eq!(published.len(), 1);
        let mut seen = Vec::new();
        for _ in 0..8 {
            let mut c = TcpStream::connect(published[0].bound).await.unwrap();
            let mut b = [0u8; 1];
            c.read_exact(&mut b).await.unwrap();
            seen.push(b[0]);
        }
        for n in 2..=4u8 {
            assert!(seen.iter().filter(|s| **s == n).count() >= 2, "{seen:?}");
        }
        f.close_project("p");
        assert!(f.published("p").is_empty());
    }

    #[tokio::test]
    async fn takes_the_first_free_port_of_a_range() {
        let held = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let first = held.local_addr().unwrap().port();
        let mut f = Forwarder::default();
        let port = PortDef {
            host_ip: Some("127.0.0.1".parse().unwrap()),
            published: Some((first, first.saturating_add(20))),
            target: 1,
            protocol: Protocol::Tcp,
        };
        f.publish(
            "p",
            "web",
            std::slice::from_ref(&port),
            "p-web-1",
            "127.0.0.2".parse().unwrap(),
        )
        .await
        .unwrap();
        let bound = f.published("p")[0].bound.port();
        assert!(bound > first && bound <= first + 20, "{bound}");
        // A single port in use is an error naming the service and the port.
        let single = PortDef {
            published: Some((first, first)),
            ..port
        };
        let err = f
            .publish(
                "q",
                "api",
                &[single],
                "q-api-1",
                "127.0.0.2".parse().unwrap(),
            )
            .await
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("api") && err.contains(&first.to_string()),
            "{err}"
        );
    }
}
