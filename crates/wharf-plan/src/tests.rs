//! Golden tests: plans printed as text.

use std::collections::BTreeMap;

use wharf_model::{LoadOptions, Project};

use super::*;

fn project(yaml: &str) -> Project {
    let dir = tempfile::tempdir().expect("temp dir");
    let options = LoadOptions {
        files: vec!["-".into()],
        working_dir: dir.path().to_path_buf(),
        project_name: Some("p".into()),
        stdin: Some(yaml.to_string()),
        environment: BTreeMap::new(),
        ..LoadOptions::default()
    };
    match wharf_model::load(&options) {
        Ok(l) => l.project,
        Err(d) => panic!("{d}"),
    }
}

const STACK: &str = r#"
services:
  db:
    command: db
    healthcheck: {test: "true"}
  cache:
    command: cache
  migrate:
    command: migrate
    depends_on: {db: {condition: service_healthy}}
  web:
    command: web
    deploy: {replicas: 2}
    depends_on:
      migrate: {condition: service_completed_successfully}
      cache: {condition: service_started, required: false}
  vpn:
    command: vpn
  worker:
    command: worker
    network_mode: service:vpn
    depends_on: [db]
"#;

fn observed(p: &Project, which: &[(&str, u32, bool)]) -> Vec<ObservedInstance> {
    which
        .iter()
        .map(|(s, n, running)| ObservedInstance {
            service: s.to_string(),
            number: *n,
            config_hash: config_hash(&p.services[*s]),
            running: *running,
            exit_code: (!running).then_some(0),
        })
        .collect()
}

#[test]
fn first_up_starts_everything_after_its_dependencies() {
    let p = project(STACK);
    let plan = plan_up(&p, &[], &UpOptions::default()).unwrap();
    assert_eq!(
        plan.to_string(),
        "\
start    cache-1
start    db-1
start    migrate-1  after db healthy
start    vpn-1
start    web-1      after cache started, optional, migrate completed successfully
start    web-2      after cache started, optional, migrate completed successfully
start    worker-1   after db started, vpn started
"
    );
}

#[test]
fn up_of_one_service_brings_its_dependencies() {
    let p = project(STACK);
    let options = UpOptions {
        services: Some(vec!["migrate".into()]),
        ..UpOptions::default()
    };
    let plan = plan_up(&p, &[], &options).unwrap();
    assert_eq!(
        plan.to_string(),
        "start    db-1\nstart    migrate-1  after db healthy\n"
    );
}

#[test]
fn second_up_does_nothing_and_changed_config_recreates() {
    let p = project(STACK);
    let all: Vec<(&str, u32, bool)> = vec![
        ("cache", 1, true),
        ("db", 1, true),
        ("migrate", 1, false),
        ("vpn", 1, true),
        ("web", 1, true),
        ("web", 2, true),
        ("worker", 1, true),
    ];
    let mut obs = observed(&p, &all);
    // migrate exited 0 and stays exited: a one-shot is started again on the next `up`, like
    // Docker Compose does for a stopped container.
    let plan = plan_up(&p, &obs, &UpOptions::default()).unwrap();
    assert_eq!(plan.to_string(), "restart  migrate-1  after db healthy\n");

    obs.iter_mut()
        .find(|o| o.service == "cache")
        .unwrap()
        .config_hash = "old".into();
    obs.iter_mut()
        .find(|o| o.service == "migrate")
        .unwrap()
        .running = true;
    let plan = plan_up(&p, &obs, &UpOptions::default()).unwrap();
    assert_eq!(
        plan.to_string(),
        "recreate cache-1  (configuration changed)\n"
    );

    let plan = plan_up(
        &p,
        &obs,
        &UpOptions {
            no_recreate: true,
            ..UpOptions::default()
        },
    )
    .unwrap();
    assert_eq!(plan.to_string(), "p: nothing to do\n");
}

#[test]
fn scaling_down_removes_the_highest_numbers() {
    let p = project(STACK);
    let obs = observed(&p, &[("web", 1, true), ("web", 2, true), ("web", 3, true)]);
    let options = UpOptions {
        services: Some(vec!["web".into()]),
        scale: [("web".to_string(), 1)].into(),
        ..UpOptions::default()
    };
    let plan = plan_up(&p, &obs, &options).unwrap();
    assert_eq!(
        plan.to_string(),
        "\
remove   web-2      (scaled to 1)
remove   web-3      (scaled to 1)
start    cache-1
start    db-1
start    migrate-1  after db healthy
"
    );
}

#[test]
fn services_gone_from_the_project_are_removed() {
    let p = project(STACK);
    let obs = vec![ObservedInstance {
        service: "old".into(),
        number: 1,
        config_hash: "x".into(),
        running: true,
        exit_code: None,
    }];
    let plan = plan_up(&p, &obs, &UpOptions::default()).unwrap();
    let text = plan.to_string();
    assert!(
        text.starts_with("remove   old-1      (no longer in the project)\nstart    cache-1\n"),
        "{text}"
    );
}

#[test]
fn stop_goes_in_reverse_dependency_order() {
    let p = project(STACK);
    let instances: Vec<(String, u32)> = [
        ("db", 1),
        ("web", 1),
        ("web", 2),
        ("migrate", 1),
        ("cache", 1),
    ]
    .iter()
    .map(|(s, n)| (s.to_string(), *n))
    .collect();
    let plan = plan_stop(&p, &instances, Op::Remove);
    assert_eq!(
        plan.to_string(),
        "\
remove   web-2
remove   web-1
remove   migrate-1  after web-1 stopped, web-2 stopped
remove   db-1       after migrate-1 stopped
remove   cache-1    after web-1 stopped, web-2 stopped
"
    );
}

#[test]
fn unknown_service_is_an_error() {
    let p = project(STACK);
    let options = UpOptions {
        services: Some(vec!["nope".into()]),
        ..UpOptions::default()
    };
    assert_eq!(
        plan_up(&p, &[], &options).unwrap_err(),
        PlanError::UnknownService("nope".into())
    );
}

#[test]
fn starting_a_service_does_not_rerun_its_completed_one_shot() {
    let p = project(STACK);
    let mut obs = observed(
        &p,
        &[("db", 1, true), ("cache", 1, true), ("migrate", 1, false)],
    );
    let options = UpOptions {
        services: Some(vec!["web".into()]),
        ..UpOptions::default()
    };
    let plan = plan_up(&p, &obs, &options).unwrap();
    assert_eq!(
        plan.to_string(),
        "\
start    web-1  after cache started, optional, migrate completed successfully
start    web-2  after cache started, optional, migrate completed successfully
"
    );
    // A one-shot that failed runs again.
    obs[2].exit_code = Some(1);
    let plan = plan_up(&p, &obs, &options).unwrap();
    assert!(plan.to_string().starts_with("restart  migrate-1"), "{plan}");
}
