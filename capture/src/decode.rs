//! From a captured frame to the fields flow statistics need: link layer → IP → TCP/UDP/ICMP.
//!
//! [`decode`] never panics and never allocates. A frame that is not IP (ARP, LLDP, …) decodes
//! to `Ok(None)`; a frame whose headers are inconsistent or cut before the transport header
//! decodes to an [`Malformed`] error naming what was wrong.

use std::net::{IpAddr, Ipv6Addr};

use crate::wire::WireError;
use crate::wire::ethernet::{self, Frame, ethertype};
use crate::wire::icmp::{self, IcmpMessage};
use crate::wire::ipv4::Ipv4Packet;
use crate::wire::ipv6::Ipv6Packet;
use crate::wire::sll::CookedHeader;
use crate::wire::tcp::{TcpOptions, TcpSegment};
use crate::wire::udp::{self, UdpDatagram};

/// IP protocol numbers.
pub mod proto {
    /// ICMP.
    pub const ICMP: u8 = 1;
    /// TCP.
    pub const TCP: u8 = 6;
    /// UDP.
    pub const UDP: u8 = 17;
    /// ICMPv6.
    pub const ICMPV6: u8 = 58;
}

/// The link layers a capture can have (pcap `LINKTYPE_*` values).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LinkType {
    /// BSD loopback: a 4-byte address family in the capturing host's byte order.
    Null,
    /// Ethernet II, with optional 802.1Q / QinQ tags.
    Ethernet,
    /// Raw IPv4 or IPv6, version taken from the first nibble.
    Raw,
    /// Raw IPv4.
    Ipv4,
    /// Raw IPv6.
    Ipv6,
    /// Linux cooked capture (SLL).
    LinuxSll,
    /// Linux cooked capture v2 (SLL2).
    LinuxSll2,
}

impl LinkType {
    /// Every link type this crate decodes.
    pub const ALL: [LinkType; 7] = [
        LinkType::Null,
        LinkType::Ethernet,
        LinkType::Raw,
        LinkType::Ipv4,
        LinkType::Ipv6,
        LinkType::LinuxSll,
        LinkType::LinuxSll2,
    ];

    /// The link type of a pcap/pcapng `LINKTYPE_*` value, if supported.
    pub fn from_code(code: i32) -> Option<LinkType> {
        Some(match code {
            0 | 108 => LinkType::Null,
            1 => LinkType::Ethernet,
            12 | 14 | 101 => LinkType::Raw,
            113 => LinkType::LinuxSll,
            228 => LinkType::Ipv4,
            229 => LinkType::Ipv6,
            276 => LinkType::LinuxSll2,
            _ => return None,
        })
    }
}

/// Fragmentation of an IP packet.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fragment {
    /// Not fragmented.
    No,
    /// The first fragment: carries the transport header.
    First,
    /// A later fragment: no transport header, not attributed to a flow.
    Later,
}

/// The transport layer of a packet.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Transport {
    /// A TCP segment.
    Tcp(TcpHeader),
    /// A UDP datagram.
    Udp {
        /// Source port.
        src_port: u16,
        /// Destination port.
        dst_port: u16,
    },
    /// An ICMP or ICMPv6 message.
    Icmp {
        /// Message type.
        msg_type: u8,
        /// Message code.
        code: u8,
    },
    /// Another protocol, or a later fragment.
    Other,
}

/// The TCP fields flow statistics use.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TcpHeader {
    /// Source port.
    pub src_port: u16,
    /// Destination port.
    pub dst_port: u16,
    /// Sequence number.
    pub seq: u32,
    /// Acknowledgment number.
    pub ack: u32,
    /// Flag bits.
    pub flags: u8,
    /// Raw window field.
    pub window: u16,
    /// Options.
    pub options: TcpOptions,
}

/// One decoded IP packet.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Packet {
    /// Source address; IPv4 addresses are stored IPv4-mapped.
    pub src: [u8; 16],
    /// Destination address, stored like `src`.
    pub dst: [u8; 16],
    /// Whether the packet is IPv6.
    pub ipv6: bool,
    /// IP total length from the header, in bytes.
    pub ip_len: u32,
    /// Transport payload length from the headers, in bytes (what a snaplen cut still counts).
    pub payload_len: u32,
    /// TTL or hop limit.
    pub ttl: u8,
    /// IPv4 identification (0 for IPv6).
    pub ip_id: u16,
    /// IP protocol number of the transport layer.
    pub protocol: u8,
    /// Fragmentation.
    pub fragment: Fragment,
    /// The transport header.
    pub transport: Transport,
}

/// Why a frame could not be decoded; counted and skipped.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error(transparent)]
pub struct Malformed(#[from] pub WireError);

/// Converts a stored address back to an [`IpAddr`].
pub fn ip_addr(bytes: [u8; 16], ipv6: bool) -> IpAddr {
    let v6 = Ipv6Addr::from(bytes);
    match (ipv6, v6.to_ipv4_mapped()) {
        (false, Some(v4)) => IpAddr::V4(v4),
        _ => IpAddr::V6(v6),
    }
}

/// Decodes one frame of link type `link`. `Ok(None)` means "not IP".
#[inline(always)]
pub fn decode(link: LinkType, frame: &[u8]) -> Result<Option<Packet>, Malformed> {
    let (ethertype, payload) = match link {
        LinkType::Ethernet => {
            let f = Frame::new_checked(frame)?;
            ethernet::skip_vlan_tags(f.ethertype(), f.payload())?
        }
        LinkType::LinuxSll | LinkType::LinuxSll2 => {
            let h = if link == LinkType::LinuxSll {
                CookedHeader::new_sll(frame)?
            } else {
                CookedHeader::new_sll2(frame)?
            };
            ethernet::skip_vlan_tags(h.protocol(), h.payload())?
        }
        LinkType::Raw => match frame.first().map(|b| b >> 4) {
            Some(4) => (ethertype::IPV4, frame),
            Some(6) => (ethertype::IPV6, frame),
            Some(_) => return Err(WireError::Invalid("raw IP version is neither 4 nor 6").into()),
            None => return Err(WireError::Truncated("raw IP").into()),
        },
        LinkType::Ipv4 => (ethertype::IPV4, frame),
        LinkType::Ipv6 => (ethertype::IPV6, frame),
        LinkType::Null => {
            if frame.len() < 4 {
                return Err(WireError::Truncated("loopback").into());
            }
            // The family is in the capturing host's byte order: accept both.
            let family = u32::from_le_bytes([frame[0], frame[1], frame[2], frame[3]]);
            let family = if family > 0xffff {
                family.swap_bytes()
            } else {
                family
            };
            match family {
                2 => (ethertype::IPV4, &frame[4..]),
                // AF_INET6 differs between BSDs (24, 28, 30) and Linux (10).
                10 | 24 | 28 | 30 => (ethertype::IPV6, &frame[4..]),
                _ => return Ok(None),
            }
        }
    };
    match ethertype {
        ethertype::IPV4 => decode_ipv4(payload).map(Some),
        ethertype::IPV6 => decode_ipv6(payload).map(Some),
        _ => Ok(None),
    }
}

#[inline(always)]
fn decode_ipv4(buf: &[u8]) -> Result<Packet, Malformed> {
    let ip = Ipv4Packet::new_checked(buf)?;
    let fragment = match (ip.frag_offset(), ip.more_fragments()) {
        (0, false) => Fragment::No,
        (0, true) => Fragment::First,
        _ => Fragment::Later,
    };
    let mut packet = Packet {
        src: ip.src().to_ipv6_mapped().octets(),
        dst: ip.dst().to_ipv6_mapped().octets(),
        ipv6: false,
        ip_len: u32::from(ip.total_len()),
        payload_len: u32::from(ip.payload_len()),
        ttl: ip.ttl(),
        ip_id: ip.ident(),
        protocol: ip.protocol(),
        fragment,
        transport: Transport::Other,
    };
    if fragment != Fragment::Later {
        transport(&mut packet, ip.payload())?;
    }
    Ok(packet)
}

#[inline(always)]
fn decode_ipv6(buf: &[u8]) -> Result<Packet, Malformed> {
    let ip = Ipv6Packet::new_checked(buf)?;
    if ip.payload_len() == 0 && ip.next_header() == 0 {
        return Err(WireError::Invalid("IPv6 jumbograms are not supported").into());
    }
    let upper = ip.upper_layer()?;
    let fragment = match (upper.fragment, upper.later_fragment) {
        (false, _) => Fragment::No,
        (true, false) => Fragment::First,
        (true, true) => Fragment::Later,
    };
    let mut packet = Packet {
        src: ip.src().octets(),
        dst: ip.dst().octets(),
        ipv6: true,
        ip_len: ip.total_len(),
        payload_len: ip.total_len() - upper.offset as u32,
        ttl: ip.hop_limit(),
        ip_id: 0,
        protocol: upper.protocol,
        fragment,
        transport: Transport::Other,
    };
    if fragment != Fragment::Later {
        transport(&mut packet, ip.bytes_from(upper.offset))?;
    }
    Ok(packet)
}

/// Decodes the transport header in `buf` and takes its header length off `payload_len`.
#[inline(always)]
fn transport(packet: &mut Packet, buf: &[u8]) -> Result<(), Malformed> {
    let header_len;
    packet.transport = match packet.protocol {
        proto::TCP => {
            let seg = TcpSegment::new_checked(buf)?;
            header_len = seg.header_len();
            Transport::Tcp(TcpHeader {
                src_port: seg.src_port(),
                dst_port: seg.dst_port(),
                seq: seg.seq(),
                ack: seg.ack(),
                flags: seg.flags(),
                window: seg.window(),
                options: seg.options(),
            })
        }
        proto::UDP => {
            let d = UdpDatagram::new_checked(buf)?;
            header_len = udp::HEADER_LEN;
            Transport::Udp {
                src_port: d.src_port(),
                dst_port: d.dst_port(),
            }
        }
        proto::ICMP | proto::ICMPV6 => {
            let m = IcmpMessage::new_checked(buf)?;
            header_len = icmp::HEADER_LEN;
            Transport::Icmp {
                msg_type: m.msg_type(),
                code: m.code(),
            }
        }
        _ => return Ok(()),
    };
    // A first fragment carries only part of the payload; its header still counts.
    packet.payload_len =
        packet
            .payload_len
            .checked_sub(header_len as u32)
            .ok_or(WireError::Invalid(
                "transport header longer than the IP payload",
            ))?;
    Ok(())
}
