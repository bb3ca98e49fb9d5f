//! wharf's router in front of one upstream, for `bench/router.sh`: a static table with one route
//! (any host, path `/`) whose single instance listens on `--upstream`.
//!
//! ```text
//! cargo run --release -p wharf-router --example bench_router -- \
//!     --listen 127.0.0.1:8081 --upstream 127.0.0.1:8080 --threads 2
//! ```
//!
//! `--access-log FILE` adds a plain access log line per request (to measure its cost). The
//! connections are served by `Router::serve_on_threads` (`--threads` single-threaded runtimes);
//! with `BENCH_ONE_RUNTIME=1`, by one multi-threaded runtime of `--threads` workers instead.
//! `BENCH_HYPER=1` turns the HTTP/1.1 fast path off (hyper serves every connection), to compare.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::process::ExitCode;

use tokio::net::TcpListener;
use wharf_router::table::RouteEntry;
use wharf_router::{AccessLog, InstanceEvent, RouteTable, Router, RouterConfig, route};

// As the wharf binary: the allocator is part of what is measured.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

struct Args {
    listen: SocketAddr,
    upstream: SocketAddr,
    threads: usize,
    access_log: Option<String>,
}

fn parse_args() -> Result<Args, String> {
    let mut listen = None;
    let mut upstream = None;
    let mut threads = std::thread::available_parallelism().map_or(1, |n| n.get());
    let mut access_log = None;
    let mut args = std::env::args().skip(1);
    while let Some(flag) = args.next() {
        let value = args.next().ok_or_else(|| format!("{flag} needs a value"))?;
        match flag.as_str() {
            "--listen" => {
                listen = Some(
                    value
                        .parse()
                        .map_err(|e| format!("--listen {value}: {e}"))?,
                )
            }
            "--upstream" => {
                upstream = Some(
                    value
                        .parse()
                        .map_err(|e| format!("--upstream {value}: {e}"))?,
                )
            }
            "--threads" => {
                threads = value
                    .parse()
                    .map_err(|e| format!("--threads {value}: {e}"))?
            }
            "--access-log" => access_log = Some(value),
            other => return Err(format!("unknown flag {other}")),
        }
    }
    Ok(Args {
        listen: listen.ok_or("--listen ADDR:PORT is required")?,
        upstream: upstream.ok_or("--upstream ADDR:PORT is required")?,
        threads: threads.max(1),
        access_log,
    })
}

fn main() -> ExitCode {
    let one_runtime = std::env::var_os("BENCH_ONE_RUNTIME").is_some();
    let args = match parse_args() {
        Ok(a) => a,
        Err(e) => {
            eprintln!(
                "bench_router: {e}\nusage: bench_router --listen ADDR:PORT --upstream ADDR:PORT [--threads N] [--access-log FILE]"
            );
            return ExitCode::from(2);
        }
    };
    // For signals and, with BENCH_ONE_RUNTIME, the connections.
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .worker_threads(if one_runtime { args.threads } else { 1 })
        .enable_all()
        .build()
    {
        Ok(r) => r,
        Err(e) => {
            eprintln!("bench_router: cannot start the runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    runtime.block_on(run(args, one_runtime))
}

async fn run(args: Args, one_runtime: bool) -> ExitCode {
    let labels = BTreeMap::from([("wharf.http.port".to_string(), "80".to_string())]);
    let entries = route::parse(&labels)
        .unwrap_or_default()
        .into_iter()
        .map(|r| RouteEntry {
            id: r.id("upstream"),
            project: "bench".into(),
            service: "upstream".into(),
            route: r,
            has_healthcheck: false,
            replicas: 1,
        })
        .collect();
    let table = match RouteTable::new(entries) {
        Ok(t) => t,
        Err(e) => {
            eprintln!("bench_router: {e}");
            return ExitCode::FAILURE;
        }
    };
    let mut config = RouterConfig {
        http1_fast_path: std::env::var_os("BENCH_HYPER").is_none(),
        ..RouterConfig::default()
    };
    if let Some(path) = &args.access_log {
        match std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(path)
        {
            Ok(file) => config.access_log = Some(AccessLog::plain(file)),
            Err(e) => {
                eprintln!("bench_router: access log {path}: {e}");
                return ExitCode::FAILURE;
            }
        }
    }
    let router = Router::new(table, config);
    router.apply(&InstanceEvent::Up {
        project: "bench".into(),
        service: "upstream".into(),
        instance: "upstream-1".into(),
        addr: args.upstream.ip(),
        addresses: Vec::new(),
        ports: BTreeMap::from([(80, args.upstream.port())]),
        healthy: true,
    });
    let listener = match std::net::TcpListener::bind(args.listen) {
        Ok(l) => l,
        Err(e) => {
            eprintln!("bench_router: listen on {}: {e}", args.listen);
            return ExitCode::FAILURE;
        }
    };
    eprintln!(
        "bench_router: {} -> {} with {} threads",
        args.listen, args.upstream, args.threads
    );
    // The router's own threads (`Router::serve_on_threads`), unless BENCH_ONE_RUNTIME is set:
    // then every connection is served by this multi-threaded runtime, for comparison.
    if one_runtime {
        let _ = listener.set_nonblocking(true);
        match TcpListener::from_std(listener) {
            Ok(listener) => {
                router
                    .serve(listener, async {
                        let _ = tokio::signal::ctrl_c().await;
                    })
                    .await
            }
            Err(e) => {
                eprintln!("bench_router: {e}");
                return ExitCode::FAILURE;
            }
        }
        return ExitCode::SUCCESS;
    }
    let (stop, stopped) = tokio::sync::watch::channel(());
    match router.serve_on_threads(listener, args.threads, stopped) {
        Ok(_threads) => {
            let _ = tokio::signal::ctrl_c().await;
            drop(stop);
        }
        Err(e) => {
            eprintln!("bench_router: cannot start the router's threads: {e}");
            return ExitCode::FAILURE;
        }
    }
    ExitCode::SUCCESS
}
