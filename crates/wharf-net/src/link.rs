//! Links, addresses and routes over netlink (rtnetlink), in one network namespace: the one the
//! connection's socket was created in (see `netns.rs` for a connection inside an instance's).

use std::net::{IpAddr, Ipv4Addr};
use std::os::fd::{AsRawFd, BorrowedFd};

use futures_util::TryStreamExt;
use rtnetlink::packet_route::link::{InfoData, InfoVeth, LinkAttribute, LinkMessage};
use rtnetlink::packet_route::route::{RouteAddress, RouteAttribute};
use rtnetlink::{Handle, LinkBridge, LinkUnspec, LinkVeth, RouteMessageBuilder};
use tokio::task::JoinHandle;

use crate::ipam::Ipv4Net;

/// A netlink connection; its task ends when this is dropped.
pub(crate) struct Netlink {
    handle: Handle,
    task: JoinHandle<()>,
}

impl Drop for Netlink {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// What failed, as a lowercase reason.
pub(crate) fn reason(e: &rtnetlink::Error) -> String {
    match e {
        rtnetlink::Error::NetlinkError(m) => {
            let text = m.to_io().to_string();
            let text = text.split(" (os error").next().unwrap_or(&text).to_string();
            let mut chars = text.chars();
            match chars.next() {
                Some(c) => c.to_lowercase().chain(chars).collect(),
                None => text,
            }
        }
        other => other.to_string(),
    }
}

fn errno(e: &rtnetlink::Error) -> Option<i32> {
    match e {
        rtnetlink::Error::NetlinkError(m) => Some(m.raw_code().abs()),
        _ => None,
    }
}

/// ENODEV: the link is already gone.
const ENODEV: i32 = 19;

impl Netlink {
    /// A connection in the calling thread's network namespace. Needs a tokio runtime context.
    pub(crate) fn connect() -> std::io::Result<Netlink> {
        let (connection, handle, _) = rtnetlink::new_connection()?;
        let task = tokio::spawn(connection);
        Ok(Netlink { handle, task })
    }

    /// `(name, alias)` of every link.
    pub(crate) async fn links(&self) -> Result<Vec<(String, String)>, rtnetlink::Error> {
        let messages: Vec<LinkMessage> = self.handle.link().get().execute().try_collect().await?;
        Ok(messages
            .into_iter()
            .filter_map(|m| {
                let mut name = None;
                let mut alias = String::new();
                for a in &m.attributes {
                    match a {
                        LinkAttribute::IfName(n) => name = Some(n.clone()),
                        LinkAttribute::IfAlias(a) => alias = a.clone(),
                        _ => {}
                    }
                }
                Some((name?, alias))
            })
            .collect())
    }

    pub(crate) async fn index(&self, name: &str) -> Result<Option<u32>, rtnetlink::Error> {
        let found: Result<Vec<LinkMessage>, _> = self
            .handle
            .link()
            .get()
            .match_name(name)
            .execute()
            .try_collect()
            .await;
        match found {
            Ok(m) => Ok(m.first().map(|m| m.header.index)),
            Err(e) if errno(&e) == Some(ENODEV) => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// Deletes a link; a link that is already gone is not an error.
    pub(crate) async fn delete(&self, name: &str) -> Result<bool, rtnetlink::Error> {
        let Some(index) = self.index(name).await? else {
            return Ok(false);
        };
        match self.handle.link().del(index).execute().await {
            Ok(()) => Ok(true),
            Err(e) if errno(&e) == Some(ENODEV) => Ok(false),
            Err(e) => Err(e),
        }
    }

    /// Creates a bridge (up) with `gateway/prefix` as its address; returns its index.
    pub(crate) async fn create_bridge(
        &self,
        name: &str,
        alias: &str,
        subnet: Ipv4Net,
    ) -> Result<u32, rtnetlink::Error> {
        self.handle
            .link()
            .add(LinkBridge::new(name).build())
            .execute()
            .await?;
        let index = self
            .index(name)
            .await?
            .ok_or(rtnetlink::Error::RequestFailed)?;
        // The kernel takes an alias only on a change, not on creation.
        self.handle
            .link()
            .set(LinkUnspec::new_with_index(index).alias(alias).build())
            .execute()
            .await?;
        if let Some(gateway) = subnet.gateway() {
            self.add_address(index, gateway, subnet.prefix()).await?;
        }
        Ok(index)
    }

    pub(crate) async fn add_address(
        &self,
        index: u32,
        ip: Ipv4Addr,
        prefix: u8,
    ) -> Result<(), rtnetlink::Error> {
        self.handle
            .address()
            .add(index, IpAddr::V4(ip), prefix)
            .execute()
            .await
    }

    pub(crate) async fn set_up(&self, index: u32) -> Result<(), rtnetlink::Error> {
        self.handle
            .link()
            .set(LinkUnspec::new_with_index(index).up().build())
            .execute()
            .await
    }

    /// A veth pair: `host_end` (up) in this namespace as a port of `bridge`, and `peer` in the
    /// namespace `netns`, made in one request so that nothing is ever half there.
    pub(crate) async fn create_veth(
        &self,
        host_end: &str,
        bridge: u32,
        netns: BorrowedFd<'_>,
        peer: &str,
    ) -> Result<(), rtnetlink::Error> {
        let peer = LinkUnspec::new_with_name(peer)
            .setns_by_fd(netns.as_raw_fd())
            .build();
        let message = LinkVeth::new(host_end, "unused")
            .set_info_data(InfoData::Veth(InfoVeth::Peer(peer)))
            .controller(bridge)
            .up()
            .build();
        self.handle.link().add(message).execute().await
    }

    pub(crate) async fn add_default_route(
        &self,
        gateway: Ipv4Addr,
    ) -> Result<(), rtnetlink::Error> {
        let route = RouteMessageBuilder::<Ipv4Addr>::new()
            .gateway(gateway)
            .build();
        self.handle.route().add(route).execute().await
    }

    /// Every IPv4 route but default routes (in every table: local addresses too).
    pub(crate) async fn routes(&self) -> Result<Vec<Ipv4Net>, rtnetlink::Error> {
        let query = RouteMessageBuilder::<Ipv4Addr>::new().build();
        let messages: Vec<_> = self
            .handle
            .route()
            .get(query)
            .execute()
            .try_collect()
            .await?;
        Ok(messages
            .into_iter()
            .filter(|m| m.header.destination_prefix_length > 0)
            .filter_map(|m| {
                let dest = m.attributes.iter().find_map(|a| match a {
                    RouteAttribute::Destination(RouteAddress::Inet(ip)) => Some(*ip),
                    _ => None,
                })?;
                Ipv4Net::new(dest, m.header.destination_prefix_length)
            })
            .collect())
    }
}
