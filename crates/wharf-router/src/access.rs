//! Access rules of a route: `allow_from` (address blocks and `service:<name>`) and
//! `basic_auth` (htpasswd bcrypt entries).

use std::net::IpAddr;

use base64::Engine;
use hyper::header::HeaderValue;

use crate::cidr::Cidr;
use crate::pool::Pools;
use crate::route::Source;
use crate::table::RouteEntry;

/// Whether `allow_from` lets `peer` use the route (no rule: everyone). `service:` rules need
/// `service_identities`; without it they match nobody.
pub(crate) fn allowed(
    entry: &RouteEntry,
    peer: IpAddr,
    pools: &Pools,
    service_identities: bool,
) -> bool {
    let rules = &entry.route.allow_from;
    rules.is_empty()
        || rules.iter().any(|rule| match rule {
            Source::Cidr { addr, prefix } => {
                Cidr::new(*addr, *prefix).is_some_and(|c| c.contains(peer))
            }
            Source::Service(service) => {
                service_identities && pools.instances(service).iter().any(|u| u.addr == peer)
            }
        })
}

/// Whether an `Authorization: Basic` header carries a user and password of the route's htpasswd
/// entries (no entry: no authentication asked). bcrypt is slow on purpose, so it runs on the
/// blocking pool.
pub(crate) async fn authenticated(entry: &RouteEntry, header: Option<&HeaderValue>) -> bool {
    if entry.route.basic_auth.is_empty() {
        return true;
    }
    let Some(credentials) = header
        .and_then(|h| h.to_str().ok())
        .and_then(|h| h.strip_prefix("Basic "))
        .and_then(|b| {
            base64::engine::general_purpose::STANDARD
                .decode(b.trim())
                .ok()
        })
        .and_then(|b| String::from_utf8(b).ok())
    else {
        return false;
    };
    let Some((user, password)) = credentials.split_once(':') else {
        return false;
    };
    let Some(hash) = entry.route.basic_auth.iter().find_map(|e| {
        e.split_once(':')
            .filter(|(u, _)| *u == user)
            .map(|(_, h)| h.to_string())
    }) else {
        return false;
    };
    let password = password.to_string();
    tokio::task::spawn_blocking(move || bcrypt::verify(password, &hash).unwrap_or(false))
        .await
        .unwrap_or(false)
}
