//! Message heads of the fast path: a request head parsed (httparse) into spans of the
//! connection's buffer, classified header by header for the rewrite, or a reason to leave the
//! connection to hyper; and the framing of an upstream's response.

use std::mem::MaybeUninit;

/// Headers a message may have: hyper's default, so that both paths refuse the same.
pub(crate) const MAX_HEADERS: usize = 100;
/// Bytes a head may take: hyper's default read buffer limit, for the same reason.
pub(crate) const MAX_HEAD: usize = 8192 + 4096 * 100;

/// Bytes `start..end` of the buffer a head was parsed from.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(crate) struct Span {
    pub start: usize,
    pub end: usize,
}

impl Span {
    pub(crate) fn of<'a>(&self, buf: &'a [u8]) -> &'a [u8] {
        &buf[self.start..self.end]
    }

    fn within(buf: &[u8], part: &[u8]) -> Span {
        let start = part.as_ptr() as usize - buf.as_ptr() as usize;
        Span {
            start,
            end: start + part.len(),
        }
    }
}

/// What a header means to the router.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Role {
    /// Passed on as it is.
    Other,
    /// Describes one hop only: never passed on.
    HopByHop,
    Connection,
    TransferEncoding,
    ContentLength,
    Host,
    RequestId,
    ForwardedFor,
    ForwardedProto,
    ForwardedHost,
    Forwarded,
    Authorization,
    Date,
    /// `X-Real-IP`: replaced by the peer's address unless the peer is a trusted proxy.
    RealIp,
    /// One of `forwarded::CLIENT_HEADERS`: passed on from trusted proxies only.
    Client,
    /// A name with `_`: dropped, as nginx does with `underscores_in_headers off` (its default),
    /// because CGI-style servers read `X_Forwarded_For` and `X-Forwarded-For` as the same name.
    Underscore,
}

impl Role {
    pub(crate) fn of(name: &[u8]) -> Role {
        const ROLES: [(&[u8], Role); 17] = [
            (b"host", Role::Host),
            (b"connection", Role::Connection),
            (b"content-length", Role::ContentLength),
            (b"transfer-encoding", Role::TransferEncoding),
            (b"x-request-id", Role::RequestId),
            (b"x-forwarded-for", Role::ForwardedFor),
            (b"x-forwarded-proto", Role::ForwardedProto),
            (b"x-forwarded-host", Role::ForwardedHost),
            (b"forwarded", Role::Forwarded),
            (b"authorization", Role::Authorization),
            (b"date", Role::Date),
            (b"keep-alive", Role::HopByHop),
            (b"te", Role::HopByHop),
            (b"trailer", Role::HopByHop),
            (b"upgrade", Role::HopByHop),
            (b"proxy-authorization", Role::HopByHop),
            (b"proxy-connection", Role::HopByHop),
        ];
        ROLES
            .iter()
            .find(|(n, _)| n.len() == name.len() && n.eq_ignore_ascii_case(name))
            .map_or(Role::Other, |(_, r)| *r)
    }

    /// The role of a request header: [`Role::of`], and the client-address headers and names
    /// with `_` that only a request's headers are checked for (a response's are passed on as
    /// they came, and classifying them cost 9% of the fast path's instructions per request).
    pub(crate) fn of_request(name: &[u8]) -> Role {
        let role = Role::of(name);
        if role != Role::Other {
            return role;
        }
        if name.eq_ignore_ascii_case(b"x-real-ip") {
            Role::RealIp
        } else if name.contains(&b'_') {
            Role::Underscore
        } else if crate::forwarded::is_client_header(name) {
            Role::Client
        } else {
            Role::Other
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct HeaderSpan {
    pub name: Span,
    pub value: Span,
    pub role: Role,
}

/// How a message's body is delimited.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Framing {
    /// No body (a request without length, a HEAD's answer, 1xx, 204, 304).
    Empty,
    Length(u64),
    Chunked,
    /// Until the sender closes (responses only).
    Close,
}

/// A request head the fast path serves.
#[derive(Debug, Default)]
pub(crate) struct RequestHead {
    /// Bytes of the head, final CRLF included.
    pub len: usize,
    pub method: Span,
    /// Path and query, as sent.
    pub target: Span,
    /// Bytes of `target` before the query.
    pub path_len: usize,
    pub http10: bool,
    pub headers: Vec<HeaderSpan>,
    /// The value of the first `Host`.
    pub host: Option<Span>,
    pub body: Option<Framing>,
    /// The client wants the connection closed after this exchange.
    pub close: bool,
}

impl RequestHead {
    pub(crate) fn method<'a>(&self, buf: &'a [u8]) -> &'a [u8] {
        self.method.of(buf)
    }

    pub(crate) fn path<'a>(&self, buf: &'a [u8]) -> &'a str {
        let target = self.target.of(buf);
        // Checked to be ASCII by `parse_request`.
        std::str::from_utf8(&target[..self.path_len]).unwrap_or("/")
    }

    pub(crate) fn query<'a>(&self, buf: &'a [u8]) -> &'a [u8] {
        &self.target.of(buf)[self.path_len..]
    }

    pub(crate) fn framing(&self) -> Framing {
        self.body.unwrap_or(Framing::Empty)
    }

    /// The first value of headers with `role`.
    pub(crate) fn first<'a>(&self, buf: &'a [u8], role: Role) -> Option<&'a [u8]> {
        self.headers
            .iter()
            .find(|h| h.role == role)
            .map(|h| h.value.of(buf))
    }

    pub(crate) fn is_idempotent(&self, buf: &[u8]) -> bool {
        matches!(
            self.method(buf),
            b"GET" | b"HEAD" | b"OPTIONS" | b"TRACE" | b"PUT" | b"DELETE"
        )
    }
}

/// What to do with the bytes read so far.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Parsed {
    /// The head is not complete: read more (while under [`MAX_HEAD`]).
    Partial,
    /// The head, into the `RequestHead` given.
    Complete,
    /// Leave the connection to hyper: HTTP/2, an upgrade, `Expect`, or anything unusual, which
    /// hyper answers as it always has (400 and 431 included).
    Hyper,
    /// Refused as nginx refuses it (a request line longer than a head may be: 414; two
    /// `Content-Length` lines: 400), and the connection closed.
    Reject { status: u16, reason: &'static str },
}

const H2_PREFACE: &[u8] = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";

/// Parses the request head at the start of `buf` into `head` (its header list reused).
pub(crate) fn parse_request(buf: &[u8], head: &mut RequestHead) -> Parsed {
    let n = buf.len().min(H2_PREFACE.len());
    if n > 0 && buf[..n] == H2_PREFACE[..n] {
        return if n == H2_PREFACE.len() {
            Parsed::Hyper
        } else {
            Parsed::Partial
        };
    }
    let mut storage = [const { MaybeUninit::<httparse::Header<'_>>::uninit() }; MAX_HEADERS];
    let mut req = httparse::Request::new(&mut []);
    let len = match req.parse_with_uninit_headers(buf, &mut storage) {
        Ok(httparse::Status::Complete(len)) => len,
        Ok(httparse::Status::Partial) if buf.len() < MAX_HEAD => return Parsed::Partial,
        // The request line alone fills the head's room: 414, as nginx answers a request line
        // longer than its `large_client_header_buffers` (hyper would say 431).
        Ok(httparse::Status::Partial) if !buf.contains(&b'\n') => {
            return Parsed::Reject {
                status: 414,
                reason: "the request line is longer than a request head may be",
            };
        }
        Ok(httparse::Status::Partial) | Err(_) => return Parsed::Hyper,
    };
    let (Some(method), Some(target), Some(version)) = (req.method, req.path, req.version) else {
        return Parsed::Hyper;
    };
    // Origin-form targets of plain characters only; anything else (absolute-form, `*`,
    // characters hyper's URI parser judges) goes to hyper.
    if !target.starts_with('/') || !target.bytes().all(plain_target_byte) {
        return Parsed::Hyper;
    }
    if method == "CONNECT" || method == "PRI" {
        return Parsed::Hyper;
    }
    head.len = len;
    head.method = Span::within(buf, method.as_bytes());
    head.target = Span::within(buf, target.as_bytes());
    head.path_len = target.find('?').unwrap_or(target.len());
    head.http10 = version == 0;
    head.headers.clear();
    head.host = None;
    let mut length: Option<u64> = None;
    let mut chunked = false;
    let mut keep_alive = false;
    let mut close = false;
    for h in req.headers.iter() {
        let name = h.name.as_bytes();
        let role = Role::of_request(name);
        let value = h.value;
        match role {
            Role::Host if head.host.is_none() => head.host = Some(Span::within(buf, value)),
            Role::ContentLength => {
                let Some(n) = parse_length(value) else {
                    return Parsed::Hyper;
                };
                // Two `Content-Length` headers, even equal ones, are refused as nginx refuses
                // them ("client sent duplicate header line"); hyper would merge equal ones.
                if length.is_some_and(|l| l != n) {
                    return Parsed::Hyper;
                }
                if length.is_some() {
                    return Parsed::Reject {
                        status: 400,
                        reason: "the request has more than one Content-Length",
                    };
                }
                length = Some(n);
            }
            Role::TransferEncoding => {
                if chunked || head.http10 || !trim(value).eq_ignore_ascii_case(b"chunked") {
                    return Parsed::Hyper;
                }
                chunked = true;
            }
            Role::Connection => {
                for token in value.split(|&b| b == b',').map(trim) {
                    if token.eq_ignore_ascii_case(b"close") {
                        close = true;
                    } else if token.eq_ignore_ascii_case(b"keep-alive") {
                        keep_alive = true;
                    } else if token.eq_ignore_ascii_case(b"upgrade") {
                        return Parsed::Hyper;
                    }
                }
            }
            _ if name.eq_ignore_ascii_case(b"upgrade") || name.eq_ignore_ascii_case(b"expect") => {
                return Parsed::Hyper;
            }
            _ => {}
        }
        head.headers.push(HeaderSpan {
            name: Span::within(buf, name),
            value: Span::within(buf, value),
            role,
        });
    }
    if chunked && length.is_some() {
        return Parsed::Hyper;
    }
    // Headers the `Connection` header names are hop-by-hop too; naming one the router itself
    // needs (framing, host) is odd enough to leave to hyper.
    for i in 0..head.headers.len() {
        if head.headers[i].role != Role::Connection {
            continue;
        }
        let value = head.headers[i].value.of(buf);
        for token in value.split(|&b| b == b',').map(trim) {
            if token.is_empty()
                || token.eq_ignore_ascii_case(b"close")
                || token.eq_ignore_ascii_case(b"keep-alive")
            {
                continue;
            }
            for h in head.headers.iter_mut() {
                if h.name.of(buf).eq_ignore_ascii_case(token) {
                    match h.role {
                        Role::ContentLength | Role::TransferEncoding | Role::Host => {
                            return Parsed::Hyper;
                        }
                        _ => h.role = Role::HopByHop,
                    }
                }
            }
        }
    }
    head.body = if chunked {
        Some(Framing::Chunked)
    } else {
        match length {
            Some(0) | None => None,
            Some(n) => Some(Framing::Length(n)),
        }
    };
    head.close = close || (head.http10 && !keep_alive);
    Parsed::Complete
}

/// Characters of an origin-form target that every parser reads alike.
fn plain_target_byte(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b"-._~!$&'()*+,;=:@/%?".contains(&b)
}

fn trim(v: &[u8]) -> &[u8] {
    v.trim_ascii()
}

/// A `Content-Length` value: digits only, at most 19 of them (no overflow).
pub(crate) fn parse_length(v: &[u8]) -> Option<u64> {
    let v = trim(v);
    if v.is_empty() || v.len() > 19 || !v.iter().all(u8::is_ascii_digit) {
        return None;
    }
    Some(v.iter().fold(0u64, |n, d| n * 10 + u64::from(d - b'0')))
}

/// An upstream's response head.
#[derive(Debug, Default)]
pub(crate) struct ResponseHead {
    pub len: usize,
    pub status: u16,
    /// The reason phrase, as sent.
    pub reason: Span,
    pub headers: Vec<HeaderSpan>,
    pub framing: Option<Framing>,
    /// The upstream keeps the connection open after this response.
    pub keep_alive: bool,
    pub has_date: bool,
}

/// Why a response head cannot be used.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct BadResponse(pub &'static str);

/// Parses the response head at the start of `buf`; `Ok(None)`: not complete yet. `head_request`:
/// the request was a HEAD (no body follows, whatever the headers say).
pub(crate) fn parse_response(
    buf: &[u8],
    head_request: bool,
    head: &mut ResponseHead,
) -> Result<Option<()>, BadResponse> {
    let mut storage = [const { MaybeUninit::<httparse::Header<'_>>::uninit() }; MAX_HEADERS];
    let mut res = httparse::Response::new(&mut []);
    let parsed = httparse::ParserConfig::default().parse_response_with_uninit_headers(
        &mut res,
        buf,
        &mut storage,
    );
    let len = match parsed {
        Ok(httparse::Status::Complete(len)) => len,
        Ok(httparse::Status::Partial) if buf.len() < MAX_HEAD => return Ok(None),
        Ok(httparse::Status::Partial) => return Err(BadResponse("response head too large")),
        Err(httparse::Error::TooManyHeaders) => {
            return Err(BadResponse("response with too many headers"));
        }
        Err(_) => return Err(BadResponse("invalid HTTP response head")),
    };
    let (Some(version), Some(status)) = (res.version, res.code) else {
        return Err(BadResponse("invalid HTTP response head"));
    };
    if !(100..=599).contains(&status) {
        return Err(BadResponse("invalid status code"));
    }
    head.len = len;
    head.status = status;
    head.reason = Span::within(buf, res.reason.unwrap_or("").as_bytes());
    head.headers.clear();
    head.has_date = false;
    let mut length: Option<u64> = None;
    let mut chunked = false;
    let mut other_coding = false;
    let mut close = version == 0;
    for h in res.headers.iter() {
        let name = h.name.as_bytes();
        let role = Role::of(name);
        match role {
            Role::ContentLength => {
                let n = parse_length(h.value).ok_or(BadResponse("invalid content-length"))?;
                if length.is_some_and(|l| l != n) {
                    return Err(BadResponse("conflicting content-length"));
                }
                length = Some(n);
            }
            Role::TransferEncoding => {
                // The last coding decides: chunked, or the body runs to the close.
                let last = h.value.rsplit(|&b| b == b',').next().map(trim);
                chunked = last.is_some_and(|c| c.eq_ignore_ascii_case(b"chunked"));
                other_coding |= !chunked;
            }
            Role::Connection => {
                for token in h.value.split(|&b| b == b',').map(trim) {
                    if token.eq_ignore_ascii_case(b"close") {
                        close = true;
                    } else if token.eq_ignore_ascii_case(b"keep-alive") && version == 0 {
                        close = false;
                    }
                }
            }
            Role::Date => head.has_date = true,
            _ => {}
        }
        head.headers.push(HeaderSpan {
            name: Span::within(buf, name),
            value: Span::within(buf, h.value),
            role,
        });
    }
    // Named by `Connection`: hop-by-hop.
    for i in 0..head.headers.len() {
        if head.headers[i].role != Role::Connection {
            continue;
        }
        let value = head.headers[i].value.of(buf);
        for token in value.split(|&b| b == b',').map(trim) {
            for h in head.headers.iter_mut() {
                if h.role == Role::Other && h.name.of(buf).eq_ignore_ascii_case(token) {
                    h.role = Role::HopByHop;
                }
            }
        }
    }
    let framing = if head_request || (100..200).contains(&status) || status == 204 || status == 304
    {
        Framing::Empty
    } else if chunked && !other_coding {
        Framing::Chunked
    } else if other_coding {
        Framing::Close
    } else {
        match length {
            Some(n) => Framing::Length(n),
            None => Framing::Close,
        }
    };
    if framing == Framing::Close {
        close = true;
    }
    head.framing = Some(framing);
    head.keep_alive = !close;
    Ok(Some(()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(input: &[u8]) -> (Parsed, RequestHead) {
        let mut head = RequestHead::default();
        let parsed = parse_request(input, &mut head);
        (parsed, head)
    }

    #[test]
    fn a_plain_request() {
        let raw = b"GET /a/b?x=1 HTTP/1.1\r\nHost: example.org\r\nX-Forwarded-For: 1.2.3.4\r\nAccept: */*\r\n\r\nnext";
        let (parsed, head) = parse(raw);
        assert_eq!(parsed, Parsed::Complete);
        assert_eq!(head.len, raw.len() - 4);
        assert_eq!(head.method(raw), b"GET");
        assert_eq!(head.path(raw), "/a/b");
        assert_eq!(head.query(raw), b"?x=1");
        assert_eq!(head.host.map(|h| h.of(raw)), Some(&b"example.org"[..]));
        assert_eq!(head.framing(), Framing::Empty);
        assert!(!head.close && !head.http10);
        let roles: Vec<Role> = head.headers.iter().map(|h| h.role).collect();
        assert_eq!(roles, [Role::Host, Role::ForwardedFor, Role::Other]);
    }

    #[test]
    fn framing_and_connection() {
        let (p, h) = parse(b"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 12\r\n\r\n");
        assert_eq!((p, h.framing()), (Parsed::Complete, Framing::Length(12)));
        let (p, h) = parse(b"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: Chunked\r\n\r\n");
        assert_eq!((p, h.framing()), (Parsed::Complete, Framing::Chunked));
        let (_, h) = parse(b"GET / HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n");
        assert!(h.close);
        let (_, h) = parse(b"GET / HTTP/1.0\r\n\r\n");
        assert!(h.close && h.http10);
        let (_, h) = parse(b"GET / HTTP/1.0\r\nConnection: Keep-Alive\r\n\r\n");
        assert!(!h.close);
        let (_, h) = parse(b"GET / HTTP/1.1\r\nConnection: x-a, close\r\nX-A: 1\r\nX-B: 2\r\n\r\n");
        let roles: Vec<Role> = h.headers.iter().map(|h| h.role).collect();
        assert_eq!(roles, [Role::Connection, Role::HopByHop, Role::Other]);
    }

    #[test]
    fn what_hyper_gets() {
        for raw in [
            &b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"[..],
            b"GET / HTTP/1.1\r\nHost: a\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n\r\n",
            b"GET / HTTP/1.1\r\nHost: a\r\nUpgrade: h2c\r\n\r\n",
            b"POST / HTTP/1.1\r\nHost: a\r\nExpect: 100-continue\r\nContent-Length: 1\r\n\r\n",
            b"GET http://a/ HTTP/1.1\r\nHost: a\r\n\r\n",
            b"OPTIONS * HTTP/1.1\r\nHost: a\r\n\r\n",
            b"CONNECT a:443 HTTP/1.1\r\nHost: a\r\n\r\n",
            b"GET /\"x\" HTTP/1.1\r\nHost: a\r\n\r\n",
            b"GET / HTTP/1.1\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\n",
            b"GET / HTTP/1.1\r\nContent-Length: -1\r\n\r\n",
            b"GET / HTTP/1.1\r\nContent-Length: 99999999999999999999\r\n\r\n",
            b"POST / HTTP/1.1\r\nTransfer-Encoding: gzip, chunked\r\n\r\n",
            b"POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\nContent-Length: 3\r\n\r\n",
            b"POST / HTTP/1.0\r\nTransfer-Encoding: chunked\r\n\r\n",
            b"GET / HTTP/1.1\r\nConnection: content-length\r\nContent-Length: 3\r\n\r\n",
            b"GET / HTTP/1.1\r\nHost : a\r\n\r\n",
            b"GET / HTTP/3.0\r\n\r\n",
            b"\x00\x01\x02\x03\r\n\r\n",
        ] {
            assert_eq!(
                parse(raw).0,
                Parsed::Hyper,
                "{}",
                String::from_utf8_lossy(raw)
            );
        }
        let mut many = b"GET / HTTP/1.1\r\n".to_vec();
        for i in 0..=MAX_HEADERS {
            many.extend_from_slice(format!("x-{i}: 1\r\n").as_bytes());
        }
        many.extend_from_slice(b"\r\n");
        assert_eq!(parse(&many).0, Parsed::Hyper);
        let mut huge = b"GET / HTTP/1.1\r\nx-big: ".to_vec();
        huge.resize(MAX_HEAD + 1, b'a');
        assert_eq!(parse(&huge).0, Parsed::Hyper);
    }

    #[test]
    fn every_prefix_is_partial() {
        let raw = b"POST /x HTTP/1.1\r\nHost: a\r\nContent-Length: 3\r\n\r\n";
        for cut in 0..raw.len() {
            assert_eq!(parse(&raw[..cut]).0, Parsed::Partial, "{cut}");
        }
        let preface = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";
        for cut in 1..preface.len() {
            assert_eq!(parse(&preface[..cut]).0, Parsed::Partial);
        }
    }

    #[test]
    fn lengths() {
        assert_eq!(parse_length(b" 42 "), Some(42));
        assert_eq!(
            parse_length(b"9999999999999999999"),
            Some(9_999_999_999_999_999_999)
        );
        for bad in [
            &b""[..],
            b"+1",
            b"1 2",
            b"0x1",
            b"18446744073709551616",
            b"-0",
        ] {
            assert_eq!(parse_length(bad), None);
        }
    }

    #[test]
    fn response_framing() {
        let mut h = ResponseHead::default();
        let mut framing = |raw: &[u8], head_request: bool| {
            parse_response(raw, head_request, &mut h).map(|r| r.map(|()| (h.framing, h.keep_alive)))
        };
        use Framing::*;
        let cases: [(&[u8], bool, Option<Framing>, bool); 9] = [
            (
                b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\n",
                false,
                Some(Length(5)),
                true,
            ),
            (
                b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\n",
                true,
                Some(Empty),
                true,
            ),
            (
                b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n",
                false,
                Some(Chunked),
                true,
            ),
            (
                b"HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip\r\n\r\n",
                false,
                Some(Close),
                false,
            ),
            (b"HTTP/1.1 200 OK\r\n\r\n", false, Some(Close), false),
            (b"HTTP/1.1 204 No Content\r\n\r\n", false, Some(Empty), true),
            (
                b"HTTP/1.1 304 Not Modified\r\nContent-Length: 9\r\n\r\n",
                false,
                Some(Empty),
                true,
            ),
            (
                b"HTTP/1.0 200 OK\r\nContent-Length: 1\r\n\r\n",
                false,
                Some(Length(1)),
                false,
            ),
            (
                b"HTTP/1.1 200 OK\r\nConnection: close\r\nContent-Length: 1\r\n\r\n",
                false,
                Some(Length(1)),
                false,
            ),
        ];
        for (raw, head_request, f, keep) in cases {
            assert_eq!(
                framing(raw, head_request),
                Ok(Some((f, keep))),
                "{}",
                String::from_utf8_lossy(raw)
            );
        }
        assert_eq!(
            framing(b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n", false),
            Ok(None)
        );
        assert!(framing(b"HTTP/1.1 200 OK\r\nContent-Length: x\r\n\r\n", false).is_err());
        assert!(
            framing(
                b"HTTP/1.1 200 OK\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\n",
                false
            )
            .is_err()
        );
        assert!(framing(b"HTTP/1.1 999 What\r\n\r\n", false).is_err());
        assert!(framing(b"SSH-2.0-OpenSSH\r\n\r\n", false).is_err());
    }

    #[test]
    fn arbitrary_bytes_never_panic() {
        let mut seed = 0x9e37_79b9_7f4a_7c15_u64;
        let pieces: [&[u8]; 14] = [
            b"GET ",
            b"/",
            b"?",
            b" HTTP/1.1",
            b" HTTP/1.0",
            b"\r\n",
            b"Host: a",
            b"Content-Length: ",
            b"Transfer-Encoding: chunked",
            b"Connection: ",
            b"close",
            b"1",
            b":",
            b"\x00",
        ];
        for _ in 0..20_000 {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            let mut input = Vec::new();
            for i in 0..(seed % 16) {
                input.extend_from_slice(pieces[((seed >> (i * 3)) % pieces.len() as u64) as usize]);
            }
            let mut head = RequestHead::default();
            if parse_request(&input, &mut head) == Parsed::Complete {
                assert!(head.len <= input.len());
                assert!(head.target.end <= head.len);
            }
            let mut res = ResponseHead::default();
            let _ = parse_response(&input, seed.is_multiple_of(2), &mut res);
        }
    }
}
