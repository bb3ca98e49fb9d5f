//! Bodies stream both ways: each chunk of an upload reaches the backend, and its echo reaches the
//! client, before the next chunk is even sent.

use std::convert::Infallible;
use std::pin::Pin;
use std::task::{Context, Poll};

use bytes::Bytes;
use http_body_util::BodyExt;
use hyper::body::{Body, Frame};
use hyper::{Request, Response};
use hyper_util::rt::TokioIo;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::mpsc;
use wharf_router::RouterConfig;

use crate::backend::{start_router, table};

/// A request body fed chunk by chunk from a channel.
struct ChannelBody(mpsc::Receiver<Bytes>);

impl Body for ChannelBody {
    type Data = Bytes;
    type Error = Infallible;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Infallible>>> {
        self.0.poll_recv(cx).map(|c| c.map(|b| Ok(Frame::data(b))))
    }
}

#[tokio::test]
async fn bodies_stream_both_ways() {
    // A backend that answers at once with the request's own body, as it arrives.
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let echo = listener.local_addr().expect("addr");
    tokio::spawn(async move {
        while let Ok((stream, _)) = listener.accept().await {
            tokio::spawn(async move {
                let service =
                    hyper::service::service_fn(|req: Request<hyper::body::Incoming>| async {
                        Ok::<_, Infallible>(Response::new(req.into_body()))
                    });
                let _ = hyper::server::conn::http1::Builder::new()
                    .serve_connection(TokioIo::new(stream), service)
                    .await;
            });
        }
    });
    let t = table(&[("echo", &[("wharf.http.port", "80")])], false, 1);
    let r = start_router(t, RouterConfig::default()).await;
    r.router.apply(&wharf_router::InstanceEvent::Up {
        project: "p".into(),
        service: "echo".into(),
        instance: "echo-1".into(),
        addr: echo.ip(),
        addresses: Vec::new(),
        ports: [(80, echo.port())].into(),
        healthy: true,
    });

    let stream = TcpStream::connect(r.addr).await.expect("connect");
    let (mut sender, connection) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
        .await
        .expect("handshake");
    tokio::spawn(connection);
    let (chunks, rx) = mpsc::channel::<Bytes>(1);
    let req = Request::post("/upload")
        .header("host", "example.test")
        .body(ChannelBody(rx))
        .expect("request");
    let first = Bytes::from_static(b"first chunk");
    chunks.send(first.clone()).await.expect("send");
    let response = sender.send_request(req).await.expect("response headers");
    assert_eq!(response.status().as_u16(), 200);
    let mut body = response.into_body();
    for i in 0..3 {
        let expected = if i == 0 {
            first.clone()
        } else {
            let next = Bytes::from(format!("chunk {i}"));
            chunks.send(next.clone()).await.expect("send");
            next
        };
        let mut got = Vec::new();
        while got.len() < expected.len() {
            let frame = body.frame().await.expect("more").expect("a frame");
            if let Ok(data) = frame.into_data() {
                got.extend_from_slice(&data);
            }
        }
        assert_eq!(got, expected);
    }
    drop(chunks);
    assert!(
        body.frame().await.is_none(),
        "the body ends with the upload"
    );
}
