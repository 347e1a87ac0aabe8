//! Declarative description of a lab: nodes (one namespace each), veth links between them with
//! addresses, static routes and IP forwarding; and the standard topology qoelab uses.

use std::collections::HashSet;
use std::net::Ipv4Addr;

use ipnet::Ipv4Net;
use serde::{Deserialize, Serialize};

use crate::error::{LabError, Result};
use crate::names;

/// The only address space labs may use (RFC 2544 benchmarking range).
pub const LAB_SPACE: Ipv4Net = Ipv4Net::new_assert(Ipv4Addr::new(198, 18, 0, 0), 15);

/// A whole lab: its nodes and the links between them.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Topology {
    /// The nodes; each becomes a network namespace.
    pub nodes: Vec<Node>,
    /// Point-to-point veth links between nodes.
    pub links: Vec<Link>,
}

/// One namespace of the lab.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Node {
    /// Short name, e.g. `router` (1–12 lowercase letters or digits).
    pub name: String,
    /// Whether the node forwards IPv4 packets between its interfaces.
    #[serde(default)]
    pub forwarding: bool,
    /// Static routes of the node.
    #[serde(default)]
    pub routes: Vec<Route>,
}

/// A veth pair between two nodes.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Link {
    /// One end.
    pub a: Endpoint,
    /// The other end.
    pub b: Endpoint,
    /// MTU of both ends (bytes of IP packet).
    #[serde(default = "default_mtu")]
    pub mtu: u32,
}

/// One end of a link.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Endpoint {
    /// The node this end lives in.
    pub node: String,
    /// Interface suffix; the full name is `ql<lab>-<suffix>`.
    pub iface: String,
    /// The address with its prefix length, inside 198.18.0.0/15.
    pub addr: Ipv4Net,
}

/// A static route: `dst` via gateway `via`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Route {
    /// Destination prefix; `0.0.0.0/0` for the default route.
    pub dst: Ipv4Net,
    /// Next hop, inside 198.18.0.0/15 and on a connected subnet.
    pub via: Ipv4Addr,
}

fn default_mtu() -> u32 {
    1500
}

/// Names and addresses of the standard topology: `client` ↔ `router` ↔ `server`.
pub mod standard {
    use std::net::Ipv4Addr;

    /// The gateway's analytics side.
    pub const CLIENT: &str = "client";
    /// The gateway uplink, where shaping and capture happen.
    pub const ROUTER: &str = "router";
    /// The cloud.
    pub const SERVER: &str = "server";
    /// Interface suffix of the client's link to the router.
    pub const CLIENT_IFACE: &str = "cl";
    /// Interface suffix of the router's side towards the client (LAN).
    pub const ROUTER_LAN: &str = "lan";
    /// Interface suffix of the router's side towards the server (uplink, WAN).
    pub const ROUTER_WAN: &str = "wan";
    /// Interface suffix of the server's link to the router.
    pub const SERVER_IFACE: &str = "sv";
    /// The client's address.
    pub const CLIENT_ADDR: Ipv4Addr = Ipv4Addr::new(198, 18, 1, 2);
    /// The router's LAN address (the client's gateway).
    pub const ROUTER_LAN_ADDR: Ipv4Addr = Ipv4Addr::new(198, 18, 1, 1);
    /// The router's uplink address (the server's gateway).
    pub const ROUTER_WAN_ADDR: Ipv4Addr = Ipv4Addr::new(198, 18, 2, 1);
    /// The server's address.
    pub const SERVER_ADDR: Ipv4Addr = Ipv4Addr::new(198, 18, 2, 2);
}

impl Topology {
    /// The standard topology: `client` (198.18.1.2) ↔ `router` (198.18.1.1 on `lan`,
    /// 198.18.2.1 on `wan`) ↔ `server` (198.18.2.2), MTU 1500, default routes via the router.
    pub fn standard() -> Topology {
        use standard::*;
        let net = |addr: Ipv4Addr| Ipv4Net::new_assert(addr, 24);
        let default_via = |via| Route {
            dst: Ipv4Net::default(),
            via,
        };
        let end = |node: &str, iface: &str, addr| Endpoint {
            node: node.into(),
            iface: iface.into(),
            addr: net(addr),
        };
        Topology {
            nodes: vec![
                Node {
                    name: CLIENT.into(),
                    forwarding: false,
                    routes: vec![default_via(ROUTER_LAN_ADDR)],
                },
                Node {
                    name: ROUTER.into(),
                    forwarding: true,
                    routes: Vec::new(),
                },
                Node {
                    name: SERVER.into(),
                    forwarding: false,
                    routes: vec![default_via(ROUTER_WAN_ADDR)],
                },
            ],
            links: vec![
                Link {
                    a: end(CLIENT, CLIENT_IFACE, CLIENT_ADDR),
                    b: end(ROUTER, ROUTER_LAN, ROUTER_LAN_ADDR),
                    mtu: default_mtu(),
                },
                Link {
                    a: end(ROUTER, ROUTER_WAN, ROUTER_WAN_ADDR),
                    b: end(SERVER, SERVER_IFACE, SERVER_ADDR),
                    mtu: default_mtu(),
                },
            ],
        }
    }

    /// Checks names, references, address space and MTUs; nothing is created before this passes.
    pub fn validate(&self) -> Result<()> {
        let invalid = |msg: String| Err(LabError::InvalidTopology(msg));
        if self.nodes.is_empty() {
            return invalid("a topology needs at least one node".into());
        }
        let mut nodes = HashSet::new();
        for node in &self.nodes {
            names::check_node_name(&node.name)?;
            if !nodes.insert(node.name.as_str()) {
                return invalid(format!("node '{}' is declared twice", node.name));
            }
            for route in &node.routes {
                if route.dst.prefix_len() != 0 && !LAB_SPACE.contains(&route.dst) {
                    return invalid(format!(
                        "route {} on node '{}' leaves the lab space: destinations must be inside \
                         {LAB_SPACE} or 0.0.0.0/0",
                        route.dst, node.name
                    ));
                }
                if !LAB_SPACE.contains(&route.via) {
                    return invalid(format!(
                        "gateway {} of route {} on node '{}' is outside {LAB_SPACE}",
                        route.via, route.dst, node.name
                    ));
                }
            }
        }
        let mut ifaces = HashSet::new();
        for link in &self.links {
            if !(68..=65535).contains(&link.mtu) {
                return invalid(format!(
                    "mtu {} of link {}–{} is out of range: use 68 to 65535",
                    link.mtu, link.a.node, link.b.node
                ));
            }
            if link.a.node == link.b.node {
                return invalid(format!(
                    "link {}–{} connects node '{}' to itself",
                    link.a.iface, link.b.iface, link.a.node
                ));
            }
            for end in [&link.a, &link.b] {
                if !nodes.contains(end.node.as_str()) {
                    return invalid(format!(
                        "link end '{}' names node '{}', which is not declared",
                        end.iface, end.node
                    ));
                }
                names::check_iface_suffix(&end.iface)?;
                if !ifaces.insert(end.iface.as_str()) {
                    return invalid(format!("interface '{}' is declared twice", end.iface));
                }
                if !LAB_SPACE.contains(&end.addr) {
                    return invalid(format!(
                        "address {} of interface '{}' is outside {LAB_SPACE}: labs use only that \
                         range so they never clash with real networks",
                        end.addr, end.iface
                    ));
                }
            }
        }
        Ok(())
    }

    /// The node called `name`.
    pub fn node(&self, name: &str) -> Option<&Node> {
        self.nodes.iter().find(|n| n.name == name)
    }

    /// The link ends that live in node `name`.
    pub fn endpoints_of<'a>(&'a self, name: &'a str) -> impl Iterator<Item = &'a Endpoint> {
        self.links
            .iter()
            .flat_map(|l| [&l.a, &l.b])
            .filter(move |e| e.node == name)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn err_of(topology: &Topology) -> String {
        topology.validate().unwrap_err().to_string()
    }

    #[test]
    fn the_standard_topology_is_valid() {
        Topology::standard().validate().unwrap();
    }

    #[test]
    fn addresses_outside_the_lab_space_are_refused() {
        let mut t = Topology::standard();
        t.links[0].a.addr = "10.0.0.1/24".parse().unwrap();
        let err = err_of(&t);
        assert!(
            err.contains("10.0.0.1/24") && err.contains("198.18.0.0/15"),
            "{err}"
        );

        let mut t = Topology::standard();
        t.nodes[0].routes[0].via = "192.168.1.1".parse().unwrap();
        assert!(err_of(&t).contains("192.168.1.1"));

        let mut t = Topology::standard();
        t.nodes[0].routes[0].dst = "8.8.8.0/24".parse().unwrap();
        assert!(err_of(&t).contains("8.8.8.0/24"));
    }

    #[test]
    fn references_and_duplicates_are_checked() {
        let mut t = Topology::standard();
        t.links[0].b.node = "nowhere".into();
        assert!(err_of(&t).contains("'nowhere'"));

        let mut t = Topology::standard();
        t.links[1].a.iface = "lan".into();
        assert!(err_of(&t).contains("'lan' is declared twice"));

        let mut t = Topology::standard();
        t.nodes[2].name = "client".into();
        assert!(err_of(&t).contains("'client' is declared twice"));

        let mut t = Topology::standard();
        t.links[0].mtu = 10;
        assert!(err_of(&t).contains("mtu 10"));
    }

    #[test]
    fn topologies_round_trip_through_json() {
        let t = Topology::standard();
        let json = serde_json::to_string(&t).unwrap();
        assert!(json.contains("\"198.18.1.2/24\""), "{json}");
        let back: Topology = serde_json::from_str(&json).unwrap();
        assert_eq!(back, t);
    }
}
