//! The Docker runtime as a user meets it: `wharf up --runtime docker` and the other verbs against
//! this machine's Docker Engine, with images built locally from Debian's static busybox (no
//! registry is reached). One stack goes through several phases (health-gated start with a
//! one-shot, routed requests to two replicas, `exec`, secrets and configs, `ps`, adoption after
//! the daemon's SIGKILL, an idempotent `up`, `down -v`), and examples/edd-networks runs on
//! containers.
//!
//! Without an engine the tests skip with a loud message; with `WHARF_REQUIRE_DOCKER=1` (CI) they
//! fail instead. Everything a test made on the Engine (containers, networks, volumes, its image)
//! is removed when it ends, also when it fails.

use std::collections::{BTreeMap, BTreeSet};
use std::io::Write;
use std::net::SocketAddr;
use std::path::Path;
use std::time::{Duration, Instant};

use nix::sys::signal::Signal;
use serde_json::Value;

use crate::stack::{Stack, free_port, get, signal, wait_gone};

/// The static busybox the test images are built from (Debian's `busybox-static`).
const BUSYBOX: &str = "/bin/busybox";

/// How long a phase may take before the test fails (a bound, not a measurement).
const WITHIN: Duration = Duration::from_secs(120);

/// Whether an engine answers; says so loudly when none does, and fails when CI requires one.
pub(crate) fn engine(test: &str) -> bool {
    let out = std::process::Command::new("docker")
        .args(["version", "--format", "{{.Server.Version}}"])
        .output();
    let reason = match out {
        Ok(o) if o.status.success() => return true,
        Ok(o) => String::from_utf8_lossy(&o.stderr).trim().to_string(),
        Err(e) => format!("cannot run the docker CLI: {e}"),
    };
    if std::env::var("WHARF_REQUIRE_DOCKER").as_deref() == Ok("1") {
        panic!("WHARF_REQUIRE_DOCKER=1 but no Docker Engine answers: {reason}");
    }
    // Straight to the standard error, which the test harness does not capture: a skip must be
    // seen even when the test "passes".
    let _ = writeln!(
        std::io::stderr(),
        "\n!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!\n\
         !!! SKIPPED {test}: no Docker Engine answers: {reason}\n\
         !!! (set WHARF_REQUIRE_DOCKER=1 to make this a failure)\n\
         !!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!\n"
    );
    false
}

/// `docker <args>`, its standard output trimmed; panics when it fails.
fn docker(args: &[&str]) -> String {
    let out = std::process::Command::new("docker")
        .args(args)
        .output()
        .expect("the docker CLI runs");
    assert!(
        out.status.success(),
        "docker {args:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

/// The lines of `docker <args>`, sorted.
fn docker_lines(args: &[&str]) -> Vec<String> {
    let mut lines: Vec<String> = docker(args).lines().map(str::to_string).collect();
    lines.sort();
    lines
}

/// What a project left on the Engine: containers, networks and volumes, by name.
fn leftovers(project: &str) -> Vec<String> {
    let label = format!("label=com.docker.compose.project={project}");
    let mut all = docker_lines(&["ps", "-a", "--filter", &label, "--format", "{{.Names}}"]);
    all.extend(docker_lines(&[
        "network",
        "ls",
        "--filter",
        &label,
        "--format",
        "{{.Name}}",
    ]));
    all.extend(docker_lines(&[
        "volume",
        "ls",
        "--filter",
        &label,
        "--format",
        "{{.Name}}",
    ]));
    all
}

/// Removes, when the test ends however it ends, this test's daemon (SIGKILL, by its pid) and then
/// every container, network and volume of its project, and its images. Declared after the
/// `Stack`, so it runs first.
pub(crate) struct Cleanup<'a> {
    pub stack: &'a Stack,
    pub project: String,
    pub images: Vec<String>,
}

impl Drop for Cleanup<'_> {
    fn drop(&mut self) {
        if let Some(pid) = self.stack.daemon_pid() {
            signal(pid, Signal::SIGKILL);
            wait_gone(pid, Duration::from_secs(10));
        }
        let label = format!("label=com.docker.compose.project={}", self.project);
        let script = format!(
            "docker ps -aq --filter {label} | xargs -r docker rm -f >/dev/null; \
             docker network ls -q --filter {label} | xargs -r docker network rm >/dev/null; \
             docker volume ls -q --filter {label} | xargs -r docker volume rm >/dev/null; \
             docker rmi -f {} >/dev/null 2>&1; true",
            self.images.join(" ")
        );
        let _ = std::process::Command::new("sh")
            .arg("-c")
            .arg(script)
            .status();
    }
}

/// `wharf` for a Docker project: the caller's PATH (so that `exec` finds the docker CLI) and
/// DOCKER_HOST (the engine `engine` asked).
fn wharf(stack: &Stack, args: &[&str]) -> assert_cmd::Command {
    let mut cmd = stack.wharf();
    for name in ["PATH", "DOCKER_HOST"] {
        if let Some(value) = std::env::var_os(name) {
            cmd.env(name, value);
        }
    }
    cmd.args(args).timeout(WITHIN);
    cmd
}

/// Standard output of a `wharf` command that must succeed.
fn stdout(mut cmd: assert_cmd::Command) -> String {
    String::from_utf8(cmd.assert().success().get_output().stdout.clone()).unwrap()
}

/// Requests `/` until every one of `hostnames` has answered (each replica serves its host name
/// and the version of its configuration), at most 50 requests; fails with the answers otherwise.
fn answered_by(router: SocketAddr, hostnames: &BTreeSet<String>, version: &str) {
    let mut seen = BTreeSet::new();
    let mut answers = Vec::new();
    for _ in 0..50 {
        match get(router, "/") {
            Ok((200, body)) => {
                let mut words = body.split_whitespace();
                let (host, v) = (words.next().unwrap_or(""), words.next().unwrap_or(""));
                assert_eq!(v, version, "an instance of another configuration answered");
                seen.insert(host.to_string());
                if &seen == hostnames {
                    return;
                }
            }
            other => answers.push(format!("{other:?}")),
        }
    }
    panic!(
        "not every replica answered: expected {hostnames:?}, saw {seen:?}; failures: {answers:?}"
    );
}

/// Container ids by name.
fn container_ids(project: &str) -> BTreeMap<String, String> {
    let label = format!("label=com.docker.compose.project={project}");
    docker_lines(&[
        "ps",
        "-a",
        "--no-trunc",
        "--filter",
        &label,
        "--format",
        "{{.Names}} {{.ID}}",
    ])
    .into_iter()
    .filter_map(|l| {
        l.split_once(' ')
            .map(|(n, i)| (n.to_string(), i.to_string()))
    })
    .collect()
}

/// Waits (polling `ps`) until every running instance of the project is healthy and there are
/// `running` of them; returns `ps`.
fn wait_healthy(stack: &Stack, running: usize) -> Vec<Value> {
    let deadline = Instant::now() + WITHIN;
    loop {
        let ps = stack.ps();
        let up: Vec<&Value> = ps.iter().filter(|i| i["status"] == "running").collect();
        if up.len() == running && up.iter().all(|i| i["health"] == "healthy") {
            return ps;
        }
        assert!(
            Instant::now() < deadline,
            "the project did not get {running} healthy instances: {ps:#?}"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// The build context of the test image: FROM scratch with the static busybox.
pub(crate) fn busybox_context(dir: &Path) {
    std::fs::create_dir_all(dir).unwrap();
    std::fs::copy(BUSYBOX, dir.join("busybox")).unwrap_or_else(|e| {
        panic!("cannot copy {BUSYBOX} (apt-get install -y busybox-static): {e}")
    });
    std::fs::write(
        dir.join("Dockerfile"),
        "FROM scratch\n\
         COPY busybox /bin/busybox\n\
         RUN [\"/bin/busybox\", \"--install\", \"-s\", \"/bin\"]\n\
         RUN [\"/bin/busybox\", \"mkdir\", \"-p\", \"/www\", \"/tmp\", \"/data\"]\n",
    )
    .unwrap();
}

/// A one-shot fills a named volume; db serves it once the one-shot succeeded and is
/// health-checked; web (2 replicas, routed) copies what db serves at start and answers its host
/// name and `version`.
fn compose(project: &str, image: &str, port: u16, version: &str) -> String {
    format!(
        r#"
name: {project}
x-wharf:
  router:
    http: 127.0.0.1:{port}
x-bb: &bb
  image: {image}
  build: ./bb
  init: true
services:
  migrate:
    <<: *bb
    command: ["sh", "-c", "echo migrated > /data/state"]
    volumes: ["data:/data"]
  db:
    <<: *bb
    command: ["sh", "-c", "cp /data/state /www/state && exec httpd -f -p 5432 -h /www"]
    volumes: ["data:/data"]
    secrets: [token]
    configs:
      - source: motd
        target: /etc/motd
        mode: 0400
    depends_on:
      migrate: {{condition: service_completed_successfully}}
    healthcheck:
      test: ["CMD", "timeout", "3", "wget", "-q", "-O", "/dev/null", "http://127.0.0.1:5432/state"]
      interval: 500ms
      retries: 100
  web:
    <<: *bb
    deploy: {{replicas: 2}}
    environment:
      VERSION: "{version}"
    command:
      - sh
      - -c
      - timeout 3 wget -q -O /www/db http://db:5432/state && echo "$$HOSTNAME $$VERSION" > /www/index.html && exec httpd -f -p 8000 -h /www
    labels:
      wharf.http.port: "8000"
    depends_on:
      db: {{condition: service_healthy}}
    healthcheck:
      test: ["CMD", "timeout", "3", "wget", "-q", "-O", "/dev/null", "http://127.0.0.1:8000/"]
      interval: 500ms
      retries: 100
volumes:
  data: {{}}
secrets:
  token: {{file: ./token.txt}}
configs:
  motd: {{content: "a config's content"}}
"#
    )
}

#[test]
fn a_stack_on_docker_through_the_verbs() {
    if !engine("a_stack_on_docker_through_the_verbs") {
        return;
    }
    let project = format!("wharf-cli-{}", std::process::id());
    let image = format!("{project}-bb:test");
    let port = free_port();
    let router: SocketAddr = ([127, 0, 0, 1], port).into();
    let stack = Stack::new(&compose(&project, &image, port, "1"));
    let _cleanup = Cleanup {
        stack: &stack,
        project: project.clone(),
        images: vec![image.clone()],
    };
    busybox_context(&stack.app().join("bb"));
    std::fs::write(stack.app().join("token.txt"), "s3cret\n").unwrap();
    let name = |service: &str, n: u32| format!("{project}-{service}-{n}");

    // Health-gated start: the one-shot first, then db once it succeeded, then web once db is
    // healthy; `--wait` returns when every instance is.
    wharf(&stack, &["up", "-d", "--wait", "--runtime", "docker"])
        .assert()
        .success();
    let ps = stack.ps();
    let by_name = |ps: &[Value], n: &str| {
        ps.iter()
            .find(|i| i["name"] == n)
            .cloned()
            .unwrap_or_else(|| panic!("no instance {n} in {ps:#?}"))
    };
    let migrate = by_name(&ps, &name("migrate", 1));
    assert_eq!(
        (&migrate["status"], &migrate["code"]),
        (&Value::from("exited"), &Value::from(0)),
        "{migrate}"
    );
    for n in [name("db", 1), name("web", 1), name("web", 2)] {
        let i = by_name(&ps, &n);
        assert_eq!(
            (&i["status"], &i["health"]),
            (&Value::from("running"), &Value::from("healthy")),
            "{i}"
        );
    }
    let table = stdout(wharf(&stack, &["ps"]));
    assert!(
        table
            .lines()
            .any(|l| l.starts_with(&name("db", 1)) && l.contains("running (healthy)")),
        "{table}"
    );
    // Docker Compose's bookkeeping: names and labels.
    let label = format!("label=com.docker.compose.project={project}");
    assert_eq!(
        docker_lines(&[
            "ps",
            "-a",
            "--filter",
            &label,
            "--format",
            r#"{{.Names}} {{.Label "com.docker.compose.service"}} {{.Label "com.docker.compose.container-number"}} {{.Label "com.docker.compose.oneoff"}}"#,
        ]),
        [
            format!("{} db 1 False", name("db", 1)),
            format!("{} migrate 1 False", name("migrate", 1)),
            format!("{} web 1 False", name("web", 1)),
            format!("{} web 2 False", name("web", 2)),
        ]
    );

    // Routed requests reach both replicas on their network addresses.
    let hostnames: BTreeSet<String> = [name("web", 1), name("web", 2)]
        .iter()
        .map(|n| docker(&["inspect", "-f", "{{.Config.Hostname}}", n]))
        .collect();
    assert_eq!(hostnames.len(), 2, "{hostnames:?}");
    answered_by(router, &hostnames, "1");
    // web reached db by its service name, db served what the one-shot wrote.
    assert_eq!(get(router, "/db"), Ok((200, "migrated\n".to_string())));

    // exec: in the container, its exit status passed through.
    assert_eq!(
        stdout(wharf(&stack, &["exec", "db", "cat", "/data/state"])),
        "migrated\n"
    );
    // Secrets and configs: a file bind-mounted, a content copied in with its mode.
    assert_eq!(
        stdout(wharf(&stack, &["exec", "db", "cat", "/run/secrets/token"])),
        "s3cret\n"
    );
    assert_eq!(
        stdout(wharf(
            &stack,
            &[
                "exec",
                "db",
                "sh",
                "-c",
                "stat -c %a /etc/motd; cat /etc/motd"
            ]
        )),
        "400\na config's content"
    );
    let web2 = docker(&["inspect", "-f", "{{.Config.Hostname}}", &name("web", 2)]);
    assert_eq!(
        stdout(wharf(&stack, &["exec", "--index", "2", "web", "hostname"])).trim(),
        web2
    );
    wharf(&stack, &["exec", "web", "sh", "-c", "exit 3"])
        .assert()
        .code(3);

    // Adoption: the daemon dies with SIGKILL; the next verb starts a new one, which takes the
    // running containers back without restarting them, and serves their routes again.
    let ids = container_ids(&project);
    assert_eq!(ids.len(), 4, "{ids:?}");
    let pid = stack.daemon_pid().expect("the daemon runs");
    signal(pid, Signal::SIGKILL);
    assert!(
        wait_gone(pid, Duration::from_secs(10)),
        "the daemon survived SIGKILL"
    );
    assert!(get(router, "/").is_err(), "the router went with its daemon");
    wait_healthy(&stack, 3);
    assert_ne!(stack.daemon_pid(), Some(pid));
    assert_eq!(
        container_ids(&project),
        ids,
        "adoption recreated containers"
    );
    answered_by(router, &hostnames, "1");

    // An idempotent `up` (the runtime is remembered): only the changed service is recreated.
    std::fs::write(
        stack.app().join("compose.yaml"),
        compose(&project, &image, port, "2"),
    )
    .unwrap();
    wharf(&stack, &["up", "-d", "--wait"]).assert().success();
    let after = container_ids(&project);
    assert_eq!(
        after[&name("db", 1)],
        ids[&name("db", 1)],
        "db was recreated"
    );
    assert_eq!(after[&name("migrate", 1)], ids[&name("migrate", 1)]);
    for n in [name("web", 1), name("web", 2)] {
        assert_ne!(after[&n], ids[&n], "{n} was not recreated");
    }
    let hostnames: BTreeSet<String> = [name("web", 1), name("web", 2)]
        .iter()
        .map(|n| docker(&["inspect", "-f", "{{.Config.Hostname}}", n]))
        .collect();
    answered_by(router, &hostnames, "2");

    // down -v: containers, networks and named volumes go; the router stops listening.
    let down = wharf(&stack, &["down", "-v"]).assert().success();
    let said = String::from_utf8_lossy(&down.get_output().stderr).into_owned()
        + &String::from_utf8_lossy(&down.get_output().stdout);
    assert!(
        said.contains(&format!("removed volume data {project}_data")),
        "{said}"
    );
    assert_eq!(leftovers(&project), Vec::<String>::new());
    assert!(get(router, "/").is_err(), "the router still listens");
}

/// examples/edd-networks with its Docker override: the proxy reaches edd by name, edd reaches db,
/// the proxy can neither resolve nor reach db; proxynet and backnet (internal) on the Engine.
#[test]
fn the_edd_networks_example_runs_on_docker() {
    if !engine("the_edd_networks_example_runs_on_docker") {
        return;
    }
    let project = format!("wharf-edd-{}", std::process::id());
    let tag = format!("test-{}", std::process::id());
    let port = free_port();
    let stack = Stack::new("services: {}\n");
    let _cleanup = Cleanup {
        stack: &stack,
        project: project.clone(),
        images: vec![format!("edd-networks-busybox:{tag}")],
    };
    // A copy of the example, with the busybox binary its Dockerfile expects beside it.
    let example = crate::repo_root().join("examples/edd-networks");
    let dir = stack.app().join("edd-networks");
    copy_tree(&example, &dir);
    std::fs::copy(BUSYBOX, dir.join("docker/busybox")).unwrap_or_else(|e| {
        panic!("cannot copy {BUSYBOX} (apt-get install -y busybox-static): {e}")
    });
    let verb = |args: &[&str]| {
        let mut cmd = wharf(&stack, &[]);
        cmd.args(["-f", "edd-networks/compose.yaml", "-f"])
            .arg("edd-networks/compose.docker.yaml")
            .args(["-p", &project])
            .args(args)
            .env("EDD_PORT", port.to_string())
            .env("EDD_TAG", &tag);
        cmd
    };
    verb(&["up", "-d", "--wait", "--runtime", "docker"])
        .assert()
        .success();

    let published: SocketAddr = ([127, 0, 0, 1], port).into();
    let (status, page) = get(published, "/").expect("the proxy answers on the published port");
    assert_eq!(status, 200, "{page}");
    let page: Value = serde_json::from_str(&page).expect("the proxy's page is JSON");
    assert_eq!(
        page["can_reach_db"], "no (the name does not resolve)",
        "{page}"
    );
    let edd_hosts: BTreeSet<String> = (1..=2)
        .map(|n| {
            docker(&[
                "inspect",
                "-f",
                "{{.Config.Hostname}}",
                &format!("{project}-edd-{n}"),
            ])
        })
        .collect();
    let edd = page["upstream"]["edd"].as_str().unwrap_or_default();
    assert!(edd_hosts.contains(edd), "{page}");
    let db = docker(&[
        "inspect",
        "-f",
        "{{.Config.Hostname}}",
        &format!("{project}-db-1"),
    ]);
    assert_eq!(page["upstream"]["from_db"]["db"], db.as_str(), "{page}");
    assert!(page["upstream"]["from_db"]["jobs_done"].is_u64(), "{page}");

    // The networks: the proxy on proxynet only, db on backnet only, edd on both; backnet is
    // internal.
    let networks = |container: &str| {
        docker(&[
            "inspect",
            "-f",
            "{{range $k, $v := .NetworkSettings.Networks}}{{$k}} {{end}}",
            &format!("{project}-{container}"),
        ])
    };
    assert_eq!(networks("nginx-1"), format!("{project}_proxynet"));
    assert_eq!(networks("db-1"), format!("{project}_backnet"));
    assert_eq!(
        networks("edd-1"),
        format!("{project}_backnet {project}_proxynet")
    );
    assert_eq!(
        docker(&[
            "network",
            "inspect",
            "-f",
            "{{.Internal}}",
            &format!("{project}_backnet")
        ]),
        "true"
    );
    // And the proxy cannot reach db by its address either.
    let db_ip = docker(&[
        "inspect",
        "-f",
        "{{range .NetworkSettings.Networks}}{{.IPAddress}}{{end}}",
        &format!("{project}-db-1"),
    ]);
    verb(&["exec", "nginx", "nc", "-w", "1", &db_ip, "5432"])
        .write_stdin("")
        .assert()
        .failure();
    verb(&["exec", "edd", "nc", "-w", "1", &db_ip, "5432"])
        .write_stdin("")
        .assert()
        .success();

    verb(&["down", "-v"]).assert().success();
    assert_eq!(leftovers(&project), Vec::<String>::new());
}

/// Copies a directory tree (files keep their permissions).
fn copy_tree(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for entry in std::fs::read_dir(from).unwrap() {
        let entry = entry.unwrap();
        let target = to.join(entry.file_name());
        if entry.file_type().unwrap().is_dir() {
            copy_tree(&entry.path(), &target);
        } else {
            std::fs::copy(entry.path(), &target).unwrap();
        }
    }
}
