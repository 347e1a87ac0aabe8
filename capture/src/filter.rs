//! The user-space packet filter: addresses, ports, protocols.

use std::fmt;
use std::str::FromStr;

use ipnet::IpNet;
use serde::{Deserialize, Serialize};

use crate::decode::{self, Packet, Transport, proto};

/// Transport protocols a filter can select.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Protocol {
    /// TCP.
    Tcp,
    /// UDP.
    Udp,
    /// ICMP and ICMPv6.
    Icmp,
}

impl FromStr for Protocol {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.to_ascii_lowercase().as_str() {
            "tcp" => Ok(Protocol::Tcp),
            "udp" => Ok(Protocol::Udp),
            "icmp" | "icmpv6" => Ok(Protocol::Icmp),
            _ => Err(format!("'{s}' is not a protocol: use tcp, udp or icmp")),
        }
    }
}

impl fmt::Display for Protocol {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Protocol::Tcp => "tcp",
            Protocol::Udp => "udp",
            Protocol::Icmp => "icmp",
        })
    }
}

/// Which packets a capture keeps. Each non-empty list must match (AND between lists); within a
/// list any entry may match (OR). An empty filter keeps every IP packet.
///
/// ```
/// let f: qoelab_capture::Filter =
///     serde_json::from_str(r#"{"nets": ["198.18.2.2/32"], "ports": [443], "protocols": ["tcp"]}"#)
///         .unwrap();
/// assert_eq!(f.ports, [443]);
/// ```
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Filter {
    /// Source or destination address in one of these networks.
    #[serde(default)]
    pub nets: Vec<IpNet>,
    /// Source or destination port among these (packets without ports never match).
    #[serde(default)]
    pub ports: Vec<u16>,
    /// Transport protocol among these.
    #[serde(default)]
    pub protocols: Vec<Protocol>,
}

impl Filter {
    /// Whether the filter keeps everything.
    pub fn is_empty(&self) -> bool {
        self.nets.is_empty() && self.ports.is_empty() && self.protocols.is_empty()
    }

    /// Whether packet `p` passes.
    pub fn matches(&self, p: &Packet) -> bool {
        if !self.nets.is_empty() {
            let src = decode::ip_addr(p.src, p.ipv6);
            let dst = decode::ip_addr(p.dst, p.ipv6);
            if !self
                .nets
                .iter()
                .any(|n| n.contains(&src) || n.contains(&dst))
            {
                return false;
            }
        }
        if !self.ports.is_empty() {
            let ports = match p.transport {
                Transport::Tcp(h) => Some((h.src_port, h.dst_port)),
                Transport::Udp { src_port, dst_port } => Some((src_port, dst_port)),
                _ => None,
            };
            match ports {
                Some((s, d)) if self.ports.iter().any(|&q| q == s || q == d) => {}
                _ => return false,
            }
        }
        if !self.protocols.is_empty() {
            let protocol = match p.protocol {
                proto::TCP => Some(Protocol::Tcp),
                proto::UDP => Some(Protocol::Udp),
                proto::ICMP | proto::ICMPV6 => Some(Protocol::Icmp),
                _ => None,
            };
            if !protocol.is_some_and(|x| self.protocols.contains(&x)) {
                return false;
            }
        }
        true
    }
}

impl fmt::Display for Filter {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut parts: Vec<String> = Vec::new();
        let list = |items: Vec<String>| items.join("|");
        if !self.nets.is_empty() {
            parts.push(format!(
                "net {}",
                list(self.nets.iter().map(|n| n.to_string()).collect())
            ));
        }
        if !self.ports.is_empty() {
            parts.push(format!(
                "port {}",
                list(self.ports.iter().map(|p| p.to_string()).collect())
            ));
        }
        if !self.protocols.is_empty() {
            let protos = self.protocols.iter().map(|p| p.to_string()).collect();
            parts.push(format!("proto {}", list(protos)));
        }
        if parts.is_empty() {
            f.write_str("all IP packets")
        } else {
            f.write_str(&parts.join(" and "))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::decode::{Fragment, TcpHeader};
    use crate::wire::tcp::TcpOptions;
    use std::net::Ipv4Addr;

    fn tcp(src: [u8; 4], dst: [u8; 4], sport: u16, dport: u16) -> Packet {
        Packet {
            src: Ipv4Addr::from(src).to_ipv6_mapped().octets(),
            dst: Ipv4Addr::from(dst).to_ipv6_mapped().octets(),
            ipv6: false,
            ip_len: 40,
            payload_len: 0,
            ttl: 64,
            ip_id: 0,
            protocol: proto::TCP,
            fragment: Fragment::No,
            transport: Transport::Tcp(TcpHeader {
                src_port: sport,
                dst_port: dport,
                seq: 0,
                ack: 0,
                flags: 0,
                window: 0,
                options: TcpOptions::default(),
            }),
        }
    }

    #[test]
    fn empty_filter_keeps_all() {
        assert!(Filter::default().matches(&tcp([1, 2, 3, 4], [5, 6, 7, 8], 1, 2)));
    }

    #[test]
    fn lists_are_anded_entries_ored() {
        let f = Filter {
            nets: vec!["198.18.2.0/24".parse().unwrap()],
            ports: vec![80, 443],
            protocols: vec![Protocol::Tcp],
        };
        assert!(f.matches(&tcp([198, 18, 1, 2], [198, 18, 2, 2], 40000, 443)));
        assert!(f.matches(&tcp([198, 18, 2, 2], [198, 18, 1, 2], 80, 40000)));
        assert!(
            !f.matches(&tcp([198, 18, 1, 2], [198, 18, 3, 2], 40000, 443)),
            "net"
        );
        assert!(
            !f.matches(&tcp([198, 18, 1, 2], [198, 18, 2, 2], 40000, 22)),
            "port"
        );
        let udp_only = Filter {
            protocols: vec![Protocol::Udp],
            ..Filter::default()
        };
        assert!(
            !udp_only.matches(&tcp([1, 1, 1, 1], [2, 2, 2, 2], 1, 2)),
            "protocol"
        );
    }

    #[test]
    fn unknown_fields_and_protocols_are_rejected_with_the_accepted_forms() {
        let err = serde_json::from_str::<Filter>(r#"{"host": "1.2.3.4"}"#).unwrap_err();
        assert!(err.to_string().contains("unknown field `host`"), "{err}");
        assert!(serde_json::from_str::<Filter>(r#"{"protocols": ["sctp"]}"#).is_err());
        assert_eq!(
            "sctp".parse::<Protocol>().unwrap_err(),
            "'sctp' is not a protocol: use tcp, udp or icmp"
        );
    }

    #[test]
    fn display_reads_like_the_filter() {
        let f = Filter {
            nets: vec!["198.18.0.0/15".parse().unwrap()],
            ports: vec![80, 443],
            protocols: vec![],
        };
        assert_eq!(f.to_string(), "net 198.18.0.0/15 and port 80|443");
        assert_eq!(Filter::default().to_string(), "all IP packets");
    }
}
