//! The running statistics of one direction of a flow, and their conversion to a record.

use crate::decode::TcpHeader;
use crate::flow::seq::{RttMatcher, SeqSpace, seq_lt};
use crate::record::DirectionRecord;
use crate::wire::tcp::flags;

/// What one packet contributes, whatever its protocol.
#[derive(Debug, Clone, Copy)]
pub(crate) struct PacketFacts {
    /// Capture time, ns since the Unix epoch.
    pub ts_ns: u64,
    /// Original frame length.
    pub wire_len: u32,
    /// IP total length.
    pub ip_len: u32,
    /// Transport payload length.
    pub payload_len: u32,
    /// TTL or hop limit.
    pub ttl: u8,
    /// IPv4 identification, `None` for IPv6.
    pub ip_id: Option<u16>,
}

/// What a TCP packet did to the sequence space, for the series.
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct TcpOutcome {
    /// It carried retransmitted bytes.
    pub retransmitted: bool,
}

/// Option flags kept as bits.
mod bit {
    pub const SACK_PERMITTED: u8 = 1;
    pub const TIMESTAMPS: u8 = 2;
    pub const SYN_RETRANSMITTED: u8 = 4;
    pub const ACK_SEEN: u8 = 8;
    pub const LAST_DATA_VALID: u8 = 16;
}

/// Running statistics of one direction. Kept compact: a flow holds two of these.
#[derive(Debug, Clone, Default)]
pub(crate) struct Direction {
    pkts: u64,
    wire_bytes: u64,
    ip_bytes: u64,
    payload_bytes: u64,
    unique_bytes: u64,
    retx_bytes: u64,
    first_ns: u64,
    last_ns: u64,
    first_payload_ns: u64,
    last_payload_ns: u64,
    /// Time of this direction's first SYN, 0 if none.
    syn_ns: u64,
    size_sum_sq: f64,
    iat_sum_sq_us: f64,
    iat_min_ns: u64,
    iat_max_ns: u64,
    data_pkts: u32,
    retx_pkts: u32,
    ooo_pkts: u32,
    dup_pkts: u32,
    dup_ack_pkts: u32,
    syn_pkts: u32,
    fin_pkts: u32,
    rst_pkts: u32,
    ack_pkts: u32,
    psh_pkts: u32,
    pure_ack_pkts: u32,
    zero_win_pkts: u32,
    sack_pkts: u32,
    size_min: u32,
    size_max: u32,
    seg_min: u32,
    seg_max: u32,
    rwin_min: u32,
    rwin_max: u32,
    inflight_max: u32,
    /// Handshake RTT in µs + 1 (0: none).
    rtt_handshake_us: u32,
    isn: u32,
    /// Highest ACK number this direction sent.
    high_ack: u32,
    last_ack: u32,
    last_data_seq: u32,
    last_win: u16,
    last_data_len: u16,
    last_data_ip_id: u16,
    mss: u16,
    /// Window scale + 1 (0: no option seen).
    wscale: u8,
    ttl_min: u8,
    ttl_max: u8,
    bits: u8,
    seq: SeqSpace,
    rtt: RttMatcher,
}

impl Direction {
    /// Time of the last packet, ns since the epoch (0 if none).
    pub fn last_ns(&self) -> u64 {
        self.last_ns
    }

    /// Counts what every packet contributes.
    pub fn packet(&mut self, p: &PacketFacts) {
        if self.pkts == 0 {
            self.first_ns = p.ts_ns;
            self.ttl_min = p.ttl;
            self.size_min = p.ip_len;
            self.iat_min_ns = u64::MAX;
            self.rwin_min = u32::MAX;
        } else {
            let iat = p.ts_ns.saturating_sub(self.last_ns);
            self.iat_min_ns = self.iat_min_ns.min(iat);
            self.iat_max_ns = self.iat_max_ns.max(iat);
            let iat_us = iat as f64 / 1e3;
            self.iat_sum_sq_us += iat_us * iat_us;
        }
        self.pkts += 1;
        self.last_ns = self.last_ns.max(p.ts_ns);
        self.wire_bytes += u64::from(p.wire_len);
        self.ip_bytes += u64::from(p.ip_len);
        self.payload_bytes += u64::from(p.payload_len);
        self.ttl_min = self.ttl_min.min(p.ttl);
        self.ttl_max = self.ttl_max.max(p.ttl);
        self.size_min = self.size_min.min(p.ip_len);
        self.size_max = self.size_max.max(p.ip_len);
        self.size_sum_sq += f64::from(p.ip_len) * f64::from(p.ip_len);
        if p.payload_len > 0 {
            if self.data_pkts == 0 {
                self.first_payload_ns = p.ts_ns;
                self.seg_min = p.payload_len;
            }
            self.data_pkts += 1;
            self.last_payload_ns = p.ts_ns;
            self.seg_min = self.seg_min.min(p.payload_len);
            self.seg_max = self.seg_max.max(p.payload_len);
        }
    }

    /// Analyses a TCP packet this direction sent; `other` is the receiving direction.
    /// `now_us` is the time since the flow's first packet.
    pub fn tcp(
        &mut self,
        other: &mut Direction,
        h: &TcpHeader,
        p: &PacketFacts,
        now_us: u32,
    ) -> TcpOutcome {
        let mut outcome = TcpOutcome::default();
        let f = h.flags;
        let has = |flag: u8| f & flag != 0;
        let len = p.payload_len;
        self.syn_pkts += u32::from(has(flags::SYN));
        self.fin_pkts += u32::from(has(flags::FIN));
        self.rst_pkts += u32::from(has(flags::RST));
        self.ack_pkts += u32::from(has(flags::ACK));
        self.psh_pkts += u32::from(has(flags::PSH));
        let control = has(flags::SYN) || has(flags::FIN) || has(flags::RST);
        if has(flags::ACK) && len == 0 && !control {
            self.pure_ack_pkts += 1;
        }
        if h.options.sack_blocks > 0 {
            self.sack_pkts += 1;
        }
        if h.options.timestamps.is_some() {
            self.bits |= bit::TIMESTAMPS;
        }
        if has(flags::SYN) {
            self.syn(h, p.ts_ns);
        }
        if !has(flags::RST) {
            self.window(other, h);
        }
        if has(flags::ACK)
            && len == 0
            && !control
            && h.window != 0
            && self.bits & bit::ACK_SEEN != 0
            && h.ack == self.last_ack
            && h.window == self.last_win
            && self.seq.high().is_none_or(|high| high == h.seq)
        {
            self.dup_ack_pkts += 1;
        }
        if len > 0 {
            outcome.retransmitted = self.data(other, h.seq, len, p.ip_id, now_us);
        }
        if has(flags::ACK) {
            self.ack(other, h.ack, p.ts_ns, now_us);
        }
        self.last_ack = h.ack;
        self.last_win = h.window;
        outcome
    }

    fn syn(&mut self, h: &TcpHeader, ts_ns: u64) {
        if self.syn_ns == 0 {
            self.syn_ns = ts_ns;
            self.isn = h.seq;
            self.seq.start(h.seq.wrapping_add(1));
        } else {
            self.bits |= bit::SYN_RETRANSMITTED;
        }
        let o = &h.options;
        if let Some(mss) = o.mss {
            self.mss = mss;
        }
        if let Some(ws) = o.wscale {
            self.wscale = ws.min(14) + 1;
        }
        if o.sack_permitted {
            self.bits |= bit::SACK_PERMITTED;
        }
    }

    fn window(&mut self, other: &Direction, h: &TcpHeader) {
        let scaled = h.flags & flags::SYN == 0 && self.wscale > 0 && other.wscale > 0;
        let win = if scaled {
            u32::from(h.window) << (self.wscale - 1)
        } else {
            u32::from(h.window)
        };
        self.rwin_min = self.rwin_min.min(win);
        self.rwin_max = self.rwin_max.max(win);
        if win == 0 {
            self.zero_win_pkts += 1;
        }
    }

    /// Classifies `len` payload bytes at `seq`; returns whether some were retransmitted.
    fn data(
        &mut self,
        other: &Direction,
        seq: u32,
        len: u32,
        ip_id: Option<u16>,
        now_us: u32,
    ) -> bool {
        let short_len = len.min(u32::from(u16::MAX)) as u16;
        if let Some(id) = ip_id {
            let same = self.bits & bit::LAST_DATA_VALID != 0
                && self.last_data_seq == seq
                && self.last_data_len == short_len
                && self.last_data_ip_id == id;
            if same {
                self.dup_pkts += 1;
                return false;
            }
            self.last_data_ip_id = id;
            self.bits |= bit::LAST_DATA_VALID;
        }
        self.last_data_seq = seq;
        self.last_data_len = short_len;
        let class = self.seq.segment(seq, len);
        let end = seq.wrapping_add(len);
        self.unique_bytes += u64::from(class.new_bytes);
        self.retx_bytes += u64::from(class.retx_bytes);
        if class.retx_bytes > 0 {
            self.retx_pkts += 1;
            self.rtt.retransmitted(seq, end);
        }
        if class.out_of_sequence {
            self.ooo_pkts += 1;
        }
        if class.retx_bytes > 0 || class.out_of_sequence {
            self.rtt.repaired(seq, end, now_us);
        }
        if class.advanced {
            self.rtt.sent(end, now_us);
        }
        if let Some(high) = self.seq.high() {
            let una = if other.bits & bit::ACK_SEEN != 0 {
                other.high_ack
            } else {
                self.isn.wrapping_add(1)
            };
            if seq_lt(una, high) {
                self.inflight_max = self.inflight_max.max(high.wrapping_sub(una));
            }
        }
        class.retx_bytes > 0
    }

    /// This direction acknowledges `ack` of the other direction's sequence space.
    fn ack(&mut self, other: &mut Direction, ack: u32, ts_ns: u64, now_us: u32) {
        other.rtt.acked(ack, now_us);
        if other.syn_ns != 0
            && other.rtt_handshake_us == 0
            && other.bits & bit::SYN_RETRANSMITTED == 0
            && ack == other.isn.wrapping_add(1)
        {
            let us = ts_ns.saturating_sub(other.syn_ns) / 1000;
            other.rtt_handshake_us = us.min(u64::from(u32::MAX - 1)) as u32 + 1;
        }
        if self.bits & bit::ACK_SEEN == 0 || seq_lt(self.high_ack, ack) {
            self.high_ack = ack;
        }
        self.bits |= bit::ACK_SEEN;
    }

    /// Whether this direction's SYN was acknowledged (handshake RTT measured or SYN resent
    /// and then acknowledged is not distinguished: only the clean case counts).
    pub fn syn_acked(&self) -> bool {
        self.rtt_handshake_us != 0
    }

    /// Whether this direction sent a SYN.
    pub fn syn_seen(&self) -> bool {
        self.syn_ns != 0
    }

    /// The record of this direction; `tcp` selects whether TCP columns are filled.
    pub fn record(&self, flow_first_ns: u64, tcp: bool) -> DirectionRecord {
        let n = self.pkts;
        let ms_since = |ns: u64| (ns.saturating_sub(flow_first_ns)) as f64 / 1e6;
        let some = |v: u32| tcp.then_some(u64::from(v));
        let flag = |b: u8| tcp.then_some(self.bits & b != 0);
        let any = n > 0;
        let data = self.data_pkts > 0;
        let iats = n.saturating_sub(1);
        let size_mean = self.ip_bytes as f64 / n as f64;
        let iat_mean_us = (self.last_ns - self.first_ns) as f64 / 1e3 / iats as f64;
        let rtt = &self.rtt;
        let rtt_mean_us = rtt.sum_us as f64 / f64::from(rtt.samples);
        let sampled = tcp && rtt.samples > 0;
        let windows = tcp && self.rwin_min <= self.rwin_max;
        DirectionRecord {
            pkts: n,
            wire_bytes: self.wire_bytes,
            ip_bytes: self.ip_bytes,
            payload_bytes: self.payload_bytes,
            data_pkts: u64::from(self.data_pkts),
            unique_bytes: tcp.then_some(self.unique_bytes),
            retx_pkts: some(self.retx_pkts),
            retx_bytes: tcp.then_some(self.retx_bytes),
            out_of_seq_pkts: some(self.ooo_pkts),
            dup_pkts: some(self.dup_pkts),
            dup_ack_pkts: some(self.dup_ack_pkts),
            syn_pkts: some(self.syn_pkts),
            fin_pkts: some(self.fin_pkts),
            rst_pkts: some(self.rst_pkts),
            ack_pkts: some(self.ack_pkts),
            psh_pkts: some(self.psh_pkts),
            pure_ack_pkts: some(self.pure_ack_pkts),
            rtt_samples: some(rtt.samples),
            rtt_min_ms: sampled.then(|| f64::from(rtt.min_us) / 1e3),
            rtt_avg_ms: sampled.then(|| rtt_mean_us / 1e3),
            rtt_max_ms: sampled.then(|| f64::from(rtt.max_us) / 1e3),
            rtt_std_ms: sampled
                .then(|| std_dev(rtt.sum_sq_us / f64::from(rtt.samples), rtt_mean_us) / 1e3),
            rtt_handshake_ms: (tcp && self.rtt_handshake_us > 0)
                .then(|| f64::from(self.rtt_handshake_us - 1) / 1e3),
            ttl_min: any.then_some(self.ttl_min),
            ttl_max: any.then_some(self.ttl_max),
            mss_bytes: (tcp && self.mss > 0).then_some(u64::from(self.mss)),
            win_scale: (tcp && self.wscale > 0).then(|| self.wscale - 1),
            sack_permitted: flag(bit::SACK_PERMITTED),
            sack_pkts: some(self.sack_pkts),
            timestamps: flag(bit::TIMESTAMPS),
            rwin_min_bytes: windows.then_some(u64::from(self.rwin_min)),
            rwin_max_bytes: windows.then_some(u64::from(self.rwin_max)),
            rwin_zero_pkts: some(self.zero_win_pkts),
            seg_min_bytes: data.then_some(u64::from(self.seg_min)),
            seg_max_bytes: data.then_some(u64::from(self.seg_max)),
            inflight_max_bytes: some(self.inflight_max),
            first_pkt_ms: any.then(|| ms_since(self.first_ns)),
            last_pkt_ms: any.then(|| ms_since(self.last_ns)),
            first_payload_ms: data.then(|| ms_since(self.first_payload_ns)),
            last_payload_ms: data.then(|| ms_since(self.last_payload_ns)),
            pkt_size_min_bytes: any.then_some(u64::from(self.size_min)),
            pkt_size_mean_bytes: any.then_some(size_mean),
            pkt_size_std_bytes: any.then(|| std_dev(self.size_sum_sq / n as f64, size_mean)),
            pkt_size_max_bytes: any.then_some(u64::from(self.size_max)),
            iat_min_ms: (iats > 0).then(|| self.iat_min_ns as f64 / 1e6),
            iat_mean_ms: (iats > 0).then(|| iat_mean_us / 1e3),
            iat_std_ms: (iats > 0)
                .then(|| std_dev(self.iat_sum_sq_us / iats as f64, iat_mean_us) / 1e3),
            iat_max_ms: (iats > 0).then(|| self.iat_max_ns as f64 / 1e6),
        }
    }
}

/// Population standard deviation from the mean of squares and the mean.
fn std_dev(mean_sq: f64, mean: f64) -> f64 {
    (mean_sq - mean * mean).max(0.0).sqrt()
}
