//! Native isolation with real processes (python3's standard library as servers and clients):
//! names, isolation between networks, shared namespaces, published ports over replicas,
//! internal networks, and cleanup after `down` and after the supervising process is SIGKILLed.
//!
//! They need root (network namespaces, bridges, firewall rules); without it they are reported
//! as ignored. Instances get no nameserver (`NetConfig::nameservers`), so a name that does not
//! resolve from the hosts file fails at once without a query leaving the machine, and no test
//! sends a packet anywhere but loopback and its own bridges.

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream, UdpSocket};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use libtest_mimic::{Failed, Trial};
use wharf_model::Project;
use wharf_runtime::native::{NativeConfig, NativeRuntime, NetConfig, Networking};
use wharf_runtime::{InstanceHandle, InstanceSpec, Runtime, RuntimeError, Signal};
use wharf_supervisor::{Backoff, NoLogs, Supervisor, SupervisorOptions};

use crate::{project, runtime, trial, up_options};

pub fn trials() -> Vec<Trial> {
    let root = is_root();
    if !root {
        eprintln!("network isolation tests need root: reported as ignored (CI runs them as root)");
    }
    let t = |name, f| trial(name, f).with_ignored_flag(!root);
    vec![
        t(
            "network_two_services_on_8080_reach_each_other_by_name",
            two_services_on_8080_reach_each_other_by_name,
        ),
        t(
            "network_backend_is_unresolvable_and_unreachable_from_the_proxy_network",
            backend_is_unresolvable_and_unreachable_from_the_proxy_network,
        ),
        t(
            "network_mode_service_shares_the_namespace",
            network_mode_service_shares_the_namespace,
        ),
        t(
            "network_published_port_spreads_over_three_replicas",
            published_port_spreads_over_three_replicas,
        ),
        t(
            "network_internal_has_no_outbound_route",
            internal_has_no_outbound_route,
        ),
        t(
            "network_down_leaves_nothing_behind",
            down_leaves_nothing_behind,
        ),
        t(
            "network_sigkill_then_recover_leaves_nothing_behind",
            sigkill_then_recover_leaves_nothing_behind,
        ),
        t(
            "network_nftables_and_iptables_both_isolate",
            nftables_and_iptables_both_isolate,
        ),
        t(
            "network_edd_example_runs_isolated",
            edd_example_runs_isolated,
        ),
        trial(
            "network_without_isolation_instances_share_the_host_network_and_are_told",
            without_isolation_instances_share_the_host_network,
        ),
    ]
}

pub(crate) fn is_root() -> bool {
    use std::os::unix::fs::MetadataExt;
    std::fs::metadata("/proc/self").is_ok_and(|m| m.uid() == 0)
}

/// The probes and servers the instances run.
const NET_PY: &str = r#"
import http.server, os, socket, sys, threading, time

def name(arg):
    return os.environ.get("HOSTNAME", "?") if arg == "-" else arg

mode = sys.argv[1]
if mode == "serve":  # serve NAME TCP_PORT [UDP_PORT]: HTTP answering NAME; UDP answering NAME
    me = name(sys.argv[2]).encode()
    if len(sys.argv) > 4:
        def udp():
            s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
            s.bind(("0.0.0.0", int(sys.argv[4])))
            while True:
                _, a = s.recvfrom(2048)
                s.sendto(me, a)
        threading.Thread(target=udp, daemon=True).start()
    class H(http.server.BaseHTTPRequestHandler):
        def do_GET(self):
            self.send_response(200)
            self.send_header("Content-Length", str(len(me)))
            self.end_headers()
            self.wfile.write(me)
        def log_message(self, *a):
            pass
    http.server.ThreadingHTTPServer(("0.0.0.0", int(sys.argv[3])), H).serve_forever()
elif mode == "get":  # get HOST PORT: the body (HOST `-`: the instance's own name)
    s = socket.create_connection((name(sys.argv[2]), int(sys.argv[3])), timeout=5)
    s.sendall(b"GET / HTTP/1.0\r\nHost: x\r\n\r\n")
    data = b""
    while True:
        chunk = s.recv(4096)
        if not chunk:
            break
        data += chunk
    print(data.split(b"\r\n\r\n", 1)[1].decode())
elif mode == "resolve":  # resolve NAME: its addresses, or the error
    try:
        print(" ".join(sorted({a[4][0] for a in socket.getaddrinfo(sys.argv[2], 80, socket.AF_INET)})))
    except socket.gaierror as e:
        print("unresolvable", e)
        sys.exit(3)
elif mode == "connect":  # connect IP PORT: connected, or why not
    try:
        socket.create_connection((sys.argv[2], int(sys.argv[3])), timeout=2)
        print("connected")
    except socket.timeout:
        print("timeout")
        sys.exit(4)
    except OSError as e:
        print("error", e.errno, e.strerror)
        sys.exit(4)
elif mode == "sleep":
    time.sleep(100000)
"#;

/// The real python3 (pyenv's shim is a shell script that takes a while to start).
fn python() -> &'static str {
    static PY: OnceLock<String> = OnceLock::new();
    PY.get_or_init(|| {
        Command::new("python3")
            .args(["-c", "import sys; print(sys.executable)"])
            .output()
            .ok()
            .and_then(|o| String::from_utf8(o.stdout).ok())
            .map(|s| s.trim().to_string())
            .filter(|s| !s.is_empty())
            .unwrap_or_else(|| "python3".into())
    })
}

/// `yaml` with `$PY` (python3) and `$NET` (the probe script, written to `dir`).
pub(crate) fn net_project(dir: &Path, yaml: &str) -> Arc<Project> {
    std::fs::write(dir.join("net.py"), NET_PY).expect("write net.py");
    let script = dir.join("net.py").display().to_string();
    project(dir, &yaml.replace("$PY", python()).replace("$NET", &script))
}

/// A network config for tests: a scope of its own, no nameserver.
pub(crate) fn test_net_config() -> NetConfig {
    NetConfig {
        nameservers: Some(Vec::new()),
        ..NetConfig::ephemeral()
    }
}

pub(crate) fn isolated_supervisor(dir: &Path, net: NetConfig) -> (Supervisor, Arc<NativeRuntime>) {
    let exe = std::env::current_exe().expect("own path");
    let mut config = NativeConfig::new(vec![exe.into(), "__shim".into()]);
    config.network = Some(net);
    let rt = Arc::new(NativeRuntime::new(config));
    let base_env = std::env::vars().filter(|(k, _)| k == "PATH").collect();
    let sup = Supervisor::new(
        Arc::clone(&rt) as Arc<dyn Runtime>,
        Arc::new(NoLogs),
        SupervisorOptions {
            base_env,
            volumes_dir: dir.join("volumes"),
            backoff: Backoff::default(),
        },
    );
    (sup, rt)
}

fn net(rt: &NativeRuntime) -> &Arc<Networking> {
    rt.networking().expect("isolation is on")
}

/// Names an instance for `Runtime::exec`, which needs only its spec.
#[derive(Debug)]
pub(crate) struct Named(InstanceSpec);

impl InstanceHandle for Named {
    fn spec(&self) -> &InstanceSpec {
        &self.0
    }
    fn pid(&self) -> Option<u32> {
        None
    }
    fn signal(&self, _: Signal) -> Result<(), RuntimeError> {
        Err(RuntimeError::Other("not a running handle".into()))
    }
    fn kill(&self) -> Result<(), RuntimeError> {
        Err(RuntimeError::Other("not a running handle".into()))
    }
}

/// `service`'s first instance, for `exec`.
pub(crate) fn first_instance(p: &Project, service: &str) -> Named {
    let spec = wharf_supervisor::spec::instance_spec(
        p,
        &p.services[service],
        1,
        &std::env::vars().filter(|(k, _)| k == "PATH").collect(),
        Path::new("/nonexistent"),
    )
    .expect("spec");
    Named(spec)
}

/// Runs `argv` in `service`'s first instance: (exit code, output).
async fn run_in(rt: &dyn Runtime, p: &Project, service: &str, argv: &[String]) -> (i32, String) {
    let out = rt
        .exec(&first_instance(p, service), argv, Duration::from_secs(20))
        .await
        .expect("exec");
    (
        out.status.map(|s| s.code()).unwrap_or(-1),
        out.output.trim().to_string(),
    )
}

/// The output of `argv` in `service`'s first instance.
async fn exec_in(rt: &NativeRuntime, p: &Project, service: &str, argv: &[&str]) -> String {
    let argv: Vec<String> = argv.iter().map(|s| s.to_string()).collect();
    run_in(rt, p, service, &argv).await.1
}

/// Runs `args` of the probe script in `service`'s first instance: (exit code, output).
async fn probe(rt: &NativeRuntime, p: &Project, service: &str, args: &[&str]) -> (i32, String) {
    let mut argv = vec![
        python().to_string(),
        p.working_dir.join("net.py").display().to_string(),
    ];
    argv.extend(args.iter().map(|s| s.to_string()));
    run_in(rt, p, service, &argv).await
}

/// Waits (bounded) until `service` gets an answer from `target` on 8080.
async fn until_answered(
    rt: &NativeRuntime,
    p: &Project,
    service: &str,
    target: &str,
) -> Result<(), Failed> {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    loop {
        let (code, out) = probe(rt, p, service, &["get", target, "8080"]).await;
        if code == 0 {
            return Ok(());
        }
        if tokio::time::Instant::now() >= deadline {
            return Err(format!("{target} never answered {service}: {out}").into());
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Whether the machine's iptables FORWARD chain drops what it does not accept while bridged
/// frames go through it (Docker sets this up): then only rules in that chain, which the
/// iptables backend adds, let traffic within a bridge through, and the nftables backend alone
/// can isolate but not connect.
fn iptables_forward_drops_bridged_traffic() -> bool {
    let policy_drop = Command::new("iptables")
        .args(["-w", "-S", "FORWARD"])
        .output()
        .is_ok_and(|o| String::from_utf8_lossy(&o.stdout).contains("-P FORWARD DROP"));
    let bridged = std::fs::read_to_string("/proc/sys/net/bridge/bridge-nf-call-iptables")
        .is_ok_and(|v| v.trim() == "1");
    policy_drop && bridged
}

async fn up_ready(sup: &Supervisor, p: &Arc<Project>) -> Result<Vec<String>, Failed> {
    let report = sup
        .up(Arc::clone(p), up_options())
        .await
        .map_err(|e| e.to_string())?;
    sup.wait_ready("it", None, Duration::from_secs(60))
        .await
        .map_err(|e| e.to_string())?;
    Ok(report.warnings)
}

/// A health check that passes once the instance answers on 8080 by its own name, which only
/// resolves inside its namespace: health checks run there.
const HEALTHY_ON_8080: &str = r#"healthcheck: {test: ["CMD", "$PY", "$NET", "get", "-", "8080"], interval: 30s, start_period: 30s, start_interval: 100ms}"#;

fn two_services_on_8080_reach_each_other_by_name(dir: &Path) -> Result<(), Failed> {
    let p = net_project(
        dir,
        &format!(
            r#"
services:
  a:
    command: ["$PY", "$NET", "serve", "-", "8080"]
    {HEALTHY_ON_8080}
  b:
    command: ["$PY", "$NET", "serve", "-", "8080"]
    {HEALTHY_ON_8080}
"#
        ),
    );
    runtime().block_on(async {
        let (sup, rt) = isolated_supervisor(dir, test_net_config());
        up_ready(&sup, &p).await?;
        assert_eq!(
            probe(&rt, &p, "a", &["get", "b", "8080"]).await,
            (0, "it-b-1".into())
        );
        assert_eq!(
            probe(&rt, &p, "b", &["get", "a", "8080"]).await,
            (0, "it-a-1".into())
        );
        // By instance name too.
        assert_eq!(
            probe(&rt, &p, "a", &["get", "it-b-1", "8080"]).await,
            (0, "it-b-1".into())
        );
        // A stopped instance no longer resolves; started again, it has the same address.
        let before = net(&rt).addresses("it-b-1").await;
        let b = ["b".to_string()];
        sup.stop("it", Some(&b)).await.map_err(|e| e.to_string())?;
        assert_eq!(probe(&rt, &p, "a", &["resolve", "b"]).await.0, 3);
        sup.start("it", Some(&b)).await.map_err(|e| e.to_string())?;
        sup.wait_ready("it", None, Duration::from_secs(60))
            .await
            .map_err(|e| e.to_string())?;
        assert_eq!(net(&rt).addresses("it-b-1").await, before);
        assert_eq!(
            probe(&rt, &p, "a", &["get", "b", "8080"]).await,
            (0, "it-b-1".into())
        );
        sup.down("it").await.map_err(|e| e.to_string())?;
        Ok(())
    })
}

const EDD_SHAPED: &str = r#"
services:
  db:
    command: ["$PY", "$NET", "serve", "-", "8080"]
    networks: [backnet]
  app:
    command: ["$PY", "$NET", "serve", "-", "8080"]
    networks:
      proxynet: {}
      backnet: {aliases: [api]}
  nginx:
    command: ["$PY", "$NET", "serve", "-", "8080"]
    networks: [proxynet]
networks:
  proxynet: {}
  backnet: {}
"#;

fn backend_is_unresolvable_and_unreachable_from_the_proxy_network(
    dir: &Path,
) -> Result<(), Failed> {
    let p = net_project(dir, EDD_SHAPED);
    runtime().block_on(async {
        let (sup, rt) = isolated_supervisor(dir, test_net_config());
        up_ready(&sup, &p).await?;
        // Wait until the servers listen (no health checks here: the app probes both).
        until_answered(&rt, &p, "app", "db").await?;
        until_answered(&rt, &p, "app", "nginx").await?;
        // The app is on both networks: it reaches both, and its alias resolves on backnet.
        assert_eq!(
            probe(&rt, &p, "app", &["get", "db", "8080"]).await,
            (0, "it-db-1".into())
        );
        assert_eq!(
            probe(&rt, &p, "app", &["get", "nginx", "8080"]).await,
            (0, "it-nginx-1".into())
        );
        assert_eq!(
            probe(&rt, &p, "db", &["get", "api", "8080"]).await,
            (0, "it-app-1".into())
        );
        // nginx is on proxynet only: db's names do not resolve...
        for name in ["db", "it-db-1", "api"] {
            let (code, out) = probe(&rt, &p, "nginx", &["resolve", name]).await;
            assert_eq!(code, 3, "{name} resolved from nginx: {out}");
        }
        // ... and db's address is not reachable.
        let db_addr = net(&rt).addresses("it-db-1").await;
        assert_eq!(db_addr.len(), 1, "{db_addr:?}");
        let ip = db_addr[0].1.to_string();
        let (code, out) = probe(&rt, &p, "nginx", &["connect", &ip, "8080"]).await;
        assert_eq!(code, 4, "nginx reached db at {ip}: {out}");
        // The other way round too.
        let (code, _) = probe(&rt, &p, "db", &["resolve", "nginx"]).await;
        assert_eq!(code, 3);
        let nginx_ip = net(&rt).addresses("it-nginx-1").await[0].1.to_string();
        let (code, out) = probe(&rt, &p, "db", &["connect", &nginx_ip, "8080"]).await;
        assert_eq!(code, 4, "db reached nginx at {nginx_ip}: {out}");
        sup.down("it").await.map_err(|e| e.to_string())?;
        Ok(())
    })
}

fn network_mode_service_shares_the_namespace(dir: &Path) -> Result<(), Failed> {
    let p = net_project(
        dir,
        &format!(
            r#"
services:
  openvpn:
    command: ["$PY", "$NET", "serve", "-", "8080"]
    {HEALTHY_ON_8080}
  celery:
    command: ["$PY", "$NET", "sleep"]
    network_mode: service:openvpn
    depends_on: {{openvpn: {{condition: service_healthy}}}}
"#
        ),
    );
    runtime().block_on(async {
        let (sup, rt) = isolated_supervisor(dir, test_net_config());
        up_ready(&sup, &p).await?;
        // The same loopback: openvpn's server on 127.0.0.1.
        assert_eq!(
            probe(&rt, &p, "celery", &["get", "127.0.0.1", "8080"]).await,
            (0, "it-openvpn-1".into())
        );
        // The same addresses (the kernel's table of local addresses, read from inside each), and
        // celery's names are openvpn's addresses.
        let vpn = net(&rt).addresses("it-openvpn-1").await;
        assert_eq!(vpn.len(), 1);
        assert_eq!(net(&rt).addresses("it-celery-1").await, vpn);
        let fib = |s| exec_in(&rt, &p, s, &["cat", "/proc/net/fib_trie"]);
        let (vpn_fib, celery_fib) = (fib("openvpn").await, fib("celery").await);
        assert!(vpn_fib.contains(&vpn[0].1.to_string()), "{vpn_fib}");
        assert_eq!(vpn_fib, celery_fib);
        assert_eq!(
            probe(&rt, &p, "openvpn", &["resolve", "celery"]).await,
            (0, vpn[0].1.to_string())
        );
        sup.down("it").await.map_err(|e| e.to_string())?;
        Ok(())
    })
}

fn published_port_spreads_over_three_replicas(dir: &Path) -> Result<(), Failed> {
    let p = net_project(
        dir,
        &format!(
            r#"
services:
  web:
    command: ["$PY", "$NET", "serve", "-", "8080", "9090"]
    deploy: {{replicas: 3}}
    ports: ["127.0.0.1::8080", "127.0.0.1::9090/udp"]
    {HEALTHY_ON_8080}
"#
        ),
    );
    runtime().block_on(async {
        let (sup, rt) = isolated_supervisor(dir, test_net_config());
        up_ready(&sup, &p).await?;
        let published = net(&rt).published("it").await;
        let bound = |proto: wharf_runtime::native::net::Protocol| {
            published
                .iter()
                .find(|p| p.port.protocol == proto)
                .map(|p| p.bound)
                .ok_or(format!("no {proto} port published: {published:?}"))
        };
        let tcp = bound(wharf_runtime::native::net::Protocol::Tcp)?;
        let udp = bound(wharf_runtime::native::net::Protocol::Udp)?;
        let mut seen: BTreeMap<String, u32> = BTreeMap::new();
        for _ in 0..6 {
            *seen.entry(http_get(tcp)?).or_default() += 1;
        }
        let expected: BTreeMap<String, u32> = (1..=3).map(|n| (format!("it-web-{n}"), 2)).collect();
        assert_eq!(seen, expected, "round robin over the three replicas");
        let mut udp_seen = std::collections::BTreeSet::new();
        for _ in 0..3 {
            let s = UdpSocket::bind("127.0.0.1:0").map_err(|e| e.to_string())?;
            s.set_read_timeout(Some(Duration::from_secs(5)))
                .map_err(|e| e.to_string())?;
            s.send_to(b"who", udp).map_err(|e| e.to_string())?;
            let mut buf = [0u8; 64];
            let (n, _) = s.recv_from(&mut buf).map_err(|e| format!("udp: {e}"))?;
            udp_seen.insert(String::from_utf8_lossy(&buf[..n]).into_owned());
        }
        assert_eq!(udp_seen.len(), 3, "{udp_seen:?}");
        // Inside, the service name resolves to the three replicas.
        let mut replicas = Vec::new();
        for n in 1..=3 {
            replicas.push(
                net(&rt).addresses(&format!("it-web-{n}")).await[0]
                    .1
                    .to_string(),
            );
        }
        replicas.sort();
        let (code, resolved) = probe(&rt, &p, "web", &["resolve", "web"]).await;
        assert_eq!((code, resolved), (0, replicas.join(" ")));
        sup.down("it").await.map_err(|e| e.to_string())?;
        assert!(
            TcpStream::connect_timeout(&tcp, Duration::from_secs(2)).is_err(),
            "the published port is still open after down"
        );
        Ok(())
    })
}

/// One HTTP/1.0 GET from the host: the body.
fn http_get(addr: SocketAddr) -> Result<String, String> {
    let mut c =
        TcpStream::connect_timeout(&addr, Duration::from_secs(5)).map_err(|e| e.to_string())?;
    c.set_read_timeout(Some(Duration::from_secs(5)))
        .map_err(|e| e.to_string())?;
    c.write_all(b"GET / HTTP/1.0\r\nHost: x\r\n\r\n")
        .map_err(|e| e.to_string())?;
    let mut text = String::new();
    c.read_to_string(&mut text).map_err(|e| e.to_string())?;
    Ok(text.split("\r\n\r\n").nth(1).unwrap_or("").to_string())
}

fn internal_has_no_outbound_route(dir: &Path) -> Result<(), Failed> {
    // The internal network's subnet and address as written (a /24 out of wharf's own pool,
    // varied so that concurrent runs do not collide).
    let config = test_net_config();
    let third = u32::from_str_radix(&config.scope, 36).unwrap_or(0) % 250;
    let p = net_project(
        dir,
        &r#"
services:
  sealed:
    command: ["$PY", "$NET", "sleep"]
    networks:
      inside: {ipv4_address: 10.214.X.7}
  open:
    command: ["$PY", "$NET", "sleep"]
    networks: [outside]
networks:
  inside:
    internal: true
    ipam: {config: [{subnet: 10.214.X.0/24}]}
  outside: {}
"#
        .replace(".X.", &format!(".{third}.")),
    );
    runtime().block_on(async {
        let (sup, rt) = isolated_supervisor(dir, config);
        up_ready(&sup, &p).await?;
        assert_eq!(
            net(&rt).addresses("it-sealed-1").await,
            [(
                "it_inside".to_string(),
                format!("10.214.{third}.7").parse().unwrap()
            )]
        );
        let routes = |s| exec_in(&rt, &p, s, &["cat", "/proc/net/route"]);
        let has_default = |table: &str| {
            table
                .lines()
                .skip(1)
                .any(|l| l.split_whitespace().nth(1) == Some("00000000"))
        };
        let sealed = routes("sealed").await;
        assert!(
            !has_default(&sealed),
            "internal network with a default route:\n{sealed}"
        );
        let open = routes("open").await;
        assert!(has_default(&open), "no default route:\n{open}");
        // No route at all: the kernel refuses before any packet leaves (TEST-NET-3).
        let (code, out) = probe(&rt, &p, "sealed", &["connect", "203.0.113.1", "9"]).await;
        assert_eq!(
            (code, out.as_str()),
            (4, "error 101 Network is unreachable")
        );
        // Outbound NAT for the open network only.
        let rules = firewall_rules(&rt).await;
        let (_, inside) = net(&rt)
            .bridge("it_inside")
            .await
            .ok_or("no inside bridge")?;
        let (_, outside) = net(&rt)
            .bridge("it_outside")
            .await
            .ok_or("no outside bridge")?;
        assert!(rules.contains(&format!("{outside}")), "{rules}");
        let nat_lines: Vec<&str> = rules
            .lines()
            .filter(|l| l.contains("MASQUERADE") || l.contains("masquerade"))
            .collect();
        assert!(
            nat_lines.iter().any(|l| l.contains(&outside.to_string())),
            "{rules}"
        );
        assert!(
            !nat_lines.iter().any(|l| l.contains(&inside.to_string())),
            "{rules}"
        );
        sup.down("it").await.map_err(|e| e.to_string())?;
        Ok(())
    })
}

/// The firewall rules of the runtime's scope, as the tool lists them.
async fn firewall_rules(rt: &NativeRuntime) -> String {
    let net = net(rt);
    let scope = &net.config().scope;
    let run = |args: &[&str]| {
        Command::new(args[0])
            .args(&args[1..])
            .output()
            .map(|o| String::from_utf8_lossy(&o.stdout).into_owned())
            .unwrap_or_default()
    };
    match net.firewall() {
        Some(wharf_runtime::native::net::FirewallKind::Nftables) => {
            run(&["nft", "list", "table", "inet", &format!("wharf_{scope}")])
        }
        Some(wharf_runtime::native::net::FirewallKind::Iptables) => {
            let chain = format!("WHARF-{scope}");
            run(&["iptables", "-w", "-S", &chain])
                + &run(&["iptables", "-w", "-t", "nat", "-S", &chain])
        }
        None => String::new(),
    }
}

/// Every network namespace some process holds (`/proc/*/ns/net`, threads and descriptors too).
fn namespaces_in_use() -> Vec<u64> {
    let mut found = Vec::new();
    let inode = |link: PathBuf| -> Option<u64> {
        let target = std::fs::read_link(link).ok()?;
        let t = target.to_str()?;
        t.strip_prefix("net:[")?.strip_suffix(']')?.parse().ok()
    };
    let Ok(procs) = std::fs::read_dir("/proc") else {
        return found;
    };
    for p in procs.flatten() {
        if !p
            .file_name()
            .to_string_lossy()
            .chars()
            .all(|c| c.is_ascii_digit())
        {
            continue;
        }
        found.extend(inode(p.path().join("ns/net")));
        if let Ok(tasks) = std::fs::read_dir(p.path().join("task")) {
            for t in tasks.flatten() {
                found.extend(inode(t.path().join("ns/net")));
            }
        }
        if let Ok(fds) = std::fs::read_dir(p.path().join("fd")) {
            for f in fds.flatten() {
                found.extend(inode(f.path()));
            }
        }
    }
    found
}

/// Waits (bounded) until none of `namespaces` is held by any process.
async fn namespaces_gone(namespaces: &[u64]) -> Result<(), Failed> {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    loop {
        let in_use = namespaces_in_use();
        let left: Vec<&u64> = namespaces.iter().filter(|n| in_use.contains(n)).collect();
        if left.is_empty() {
            return Ok(());
        }
        if tokio::time::Instant::now() >= deadline {
            return Err(format!("network namespaces still held: {left:?}").into());
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

const EVERYTHING: &str = r#"
services:
  db:
    command: ["$PY", "$NET", "serve", "-", "8080"]
    networks: [backnet]
  app:
    command: ["$PY", "$NET", "serve", "-", "8080"]
    deploy: {replicas: 2}
    ports: ["127.0.0.1::8080"]
    networks: [proxynet, backnet]
  sidecar:
    command: ["$PY", "$NET", "sleep"]
    network_mode: service:db
    depends_on: [db]
  offline:
    command: ["$PY", "$NET", "sleep"]
    network_mode: none
networks:
  proxynet: {}
  backnet: {internal: true}
"#;

fn down_leaves_nothing_behind(dir: &Path) -> Result<(), Failed> {
    let p = net_project(dir, EVERYTHING);
    runtime().block_on(async {
        let (sup, rt) = isolated_supervisor(dir, test_net_config());
        up_ready(&sup, &p).await?;
        let before = net(&rt).leftovers().await.map_err(|e| e.to_string())?;
        // 2 bridges; veths: db's 1, each app's 2.
        assert_eq!(before.links.len(), 2 + 1 + 2 * 2, "{before:?}");
        assert!(before.firewall && before.files, "{before:?}");
        let namespaces = net(&rt).namespaces("it").await;
        assert_eq!(namespaces.len(), 4, "db, app x2, offline");
        let port = net(&rt).published("it").await[0].bound;
        sup.down("it").await.map_err(|e| e.to_string())?;
        let after = net(&rt).leftovers().await.map_err(|e| e.to_string())?;
        assert!(after.is_empty(), "left after down: {after:?}");
        namespaces_gone(&namespaces).await?;
        assert!(TcpStream::connect_timeout(&port, Duration::from_secs(2)).is_err());
        assert!(!net(&rt).config().run_dir.exists());
        // Again, with a firewall that knows its rules are gone (one transaction each way).
        up_ready(&sup, &p).await?;
        let rules = firewall_rules(&rt).await;
        assert!(
            rules.contains("ACCEPT") && rules.contains("MASQUERADE"),
            "{rules}"
        );
        if net(&rt).firewall() == Some(wharf_runtime::native::net::FirewallKind::Iptables) {
            let comment = format!("wharf {}", net(&rt).config().scope);
            for (table, builtin) in [("filter", "FORWARD"), ("nat", "POSTROUTING")] {
                let out = Command::new("iptables")
                    .args(["-w", "-t", table, "-S", builtin])
                    .output()
                    .map_err(|e| e.to_string())?;
                let jumps = String::from_utf8_lossy(&out.stdout)
                    .matches(&comment)
                    .count();
                assert_eq!(jumps, 1, "{table} {builtin}");
            }
        }
        sup.down("it").await.map_err(|e| e.to_string())?;
        let after = net(&rt).leftovers().await.map_err(|e| e.to_string())?;
        assert!(after.is_empty(), "left after the second down: {after:?}");
        Ok(())
    })
}

/// `it __hold <scope> <dir>`: brings `<dir>`'s project up isolated in `<scope>`, prints
/// `ready <namespace inodes>` and waits to be killed.
pub fn hold(args: &[std::ffi::OsString]) -> ! {
    let scope = args[0].to_string_lossy().into_owned();
    let dir = PathBuf::from(&args[1]);
    let result: Result<(), String> = runtime().block_on(async {
        let p = net_project(&dir, EVERYTHING);
        let config = NetConfig {
            nameservers: Some(Vec::new()),
            ..NetConfig::new(&scope)
        };
        let (sup, rt) = isolated_supervisor(&dir, config);
        up_ready(&sup, &p).await.map_err(|e| format!("{e:?}"))?;
        let namespaces: Vec<String> = net(&rt)
            .namespaces("it")
            .await
            .iter()
            .map(u64::to_string)
            .collect();
        let port = net(&rt).published("it").await[0].bound;
        println!("ready {port} {}", namespaces.join(","));
        std::io::stdout().flush().ok();
        std::future::pending::<()>().await;
        Ok(())
    });
    eprintln!("hold: {result:?}");
    std::process::exit(1)
}

/// Runs `it __hold` in `scope`, waits until its project is up, SIGKILLs it and waits until its
/// instances' namespaces are gone (they die with it). Returns its published port.
fn hold_then_kill(dir: &Path, scope: &str) -> Result<SocketAddr, Failed> {
    let mut child = Command::new(std::env::current_exe().map_err(|e| e.to_string())?)
        .args(["__hold", scope])
        .arg(dir)
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .map_err(|e| e.to_string())?;
    let mut line = String::new();
    BufReader::new(child.stdout.take().ok_or("no stdout")?)
        .read_line(&mut line)
        .map_err(|e| e.to_string())?;
    let mut words = line.split_whitespace();
    if words.next() != Some("ready") {
        let _ = child.kill();
        let _ = child.wait();
        return Err(format!("the holding process did not come up: {line:?}").into());
    }
    let port: SocketAddr = words
        .next()
        .ok_or("no port")?
        .parse()
        .map_err(|_| "bad port")?;
    let namespaces: Vec<u64> = words
        .next()
        .unwrap_or("")
        .split(',')
        .filter_map(|n| n.parse().ok())
        .collect();
    assert_eq!(namespaces.len(), 4);
    // The supervising process dies without any cleanup.
    child.kill().map_err(|e| e.to_string())?;
    child.wait().map_err(|e| e.to_string())?;
    runtime().block_on(async {
        // Its instances die with it (the shim's death signals), and their namespaces with them.
        namespaces_gone(&namespaces).await?;
        assert!(TcpStream::connect_timeout(&port, Duration::from_secs(2)).is_err());
        Ok::<(), Failed>(())
    })?;
    Ok(port)
}

/// The supervising process is SIGKILLed; the next start of its scope (a daemon of the same
/// state directory) removes what it left. Another process, killed and never started again, is
/// swept along: the owner in its bridges' alias is dead. (One test: a `recover` running in
/// parallel would sweep the first one's leftovers before they are looked at.)
fn sigkill_then_recover_leaves_nothing_behind(dir: &Path) -> Result<(), Failed> {
    let scope = test_net_config().scope;
    let other = test_net_config().scope;
    let other_dir = dir.join("other");
    std::fs::create_dir_all(&other_dir).map_err(|e| e.to_string())?;
    hold_then_kill(dir, &scope)?;
    hold_then_kill(&other_dir, &other)?;
    runtime().block_on(async {
        // Bridges, rules and files are left.
        let next = Networking::new(NetConfig::new(&scope));
        let left = next.leftovers().await.map_err(|e| e.to_string())?;
        assert!(
            left.links.len() >= 2 && left.firewall && left.files,
            "expected leftovers after SIGKILL: {left:?}"
        );
        let removed = next.recover().await.map_err(|e| e.to_string())?;
        let after = next.leftovers().await.map_err(|e| e.to_string())?;
        assert!(
            after.is_empty(),
            "left after recover: {after:?} (removed {removed:?})"
        );
        let swept = Networking::new(NetConfig::new(&other))
            .leftovers()
            .await
            .map_err(|e| e.to_string())?;
        assert!(
            swept.is_empty(),
            "{other} left: {swept:?} (removed {removed:?})"
        );
        assert!(removed.iter().any(|r| r.contains(&other)), "{removed:?}");
        // And a second recover finds nothing.
        assert_eq!(
            next.recover().await.map_err(|e| e.to_string())?,
            Vec::<String>::new()
        );
        Ok(())
    })
}

/// The same isolation check with each firewall tool the machine has.
fn nftables_and_iptables_both_isolate(dir: &Path) -> Result<(), Failed> {
    let p = net_project(dir, EDD_SHAPED);
    let kinds: Vec<wharf_runtime::native::net::FirewallKind> = [
        (
            "iptables",
            wharf_runtime::native::net::FirewallKind::Iptables,
        ),
        ("nft", wharf_runtime::native::net::FirewallKind::Nftables),
    ]
    .into_iter()
    .filter(|(tool, _)| {
        Command::new(tool)
            .arg("--version")
            .output()
            .is_ok_and(|o| o.status.success())
    })
    .map(|(_, k)| k)
    .collect();
    for kind in kinds {
        let result: Result<(), Failed> = runtime().block_on(async {
            let config = NetConfig {
                firewall: Some(kind),
                ..test_net_config()
            };
            let (sup, rt) = isolated_supervisor(dir, config);
            up_ready(&sup, &p).await?;
            if kind == wharf_runtime::native::net::FirewallKind::Nftables
                && iptables_forward_drops_bridged_traffic()
            {
                eprintln!(
                    "nftables backend: same-network traffic not checked (iptables' FORWARD drops bridged frames here, as Docker sets it up)"
                );
            } else {
                until_answered(&rt, &p, "app", "db").await?;
                until_answered(&rt, &p, "app", "nginx").await?;
            }
            let ip = net(&rt).addresses("it-db-1").await[0].1.to_string();
            let (code, out) = probe(&rt, &p, "nginx", &["connect", &ip, "8080"]).await;
            assert_eq!(code, 4, "{kind:?}: nginx reached db: {out}");
            sup.down("it").await.map_err(|e| e.to_string())?;
            let after = net(&rt).leftovers().await.map_err(|e| e.to_string())?;
            assert!(after.is_empty(), "{kind:?}: {after:?}");
            Ok(())
        });
        result?;
    }
    Ok(())
}

fn without_isolation_instances_share_the_host_network(dir: &Path) -> Result<(), Failed> {
    let p = net_project(
        dir,
        r#"
services:
  web:
    command: ["$PY", "$NET", "sleep"]
    networks: [front]
networks:
  front: {}
"#,
    );
    runtime().block_on(async {
        let sup = crate::supervisor(dir);
        let rt = sup.runtime();
        let warnings = up_ready(&sup, &p).await?;
        assert!(
            warnings
                .iter()
                .any(|w| w.starts_with("network isolation is off (it needs wharf to run as root)")),
            "{warnings:?}"
        );
        let (_, theirs) = run_in(
            rt.as_ref(),
            &p,
            "web",
            &["readlink".into(), "/proc/self/ns/net".into()],
        )
        .await;
        let mine = std::fs::read_link("/proc/self/ns/net").map_err(|e| e.to_string())?;
        assert_eq!(theirs, mine.to_string_lossy());
        sup.down("it").await.map_err(|e| e.to_string())?;
        Ok(())
    })
}

/// `examples/edd-networks` as a user runs it (with an ephemeral host port).
fn edd_example_runs_isolated(dir: &Path) -> Result<(), Failed> {
    let file =
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../../examples/edd-networks/compose.yaml");
    let options = wharf_model::LoadOptions {
        files: vec![file],
        working_dir: dir.to_path_buf(),
        environment: std::env::vars()
            .filter(|(k, _)| k == "PATH")
            .chain([("EDD_PORT".to_string(), "0".to_string())])
            .collect(),
        ..wharf_model::LoadOptions::default()
    };
    let p = Arc::new(
        wharf_model::load(&options)
            .map_err(|d| d.to_string())?
            .project,
    );
    runtime().block_on(async {
        let (sup, rt) = isolated_supervisor(dir, test_net_config());
        sup.up(Arc::clone(&p), up_options())
            .await
            .map_err(|e| e.to_string())?;
        let project = p.name.clone();
        let ready = sup
            .wait_ready(&project, None, Duration::from_secs(60))
            .await;
        let result: Result<(), Failed> = async {
            ready.map_err(|e| e.to_string())?;
            let published = net(&rt).published(&project).await;
            let addr = published.first().ok_or("nothing published")?.bound;
            let page = http_get(addr)?;
            assert!(
                page.contains("\"can_reach_db\": \"no (the name does not resolve)\""),
                "{page}"
            );
            assert!(page.contains("\"jobs_done\""), "{page}");
            assert!(page.contains("edd-networks-edd-"), "{page}");
            Ok(())
        }
        .await;
        sup.down(&project).await.map_err(|e| e.to_string())?;
        result?;
        let after = net(&rt).leftovers().await.map_err(|e| e.to_string())?;
        assert!(after.is_empty(), "{after:?}");
        Ok(())
    })
}
