//! Named volumes: created with the project's prefix and labels, kept by `down`, removed by
//! `down -v`.

use std::sync::Arc;

use wharf_supervisor::UpOptions;

use crate::{Lines, Stack, docker, engine, exec};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn named_volume_data_survives_down_and_up_and_goes_with_down_v() {
    let Some(runtime) = engine().await else {
        return;
    };
    let stack = Stack::new(
        "volume",
        r#"
services:
  store:
    image: IMAGE
    command: ["sleep", "100000"]
    volumes:
      - data:/data
volumes:
  data: {}
"#,
    );
    let n = stack.name.clone();
    let volume = format!("{n}_data");
    let sup = stack.supervisor(runtime, Arc::new(Lines::default()));
    sup.up(stack.load(), UpOptions::default()).await.unwrap();
    assert_eq!(
        docker(&[
            "volume",
            "inspect",
            "-f",
            "{{index .Labels \"com.docker.compose.project\"}} {{index .Labels \"com.docker.compose.volume\"}}",
            &volume
        ]),
        format!("{n} data")
    );
    let store = format!("{n}-store-1");
    let (ok, out) = exec(&store, &["sh", "-c", "echo kept > /data/file"]);
    assert!(ok, "{out}");

    sup.down_with(&n, false).await.unwrap();
    assert_eq!(
        docker(&["ps", "-aq", "--filter", &format!("name={store}")]),
        ""
    );
    sup.up(stack.load(), UpOptions::default()).await.unwrap();
    let (ok, out) = exec(&store, &["cat", "/data/file"]);
    assert!(ok && out.trim() == "kept", "{out}");

    let removed = sup.down_with(&n, true).await.unwrap();
    assert_eq!(removed, vec![volume.clone()]);
    assert_eq!(
        docker(&["volume", "ls", "-q", "--filter", &format!("name={volume}")]),
        ""
    );
}
