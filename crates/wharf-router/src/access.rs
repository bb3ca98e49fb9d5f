//! Access rules of a route: `allow_from` (address blocks and `service:<name>`), `basic_auth`
//! (htpasswd bcrypt entries) and `forward_auth` (a URL that must answer 2xx).

use std::net::IpAddr;
use std::time::Duration;

use base64::Engine;
use http_body_util::{BodyExt, Empty};
use hyper::body::{Body, Incoming};
use hyper::header::{self, HeaderMap, HeaderName, HeaderValue};
use hyper::{Request, Response, Uri};
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;

use crate::cidr::Cidr;
use crate::forwarded::{X_FORWARDED_FOR, X_FORWARDED_HOST, X_FORWARDED_PROTO};
use crate::pool::Pools;
use crate::proxy::ProxyBody;
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
                service_identities
                    && pools
                        .instances(&entry.project, service)
                        .iter()
                        .any(|u| u.addresses.contains(&peer))
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

const X_FORWARDED_METHOD: HeaderName = HeaderName::from_static("x-forwarded-method");
const X_FORWARDED_URI: HeaderName = HeaderName::from_static("x-forwarded-uri");
const REMOTE_USER: HeaderName = HeaderName::from_static("remote-user");

/// The answer of a `forward_auth` service about one request.
pub(crate) enum ForwardAuth {
    /// 2xx: the request goes on, with these headers of the answer (`X-Auth-*`, `Remote-User`).
    Allowed(Vec<(HeaderName, HeaderValue)>),
    /// Anything else: this answer goes back to the client as it is.
    Denied(Response<Incoming>),
    /// No answer: why, for the 503.
    Unreachable(String),
}

/// What the auth service is told of the request it judges.
pub(crate) struct AuthQuestion<'a> {
    pub method: &'a hyper::Method,
    pub uri: &'a Uri,
    pub headers: &'a HeaderMap,
    pub peer: IpAddr,
    pub proto: &'a str,
    pub host: &'a str,
}

/// Asks `url` whether the request may pass, as Traefik's forwardAuth middleware does: a GET with
/// the request's method, URI, host, protocol and client address in `X-Forwarded-*` headers and its
/// `Authorization` and `Cookie` headers.
pub(crate) async fn forward_auth(
    client: &Client<HttpConnector, ProxyBody>,
    url: &str,
    question: AuthQuestion<'_>,
    timeout: Duration,
) -> ForwardAuth {
    let uri: Uri = match url.parse() {
        Ok(u) => u,
        Err(e) => return ForwardAuth::Unreachable(format!("forward_auth URL {url}: {e}")),
    };
    let mut req = Request::new(Empty::new().map_err(|never| match never {}).boxed());
    *req.uri_mut() = uri;
    let headers = req.headers_mut();
    for name in [header::AUTHORIZATION, header::COOKIE] {
        for v in question.headers.get_all(&name) {
            headers.append(name.clone(), v.clone());
        }
    }
    let set = |headers: &mut HeaderMap, name: HeaderName, value: &str| {
        if let Ok(v) = HeaderValue::from_str(value) {
            headers.insert(name, v);
        }
    };
    set(headers, X_FORWARDED_METHOD, question.method.as_str());
    set(headers, X_FORWARDED_PROTO, question.proto);
    set(headers, X_FORWARDED_HOST, question.host);
    let uri = question.uri.path_and_query().map_or("/", |p| p.as_str());
    set(headers, X_FORWARDED_URI, uri);
    set(headers, X_FORWARDED_FOR, &question.peer.to_string());
    let response = match tokio::time::timeout(timeout, client.request(req)).await {
        Err(_) => {
            return ForwardAuth::Unreachable(format!(
                "forward_auth {url} did not answer within {timeout:?}"
            ));
        }
        Ok(Err(e)) => {
            let mut message = format!("forward_auth {url} cannot be reached: {e}");
            let mut source = std::error::Error::source(&e);
            while let Some(s) = source {
                message.push_str(&format!(": {s}"));
                source = s.source();
            }
            return ForwardAuth::Unreachable(message);
        }
        Ok(Ok(r)) => r,
    };
    if !response.status().is_success() {
        return ForwardAuth::Denied(response);
    }
    let granted = response
        .headers()
        .iter()
        .filter(|(name, _)| is_auth_header(name))
        .map(|(name, value)| (name.clone(), value.clone()))
        .collect();
    // Read a small body to the end so that the connection goes back to the pool; a large one is
    // dropped with its connection.
    let body = response.into_body();
    if body.size_hint().upper().is_some_and(|n| n <= 64 * 1024) {
        let _ = body.collect().await;
    }
    ForwardAuth::Allowed(granted)
}

/// The headers an auth service's answer passes on to the upstream: `Remote-User` and `X-Auth-*`.
/// On a route with `forward_auth`, the client's own are removed first: only the auth service may
/// set them.
pub(crate) fn is_auth_header(name: &HeaderName) -> bool {
    *name == REMOTE_USER || name.as_str().starts_with("x-auth-")
}
