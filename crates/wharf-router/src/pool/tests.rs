use super::*;
use crate::table::RouteTable;

fn route(labels: &[(&str, &str)], has_healthcheck: bool) -> RouteEntry {
    let labels = labels
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    let route = crate::route::parse(&labels).expect("valid").remove(0);
    let entry = RouteEntry {
        id: "web".into(),
        project: "p".into(),
        service: "web".into(),
        route,
        has_healthcheck,
        replicas: 3,
    };
    RouteTable::new(vec![entry.clone()]).expect("valid");
    entry
}

fn up(instance: &str, last: u8, healthy: bool) -> InstanceEvent {
    InstanceEvent::Up {
        project: "p".into(),
        service: "web".into(),
        instance: instance.into(),
        addr: IpAddr::from([10, 0, 0, last]),
        addresses: Vec::new(),
        ports: BTreeMap::new(),
        healthy,
    }
}

fn names(v: &[Arc<Upstream>]) -> Vec<&str> {
    v.iter().map(|u| u.instance.as_str()).collect()
}

#[test]
fn health_decides_who_takes_traffic() {
    let pools = Pools::new();
    let checked = route(&[("wharf.http.port", "80")], true);
    let unchecked = route(&[("wharf.http.port", "80")], false);
    pools.apply(&up("web-1", 1, false));
    pools.apply(&up("web-2", 2, true));
    assert_eq!(names(&pools.ready(&checked)), ["web-2"]);
    assert_eq!(names(&pools.ready(&unchecked)), ["web-1", "web-2"]);
    pools.apply(&up("web-1", 1, true));
    assert_eq!(names(&pools.ready(&checked)), ["web-1", "web-2"]);
    pools.apply(&InstanceEvent::Draining {
        project: "p".into(),
        service: "web".into(),
        instance: "web-2".into(),
    });
    assert_eq!(names(&pools.ready(&checked)), ["web-1"]);
    pools.apply(&InstanceEvent::Down {
        project: "p".into(),
        service: "web".into(),
        instance: "web-1".into(),
    });
    let why = pools.pick(&checked, &[]).unwrap_err();
    assert_eq!(why.to_string(), "0 of 3 instances healthy, 1 draining");
}

#[test]
fn least_outstanding_and_round_robin() {
    let pools = Pools::new();
    let lor = route(&[("wharf.http.port", "80")], false);
    for i in 1..=3 {
        pools.apply(&up(&format!("web-{i}"), i, true));
    }
    // A busy instance is avoided until the others are as busy.
    let busy = pools.pick(&lor, &[]).expect("one");
    let _a = busy.begin();
    let _b = busy.begin();
    for _ in 0..6 {
        let u = pools.pick(&lor, &[]).expect("one");
        assert_ne!(u.instance, busy.instance);
    }
    // The count survives a membership change.
    pools.apply(&InstanceEvent::Up {
        project: "p".into(),
        service: "web".into(),
        instance: busy.instance.clone(),
        addr: busy.addr,
        addresses: Vec::new(),
        ports: BTreeMap::new(),
        healthy: true,
    });
    let again = pools
        .instances("p", "web")
        .into_iter()
        .find(|u| u.instance == busy.instance)
        .expect("still there");
    assert_eq!(again.outstanding(), 2);

    let rr = route(
        &[
            ("wharf.http.port", "80"),
            ("wharf.http.balance", "round_robin"),
        ],
        false,
    );
    let picks: Vec<String> = (0..6)
        .map(|_| pools.pick(&rr, &[]).expect("one").instance.clone())
        .collect();
    for name in ["web-1", "web-2", "web-3"] {
        assert_eq!(picks.iter().filter(|p| *p == name).count(), 2, "{picks:?}");
    }
}

#[test]
fn tried_instances_are_skipped() {
    let pools = Pools::new();
    let r = route(&[("wharf.http.port", "80")], false);
    pools.apply(&up("web-1", 1, true));
    pools.apply(&up("web-2", 2, true));
    let first = pools.pick(&r, &[]).expect("one");
    let second = pools.pick(&r, &[first.socket_addr(80)]).expect("another");
    assert_ne!(first.instance, second.instance);
    assert!(
        pools
            .pick(&r, &[first.socket_addr(80), second.socket_addr(80)])
            .is_err()
    );
}
