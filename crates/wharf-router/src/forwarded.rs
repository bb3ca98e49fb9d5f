//! `X-Forwarded-For`, `-Proto`, `-Host` and `Forwarded` (RFC 7239) on the way to an upstream.
//!
//! A client may send any of these: they are believed (and extended) only when the peer is a
//! trusted proxy; from anyone else they are replaced by what the router itself saw.

use std::net::IpAddr;

use hyper::HeaderMap;
use hyper::header::{FORWARDED, HeaderName, HeaderValue};

pub(crate) const X_REAL_IP: HeaderName = HeaderName::from_static("x-real-ip");

/// Headers that tell an instance who the client is, which path it asked for or how it came,
/// under names other than the four above. Frameworks and proxies believe them (Spring's
/// `X-Forwarded-Prefix`, IIS's `X-Original-URL`, Cloudflare's and Fastly's client addresses), so
/// from a peer that is not a trusted proxy they are removed (issue 12, item 7), and `X-Real-IP`
/// is set to the peer's address. From a trusted proxy they pass as they came. Lower case, as
/// header names are compared.
pub(crate) const CLIENT_HEADERS: &[&str] = &[
    "true-client-ip",
    "x-client-ip",
    "client-ip",
    "cf-connecting-ip",
    "fastly-client-ip",
    "x-cluster-client-ip",
    "x-originating-ip",
    "x-remote-ip",
    "x-remote-addr",
    "x-proxyuser-ip",
    "x-forwarded",
    "forwarded-for",
    "x-forwarded-port",
    "x-forwarded-prefix",
    "x-forwarded-scheme",
    "x-forwarded-ssl",
    "x-forwarded-server",
    "x-url-scheme",
    "front-end-https",
    "x-original-url",
    "x-original-uri",
    "x-rewrite-url",
];

/// Whether a header name (any case) is one of [`CLIENT_HEADERS`].
pub(crate) fn is_client_header(name: &[u8]) -> bool {
    CLIENT_HEADERS
        .iter()
        .any(|h| h.len() == name.len() && h.as_bytes().eq_ignore_ascii_case(name))
}

pub(crate) const X_FORWARDED_FOR: HeaderName = HeaderName::from_static("x-forwarded-for");
pub(crate) const X_FORWARDED_PROTO: HeaderName = HeaderName::from_static("x-forwarded-proto");
pub(crate) const X_FORWARDED_HOST: HeaderName = HeaderName::from_static("x-forwarded-host");

/// Sets the forwarding headers for a request from `peer` that asked for `host` over `proto`.
/// Runs for every request: the common case (an untrusted peer) allocates three strings and copies
/// nothing else.
pub(crate) fn set(
    headers: &mut HeaderMap,
    peer: IpAddr,
    trusted: bool,
    proto: &'static str,
    host: &HeaderValue,
) {
    let peer_text = peer.to_string();
    let host_text = host.to_str().unwrap_or_default();
    let element = match peer {
        IpAddr::V4(_) => format!("for={peer_text};host=\"{host_text}\";proto={proto}"),
        IpAddr::V6(_) => format!("for=\"[{peer_text}]\";host=\"{host_text}\";proto={proto}"),
    };
    if trusted {
        let xff = join(headers, &X_FORWARDED_FOR, &peer_text);
        let fwd = join(headers, &FORWARDED, &element);
        insert(headers, X_FORWARDED_FOR, xff);
        insert(headers, FORWARDED, fwd);
        if !headers.contains_key(&X_FORWARDED_PROTO) {
            headers.insert(X_FORWARDED_PROTO, HeaderValue::from_static(proto));
        }
        if !headers.contains_key(&X_FORWARDED_HOST) {
            headers.insert(X_FORWARDED_HOST, host.clone());
        }
        if !headers.contains_key(&X_REAL_IP) {
            insert(headers, X_REAL_IP, peer_text);
        }
    } else {
        let spoofable: Vec<HeaderName> = headers
            .keys()
            .filter(|n| is_client_header(n.as_str().as_bytes()))
            .cloned()
            .collect();
        for name in spoofable {
            headers.remove(name);
        }
        insert(headers, X_REAL_IP, peer_text.clone());
        insert(headers, X_FORWARDED_FOR, peer_text);
        headers.insert(X_FORWARDED_PROTO, HeaderValue::from_static(proto));
        headers.insert(X_FORWARDED_HOST, host.clone());
        insert(headers, FORWARDED, element);
    }
}

/// Writes the `Forwarded` element for a request from `peer` (`peer_text`) that asked for `host`
/// over `proto`, as [`set`] makes it (the HTTP/1.1 fast path writes heads itself).
pub(crate) fn write_element(
    out: &mut Vec<u8>,
    peer: IpAddr,
    peer_text: &str,
    host: &[u8],
    proto: &str,
) {
    match peer {
        IpAddr::V4(_) => {
            out.extend_from_slice(b"for=");
            out.extend_from_slice(peer_text.as_bytes());
        }
        IpAddr::V6(_) => {
            out.extend_from_slice(b"for=\"[");
            out.extend_from_slice(peer_text.as_bytes());
            out.extend_from_slice(b"]\"");
        }
    }
    out.extend_from_slice(b";host=\"");
    out.extend_from_slice(host);
    out.extend_from_slice(b"\";proto=");
    out.extend_from_slice(proto.as_bytes());
}

/// The values of `name` joined with `, `, then `last`.
fn join(headers: &HeaderMap, name: &HeaderName, last: &str) -> String {
    let mut parts: Vec<&str> = headers
        .get_all(name)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .collect();
    parts.push(last);
    parts.join(", ")
}

fn insert(headers: &mut HeaderMap, name: HeaderName, value: String) {
    // The host comes from the request's own headers; anything not valid there is dropped. The
    // string becomes the value without a copy.
    match HeaderValue::from_maybe_shared(bytes::Bytes::from(value)) {
        Ok(v) => {
            headers.insert(name, v);
        }
        Err(_) => {
            headers.remove(name);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn untrusted_values_are_replaced() {
        let mut h = HeaderMap::new();
        h.insert(X_FORWARDED_FOR, HeaderValue::from_static("1.2.3.4"));
        h.append(X_FORWARDED_FOR, HeaderValue::from_static("5.6.7.8"));
        h.insert(FORWARDED, HeaderValue::from_static("for=1.2.3.4"));
        h.insert(X_FORWARDED_PROTO, HeaderValue::from_static("https"));
        set(
            &mut h,
            "10.0.0.9".parse().expect("ip"),
            false,
            "http",
            &HeaderValue::from_static("example.org"),
        );
        assert_eq!(h.get_all(X_FORWARDED_FOR).iter().count(), 1);
        assert_eq!(h[X_FORWARDED_FOR], "10.0.0.9");
        assert_eq!(h[X_FORWARDED_PROTO], "http");
        assert_eq!(h[X_FORWARDED_HOST], "example.org");
        assert_eq!(h[FORWARDED], "for=10.0.0.9;host=\"example.org\";proto=http");
    }

    #[test]
    fn trusted_values_are_extended() {
        let mut h = HeaderMap::new();
        h.insert(X_FORWARDED_FOR, HeaderValue::from_static("1.2.3.4"));
        h.insert(X_FORWARDED_PROTO, HeaderValue::from_static("https"));
        set(
            &mut h,
            "::1".parse().expect("ip"),
            true,
            "http",
            &HeaderValue::from_static("example.org"),
        );
        assert_eq!(h[X_FORWARDED_FOR], "1.2.3.4, ::1");
        assert_eq!(h[X_FORWARDED_PROTO], "https");
        assert_eq!(
            h[FORWARDED],
            "for=\"[::1]\";host=\"example.org\";proto=http"
        );
    }
}
