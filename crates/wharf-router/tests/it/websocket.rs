use futures_util::{SinkExt, StreamExt};
use tokio_tungstenite::tungstenite::Message;
use wharf_router::{InstanceEvent, RouterConfig};

use crate::backend::{Client, start_router, table, websocket_echo};

async fn echo<S>(ws: &mut S, text: &str)
where
    S: StreamExt<Item = Result<Message, tokio_tungstenite::tungstenite::Error>>
        + SinkExt<Message, Error = tokio_tungstenite::tungstenite::Error>
        + Unpin,
{
    ws.send(Message::text(text)).await.expect("send");
    let reply = ws.next().await.expect("open").expect("a message");
    assert_eq!(reply.to_text().expect("text"), text);
}

#[tokio::test]
async fn a_websocket_stays_open_across_a_table_swap() {
    let (echo_addr, _echo) = websocket_echo().await;
    let routes = |path: &'static str| {
        table(
            &[(
                "chat",
                &[("wharf.http.port", "90"), ("wharf.http.path", path)],
            )],
            false,
            1,
        )
    };
    let r = start_router(routes("/ws"), RouterConfig::default()).await;
    r.router.apply(&InstanceEvent::Up {
        project: "p".into(),
        service: "chat".into(),
        instance: "chat-1".into(),
        addr: echo_addr.ip(),
        addresses: Vec::new(),
        ports: [(90, echo_addr.port())].into(),
        healthy: true,
    });

    let (mut ws, response) = tokio_tungstenite::connect_async(format!("ws://{}/ws", r.addr))
        .await
        .expect("upgrade through the router");
    assert!(response.headers().contains_key("x-request-id"));
    echo(&mut ws, "before").await;
    assert_eq!(r.router.pools().instances("p", "chat")[0].outstanding(), 1);

    // The route moves: new connections follow the new table, the open one is untouched.
    r.router.set_table(routes("/socket"));
    let c = Client::new(r.addr, false);
    assert_eq!(c.get("example.test", "/ws", &[]).await.status.as_u16(), 404);
    echo(&mut ws, "after").await;
    let (mut second, _) = tokio_tungstenite::connect_async(format!("ws://{}/socket", r.addr))
        .await
        .expect("the new route");
    echo(&mut second, "second").await;
    echo(&mut ws, "still").await;

    ws.close(None).await.expect("close");
    second.close(None).await.expect("close");
}
