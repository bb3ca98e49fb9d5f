//! What isolation costs, measured in one run (`bench/isolation.sh` runs it; it is ignored
//! otherwise, and needs root):
//!
//! 1. the time for `up` (until every instance runs) and `down` of 20 instances, isolated versus
//!    `network_mode: host`, best of five rounds each;
//! 2. the request rate of HTTP/1.1 keep-alive requests from one instance to another over their
//!    network, versus two plain processes on the machine's loopback, best of three alternating
//!    rounds: the server and the client are this binary (`__serve`, `__load`), so that neither
//!    Python nor a tool is measured.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use libtest_mimic::{Failed, Trial};
use wharf_runtime::Runtime;

use crate::network::{isolated_supervisor, net_project, test_net_config};
use crate::{runtime, trial, up_options};

const INSTANCES: u32 = 20;
const LOAD_SECONDS: u64 = 3;
const CONNECTIONS: usize = 4;
const RATE_ROUNDS: usize = 3;
const START_ROUNDS: usize = 5;
const RESPONSE: &[u8] = b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok";

pub fn trials() -> Vec<Trial> {
    vec![trial("bench_isolation", bench_isolation).with_ignored_flag(true)]
}

/// `it __serve <addr>`: answers every request on every keep-alive connection with "ok".
pub fn serve(args: &[std::ffi::OsString]) -> ! {
    let addr = args[0].to_string_lossy().into_owned();
    let listener = TcpListener::bind(&addr).unwrap_or_else(|e| {
        eprintln!("serve {addr}: {e}");
        std::process::exit(1)
    });
    println!(
        "listening {}",
        listener
            .local_addr()
            .map(|a| a.to_string())
            .unwrap_or_default()
    );
    std::io::stdout().flush().ok();
    for conn in listener.incoming().flatten() {
        std::thread::spawn(move || {
            let _ = conn.set_nodelay(true);
            let mut reader = BufReader::new(conn.try_clone().expect("clone"));
            let mut conn = conn;
            let mut line = String::new();
            loop {
                line.clear();
                match reader.read_line(&mut line) {
                    Ok(0) | Err(_) => return,
                    Ok(_) if line == "\r\n" => {
                        if conn.write_all(RESPONSE).is_err() {
                            return;
                        }
                    }
                    Ok(_) => {}
                }
            }
        });
    }
    std::process::exit(0)
}

/// `it __load <host:port> <seconds> <connections>`: prints `requests <n> seconds <s>`.
pub fn load(args: &[std::ffi::OsString]) -> ! {
    let addr = args[0].to_string_lossy().into_owned();
    let seconds: u64 = args[1].to_string_lossy().parse().unwrap_or(3);
    let connections: usize = args[2].to_string_lossy().parse().unwrap_or(4);
    let count = Arc::new(AtomicU64::new(0));
    let stop = Arc::new(AtomicBool::new(false));
    let start = Instant::now();
    let workers: Vec<_> = (0..connections)
        .map(|_| {
            let (count, stop, addr) = (Arc::clone(&count), Arc::clone(&stop), addr.clone());
            std::thread::spawn(move || {
                let Ok(mut c) = TcpStream::connect(&addr) else {
                    return;
                };
                let _ = c.set_nodelay(true);
                let mut buf = [0u8; RESPONSE.len()];
                // At least one request per connection, so that a 0-second run checks the server.
                loop {
                    if c.write_all(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n").is_err()
                        || c.read_exact(&mut buf).is_err()
                    {
                        return;
                    }
                    count.fetch_add(1, Ordering::Relaxed);
                    if stop.load(Ordering::Relaxed) {
                        return;
                    }
                }
            })
        })
        .collect();
    std::thread::sleep(Duration::from_secs(seconds));
    stop.store(true, Ordering::Relaxed);
    for w in workers {
        let _ = w.join();
    }
    println!(
        "requests {} seconds {:.3}",
        count.load(Ordering::Relaxed),
        start.elapsed().as_secs_f64()
    );
    std::process::exit(0)
}

fn rate(output: &str) -> Result<f64, String> {
    let words: Vec<&str> = output.split_whitespace().collect();
    match words.as_slice() {
        [.., "requests", n, "seconds", s] => {
            let n: f64 = n.parse().map_err(|_| format!("bad output {output:?}"))?;
            let s: f64 = s.parse().map_err(|_| format!("bad output {output:?}"))?;
            Ok(n / s)
        }
        _ => Err(format!("bad load output {output:?}")),
    }
}

fn bench_isolation(dir: &Path) -> Result<(), Failed> {
    let exe = std::env::current_exe().map_err(|e| e.to_string())?;
    let exe = exe.display().to_string();
    let start_project = |mode: &str| {
        format!(
            "services:\n  s:\n    command: [\"sleep\", \"100000\"]\n    deploy: {{replicas: {INSTANCES}}}\n{mode}"
        )
    };
    runtime().block_on(async {
        let mut results = Vec::new();
        for (label, mode) in [
            ("isolated", ""),
            ("host network", "    network_mode: host\n"),
        ] {
            let p = net_project(dir, &start_project(mode));
            let mut ups = Vec::new();
            let mut downs = Vec::new();
            for _ in 0..START_ROUNDS {
                let (sup, rt) = isolated_supervisor(dir, test_net_config());
                let t = Instant::now();
                sup.up(Arc::clone(&p), up_options())
                    .await
                    .map_err(|e| e.to_string())?;
                sup.wait_ready("it", None, Duration::from_secs(120))
                    .await
                    .map_err(|e| e.to_string())?;
                ups.push(t.elapsed());
                let t = Instant::now();
                sup.down("it").await.map_err(|e| e.to_string())?;
                downs.push(t.elapsed());
                drop(rt);
            }
            let best = |v: &[Duration]| v.iter().min().copied().unwrap_or_default();
            results.push((label, best(&ups), best(&downs)));
        }
        for (label, up, down) in &results {
            println!(
                "bench: {INSTANCES} instances, {label}: up {:.0} ms ({:.1} ms per instance), down {:.0} ms",
                up.as_secs_f64() * 1e3,
                up.as_secs_f64() * 1e3 / f64::from(INSTANCES),
                down.as_secs_f64() * 1e3
            );
        }
        let overhead = (results[0].1.as_secs_f64() - results[1].1.as_secs_f64()) * 1e3
            / f64::from(INSTANCES);
        println!("bench: isolation overhead at start: {overhead:.1} ms per instance");

        // Request rate between two isolated instances.
        let p = net_project(
            dir,
            &format!(
                "services:\n  srv:\n    command: [\"{exe}\", \"__serve\", \"0.0.0.0:8080\"]\n  cli:\n    command: [\"sleep\", \"100000\"]\n"
            ),
        );
        let (sup, rt) = isolated_supervisor(dir, test_net_config());
        sup.up(Arc::clone(&p), up_options())
            .await
            .map_err(|e| e.to_string())?;
        sup.wait_ready("it", None, Duration::from_secs(60))
            .await
            .map_err(|e| e.to_string())?;
        let load_argv = |target: &str| {
            vec![
                exe.clone(),
                "__load".into(),
                target.into(),
                LOAD_SECONDS.to_string(),
                CONNECTIONS.to_string(),
            ]
        };
        // The server may still be binding: a short warm-up until it answers.
        let warm: Vec<String> = ["__load", "srv:8080", "0", "1"]
            .iter()
            .map(|a| a.to_string())
            .collect();
        let warm = [vec![exe.clone()], warm].concat();
        let mut tries = 0;
        loop {
            let out = rt
                .exec(&first(&p, "cli"), &warm, Duration::from_secs(10))
                .await
                .map_err(|e| e.to_string())?;
            if out.status.is_some_and(|s| s.success()) && !out.output.contains("requests 0 ") {
                break;
            }
            tries += 1;
            if tries > 50 {
                let _ = sup.down("it").await;
                return Err(format!("srv never answered: {}", out.output).into());
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        // The same between two plain processes on loopback; rounds alternate between the two
        // pairs and the best of each counts (other load on the machine only ever slows down).
        let mut server = Command::new(&exe)
            .args(["__serve", "127.0.0.1:0"])
            .stdout(Stdio::piped())
            .spawn()
            .map_err(|e| e.to_string())?;
        let mut line = String::new();
        BufReader::new(server.stdout.take().ok_or("no stdout")?)
            .read_line(&mut line)
            .map_err(|e| e.to_string())?;
        let addr = line.trim().strip_prefix("listening ").ok_or("no address")?.to_string();
        let (mut isolated, mut host) = (0f64, 0f64);
        for _ in 0..RATE_ROUNDS {
            let out = rt
                .exec(
                    &first(&p, "cli"),
                    &load_argv("srv:8080"),
                    Duration::from_secs(LOAD_SECONDS + 20),
                )
                .await
                .map_err(|e| e.to_string())?;
            isolated = isolated.max(rate(&out.output)?);
            let out = Command::new(&exe)
                .args(&load_argv(&addr)[1..])
                .output()
                .map_err(|e| e.to_string())?;
            host = host.max(rate(&String::from_utf8_lossy(&out.stdout))?);
        }
        let _ = server.kill();
        let _ = server.wait();
        sup.down("it").await.map_err(|e| e.to_string())?;
        println!(
            "bench: request rate ({CONNECTIONS} keep-alive connections, best of {RATE_ROUNDS} x {LOAD_SECONDS} s): isolated instances {isolated:.0}/s, host processes on loopback {host:.0}/s ({:+.1}%)",
            (isolated / host - 1.0) * 100.0
        );
        Ok(())
    })
}

fn first(p: &wharf_model::Project, service: &str) -> impl wharf_runtime::InstanceHandle {
    crate::network::first_instance(p, service)
}
