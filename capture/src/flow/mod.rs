//! Bidirectional flows: the 5-tuple key, the client/server orientation, and the per-flow state
//! (two [`direction::Direction`]s and an optional time series).

pub(crate) mod direction;
pub(crate) mod seq;

use crate::decode::{self, Packet, Transport, proto};
use crate::record::{FlowColumns, FlowRecord, SeriesRow};
use crate::wire::tcp::flags;
use direction::{Direction, PacketFacts};

/// The 5-tuple of a flow, the same for both directions: the endpoint that sorts first is `a`.
/// Addresses are kept as big-endian integers: they compare like the bytes, and compare and
/// hash in two machine words.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub(crate) struct FlowKey {
    a: u128,
    b: u128,
    a_port: u16,
    b_port: u16,
    protocol: u8,
    ipv6: bool,
}

impl FlowKey {
    /// The key of `p` and whether `p` was sent by endpoint `a`.
    pub fn of(p: &Packet) -> (FlowKey, bool) {
        let (sport, dport) = match p.transport {
            Transport::Tcp(h) => (h.src_port, h.dst_port),
            Transport::Udp { src_port, dst_port } => (src_port, dst_port),
            Transport::Icmp { .. } | Transport::Other => (0, 0),
        };
        let src = (u128::from_be_bytes(p.src), sport);
        let dst = (u128::from_be_bytes(p.dst), dport);
        let from_a = src <= dst;
        let ((a, a_port), (b, b_port)) = if from_a { (src, dst) } else { (dst, src) };
        let key = FlowKey {
            a,
            b,
            a_port,
            b_port,
            protocol: p.protocol,
            ipv6: p.ipv6,
        };
        (key, from_a)
    }

    /// Whether the flow is TCP.
    pub fn is_tcp(&self) -> bool {
        self.protocol == proto::TCP
    }
}

/// Why a flow record was written.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum CloseReason {
    Fin,
    Rst,
    Idle,
    Evicted,
    End,
    Active,
}

impl CloseReason {
    fn as_str(self) -> &'static str {
        match self {
            CloseReason::Fin => "fin",
            CloseReason::Rst => "rst",
            CloseReason::Idle => "idle",
            CloseReason::Evicted => "evicted",
            CloseReason::End => "end",
            CloseReason::Active => "active",
        }
    }
}

/// Traffic of one flow in one time bin; index 0 is client → server.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct Bin {
    /// Bin number since the capture's first bin.
    pub index: u32,
    pub pkts: [u32; 2],
    pub retx_pkts: [u32; 2],
    pub ip_bytes: [u64; 2],
}

impl Bin {
    /// Counts one packet of direction `dir` (0 c2s, 1 s2c).
    pub fn add(&mut self, dir: usize, ip_len: u32, retransmitted: bool) {
        self.pkts[dir] += 1;
        self.ip_bytes[dir] += u64::from(ip_len);
        self.retx_pkts[dir] += u32::from(retransmitted);
    }

    /// The bin as a series row.
    pub fn row(&self, flow_id: Option<u64>, first_bin: u64, bin_ns: u64) -> SeriesRow {
        SeriesRow {
            flow_id,
            bin_start_unix_s: (first_bin + u64::from(self.index)) as f64 * bin_ns as f64 / 1e9,
            bin_s: bin_ns as f64 / 1e9,
            c2s_pkts: u64::from(self.pkts[0]),
            c2s_ip_bytes: self.ip_bytes[0],
            c2s_retx_pkts: u64::from(self.retx_pkts[0]),
            s2c_pkts: u64::from(self.pkts[1]),
            s2c_ip_bytes: self.ip_bytes[1],
            s2c_retx_pkts: u64::from(self.retx_pkts[1]),
        }
    }
}

/// The state of one flow.
#[derive(Debug, Clone)]
pub(crate) struct Flow {
    pub id: u64,
    pub first_ns: u64,
    /// Whether endpoint `a` of the key is the client.
    client_is_a: bool,
    /// FIN seen from the client (bit 0) and from the server (bit 1).
    fins: u8,
    rst: bool,
    c2s: Direction,
    s2c: Direction,
    /// Non-empty bins, in time order (only when series are on).
    pub series: Vec<Bin>,
}

impl Flow {
    /// A new flow whose first packet is `p`, sent by endpoint `a` if `from_a`.
    pub fn new(id: u64, p: &Packet, from_a: bool, ts_ns: u64) -> Flow {
        // The client sends the SYN; a SYN/ACK seen first comes from the server.
        let sender_is_client = match p.transport {
            Transport::Tcp(h) => h.flags & (flags::SYN | flags::ACK) != (flags::SYN | flags::ACK),
            _ => true,
        };
        Flow {
            id,
            first_ns: ts_ns,
            client_is_a: from_a == sender_is_client,
            fins: 0,
            rst: false,
            c2s: Direction::default(),
            s2c: Direction::default(),
            series: Vec::new(),
        }
    }

    /// Whether the flow has ended (FIN from both sides, or RST).
    pub fn is_closed(&self) -> bool {
        self.rst || self.fins == 3
    }

    /// Whether the flow was closed by a RST.
    pub fn is_closed_by_rst(&self) -> bool {
        self.rst
    }

    /// Time of the last packet.
    pub fn last_ns(&self) -> u64 {
        self.c2s.last_ns().max(self.s2c.last_ns())
    }

    /// Whether a new SYN (not a retransmission) starts a new connection on this 5-tuple.
    pub fn reopened_by(&self, p: &Packet) -> bool {
        matches!(p.transport, Transport::Tcp(h)
            if h.flags & (flags::SYN | flags::ACK) == flags::SYN && self.is_closed())
    }

    /// Counts packet `p` sent by endpoint `a` if `from_a`; returns (direction index,
    /// retransmitted) for the series.
    pub fn packet(&mut self, p: &Packet, from_a: bool, ts_ns: u64, wire_len: u32) -> (usize, bool) {
        let from_client = from_a == self.client_is_a;
        let facts = PacketFacts {
            ts_ns,
            wire_len,
            ip_len: p.ip_len,
            payload_len: p.payload_len,
            ttl: p.ttl,
            ip_id: (!p.ipv6).then_some(p.ip_id),
        };
        let (this, other) = if from_client {
            (&mut self.c2s, &mut self.s2c)
        } else {
            (&mut self.s2c, &mut self.c2s)
        };
        this.packet(&facts);
        let mut retransmitted = false;
        if let Transport::Tcp(h) = &p.transport {
            let now_us = (ts_ns.saturating_sub(self.first_ns) / 1000) as u32;
            retransmitted = this.tcp(other, h, &facts, now_us).retransmitted;
            if h.flags & flags::FIN != 0 {
                self.fins |= if from_client { 1 } else { 2 };
            }
            self.rst |= h.flags & flags::RST != 0;
        }
        (usize::from(!from_client), retransmitted)
    }

    /// The flow's record.
    pub fn record(&self, key: &FlowKey, reason: CloseReason) -> FlowRecord {
        let tcp = key.is_tcp();
        let (client, server) = if self.client_is_a {
            ((key.a, key.a_port), (key.b, key.b_port))
        } else {
            ((key.b, key.b_port), (key.a, key.a_port))
        };
        let last_ns = self.last_ns();
        FlowRecord {
            flow: FlowColumns {
                flow_id: self.id,
                protocol: protocol_name(key.protocol, key.ipv6),
                ip_version: if key.ipv6 { 6 } else { 4 },
                client_ip: Some(decode::ip_addr(client.0.to_be_bytes(), key.ipv6)),
                client_port: client.1,
                server_ip: Some(decode::ip_addr(server.0.to_be_bytes(), key.ipv6)),
                server_port: server.1,
                first_unix_s: self.first_ns as f64 / 1e9,
                last_unix_s: last_ns as f64 / 1e9,
                duration_s: last_ns.saturating_sub(self.first_ns) as f64 / 1e9,
                close_reason: reason.as_str().to_string(),
                syn_seen: tcp.then(|| self.c2s.syn_seen()),
                handshake_complete: tcp.then(|| self.c2s.syn_acked() && self.s2c.syn_acked()),
            },
            c2s: self.c2s.record(self.first_ns, tcp),
            s2c: self.s2c.record(self.first_ns, tcp),
        }
    }

    /// Counts a packet into the bin `index`.
    pub fn bin(&mut self, index: u32, dir: usize, ip_len: u32, retransmitted: bool) {
        match self.series.last_mut() {
            // A timestamp that went backwards counts into the latest bin.
            Some(last) if last.index >= index => last.add(dir, ip_len, retransmitted),
            _ => {
                let mut bin = Bin {
                    index,
                    ..Bin::default()
                };
                bin.add(dir, ip_len, retransmitted);
                self.series.push(bin);
            }
        }
    }
}

fn protocol_name(protocol: u8, ipv6: bool) -> String {
    match (protocol, ipv6) {
        (proto::TCP, _) => "tcp".into(),
        (proto::UDP, _) => "udp".into(),
        (proto::ICMP, false) => "icmp".into(),
        (proto::ICMPV6, true) => "icmpv6".into(),
        (n, _) => n.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn per_flow_state_stays_within_one_kilobyte() {
        let kept = 2 * seq::PENDING_KEPT * std::mem::size_of::<seq::Pending>();
        let entry = std::mem::size_of::<FlowKey>() + std::mem::size_of::<Flow>() + kept;
        assert!(
            entry <= 1024,
            "key + flow state + kept RTT room is {entry} bytes"
        );
    }
}
