//! A network without an `ipam` subnet holds hundreds of instances: its subnet is a /20 of the
//! default pools, and addresses past the first 254 (10.x.y.255, 10.x.y+1.0, ...) are configured
//! in instances' namespaces like any other. Leasing 300 addresses in turn is tested on the
//! allocator (`ipam`) and through the binary (`wharf` it's `scale`); here the instances past
//! the 254th are given those addresses directly, which keeps this test to a few namespaces.
//!
//! Pins the bug where each native network was a /24, so a service's 254th instance got no
//! address.

use std::collections::BTreeSet;
use std::net::Ipv4Addr;
use std::process::Command;

use wharf_net::{Attach, InstanceDef, Mode, NetConfig, NetworkDef, Networking};

/// How many instances get the next free address.
const LEASED: u32 = 3;

/// The addresses, by their place in the subnet, that the 254th, 255th and 300th instances of a
/// network get when every instance takes the next free one (the gateway is the 1st).
const PAST_A_24: [u32; 3] = [255, 256, 301];

fn instance(network: &NetworkDef, n: u32, ip: Option<Ipv4Addr>) -> InstanceDef {
    InstanceDef {
        project: "it".into(),
        service: "web".into(),
        name: format!("it-web-{n}"),
        hostname: None,
        mode: Mode::Networks(vec![Attach {
            network: network.clone(),
            aliases: Vec::new(),
            ipv4_address: ip,
        }]),
        ports: Vec::new(),
    }
}

/// `ip -4 -o addr show dev eth0` inside the namespace at `netns`.
fn eth0_in(netns: &std::path::Path) -> String {
    let out = Command::new("nsenter")
        .arg(format!("--net={}", netns.display()))
        .args(["ip", "-4", "-o", "addr", "show", "dev", "eth0"])
        .output()
        .expect("nsenter runs (util-linux)");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).to_string()
}

#[test]
fn instances_past_the_254th_of_a_default_network_get_addresses() {
    if !crate::root("instances_past_the_254th_of_a_default_network_get_addresses") {
        return;
    }
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("a tokio runtime");
    rt.block_on(async {
        let net = Networking::new(NetConfig {
            nameservers: Some(Vec::new()),
            ..NetConfig::ephemeral()
        });
        // Internal: no NAT, no default route, nothing changed on the machine but the bridge.
        let network = NetworkDef {
            name: format!("wharfnetit{}_default", std::process::id()),
            internal: true,
            subnet: None,
        };
        net.prepare("it", std::slice::from_ref(&network))
            .await
            .expect("prepare");
        let checked = async {
            let (_, subnet) = net.bridge(&network.name).await.ok_or("no bridge")?;
            if subnet.prefix() != 20 {
                return Err(format!("the network got {subnet}, not a /20"));
            }
            let mut names = Vec::new();
            for n in 1..=LEASED {
                let def = instance(&network, n, None);
                net.attach(&def)
                    .await
                    .map_err(|e| format!("{}: {e}", def.name))?;
                names.push(def.name);
            }
            for (n, nth) in (LEASED + 1..).zip(PAST_A_24) {
                let ip = subnet.nth(nth).ok_or("outside the subnet")?;
                let def = instance(&network, n, Some(ip));
                net.attach(&def)
                    .await
                    .map_err(|e| format!("{}: {e}", def.name))?;
                names.push(def.name);
            }
            let mut seen = BTreeSet::new();
            for name in &names {
                let addresses = net.addresses(name).await;
                let [(_, ip)] = addresses.as_slice() else {
                    return Err(format!("{name} has addresses {addresses:?}"));
                };
                if !subnet.contains(*ip)
                    || Some(*ip) == subnet.gateway()
                    || *ip == subnet.broadcast()
                    || !seen.insert(*ip)
                {
                    return Err(format!("{name} got {ip} in {subnet}, or a taken one"));
                }
                // In the namespace itself: eth0 has the address, with the subnet's prefix.
                let sandbox = net.sandbox(name).await.ok_or("no sandbox")?;
                let shown = eth0_in(&sandbox.netns);
                let wanted = format!("inet {ip}/{}", subnet.prefix());
                if !shown.contains(&wanted) {
                    return Err(format!("{name}: no `{wanted}` on eth0: {shown}"));
                }
            }
            let past: Vec<String> = seen
                .iter()
                .filter(|ip| ip.octets()[3] == 255 || ip.octets()[2] > subnet.network().octets()[2])
                .map(|ip| ip.to_string())
                .collect();
            if past.len() != PAST_A_24.len() {
                return Err(format!("addresses past a /24: {past:?}"));
            }
            Ok::<_, String>(names)
        }
        .await;
        for name in checked.as_deref().unwrap_or_default() {
            net.detach(name).await;
        }
        let released = net.release("it").await;
        if let Err(e) = &checked {
            panic!("{e}");
        }
        released.expect("release");
    });
}
