//! Packet matches of a class (prefixes, protocol, port ranges) and their translation into u32
//! classifier keys.
//!
//! u32 compares 32-bit words at fixed offsets from the network header. IPv4 ports are read at
//! offset 20, so a match with ports also requires a 20-byte header (IHL 5) and a first
//! fragment: packets with IP options and later fragments go to the default class instead of
//! being misread. IPv6 ports are read right after the fixed header, so the next header must be
//! the protocol itself (extension headers go to the default class). A port range becomes as few
//! value/mask pairs as cover it exactly; each combination of source and destination pairs is
//! one u32 entry.

use std::fmt;
use std::net::{IpAddr, SocketAddr};
use std::str::FromStr;

use ipnet::IpNet;
use serde::{Deserialize, Deserializer, Serialize, Serializer};

use crate::plan::PlanError;

/// The most u32 entries one class's match may need (port ranges multiply).
pub const MAX_ENTRIES: usize = 64;
/// EtherType of IPv4.
pub const ETH_P_IP: u16 = 0x0800;
/// EtherType of IPv6.
pub const ETH_P_IPV6: u16 = 0x86dd;

/// Which packets belong to a class. Every field given must match; fields left out match
/// anything.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Match {
    /// Source prefix, e.g. `198.18.1.0/24` or an address.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub src: Option<Prefix>,
    /// Destination prefix.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dst: Option<Prefix>,
    /// IP protocol: `tcp`, `udp`, `sctp`, `icmp`, `icmpv6` or a number.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub protocol: Option<Protocol>,
    /// Source port or range `first-last` (needs tcp, udp or sctp).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub src_port: Option<PortRange>,
    /// Destination port or range.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dst_port: Option<PortRange>,
}

impl fmt::Display for Match {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&serde_json::to_string(self).unwrap_or_default())
    }
}

/// One u32 entry: the EtherType it applies to and its keys (mask, value, offset).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    /// [`ETH_P_IP`] or [`ETH_P_IPV6`].
    pub ethertype: u16,
    /// Keys in host order; all must match.
    pub keys: Vec<(u32, u32, i32)>,
}

impl Match {
    pub(crate) fn validate(&self, path: &str) -> Result<(), PlanError> {
        if *self == Match::default() {
            return Err(PlanError::new(
                path,
                self,
                "an empty match takes all traffic; that is the default class's job",
                "at least one of src, dst, protocol, src_port, dst_port",
            ));
        }
        if let (Some(src), Some(dst)) = (&self.src, &self.dst)
            && src.0.addr().is_ipv4() != dst.0.addr().is_ipv4()
        {
            return Err(PlanError::new(
                format!("{path}.dst"),
                dst,
                "src and dst are of different address families",
                "two IPv4 or two IPv6 prefixes",
            ));
        }
        if self.families().next().is_none() {
            return Err(PlanError::new(
                format!("{path}.protocol"),
                self.protocol.map(|p| p.to_string()).unwrap_or_default(),
                "this protocol does not exist in the address family of the prefixes",
                "icmp with IPv4 prefixes, icmpv6 with IPv6 prefixes",
            ));
        }
        for (name, port) in [("src_port", &self.src_port), ("dst_port", &self.dst_port)] {
            let Some(port) = port else { continue };
            if !self.protocol.is_some_and(Protocol::has_ports) {
                return Err(PlanError::new(
                    format!("{path}.{name}"),
                    port,
                    "ports need a protocol that has them",
                    "protocol = \"tcp\", \"udp\" or \"sctp\" next to the port",
                ));
            }
        }
        let entries = self.entries().len();
        if entries > MAX_ENTRIES {
            return Err(PlanError::new(
                path,
                self,
                format!("these port ranges need {entries} u32 entries"),
                format!("port ranges that need at most {MAX_ENTRIES} (aligned ranges need one)"),
            ));
        }
        Ok(())
    }

    /// The address families the match applies to.
    fn families(&self) -> impl Iterator<Item = u16> + use<> {
        let by_prefix = self.src.as_ref().or(self.dst.as_ref()).map(|p| {
            if p.0.addr().is_ipv4() {
                ETH_P_IP
            } else {
                ETH_P_IPV6
            }
        });
        let by_protocol = match self.protocol {
            Some(Protocol(1)) => Some(ETH_P_IP),
            Some(Protocol(58)) => Some(ETH_P_IPV6),
            _ => None,
        };
        [ETH_P_IP, ETH_P_IPV6].into_iter().filter(move |f| {
            by_prefix.is_none_or(|p| p == *f) && by_protocol.is_none_or(|p| p == *f)
        })
    }

    /// The u32 filters the match needs: one per address family it covers.
    pub fn filters(&self) -> usize {
        self.families().count()
    }

    /// Whether some packet matches both.
    pub fn overlaps(&self, other: &Match) -> bool {
        let common_family = self.families().any(|f| other.families().any(|g| g == f));
        let prefixes = |a: &Option<Prefix>, b: &Option<Prefix>| match (a, b) {
            (Some(a), Some(b)) => a.0.contains(&b.0) || b.0.contains(&a.0),
            _ => true,
        };
        let ports = |a: &Option<PortRange>, b: &Option<PortRange>| match (a, b) {
            (Some(a), Some(b)) => a.first <= b.last && b.first <= a.last,
            _ => true,
        };
        let protocols = match (self.protocol, other.protocol) {
            (Some(a), Some(b)) => a == b,
            _ => true,
        };
        common_family
            && protocols
            && prefixes(&self.src, &other.src)
            && prefixes(&self.dst, &other.dst)
            && ports(&self.src_port, &other.src_port)
            && ports(&self.dst_port, &other.dst_port)
    }

    /// Whether traffic of `protocol` from `src` to `dst` matches (ports 0 for protocols
    /// without them). This tests addresses and ports only: the header conditions the u32
    /// entries add for packets (no IPv4 options, first fragment) do not apply, so it also
    /// tests a flow, `src` being the end that sent the packets the match is meant for.
    pub fn matches(&self, protocol: Protocol, src: SocketAddr, dst: SocketAddr) -> bool {
        let prefix =
            |p: Option<Prefix>, addr: SocketAddr| p.is_none_or(|p| p.0.contains(&addr.ip()));
        let port = |r: Option<PortRange>, addr: SocketAddr| {
            r.is_none_or(|r| (r.first..=r.last).contains(&addr.port()))
        };
        self.protocol.is_none_or(|p| p == protocol)
            && prefix(self.src, src)
            && prefix(self.dst, dst)
            && port(self.src_port, src)
            && port(self.dst_port, dst)
    }

    /// The u32 entries that together match exactly these packets.
    pub fn entries(&self) -> Vec<Entry> {
        let src_ports = self.src_port.map(PortRange::blocks).unwrap_or(vec![(0, 0)]);
        let dst_ports = self.dst_port.map(PortRange::blocks).unwrap_or(vec![(0, 0)]);
        let mut entries = Vec::new();
        for ethertype in self.families() {
            for &(sport, smask) in &src_ports {
                for &(dport, dmask) in &dst_ports {
                    let ports = (smask != 0 || dmask != 0).then_some((
                        u32::from(smask) << 16 | u32::from(dmask),
                        u32::from(sport) << 16 | u32::from(dport),
                    ));
                    entries.push(Entry {
                        ethertype,
                        keys: self.keys(ethertype, ports),
                    });
                }
            }
        }
        entries
    }

    fn keys(&self, ethertype: u16, ports: Option<(u32, u32)>) -> Vec<(u32, u32, i32)> {
        let mut keys = Vec::new();
        let v4 = ethertype == ETH_P_IP;
        if v4 && ports.is_some() {
            keys.push((0x0f00_0000, 0x0500_0000, 0)); // IHL 5: no options
            keys.push((0x0000_1fff, 0, 4)); // fragment offset 0
        }
        if let Some(Protocol(p)) = self.protocol {
            keys.push(if v4 {
                (0x00ff_0000, u32::from(p) << 16, 8)
            } else {
                (0x0000_ff00, u32::from(p) << 8, 4)
            });
        }
        for (prefix, v4_offset, v6_offset) in [(&self.src, 12, 8), (&self.dst, 16, 24)] {
            let Some(prefix) = prefix else { continue };
            let offset = if v4 { v4_offset } else { v6_offset };
            keys.extend(prefix.keys(offset));
        }
        if let Some((mask, value)) = ports {
            keys.push((mask, value, if v4 { 20 } else { 40 }));
        }
        if keys.is_empty() {
            keys.push((0, 0, 0));
        }
        keys
    }
}

/// An IPv4 or IPv6 prefix; a bare address means the host.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Prefix(pub IpNet);

impl Prefix {
    /// The keys matching this prefix at `offset`: one per 32-bit word with mask bits.
    fn keys(&self, offset: i32) -> Vec<(u32, u32, i32)> {
        let net = self.0.trunc();
        let (addr, mask): (Vec<u8>, Vec<u8>) = match (net.addr(), net.netmask()) {
            (IpAddr::V4(a), IpAddr::V4(m)) => (a.octets().to_vec(), m.octets().to_vec()),
            (IpAddr::V6(a), IpAddr::V6(m)) => (a.octets().to_vec(), m.octets().to_vec()),
            _ => unreachable!("address and netmask share a family"),
        };
        let word = |b: &[u8]| u32::from_be_bytes(b.try_into().expect("4 bytes"));
        addr.chunks(4)
            .zip(mask.chunks(4))
            .enumerate()
            .filter(|(_, (_, m))| word(m) != 0)
            .map(|(i, (a, m))| (word(m), word(a), offset + 4 * i as i32))
            .collect()
    }
}

impl FromStr for Prefix {
    type Err = String;

    fn from_str(text: &str) -> Result<Prefix, String> {
        let net = if text.contains('/') {
            text.parse::<IpNet>().ok()
        } else {
            text.parse::<IpAddr>().ok().map(IpNet::from)
        };
        net.map(|n| Prefix(n.trunc())).ok_or_else(|| {
            format!(
                "'{text}' is not a prefix: use an IPv4 or IPv6 address with an optional /length, \
                 e.g. 198.18.2.0/24 or 2001:db8::1"
            )
        })
    }
}

impl fmt::Display for Prefix {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

impl Serialize for Prefix {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for Prefix {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Prefix, D::Error> {
        String::deserialize(d)?
            .parse()
            .map_err(serde::de::Error::custom)
    }
}

/// An IP protocol number.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Protocol(pub u8);

const PROTOCOLS: [(&str, u8); 5] = [
    ("icmp", 1),
    ("tcp", 6),
    ("udp", 17),
    ("icmpv6", 58),
    ("sctp", 132),
];

impl Protocol {
    fn has_ports(self) -> bool {
        matches!(self.0, 6 | 17 | 132)
    }
}

impl fmt::Display for Protocol {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match PROTOCOLS.iter().find(|(_, n)| *n == self.0) {
            Some((name, _)) => f.write_str(name),
            None => write!(f, "{}", self.0),
        }
    }
}

impl Serialize for Protocol {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match PROTOCOLS.iter().find(|(_, n)| *n == self.0) {
            Some((name, _)) => s.serialize_str(name),
            None => s.serialize_u8(self.0),
        }
    }
}

impl<'de> Deserialize<'de> for Protocol {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Protocol, D::Error> {
        #[derive(Deserialize)]
        #[serde(untagged)]
        enum Raw {
            Number(u8),
            Name(String),
        }
        let expected = "tcp, udp, sctp, icmp, icmpv6, or a protocol number from 0 to 255";
        match Raw::deserialize(d).map_err(|_| serde::de::Error::custom(expected))? {
            Raw::Number(n) => Ok(Protocol(n)),
            Raw::Name(name) => PROTOCOLS
                .iter()
                .find(|(n, _)| name.eq_ignore_ascii_case(n))
                .map(|(_, p)| Protocol(*p))
                .ok_or_else(|| {
                    serde::de::Error::custom(format!("'{name}' is not a protocol: use {expected}"))
                }),
        }
    }
}

/// A port or an inclusive range of ports.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PortRange {
    /// First port.
    pub first: u16,
    /// Last port (equal to `first` for one port).
    pub last: u16,
}

impl PortRange {
    /// The aligned (value, mask) blocks that cover the range exactly, fewest first-to-last.
    pub fn blocks(self) -> Vec<(u16, u16)> {
        let mut blocks = Vec::new();
        let mut next = u32::from(self.first);
        let last = u32::from(self.last);
        while next <= last {
            let mut size = 1u32;
            while next % (size * 2) == 0 && next + size * 2 - 1 <= last && size < 0x10000 {
                size *= 2;
            }
            blocks.push((next as u16, !(size - 1) as u16));
            next += size;
        }
        blocks
    }
}

impl fmt::Display for PortRange {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.first == self.last {
            write!(f, "{}", self.first)
        } else {
            write!(f, "{}-{}", self.first, self.last)
        }
    }
}

impl Serialize for PortRange {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        if self.first == self.last {
            s.serialize_u16(self.first)
        } else {
            s.collect_str(self)
        }
    }
}

impl<'de> Deserialize<'de> for PortRange {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<PortRange, D::Error> {
        #[derive(Deserialize)]
        #[serde(untagged)]
        enum Raw {
            Number(u16),
            Text(String),
        }
        let expected = "a port from 1 to 65535 or a range 'first-last', e.g. 5001 or \"5000-5099\"";
        let range = match Raw::deserialize(d).map_err(|_| serde::de::Error::custom(expected))? {
            Raw::Number(p) => Some(PortRange { first: p, last: p }),
            Raw::Text(text) => {
                let (a, b) = text.split_once('-').unwrap_or((&text, &text));
                match (a.trim().parse(), b.trim().parse()) {
                    (Ok(first), Ok(last)) => Some(PortRange { first, last }),
                    _ => None,
                }
            }
        };
        range
            .filter(|r| r.first >= 1 && r.first <= r.last)
            .ok_or_else(|| serde::de::Error::custom(expected))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn m(json: &str) -> Match {
        serde_json::from_str(json).unwrap()
    }

    /// Whether the keys of `entries` accept a packet whose header words are `words` (offset →
    /// word), as the kernel's u32 classifier compares them.
    fn accepts(entries: &[Entry], ethertype: u16, words: &[(i32, u32)]) -> bool {
        let word_at = |off: i32| words.iter().find(|(o, _)| *o == off).map_or(0, |(_, w)| *w);
        entries.iter().any(|e| {
            e.ethertype == ethertype
                && e.keys
                    .iter()
                    .all(|(mask, value, off)| word_at(*off) & mask == *value)
        })
    }

    #[test]
    fn port_ranges_become_exact_aligned_blocks() {
        assert_eq!(
            PortRange {
                first: 80,
                last: 80
            }
            .blocks(),
            [(80, 0xffff)]
        );
        assert_eq!(
            PortRange {
                first: 5000,
                last: 5007
            }
            .blocks(),
            [(5000, 0xfff8)],
            "an aligned range is one block"
        );
        let blocks = PortRange {
            first: 1000,
            last: 2000,
        }
        .blocks();
        for port in 0..=u16::MAX {
            let covered = blocks.iter().any(|(v, mask)| port & mask == *v);
            assert_eq!(covered, (1000..=2000).contains(&port), "port {port}");
        }
        assert_eq!(
            PortRange {
                first: 1,
                last: 65535
            }
            .blocks()
            .len(),
            16
        );
    }

    #[test]
    fn ipv4_keys_match_the_header_fields() {
        let entries =
            m(r#"{"dst": "198.18.2.0/24", "protocol": "tcp", "dst_port": 5001}"#).entries();
        assert_eq!(entries.len(), 1, "IPv4 only, from the prefix");
        let packet = |dst: u32, proto: u32, dport: u32, ihl: u32| {
            vec![
                (0, 0x4000_0000 | ihl << 24),
                (4, 0x4000),
                (8, proto << 16),
                (16, dst),
                (20, 40000 << 16 | dport),
            ]
        };
        assert!(accepts(
            &entries,
            ETH_P_IP,
            &packet(0xc612_0202, 6, 5001, 5)
        ));
        assert!(
            !accepts(&entries, ETH_P_IP, &packet(0xc612_0302, 6, 5001, 5)),
            "other subnet"
        );
        assert!(
            !accepts(&entries, ETH_P_IP, &packet(0xc612_0202, 17, 5001, 5)),
            "udp"
        );
        assert!(
            !accepts(&entries, ETH_P_IP, &packet(0xc612_0202, 6, 5002, 5)),
            "other port"
        );
        assert!(
            !accepts(&entries, ETH_P_IP, &packet(0xc612_0202, 6, 5001, 6)),
            "IP options"
        );
        assert!(!accepts(
            &entries,
            ETH_P_IPV6,
            &packet(0xc612_0202, 6, 5001, 5)
        ));
    }

    #[test]
    fn matches_without_a_prefix_cover_both_families() {
        let entries = m(r#"{"protocol": "udp", "src_port": "1000-1003"}"#).entries();
        let families: Vec<u16> = entries.iter().map(|e| e.ethertype).collect();
        assert_eq!(families, [ETH_P_IP, ETH_P_IPV6]);
        let v6 = &entries[1].keys;
        assert!(
            v6.contains(&(0x0000_ff00, 17 << 8, 4)),
            "next header {v6:?}"
        );
        assert!(
            v6.contains(&(0xfffc_0000, 1000 << 16, 40)),
            "ports after the fixed header"
        );
    }

    #[test]
    fn ipv6_prefixes_use_one_key_per_word() {
        let entries = m(r#"{"src": "2001:db8:1::/48"}"#).entries();
        assert_eq!(
            entries[0].keys,
            [
                (0xffff_ffff, 0x2001_0db8, 8),
                (0xffff_0000, 0x0001_0000, 12)
            ]
        );
    }

    #[test]
    fn a_flow_matches_when_every_field_given_holds() {
        let (client, server) = (
            "198.18.1.2:40000".parse().unwrap(),
            "198.18.2.2:9001".parse().unwrap(),
        );
        let tcp = Protocol(6);
        let rule = m(r#"{"protocol": "tcp", "dst_port": 9001}"#);
        assert!(rule.matches(tcp, client, server));
        assert!(!rule.matches(Protocol(17), client, server), "protocol");
        assert!(!rule.matches(tcp, server, client), "the other direction");
        let other = "198.18.2.2:9002".parse().unwrap();
        assert!(!rule.matches(tcp, client, other), "another port");
        let range = m(r#"{"protocol": "tcp", "dst_port": "9000-9001", "src": "198.18.1.0/24"}"#);
        assert!(range.matches(tcp, client, server));
        assert!(!range.matches(tcp, client, other), "outside the range");
        let v6 = m(r#"{"dst": "2001:db8::/32"}"#);
        assert!(!v6.matches(tcp, client, server), "another family");
        assert!(v6.matches(tcp, client, "[2001:db8::1]:80".parse().unwrap()));
    }

    #[test]
    fn overlap_needs_every_dimension_to_intersect() {
        let a = m(r#"{"protocol": "tcp", "dst_port": "5000-5010"}"#);
        assert!(a.overlaps(&m(r#"{"protocol": "tcp", "dst_port": 5010}"#)));
        assert!(!a.overlaps(&m(r#"{"protocol": "tcp", "dst_port": 5011}"#)));
        assert!(!a.overlaps(&m(r#"{"protocol": "udp", "dst_port": 5005}"#)));
        assert!(
            a.overlaps(&m(r#"{"dst": "198.18.2.2"}"#)),
            "ports vs prefix"
        );
        let v4 = m(r#"{"src": "198.18.1.0/24"}"#);
        assert!(!v4.overlaps(&m(r#"{"src": "2001:db8::/32"}"#)), "families");
        assert!(v4.overlaps(&m(r#"{"src": "198.18.1.7"}"#)));
        assert!(!v4.overlaps(&m(r#"{"src": "198.18.0.0/24"}"#)));
    }

    #[test]
    fn bad_matches_are_refused_with_the_field() {
        let err = m(r#"{"dst_port": 80}"#).validate("c.match").unwrap_err();
        assert_eq!(err.field, "c.match.dst_port");
        let err = m(r#"{"src": "10.0.0.1", "dst": "::1"}"#)
            .validate("c.match")
            .unwrap_err();
        assert_eq!(err.field, "c.match.dst");
        let err = m(r#"{"src": "2001:db8::1", "protocol": "icmp"}"#)
            .validate("c.match")
            .unwrap_err();
        assert_eq!(err.field, "c.match.protocol");
        assert!(m("{}").validate("c.match").is_err());
        let wide = m(r#"{"protocol": "tcp", "src_port": "1-65535", "dst_port": "3-1000"}"#);
        assert!(
            wide.validate("c.match")
                .unwrap_err()
                .message
                .contains("u32 entries")
        );
        for bad in [
            r#"{"dst_port": "9-3"}"#,
            r#"{"dst_port": 0}"#,
            r#"{"protocol": "tpc"}"#,
            r#"{"src": "10.0.0.300"}"#,
        ] {
            assert!(serde_json::from_str::<Match>(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn matches_round_trip_through_json() {
        let text = r#"{"src":"198.18.1.0/24","protocol":"tcp","dst_port":"5000-5099"}"#;
        assert_eq!(serde_json::to_string(&m(text)).unwrap(), text);
        assert_eq!(
            m(r#"{"src": "198.18.1.9/24"}"#).src.unwrap().to_string(),
            "198.18.1.0/24"
        );
    }
}
