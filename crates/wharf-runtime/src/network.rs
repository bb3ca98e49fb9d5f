//! What a runtime needs to know to connect an instance: its networks (or network mode), its
//! published ports, its names. Built by the supervisor from the project, like the rest of
//! [`crate::InstanceSpec`]; each runtime makes it real its own way (natively: `wharf-net`).

use std::net::{IpAddr, Ipv4Addr};

use wharf_model::project::Network;

/// An instance's networking (`InstanceSpec::network`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NetworkSpec {
    pub mode: NetworkModeSpec,
    /// `ports:`, to publish on the host.
    pub ports: Vec<PortSpec>,
    /// `hostname:`, one more name for the instance's addresses.
    pub hostname: Option<String>,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum NetworkModeSpec {
    /// On these Compose networks (`networks:`, or the project's default network), in the
    /// order their interfaces get.
    Attached(Vec<AttachmentSpec>),
    /// `network_mode: host`: the machine's network.
    Host,
    /// `network_mode: none`: loopback only.
    None,
    /// `network_mode: service:x`: the network of this instance (x's first), by name.
    Instance(String),
}

/// An instance on one network.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AttachmentSpec {
    pub network: ProjectNetworkSpec,
    pub aliases: Vec<String>,
    pub ipv4_address: Option<Ipv4Addr>,
}

/// A Compose network, as a runtime creates it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ProjectNetworkSpec {
    /// Its key in the project (`backend`).
    pub key: String,
    /// Its engine-level name (`edd_backend`).
    pub name: String,
    pub internal: bool,
    pub external: bool,
    /// The first IPv4 `ipam.config[].subnet`, as written.
    pub subnet: Option<String>,
}

impl ProjectNetworkSpec {
    pub fn of(key: &str, network: &Network) -> ProjectNetworkSpec {
        ProjectNetworkSpec {
            key: key.to_string(),
            name: network.name.clone(),
            internal: network.internal,
            external: network.external,
            subnet: network
                .subnets
                .iter()
                .find(|s| s.contains('.') && !s.contains(':'))
                .cloned(),
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum PortProtocol {
    Tcp,
    Udp,
}

/// One entry of `ports:`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PortSpec {
    /// Every address of the host when `None`.
    pub host_ip: Option<IpAddr>,
    /// A host port or a range to take a free one from; any free port when `None`.
    pub published: Option<(u16, u16)>,
    pub target: u16,
    pub protocol: PortProtocol,
}
