//! Networks: Compose's names and labels, isolation between networks, aliases, fixed addresses,
//! `network_mode: service:x`.

use std::sync::Arc;

use wharf_supervisor::UpOptions;

use crate::{Lines, READY, Stack, docker, engine, exec};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_networks_isolate_each_other_and_aliases_resolve() {
    let Some(runtime) = engine().await else {
        return;
    };
    let stack = Stack::new(
        "networks",
        r#"
services:
  front:
    image: IMAGE
    command: ["sh", "-c", "echo front > /www/index.html; exec httpd -f -p 80 -h /www"]
    networks: [frontnet]
    healthcheck:
      test: ["CMD", "wget", "-q", "-O", "/dev/null", "http://127.0.0.1:80/"]
      interval: 200ms
      retries: 100
  back:
    image: IMAGE
    command: ["sh", "-c", "echo back > /www/index.html; exec httpd -f -p 80 -h /www"]
    healthcheck:
      test: ["CMD", "wget", "-q", "-O", "/dev/null", "http://127.0.0.1:80/"]
      interval: 200ms
      retries: 100
    networks:
      backnet:
        aliases: [database]
        ipv4_address: 172.31.250.10
  both:
    image: IMAGE
    command: ["sh", "-c", "echo both > /www/index.html; exec httpd -f -p 80 -h /www"]
    healthcheck:
      test: ["CMD", "wget", "-q", "-O", "/dev/null", "http://127.0.0.1:80/"]
      interval: 200ms
      retries: 100
    networks: [frontnet, backnet]
networks:
  frontnet: {}
  backnet:
    internal: true
    ipam:
      config:
        - subnet: 172.31.250.0/24
"#,
    );
    let sup = stack.supervisor(runtime, Arc::new(Lines::default()));
    let n = stack.name.clone();
    sup.up(stack.load(), UpOptions::default()).await.unwrap();
    sup.wait_ready(&n, None, READY).await.unwrap();

    // Compose's names and labels.
    let backnet = format!("{n}_backnet");
    assert_eq!(
        docker(&[
            "network",
            "inspect",
            "-f",
            "{{index .Labels \"com.docker.compose.project\"}} {{index .Labels \"com.docker.compose.network\"}} {{.Internal}}",
            &backnet
        ]),
        format!("{n} backnet true")
    );
    assert_eq!(
        docker(&[
            "inspect",
            "-f",
            &format!("{{{{(index .NetworkSettings.Networks \"{backnet}\").IPAddress}}}}"),
            &format!("{n}-back-1")
        ]),
        "172.31.250.10"
    );

    let front = format!("{n}-front-1");
    let both = format!("{n}-both-1");
    // `both` reaches `back` by its alias on their shared network.
    let (ok, out) = exec(&both, &["wget", "-q", "-O", "-", "http://database/"]);
    assert!(ok && out.trim() == "back", "ok={ok} {out}");
    // `front` reaches `both` on theirs...
    let (ok, out) = exec(&front, &["wget", "-q", "-O", "-", "http://both/"]);
    assert!(ok && out.trim() == "both", "{out}");
    // ...but neither the name nor the address of `back`, which is on the other network only.
    let (ok, out) = exec(
        &front,
        &["timeout", "3", "wget", "-q", "-O", "-", "http://back/"],
    );
    assert!(!ok, "front reached back by name: {out}");
    let (ok, out) = exec(
        &front,
        &[
            "timeout",
            "3",
            "wget",
            "-q",
            "-O",
            "-",
            "http://172.31.250.10/",
        ],
    );
    assert!(!ok, "front reached back by address: {out}");

    sup.down_with(&n, false).await.unwrap();
    let left = docker(&[
        "network",
        "ls",
        "-q",
        "--filter",
        &format!("label=com.docker.compose.project={n}"),
    ]);
    assert_eq!(left, "", "down removes the project's networks");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn network_mode_service_shares_the_namespace() {
    let Some(runtime) = engine().await else {
        return;
    };
    let stack = Stack::new(
        "netmode",
        r#"
services:
  web:
    image: IMAGE
    command: ["sh", "-c", "echo shared > /www/index.html; exec httpd -f -p 127.0.0.1:8080 -h /www"]
    healthcheck:
      test: ["CMD", "wget", "-q", "-O", "/dev/null", "http://127.0.0.1:8080/"]
      interval: 200ms
      retries: 100
  sidecar:
    image: IMAGE
    command: ["sleep", "100000"]
    network_mode: service:web
"#,
    );
    let sup = stack.supervisor(runtime, Arc::new(Lines::default()));
    let n = stack.name.clone();
    sup.up(stack.load(), UpOptions::default()).await.unwrap();
    sup.wait_ready(&n, None, READY).await.unwrap();
    let web_id = docker(&["inspect", "-f", "{{.Id}}", &format!("{n}-web-1")]);
    assert_eq!(
        docker(&[
            "inspect",
            "-f",
            "{{.HostConfig.NetworkMode}}",
            &format!("{n}-sidecar-1")
        ]),
        format!("container:{web_id}")
    );
    // web listens on its loopback only: the sidecar reaches it there, on the same stack.
    let (ok, out) = exec(
        &format!("{n}-sidecar-1"),
        &["wget", "-q", "-O", "-", "http://127.0.0.1:8080/"],
    );
    assert!(ok && out.trim() == "shared", "ok={ok} {out}");
    sup.down_with(&n, false).await.unwrap();
}
