//! One test per mapping of docs/kubernetes.md, asserting the fields that carry it.

use k8s_openapi::api::apps::v1::{Deployment, StatefulSet};
use k8s_openapi::api::batch::v1::Job;
use k8s_openapi::api::core::v1::{Container, PodSpec, Service};
use k8s_openapi::api::networking::v1::{Ingress, NetworkPolicy};
use k8s_openapi::apimachinery::pkg::api::resource::Quantity;
use wharf_kube::{Error, Kind, Options, Section, Translation, translate};

use crate::project::{self, inline};

fn named<'a, T>(items: &'a [T], name: &str, meta: impl Fn(&T) -> Option<&String>) -> &'a T {
    items
        .iter()
        .find(|o| meta(o).map(String::as_str) == Some(name))
        .unwrap_or_else(|| panic!("no object named `{name}`"))
}

fn deployment<'a>(t: &'a Translation, name: &str) -> &'a Deployment {
    named(&t.manifests.deployments, name, |o| o.metadata.name.as_ref())
}

fn stateful_set<'a>(t: &'a Translation, name: &str) -> &'a StatefulSet {
    named(&t.manifests.stateful_sets, name, |o| {
        o.metadata.name.as_ref()
    })
}

fn job<'a>(t: &'a Translation, name: &str) -> &'a Job {
    named(&t.manifests.jobs, name, |o| o.metadata.name.as_ref())
}

fn service<'a>(t: &'a Translation, name: &str) -> &'a Service {
    named(&t.manifests.services, name, |o| o.metadata.name.as_ref())
}

fn policy<'a>(t: &'a Translation, name: &str) -> &'a NetworkPolicy {
    named(&t.manifests.network_policies, name, |o| {
        o.metadata.name.as_ref()
    })
}

fn ingress<'a>(t: &'a Translation, name: &str) -> &'a Ingress {
    named(&t.manifests.ingresses, name, |o| o.metadata.name.as_ref())
}

fn pod(d: &Deployment) -> &PodSpec {
    d.spec.template.spec.as_ref().expect("a Pod spec")
}

fn container<'a>(spec: &'a PodSpec, name: &str) -> &'a Container {
    spec.containers
        .iter()
        .chain(spec.init_containers.iter().flatten())
        .find(|c| c.name == name)
        .unwrap_or_else(|| panic!("no container `{name}`"))
}

fn init_names(spec: &PodSpec) -> Vec<&str> {
    spec.init_containers
        .iter()
        .flatten()
        .map(|c| c.name.as_str())
        .collect()
}

fn script(c: &Container) -> &str {
    c.command.as_ref().and_then(|c| c.last()).expect("a script")
}

/// The report lines about a service, as `kind key: message`.
fn findings(t: &Translation, service: &str) -> Vec<String> {
    t.report
        .service(service)
        .iter()
        .map(|f| format!("{} {}: {}", f.kind.as_str(), f.key, f.message))
        .collect()
}

fn has(findings: &[String], kind: Kind, key: &str, text: &str) -> bool {
    let prefix = format!("{} {key}: ", kind.as_str());
    findings
        .iter()
        .any(|f| f.starts_with(&prefix) && f.contains(text))
}

fn q(s: &str) -> Quantity {
    Quantity(s.to_string())
}

#[test]
fn a_service_becomes_a_deployment_with_its_command_user_ports_and_resources() {
    let (_dir, l) = inline(
        r#"
services:
  web:
    image: example/web:1
    entrypoint: ["/entry", "--flag"]
    command: run --log '$$(date)' $$HOME
    working_dir: /srv
    user: "1000:2000"
    ports: ["127.0.0.1:8080:80"]
    expose: ["9000-9001/udp"]
    deploy:
      replicas: 3
      resources:
        limits: {cpus: "0.5", memory: 256M, pids: 100}
        reservations: {memory: 64M}
    stop_grace_period: 1m30s
    stop_signal: SIGQUIT
  named:
    image: example/named:1
    user: www-data
"#,
        &[],
    );
    let t = l.translate();
    let d = deployment(&t, "web");
    assert_eq!(d.spec.replicas, Some(3));
    let spec = pod(d);
    assert_eq!(spec.termination_grace_period_seconds, Some(90));
    let c = container(spec, "web");
    assert_eq!(c.image.as_deref(), Some("example/web:1"));
    assert_eq!(
        c.command,
        Some(vec!["/entry".to_string(), "--flag".to_string()]),
        "entrypoint -> command"
    );
    assert_eq!(
        c.args,
        Some(vec![
            "run".to_string(),
            "--log".to_string(),
            "$$(date)".to_string(),
            "$HOME".to_string()
        ]),
        "command -> args, `$(` escaped so that Kubernetes passes it unchanged"
    );
    assert_eq!(c.working_dir.as_deref(), Some("/srv"));
    let sc = c.security_context.as_ref().expect("a security context");
    assert_eq!((sc.run_as_user, sc.run_as_group), (Some(1000), Some(2000)));
    let ports: Vec<(i32, Option<&str>)> = c
        .ports
        .iter()
        .flatten()
        .map(|p| (p.container_port, p.protocol.as_deref()))
        .collect();
    assert_eq!(
        ports,
        [(80, Some("TCP")), (9000, Some("UDP")), (9001, Some("UDP"))]
    );
    let r = c.resources.as_ref().expect("resources");
    let limits = r.limits.as_ref().expect("limits");
    assert_eq!(limits["cpu"], q("500m"));
    assert_eq!(limits["memory"], q("256Mi"));
    assert_eq!(r.requests.as_ref().expect("requests")["memory"], q("64Mi"));

    let web = findings(&t, "web");
    assert!(
        has(&web, Kind::NotTranslated, "stop_signal", "SIGQUIT"),
        "{web:#?}"
    );
    assert!(
        has(
            &web,
            Kind::NotTranslated,
            "deploy.resources.limits.pids",
            ""
        ),
        "{web:#?}"
    );
    assert!(
        has(&web, Kind::Approximate, "ports", "127.0.0.1:8080->80/tcp"),
        "{web:#?}"
    );
    let named = findings(&t, "named");
    assert!(
        has(&named, Kind::NotTranslated, "user", "`www-data` by name"),
        "{named:#?}"
    );
    let sc = container(pod(deployment(&t, "named")), "named")
        .security_context
        .clone();
    assert_eq!(sc, None, "no runAsUser for a user name");
}

#[test]
fn a_replicated_service_with_its_own_named_volume_is_a_stateful_set() {
    let (_dir, l) = inline(
        r#"
services:
  db:
    image: postgres:16
    deploy: {replicas: 3}
    volumes: [data:/var/lib/postgresql/data]
  web:
    image: nginx
    scale: 2
    volumes: [shared:/usr/share/nginx/html]
  builder:
    image: busybox
    volumes: [shared:/out]
volumes:
  data: {}
  shared: {}
"#,
        &[],
    );
    let t = l.translate();
    let s = stateful_set(&t, "db");
    assert_eq!(s.spec.replicas, Some(3));
    assert_eq!(
        s.spec.service_name.as_deref(),
        Some("db"),
        "the StatefulSet's governing Service is the service's own"
    );
    let templates = s
        .spec
        .volume_claim_templates
        .as_ref()
        .expect("claim templates");
    assert_eq!(templates.len(), 1);
    assert_eq!(templates[0].metadata.name.as_deref(), Some("data"));
    let claim_spec = templates[0].spec.as_ref().expect("a claim spec");
    assert_eq!(
        claim_spec.access_modes,
        Some(vec!["ReadWriteOnce".to_string()])
    );
    let mount = &container(s.spec.template.spec.as_ref().expect("a Pod spec"), "db")
        .volume_mounts
        .as_ref()
        .expect("mounts")[0];
    assert_eq!(
        (mount.name.as_str(), mount.mount_path.as_str()),
        ("data", "/var/lib/postgresql/data")
    );
    assert!(
        !t.manifests
            .persistent_volume_claims
            .iter()
            .any(|c| c.metadata.name.as_deref() == Some("data")),
        "no shared claim for a per-replica volume"
    );

    // A volume shared by two services stays one claim that both mount: a Deployment.
    assert!(
        t.manifests
            .deployments
            .iter()
            .any(|d| d.metadata.name.as_deref() == Some("web"))
    );
    let shared = t
        .manifests
        .persistent_volume_claims
        .iter()
        .find(|c| c.metadata.name.as_deref() == Some("shared"))
        .expect("the shared claim");
    assert_eq!(
        shared.spec.as_ref().and_then(|s| s.access_modes.clone()),
        Some(vec!["ReadWriteMany".to_string()])
    );
    assert!(
        t.report
            .mentions(&Section::Volume("shared".into()), "access")
    );
}

#[test]
fn secret_values_go_into_a_secret_and_plain_ones_stay_in_the_pod_template() {
    let loaded = project::case("edd");
    let t = loaded.translate();
    let http = container(pod(deployment(&t, "http")), "http");
    let env = http.env.as_ref().expect("env");
    let by_name = |n: &str| {
        env.iter()
            .find(|e| e.name == n)
            .unwrap_or_else(|| panic!("{n}"))
    };
    // From secrets/edd.env: a secret env file.
    let secret = by_name("DATABASE_URL")
        .value_from
        .as_ref()
        .and_then(|v| v.secret_key_ref.as_ref())
        .expect("a Secret reference");
    assert_eq!(
        (secret.name.as_str(), secret.key.as_str()),
        ("http-env", "DATABASE_URL")
    );
    assert_eq!(
        by_name("DATABASE_URL").value,
        None,
        "no value in the Pod template"
    );
    // From `environment:`, over the file.
    assert_eq!(by_name("EDD_DEBUG").value.as_deref(), Some("false"));
    assert_eq!(
        by_name("EDD_DEPLOYMENT_ENVIRONMENT").value.as_deref(),
        Some("staging")
    );
    let s = t
        .manifests
        .secrets
        .iter()
        .find(|s| s.metadata.name.as_deref() == Some("http-env"))
        .expect("Secret http-env");
    assert!(s.data.as_ref().expect("data").contains_key("SECRET_KEY"));
    assert!(!s.data.as_ref().expect("data").contains_key("EDD_DEBUG"));
}

#[test]
fn healthchecks_become_probes_with_the_documented_timings() {
    // openvpn: interval 30s, timeout 10s, retries 30, start_period 90s (start_interval 5s).
    let t = project::case("openwisp").translate();
    let spec = pod(deployment(&t, "openvpn"));
    let c = container(spec, "openvpn");
    let startup = c.startup_probe.as_ref().expect("startupProbe");
    assert_eq!(
        (
            startup.period_seconds,
            startup.timeout_seconds,
            startup.failure_threshold
        ),
        (Some(5), Some(10), Some(198)),
        "ceil((90 + 30 × 30) / 5)"
    );
    for p in [&c.readiness_probe, &c.liveness_probe] {
        let p = p.as_ref().expect("probe");
        assert_eq!(
            (
                p.period_seconds,
                p.timeout_seconds,
                p.failure_threshold,
                p.success_threshold
            ),
            (Some(30), Some(10), Some(30), Some(1))
        );
        assert_eq!(
            p.exec.as_ref().and_then(|e| e.command.clone()),
            Some(vec![
                "pgrep".to_string(),
                "-f".to_string(),
                "openvpn".to_string()
            ])
        );
    }
    // postgres: CMD-SHELL, interval 10s, timeout 5s, retries 5, start_period 30s, start_interval 500ms.
    let pg = container(pod(deployment(&t, "postgres")), "postgres");
    let startup = pg.startup_probe.as_ref().expect("startupProbe");
    assert_eq!(
        (startup.period_seconds, startup.failure_threshold),
        (Some(1), Some(80)),
        "500ms rounds up to 1s; ceil((30 + 5 × 10) / 1)"
    );
    assert_eq!(
        pg.readiness_probe
            .as_ref()
            .and_then(|p| p.exec.as_ref())
            .and_then(|e| e.command.clone()),
        Some(vec![
            "/bin/sh".to_string(),
            "-c".to_string(),
            "pg_isready -U ${POSTGRES_USER} -d ${POSTGRES_DB}".to_string()
        ])
    );
    assert!(has(
        &findings(&t, "postgres"),
        Kind::Approximate,
        "healthcheck.start_interval",
        "500ms rounded up to 1s"
    ));
    // websocket: `disable: true`; celerybeat: `test: [NONE]`: no probes.
    let ws = container(pod(deployment(&t, "websocket")), "websocket");
    assert!(ws.readiness_probe.is_none() && ws.liveness_probe.is_none());
}

#[test]
fn depends_on_becomes_init_containers_that_wait_on_the_right_service() {
    let t = project::case("edd").translate();
    let spec = pod(deployment(&t, "http"));
    assert_eq!(
        init_names(spec),
        [
            "wait-for-postgres",
            "wait-for-rabbitmq",
            "wait-for-redis",
            "wait-for-solr"
        ]
    );
    let wait = container(spec, "wait-for-postgres");
    assert_eq!(wait.image.as_deref(), Some("busybox:1.37"));
    assert!(
        script(wait).contains(r#"nslookup "postgres.$domain.""#),
        "{}",
        script(wait)
    );
    // postgres has no ports: its own Service is headless, and that is what the wait resolves.
    assert_eq!(
        service(&t, "postgres")
            .spec
            .as_ref()
            .and_then(|s| s.cluster_ip.as_deref()),
        Some("None")
    );

    // A dependency with ports is waited for through its headless `-ready` Service.
    let t = project::case("openwisp").translate();
    let wait = container(pod(deployment(&t, "nginx")), "wait-for-websocket");
    assert!(script(wait).contains(r#"nslookup "websocket-ready.$domain.""#));
    let ready = service(&t, "websocket-ready");
    let spec = ready.spec.as_ref().expect("spec");
    assert_eq!(spec.cluster_ip.as_deref(), Some("None"));
    assert_eq!(
        spec.selector
            .as_ref()
            .and_then(|s| s.get("wharf.io/service"))
            .map(String::as_str),
        Some("websocket")
    );
    assert_eq!(
        service(&t, "websocket")
            .spec
            .as_ref()
            .and_then(|s| s.cluster_ip.as_deref()),
        None,
        "the service's own Service keeps its cluster address"
    );
}

#[test]
fn service_completed_successfully_makes_a_job_and_a_wait_on_it() {
    let t = project::case("openvle").translate();
    let j = job(&t, "migrate");
    let js = j.spec.as_ref().expect("a Job spec");
    assert_eq!(js.backoff_limit, Some(0), "restart: \"no\" -> no retry");
    assert_eq!(
        js.template
            .spec
            .as_ref()
            .and_then(|s| s.restart_policy.as_deref()),
        Some("Never")
    );
    assert!(
        !t.manifests
            .deployments
            .iter()
            .any(|d| d.metadata.name.as_deref() == Some("migrate")),
        "a Job, not also a Deployment"
    );
    let spec = pod(deployment(&t, "backend"));
    let wait = container(spec, "wait-for-migrate");
    assert_eq!(wait.image.as_deref(), Some("curlimages/curl:8.11.1"));
    assert!(script(wait).contains("/jobs/migrate"));
    assert!(script(wait).contains(r#""type":"Complete","status":"True""#));
    assert!(script(wait).contains(r#""type":"Failed","status":"True""#));
    assert_eq!(
        spec.service_account_name.as_deref(),
        Some("wharf-job-waiter")
    );
    assert_eq!(
        spec.automount_service_account_token,
        Some(false),
        "only the wait container gets the token"
    );
    assert_eq!(
        wait.volume_mounts
            .as_ref()
            .map(|m| m[0].mount_path.as_str()),
        Some("/var/run/secrets/wharf")
    );
    assert!(container(spec, "backend").volume_mounts.is_none());
    let role = &t.manifests.roles[0];
    let rule = &role.rules.as_ref().expect("rules")[0];
    assert_eq!(rule.verbs, ["get"]);
    assert_eq!(rule.resources, Some(vec!["jobs".to_string()]));
    assert_eq!(rule.resource_names, Some(vec!["migrate".to_string()]));
    let binding = &t.manifests.role_bindings[0];
    assert_eq!(
        binding
            .subjects
            .as_ref()
            .and_then(|s| s[0].namespace.as_deref()),
        Some("openvle")
    );
}

#[test]
fn network_mode_service_puts_both_services_in_one_pod() {
    let t = project::case("openwisp").translate();
    assert!(
        !t.manifests.deployments.iter().any(|d| matches!(
            d.metadata.name.as_deref(),
            Some("celery" | "celery-monitoring")
        )),
        "no workload of their own"
    );
    let spec = pod(deployment(&t, "openvpn"));
    let names: Vec<&str> = spec.containers.iter().map(|c| c.name.as_str()).collect();
    assert_eq!(names, ["celery", "celery-monitoring"]);
    // openvpn runs first, as a sidecar, and the others start once its startupProbe passed
    // (celery waits for it to be healthy).
    let init = init_names(spec);
    assert_eq!(init.last(), Some(&"openvpn"));
    assert!(init.contains(&"wait-for-postgres") && init.contains(&"wait-for-dashboard"));
    let vpn = container(spec, "openvpn");
    assert_eq!(vpn.restart_policy.as_deref(), Some("Always"));
    assert!(vpn.startup_probe.is_some());
    assert_eq!(
        spec.termination_grace_period_seconds,
        Some(90),
        "celery's 1m30s"
    );
    // Its Service selects the shared Pods, so that its name still resolves.
    let celery = service(&t, "celery").spec.as_ref().expect("spec");
    assert_eq!(
        celery
            .selector
            .as_ref()
            .and_then(|s| s.get("wharf.io/service"))
            .map(String::as_str),
        Some("openvpn")
    );
    assert!(has(
        &findings(&t, "celery"),
        Kind::Note,
        "network_mode",
        "runs as container `celery` of the Pods of Deployment `openvpn`"
    ));
}

#[test]
fn every_service_gets_a_service_and_aliases_get_their_own() {
    let l = project::case("edd");
    let t = l.translate();
    for name in l.project.services.keys() {
        let s = service(&t, &wharf_kube::name::label(name));
        let spec = s.spec.as_ref().expect("spec");
        let headless = spec.cluster_ip.as_deref() == Some("None");
        assert_eq!(
            headless,
            spec.ports.is_none(),
            "{name}: headless exactly when it has no ports"
        );
    }
    let http = service(&t, "http").spec.as_ref().expect("spec");
    assert_eq!(
        http.ports.as_ref().map(|p| p[0].port),
        Some(8000),
        "from `expose`"
    );
    // postgres is `db` on backnet too.
    let db = service(&t, "db").spec.as_ref().expect("spec");
    assert_eq!(
        db.selector
            .as_ref()
            .and_then(|s| s.get("wharf.io/service"))
            .map(String::as_str),
        Some("postgres")
    );
}

#[test]
fn networks_become_network_policies_between_pods_that_share_one() {
    let t = project::case("edd").translate();
    let p = policy(&t, "network-backnet").spec.as_ref().expect("spec");
    let selector = p
        .pod_selector
        .as_ref()
        .and_then(|s| s.match_labels.clone())
        .expect("labels");
    assert_eq!(selector["wharf.io/network-backnet"], "true");
    assert_eq!(selector["app.kubernetes.io/part-of"], "edd");
    let from = p.ingress.as_ref().expect("rules")[0]
        .from
        .as_ref()
        .expect("from");
    assert_eq!(
        from[0]
            .pod_selector
            .as_ref()
            .and_then(|s| s.match_labels.clone()),
        Some(selector),
        "only Pods on the same network"
    );
    assert_eq!(p.policy_types, Some(vec!["Ingress".to_string()]));
    // The Pods carry the labels of their networks: the worker is on backnet only.
    let labels = |name: &str| {
        deployment(&t, name)
            .spec
            .template
            .metadata
            .as_ref()
            .and_then(|m| m.labels.clone())
            .expect("labels")
    };
    assert!(labels("http").contains_key("wharf.io/network-proxynet"));
    assert!(labels("http").contains_key("wharf.io/network-backnet"));
    assert!(!labels("worker").contains_key("wharf.io/network-proxynet"));

    // internal: true -> egress only within the namespace (and DNS); none -> no traffic at all.
    let (_dir, l) = inline(
        r#"
services:
  db: {image: postgres, networks: [back]}
  app: {image: app, networks: [back, front]}
  batch: {image: batch, network_mode: none}
networks:
  back: {internal: true}
  front: {}
"#,
        &[],
    );
    let t = l.translate();
    let egress = policy(&t, "internal-egress").spec.as_ref().expect("spec");
    assert_eq!(egress.policy_types, Some(vec!["Egress".to_string()]));
    let rules = egress.egress.as_ref().expect("rules");
    assert!(
        rules[0].to.as_ref().expect("to")[0]
            .namespace_selector
            .is_none()
    );
    assert_eq!(
        rules[1].ports.as_ref().map(|p| p.len()),
        Some(2),
        "DNS over UDP and TCP"
    );
    let pod_labels = |name: &str| {
        deployment(&t, name)
            .spec
            .template
            .metadata
            .as_ref()
            .and_then(|m| m.labels.clone())
            .expect("labels")
    };
    assert_eq!(
        pod_labels("db").get("wharf.io/egress").map(String::as_str),
        Some("namespace")
    );
    assert!(
        !pod_labels("app").contains_key("wharf.io/egress"),
        "also on a network that reaches outside"
    );
    let isolated = policy(&t, "batch-isolated").spec.as_ref().expect("spec");
    assert_eq!(
        isolated.policy_types,
        Some(vec!["Ingress".to_string(), "Egress".to_string()])
    );
    assert!(isolated.ingress.is_none() && isolated.egress.is_none());
}

#[test]
fn named_volumes_become_claims_and_external_ones_are_referenced() {
    let t = project::case("edd").translate();
    let claims: Vec<&str> = t
        .manifests
        .persistent_volume_claims
        .iter()
        .filter_map(|c| c.metadata.name.as_deref())
        .collect();
    assert!(claims.contains(&"redis-db") && claims.contains(&"solr-home"));
    assert!(!claims.iter().any(|c| c.contains("postgres")), "external");
    let spec = pod(deployment(&t, "postgres"));
    let v = &spec.volumes.as_ref().expect("volumes")[0];
    assert_eq!(
        v.persistent_volume_claim
            .as_ref()
            .map(|c| c.claim_name.as_str()),
        Some("edd-postgres-db-2024"),
        "the external volume's name"
    );
    assert_eq!(
        deployment(&t, "redis")
            .spec
            .strategy
            .as_ref()
            .and_then(|s| s.type_.as_deref()),
        Some("Recreate"),
        "a single-node claim is handed over by stopping the old Pod first"
    );
}

const BIND: &str = r#"
services:
  app:
    image: app
    volumes:
      - ./conf:/etc/app:ro
      - /var/run/docker.sock:/var/run/docker.sock
"#;

#[test]
fn bind_mounts_are_left_out_with_a_warning_unless_host_paths_are_allowed() {
    let (dir, l) = inline(BIND, &[("conf/app.toml", "x = 1\n")]);
    let t = l.translate();
    let c = container(pod(deployment(&t, "app")), "app");
    assert!(c.volume_mounts.is_none());
    assert!(pod(deployment(&t, "app")).volumes.is_none());
    let f = findings(&t, "app");
    assert!(
        has(
            &f,
            Kind::NotTranslated,
            "volumes",
            "bind mount ./conf -> /etc/app: left out"
        ),
        "{f:#?}"
    );
    assert!(has(
        &f,
        Kind::NotTranslated,
        "volumes",
        "--allow-host-paths"
    ));

    let t = l.translate_with(&Options {
        allow_host_paths: true,
        ..l.options()
    });
    let spec = pod(deployment(&t, "app"));
    let paths: Vec<String> = spec
        .volumes
        .iter()
        .flatten()
        .filter_map(|v| v.host_path.as_ref().map(|h| h.path.clone()))
        .collect();
    let conf = dir.path().canonicalize().expect("canonical").join("conf");
    assert_eq!(
        paths,
        [
            conf.display().to_string(),
            "/var/run/docker.sock".to_string()
        ]
    );
    let mounts = container(spec, "app")
        .volume_mounts
        .as_ref()
        .expect("mounts");
    assert_eq!(mounts[0].read_only, Some(true));
    assert!(has(
        &findings(&t, "app"),
        Kind::Approximate,
        "volumes",
        "hostPath"
    ));
}

#[test]
fn secrets_and_configs_are_mounted_where_compose_mounts_them() {
    let t = project::case("edd").translate();
    let spec = pod(deployment(&t, "http"));
    let mounts = container(spec, "http")
        .volume_mounts
        .as_ref()
        .expect("mounts");
    let m = |path: &str| {
        mounts
            .iter()
            .find(|m| m.mount_path == path)
            .unwrap_or_else(|| panic!("no mount at {path}"))
    };
    assert_eq!(
        m("/run/secrets/edd_django_key").sub_path.as_deref(),
        Some("edd_django_key")
    );
    assert_eq!(
        m("/run/secrets/db_password").sub_path.as_deref(),
        Some("edd_db_password")
    );
    let vol = spec
        .volumes
        .iter()
        .flatten()
        .find(|v| v.name == m("/run/secrets/db_password").name)
        .and_then(|v| v.secret.as_ref())
        .expect("a secret volume");
    assert_eq!(vol.secret_name.as_deref(), Some("edd-db-password"));
    assert_eq!(vol.items.as_ref().and_then(|i| i[0].mode), Some(0o440));
    let secret = t
        .manifests
        .secrets
        .iter()
        .find(|s| s.metadata.name.as_deref() == Some("edd-db-password"))
        .expect("the Secret");
    let expected =
        std::fs::read(crate::project::repo_root().join("testdata/edd/secrets/edd_db_password"))
            .expect("the secret file");
    assert_eq!(
        secret.data.as_ref().expect("data")["edd_db_password"].0,
        expected
    );

    let t = project::case("Director-4.0").translate();
    let spec = pod(deployment(&t, "orchestrator"));
    let mount = container(spec, "orchestrator")
        .volume_mounts
        .iter()
        .flatten()
        .find(|m| m.mount_path == "/etc/director/orchestrator.toml")
        .expect("the config's mount");
    assert_eq!(mount.sub_path.as_deref(), Some("orchestrator_settings"));
    let cm = &t
        .manifests
        .config_maps
        .iter()
        .find(|c| c.metadata.name.as_deref() == Some("orchestrator-settings"))
        .expect("ConfigMap");
    assert!(
        cm.data
            .as_ref()
            .expect("data")
            .contains_key("orchestrator_settings")
    );
}

const ROUTES: &str = r#"
x-wharf:
  router:
    https: "0.0.0.0:443"
services:
  manager:
    image: manager
    labels:
      wharf.http.port: "8000"
      wharf.http.host: director.example.org, www.director.example.org
      wharf.http.api.port: "8001"
      wharf.http.api.path: /api
      wharf.http.api.host: director.example.org
      wharf.http.api.tls: self-signed
      wharf.http.shell.port: "8002"
      wharf.http.shell.path: /shell-server/
      wharf.http.shell.allow_from: service:shell
  shell:
    image: shell
"#;

#[test]
fn routes_become_ingresses_with_host_path_and_tls_rules() {
    let (_dir, l) = inline(ROUTES, &[]);
    let t = l.translate();
    let main = ingress(&t, "manager");
    assert_eq!(
        main.metadata
            .annotations
            .as_ref()
            .and_then(|a| a.get("cert-manager.io/cluster-issuer"))
            .map(String::as_str),
        Some("letsencrypt"),
        "acme (https configured, public hosts) -> cert-manager"
    );
    let spec = main.spec.as_ref().expect("spec");
    let rules = spec.rules.as_ref().expect("rules");
    let hosts: Vec<&str> = rules.iter().filter_map(|r| r.host.as_deref()).collect();
    assert_eq!(hosts, ["director.example.org", "www.director.example.org"]);
    let path = &rules[0].http.as_ref().expect("http").paths[0];
    assert_eq!(
        (path.path.as_deref(), path.path_type.as_str()),
        (Some("/"), "Prefix")
    );
    let backend = path.backend.service.as_ref().expect("a Service backend");
    assert_eq!(backend.name, "manager");
    assert_eq!(backend.port.as_ref().and_then(|p| p.number), Some(8000));
    let tls = &spec.tls.as_ref().expect("tls")[0];
    assert_eq!(tls.secret_name.as_deref(), Some("manager-tls"));
    assert_eq!(tls.hosts.as_ref().map(Vec::len), Some(2));

    let api = ingress(&t, "manager-api");
    assert!(
        api.metadata.annotations.is_none(),
        "self-signed: no cert-manager"
    );
    assert_eq!(
        api.spec
            .as_ref()
            .and_then(|s| s.rules.as_ref())
            .map(|r| r[0].http.as_ref().unwrap().paths[0].path.clone()),
        Some(Some("/api".to_string()))
    );
    // The route ports are on the Service even without `expose`.
    let ports: Vec<i32> = service(&t, "manager")
        .spec
        .as_ref()
        .and_then(|s| s.ports.as_ref())
        .expect("ports")
        .iter()
        .map(|p| p.port)
        .collect();
    assert_eq!(ports, [8000, 8001, 8002]);
}

#[test]
fn access_rules_become_network_policies_and_a_route_only_for_services_stays_inside() {
    let (_dir, l) = inline(ROUTES, &[]);
    let t = l.translate();
    assert!(
        !t.manifests
            .ingresses
            .iter()
            .any(|i| i.metadata.name.as_deref() == Some("manager-shell")),
        "allow_from service:shell only: no Ingress"
    );
    let p = policy(&t, "manager-http-8002").spec.as_ref().expect("spec");
    let rule = &p.ingress.as_ref().expect("rules")[0];
    assert_eq!(
        rule.from.as_ref().expect("from")[0]
            .pod_selector
            .as_ref()
            .and_then(|s| s.match_labels.as_ref())
            .and_then(|l| l.get("wharf.io/service"))
            .map(String::as_str),
        Some("shell")
    );
    assert_eq!(
        rule.ports.as_ref().and_then(|p| p[0].port.clone()),
        Some(k8s_openapi::apimachinery::pkg::util::intstr::IntOrString::Int(8002))
    );
    let open = policy(&t, "manager-http-8000").spec.as_ref().expect("spec");
    assert!(
        open.ingress.as_ref().expect("rules")[0].from.is_none(),
        "a route without access rules admits anyone (the Ingress controller)"
    );
    assert!(has(
        &findings(&t, "manager"),
        Kind::Approximate,
        "labels.wharf.http.shell.allow_from",
        "left out of the Ingress"
    ));
}

#[test]
fn a_service_that_is_only_built_gets_a_project_image_name_and_a_report_line() {
    let (_dir, l) = inline(
        "services:\n  web:\n    build: .\n",
        &[("Dockerfile", "FROM scratch\n")],
    );
    let t = l.translate();
    let c = container(pod(deployment(&t, "web")), "web");
    assert_eq!(c.image.as_deref(), Some("t-web:latest"));
    assert!(has(
        &findings(&t, "web"),
        Kind::NotTranslated,
        "build",
        "`t-web:latest`"
    ));
}

#[test]
fn every_key_is_accounted_for_even_ones_nobody_handles() {
    let (_dir, l) = inline(
        r#"
services:
  app:
    image: app
    container_name: the-app
    cpu_shares: 512
    oom_score_adj: 100
    blkio_config: {weight: 300}
    logging: {driver: syslog}
    x-note: extension keys are ignored, as Compose ignores them
    deploy:
      placement: {constraints: [node.role == manager]}
      update_config: {parallelism: 2}
"#,
        &[],
    );
    let t = l.translate();
    let f = findings(&t, "app");
    for key in [
        "container_name",
        "cpu_shares",
        "oom_score_adj",
        "blkio_config",
        "logging",
        "deploy.placement",
        "deploy.update_config",
    ] {
        assert!(
            has(&f, Kind::NotTranslated, key, ""),
            "{key} is reported: {f:#?}"
        );
    }
    assert!(
        has(
            &f,
            Kind::NotTranslated,
            "cpu_shares",
            "wharf knows no Kubernetes counterpart"
        ),
        "a key without specific advice still lands in the report"
    );
    assert!(!f.iter().any(|l| l.contains("x-note")));
}

#[test]
fn namespace_and_version_options() {
    let l = project::case("openvle");
    let t = l.translate_with(&Options {
        namespace: Some("apps".to_string()),
        kube_version: "1.33".parse().expect("supported"),
        ..l.options()
    });
    assert!(
        t.manifests.namespaces.is_empty(),
        "the namespace is the user's"
    );
    assert!(
        t.manifests
            .objects()
            .iter()
            .all(|o| o.value["metadata"]["namespace"] == "apps")
    );
    assert_eq!(
        t.manifests.role_bindings[0]
            .subjects
            .as_ref()
            .and_then(|s| s[0].namespace.as_deref()),
        Some("apps")
    );
    assert!(t.report.title.contains("Kubernetes 1.33"));

    let e = translate(
        &l.project,
        &Options {
            namespace: Some("Apps_1".to_string()),
            ..Options::default()
        },
    )
    .unwrap_err();
    assert!(matches!(e, Error::Namespace(_)));
    assert!(e.to_string().contains("lowercase letters"), "{e}");
    let e = "1.30".parse::<wharf_kube::KubeVersion>().unwrap_err();
    assert!(e.to_string().contains("1.33 to 1.37"), "{e}");
}

#[test]
fn names_that_collide_fail_the_export() {
    let (_dir, l) = inline(
        "services:\n  web_app: {image: a}\n  web.app: {image: b}\n",
        &[],
    );
    let e = translate(&l.project, &l.options()).unwrap_err();
    assert_eq!(
        e.to_string(),
        "services `web.app` and `web_app` would both be named `web-app` in Kubernetes: rename one of them in the Compose file"
    );
    let (_dir, l) = inline(
        "services:\n  web:\n    image: a\n    environment: {API_TOKEN: x}\n    secrets: [web-env]\nsecrets:\n  web-env: {file: ./token}\n",
        &[("token", "t")],
    );
    let e = translate(&l.project, &l.options()).unwrap_err();
    assert_eq!(
        e.to_string(),
        "two Secrets would be named `web-env`: rename the Compose service, alias, volume, secret or config behind one of them"
    );
}

#[test]
fn route_mistakes_fail_the_export_and_say_what_to_do() {
    let (_dir, l) = inline(
        "services:\n  a:\n    image: a\n    labels: {wharf.http.port: '80'}\n  b:\n    image: b\n    labels: {wharf.http.port: '81'}\n",
        &[],
    );
    let e = translate(&l.project, &l.options()).unwrap_err();
    assert_eq!(
        e.to_string(),
        "routes `a` and `b` both match any host and path /: give one of them another host or path"
    );
    let (_dir, l) = inline(
        "services:\n  a:\n    image: a\n    labels: {wharf.http.port: '80', wharf.http.allow_from: 'service:nobody'}\n",
        &[],
    );
    let e = translate(&l.project, &l.options()).unwrap_err();
    assert!(
        e.to_string().starts_with(
            "service `a`: label `wharf.http.allow_from`: `service:nobody` names a service"
        ),
        "{e}"
    );
}

#[test]
fn secrets_from_the_environment_take_the_export_environment() {
    let compose = "services:\n  app:\n    image: a\n    secrets: [token]\nsecrets:\n  token: {environment: API_TOKEN}\n";
    let (_dir, l) = inline(compose, &[]);
    let mut options = l.options();
    options
        .environment
        .insert("API_TOKEN".to_string(), "s3cret".to_string());
    let t = l.translate_with(&options);
    let s = t
        .manifests
        .secrets
        .iter()
        .find(|s| s.metadata.name.as_deref() == Some("token"))
        .expect("Secret token");
    assert_eq!(s.data.as_ref().expect("data")["token"].0, b"s3cret");
    options.environment.remove("API_TOKEN");
    let e = translate(&l.project, &options).unwrap_err();
    assert_eq!(
        e.to_string(),
        "secret `token` takes its value from the variable `API_TOKEN`, which is not set: set it when exporting, or mark it `external: true` and create it in the cluster"
    );
}
