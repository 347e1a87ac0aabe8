//! Kernel tc structures that netlink-packet-route has no types for (HTB, TBF, netem, the byte
//! fifo, and the parts of dumps we read back), encoded and decoded byte for byte as
//! `linux/pkt_sched.h` and `linux/gen_stats.h` lay them out.
//!
//! Contract: every encoder returns the *value* of a `TCA_OPTIONS` attribute; every decoder takes
//! such a value (or a nested attribute's value) and never panics: input that is too short gives
//! `None`. The tests compare the encoders with the bytes iproute2's `tc` sends for the same
//! command, captured by `tests/fixtures/capture-tc.sh`.
//!
//! Times in these structures are psched ticks of 64 ns (`PSCHED_SHIFT` = 6; `/proc/net/psched`
//! says 1000 ns per µs and 64 ns per tick). Rates are bytes per second.

use std::time::Duration;

/// `TCA_OPTIONS`, the attribute holding a qdisc's or class's options.
pub const TCA_OPTIONS: u16 = 2;
/// `TCA_STATS2`, the nested statistics of a dump.
pub const TCA_STATS2: u16 = 7;
/// `TCA_KIND`, the qdisc, class or filter kind as a C string.
pub const TCA_KIND: u16 = 1;

const TCA_HTB_PARMS: u16 = 1;
const TCA_HTB_INIT: u16 = 2;
const TCA_HTB_RATE64: u16 = 6;
const TCA_HTB_CEIL64: u16 = 7;
const TCA_TBF_PARMS: u16 = 1;
const TCA_TBF_RATE64: u16 = 4;
const TCA_TBF_BURST: u16 = 6;
const TCA_STATS_BASIC: u16 = 1;
const TCA_STATS_QUEUE: u16 = 3;
const TCA_U32_CLASSID: u16 = 1;
const TCA_U32_SEL: u16 = 5;
const TCA_U32_ACT: u16 = 7;
const TCA_ACT_KIND: u16 = 1;
const TCA_ACT_OPTIONS: u16 = 2;
const TCA_MIRRED_PARMS: u16 = 2;
/// `TC_LINKLAYER_ETHERNET`: with it the kernel computes transmit times itself and needs no
/// 1 KiB rate tables (which `tc` still sends).
const TC_LINKLAYER_ETHERNET: u8 = 1;
/// HTB's `TC_HTB_PROTOVER`.
const HTB_VERSION: u32 = 3;
/// Length of a psched tick.
pub const PSCHED_TICK_NS: u64 = 64;
/// The largest value a 32-bit rate field holds; above it the 64-bit attributes carry the rate.
const RATE32_MAX: u64 = u32::MAX as u64;
/// `sizeof(struct tc_ratespec)`.
const RATESPEC_LEN: usize = 12;
/// `sizeof(struct tc_htb_opt)`.
const HTB_OPT_LEN: usize = 2 * RATESPEC_LEN + 5 * 4;
/// `sizeof(struct tc_netem_qopt)`.
const NETEM_QOPT_LEN: usize = 6 * 4;

/// The psched ticks it takes to send `bytes` at `rate_bytes` per second, rounded down; `None`
/// if that does not fit the kernel's 32-bit fields (about 274 s) or the rate is 0.
pub fn ticks(bytes: u64, rate_bytes: u64) -> Option<u32> {
    if rate_bytes == 0 {
        return None;
    }
    let ns = u128::from(bytes) * 1_000_000_000 / u128::from(rate_bytes);
    u32::try_from(ns / u128::from(PSCHED_TICK_NS)).ok()
}

/// The bytes sent in `ticks` psched ticks at `rate_bytes` per second, rounded to the nearest
/// (the inverse of [`ticks`], for showing a burst read back from the kernel).
pub fn bytes_in_ticks(ticks: u32, rate_bytes: u64) -> u64 {
    ((u128::from(ticks) * u128::from(PSCHED_TICK_NS) * u128::from(rate_bytes) + 500_000_000)
        / 1_000_000_000) as u64
}

/// Ticks for a duration, saturating at the 32-bit limit.
pub fn duration_ticks(duration: Duration) -> u32 {
    u32::try_from(duration.as_nanos() / u128::from(PSCHED_TICK_NS)).unwrap_or(u32::MAX)
}

/// Appends one netlink attribute (header, value, padding to 4 bytes).
pub fn push_nla(out: &mut Vec<u8>, kind: u16, value: &[u8]) {
    let len = 4 + value.len();
    out.extend_from_slice(&(len as u16).to_ne_bytes());
    out.extend_from_slice(&kind.to_ne_bytes());
    out.extend_from_slice(value);
    out.resize(out.len() + (4 - len % 4) % 4, 0);
}

/// The attributes in `bytes` as (kind without flags, value); stops at the first malformed one.
pub fn nlas(mut bytes: &[u8]) -> impl Iterator<Item = (u16, &[u8])> {
    std::iter::from_fn(move || {
        if bytes.len() < 4 {
            return None;
        }
        let len = usize::from(u16::from_ne_bytes([bytes[0], bytes[1]]));
        let kind = u16::from_ne_bytes([bytes[2], bytes[3]]) & 0x3fff;
        if len < 4 || len > bytes.len() {
            return None;
        }
        let value = &bytes[4..len];
        bytes = &bytes[((len + 3) & !3).min(bytes.len())..];
        Some((kind, value))
    })
}

fn nla_value(bytes: &[u8], kind: u16) -> Option<&[u8]> {
    nlas(bytes).find(|(k, _)| *k == kind).map(|(_, v)| v)
}

fn u32_at(bytes: &[u8], offset: usize) -> Option<u32> {
    Some(u32::from_ne_bytes(
        bytes.get(offset..offset + 4)?.try_into().ok()?,
    ))
}

fn u64_at(bytes: &[u8], offset: usize) -> Option<u64> {
    Some(u64::from_ne_bytes(
        bytes.get(offset..offset + 8)?.try_into().ok()?,
    ))
}

/// `struct tc_ratespec` for `rate_bytes`, as `tc` fills it (cell_log 3 and cell_align -1 only
/// describe the rate table `tc` adds; the kernel ignores them with the Ethernet link layer).
fn ratespec(out: &mut Vec<u8>, rate_bytes: u64) {
    out.push(3); // cell_log
    out.push(TC_LINKLAYER_ETHERNET);
    out.extend_from_slice(&0u16.to_ne_bytes()); // overhead
    out.extend_from_slice(&(-1i16).to_ne_bytes()); // cell_align
    out.extend_from_slice(&0u16.to_ne_bytes()); // mpu
    out.extend_from_slice(&(rate_bytes.min(RATE32_MAX) as u32).to_ne_bytes());
}

/// The options of an HTB qdisc (`TCA_HTB_INIT`, `struct tc_htb_glob`).
pub fn htb_qdisc(default_minor: u16, r2q: u32) -> Vec<u8> {
    let mut glob = Vec::with_capacity(20);
    for field in [HTB_VERSION, r2q, u32::from(default_minor), 0, 0] {
        glob.extend_from_slice(&field.to_ne_bytes());
    }
    let mut out = Vec::new();
    push_nla(&mut out, TCA_HTB_INIT, &glob);
    out
}

/// The default class of an HTB qdisc's options, if they are HTB's.
pub fn htb_qdisc_default(options: &[u8]) -> Option<u16> {
    let glob = nla_value(options, TCA_HTB_INIT)?;
    u32_at(glob, 8).map(|d| d as u16)
}

/// The parameters of an HTB class (`struct tc_htb_opt` plus the 64-bit rates).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HtbClass {
    /// Guaranteed rate, bytes per second.
    pub rate_bytes: u64,
    /// Ceiling rate, bytes per second.
    pub ceil_bytes: u64,
    /// Burst at the rate, in ticks.
    pub buffer_ticks: u32,
    /// Burst at the ceiling, in ticks.
    pub cbuffer_ticks: u32,
    /// Bytes served per round when siblings share excess bandwidth.
    pub quantum: u32,
    /// Priority among siblings for excess bandwidth (0 is first).
    pub prio: u32,
    /// 0 for a leaf class; only read back, never sent.
    pub level: u32,
}

impl HtbClass {
    /// The class's options: `TCA_HTB_RATE64`/`TCA_HTB_CEIL64` when a rate exceeds 32 bits (the
    /// 32-bit field then holds `u32::MAX`, as `tc` sends it), then `TCA_HTB_PARMS`.
    pub fn encode(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(80);
        if self.rate_bytes > RATE32_MAX {
            push_nla(&mut out, TCA_HTB_RATE64, &self.rate_bytes.to_ne_bytes());
        }
        if self.ceil_bytes > RATE32_MAX {
            push_nla(&mut out, TCA_HTB_CEIL64, &self.ceil_bytes.to_ne_bytes());
        }
        let mut opt = Vec::with_capacity(HTB_OPT_LEN);
        ratespec(&mut opt, self.rate_bytes);
        ratespec(&mut opt, self.ceil_bytes);
        for field in [
            self.buffer_ticks,
            self.cbuffer_ticks,
            self.quantum,
            0, // level: the kernel computes it
            self.prio,
        ] {
            opt.extend_from_slice(&field.to_ne_bytes());
        }
        push_nla(&mut out, TCA_HTB_PARMS, &opt);
        out
    }

    /// Reads a class's options as dumped by the kernel.
    pub fn decode(options: &[u8]) -> Option<HtbClass> {
        let opt = nla_value(options, TCA_HTB_PARMS)?;
        if opt.len() < HTB_OPT_LEN {
            return None;
        }
        let rate32 = u32_at(opt, 8)?;
        let ceil32 = u32_at(opt, RATESPEC_LEN + 8)?;
        let rate64 = nla_value(options, TCA_HTB_RATE64).and_then(|v| u64_at(v, 0));
        let ceil64 = nla_value(options, TCA_HTB_CEIL64).and_then(|v| u64_at(v, 0));
        let base = 2 * RATESPEC_LEN;
        Some(HtbClass {
            rate_bytes: rate64.unwrap_or(u64::from(rate32)),
            ceil_bytes: ceil64.unwrap_or(u64::from(ceil32)),
            buffer_ticks: u32_at(opt, base)?,
            cbuffer_ticks: u32_at(opt, base + 4)?,
            quantum: u32_at(opt, base + 8)?,
            level: u32_at(opt, base + 12)?,
            prio: u32_at(opt, base + 16)?,
        })
    }
}

/// The options of a byte fifo (`struct tc_fifo_qopt`, not nested).
pub fn bfifo(limit_bytes: u32) -> Vec<u8> {
    limit_bytes.to_ne_bytes().to_vec()
}

/// The limit of a byte or packet fifo's options.
pub fn fifo_limit(options: &[u8]) -> Option<u32> {
    u32_at(options, 0)
}

/// The parameters of a token bucket filter (`struct tc_tbf_qopt` and friends).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Tbf {
    /// Rate, bytes per second.
    pub rate_bytes: u64,
    /// Bucket size, bytes.
    pub burst_bytes: u32,
    /// Queue limit, bytes.
    pub limit_bytes: u32,
}

impl Tbf {
    /// `TCA_TBF_PARMS`, `TCA_TBF_BURST`, and `TCA_TBF_RATE64` above 32-bit rates; `None` if the
    /// burst takes longer than the 32-bit tick field holds.
    pub fn encode(&self) -> Option<Vec<u8>> {
        let mut parms = Vec::with_capacity(36);
        ratespec(&mut parms, self.rate_bytes);
        parms.extend_from_slice(&[0; RATESPEC_LEN]); // no peak rate
        parms.extend_from_slice(&self.limit_bytes.to_ne_bytes());
        let buffer = ticks(u64::from(self.burst_bytes), self.rate_bytes)?;
        parms.extend_from_slice(&buffer.to_ne_bytes());
        parms.extend_from_slice(&0u32.to_ne_bytes()); // mtu: only with a peak rate
        let mut out = Vec::new();
        push_nla(&mut out, TCA_TBF_PARMS, &parms);
        push_nla(&mut out, TCA_TBF_BURST, &self.burst_bytes.to_ne_bytes());
        if self.rate_bytes > RATE32_MAX {
            push_nla(&mut out, TCA_TBF_RATE64, &self.rate_bytes.to_ne_bytes());
        }
        Some(out)
    }

    /// Reads a TBF's options as dumped by the kernel (the burst from the buffer time).
    pub fn decode(options: &[u8]) -> Option<Tbf> {
        let parms = nla_value(options, TCA_TBF_PARMS)?;
        let rate_bytes = nla_value(options, TCA_TBF_RATE64)
            .and_then(|v| u64_at(v, 0))
            .unwrap_or(u64::from(u32_at(parms, 8)?));
        Some(Tbf {
            rate_bytes,
            limit_bytes: u32_at(parms, 2 * RATESPEC_LEN)?,
            burst_bytes: bytes_in_ticks(u32_at(parms, 2 * RATESPEC_LEN + 4)?, rate_bytes) as u32,
        })
    }
}

/// The parameters of netem (`struct tc_netem_qopt`).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Netem {
    /// Added delay.
    pub delay: Duration,
    /// Random variation of the delay (uniform in ±jitter without a distribution table).
    pub jitter: Duration,
    /// Probability of dropping a packet, 0 to 1.
    pub loss: f64,
    /// Queue limit in packets.
    pub limit_packets: u32,
}

impl Netem {
    /// The options as `tc` sends them when every value fits 32 bits: the bare
    /// `struct tc_netem_qopt`, with no nested attributes after it.
    pub fn encode(&self) -> Vec<u8> {
        let loss = (self.loss.clamp(0.0, 1.0) * f64::from(u32::MAX)).round() as u32;
        let mut out = Vec::with_capacity(NETEM_QOPT_LEN);
        for field in [
            duration_ticks(self.delay),
            self.limit_packets,
            loss,
            0, // gap
            0, // duplicate
            duration_ticks(self.jitter),
        ] {
            out.extend_from_slice(&field.to_ne_bytes());
        }
        out
    }

    /// Reads netem's options as dumped (the leading `struct tc_netem_qopt`).
    pub fn decode(options: &[u8]) -> Option<Netem> {
        let ticks_to = |t: u32| Duration::from_nanos(u64::from(t) * PSCHED_TICK_NS);
        Some(Netem {
            delay: ticks_to(u32_at(options, 0)?),
            limit_packets: u32_at(options, 4)?,
            loss: f64::from(u32_at(options, 8)?) / f64::from(u32::MAX),
            jitter: ticks_to(u32_at(options, 20)?),
        })
    }

    /// Whether two settings program the kernel identically.
    pub fn same_as(&self, other: &Netem) -> bool {
        self.encode() == other.encode()
    }
}

/// Counters of a qdisc or class from `TCA_STATS2` (`gnet_stats_basic`, `gnet_stats_queue`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Counters {
    /// Bytes sent (frames including their link-layer header).
    pub bytes: u64,
    /// Packets sent.
    pub packets: u64,
    /// Packets dropped.
    pub drops: u64,
    /// Times a packet had to wait because the class was over its rate.
    pub overlimits: u64,
    /// Bytes waiting in the queue.
    pub backlog_bytes: u64,
    /// Packets waiting in the queue.
    pub qlen: u64,
}

impl Counters {
    /// Reads the value of a `TCA_STATS2` attribute.
    pub fn decode(stats2: &[u8]) -> Counters {
        let mut counters = Counters::default();
        if let Some(basic) = nla_value(stats2, TCA_STATS_BASIC) {
            counters.bytes = u64_at(basic, 0).unwrap_or_default();
            counters.packets = u32_at(basic, 8).map(u64::from).unwrap_or_default();
        }
        if let Some(queue) = nla_value(stats2, TCA_STATS_QUEUE) {
            let field = |i: usize| u32_at(queue, 4 * i).map(u64::from).unwrap_or_default();
            counters.qlen = field(0);
            counters.backlog_bytes = field(1);
            counters.drops = field(2);
            counters.overlimits = field(4);
        }
        counters
    }
}

/// What a dumped u32 filter entry holds that we compare: its keys, target class and, for a
/// redirect, the target interface.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct U32Entry {
    /// The selector's keys as (mask, value, offset), in host order.
    pub keys: Vec<(u32, u32, i32)>,
    /// The class the entry sends packets to.
    pub classid: Option<u32>,
    /// The interface a mirred action redirects to.
    pub redirect_ifindex: Option<u32>,
}

impl U32Entry {
    /// Reads a u32 filter's options; `None` for hash-table entries, which have no selector.
    pub fn decode(options: &[u8]) -> Option<U32Entry> {
        let selector = nla_value(options, TCA_U32_SEL)?;
        let nkeys = usize::from(*selector.get(2)?);
        let mut keys = Vec::with_capacity(nkeys);
        for i in 0..nkeys {
            let key = selector.get(16 + 16 * i..32 + 16 * i)?;
            keys.push((
                u32::from_be_bytes(key[0..4].try_into().ok()?),
                u32::from_be_bytes(key[4..8].try_into().ok()?),
                i32::from_ne_bytes(key[8..12].try_into().ok()?),
            ));
        }
        Some(U32Entry {
            keys,
            classid: nla_value(options, TCA_U32_CLASSID).and_then(|v| u32_at(v, 0)),
            redirect_ifindex: nla_value(options, TCA_U32_ACT).and_then(mirred_ifindex),
        })
    }
}

/// The target interface of the first mirred action in a list of actions.
fn mirred_ifindex(actions: &[u8]) -> Option<u32> {
    nlas(actions).find_map(|(_, action)| {
        let kind = nla_value(action, TCA_ACT_KIND)?;
        if !kind.starts_with(b"mirred") {
            return None;
        }
        let parms = nla_value(nla_value(action, TCA_ACT_OPTIONS)?, TCA_MIRRED_PARMS)?;
        // struct tc_mirred: tc_gen (5 × 4 bytes), eaction, ifindex.
        u32_at(parms, 24)
    })
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// A message captured from `tc` (`tests/fixtures/tc-NAME.hex`), as bytes.
    pub(crate) fn fixture(name: &str) -> Vec<u8> {
        let path = format!(
            "{}/tests/fixtures/tc-{name}.hex",
            env!("CARGO_MANIFEST_DIR")
        );
        let hex: String = std::fs::read_to_string(&path)
            .unwrap_or_else(|e| panic!("{path}: {e}"))
            .split_whitespace()
            .collect();
        crate::state::from_hex(&hex).expect("hex digits")
    }

    /// The attributes of a captured tc message (after nlmsghdr and tcmsg).
    fn attributes(message: &[u8]) -> &[u8] {
        &message[16 + 20..]
    }

    /// The value of the captured message's TCA_OPTIONS.
    fn options(name: &str) -> Vec<u8> {
        let message = fixture(name);
        nla_value(attributes(&message), TCA_OPTIONS)
            .expect("TCA_OPTIONS")
            .to_vec()
    }

    /// TCA_OPTIONS of a captured HTB class without the rate tables `tc` adds (TCA_HTB_RTAB = 4,
    /// TCA_HTB_CTAB = 3), which the kernel ignores with the Ethernet link layer.
    fn htb_options_without_tables(name: &str) -> Vec<u8> {
        let mut out = Vec::new();
        for (kind, value) in nlas(&options(name)) {
            if kind != 3 && kind != 4 {
                push_nla(&mut out, kind, value);
            }
        }
        out
    }

    #[test]
    fn ticks_are_64_ns_as_proc_net_psched_says() {
        let psched = std::fs::read_to_string("/proc/net/psched").unwrap();
        let fields: Vec<u32> = psched
            .split_whitespace()
            .map(|f| u32::from_str_radix(f, 16).unwrap())
            .collect();
        // ns per µs, ns per tick: 1000 / 64 ticks per µs.
        assert_eq!((fields[0], fields[1]), (1000, PSCHED_TICK_NS as u32));
        assert_eq!(
            ticks(12_500, 12_500_000),
            Some(15_625),
            "1 ms at 100 Mbit/s"
        );
        assert_eq!(ticks(1, 0), None);
        assert_eq!(ticks(u64::MAX, 1), None);
        assert_eq!(bytes_in_ticks(15_625, 12_500_000), 12_500);
    }

    #[test]
    fn htb_qdisc_matches_tc() {
        // tc qdisc add ... root handle 7100: htb default 2 r2q 10
        assert_eq!(htb_qdisc(2, 10), options("htb-qdisc"));
        assert_eq!(htb_qdisc_default(&htb_qdisc(2, 10)), Some(2));
    }

    #[test]
    fn htb_class_matches_tc_and_reads_back() {
        // tc class add ... htb rate 100mbit ceil 100mbit burst 12500 cburst 12500 quantum 200000
        let class = HtbClass {
            rate_bytes: 12_500_000,
            ceil_bytes: 12_500_000,
            buffer_ticks: ticks(12_500, 12_500_000).unwrap(),
            cbuffer_ticks: ticks(12_500, 12_500_000).unwrap(),
            quantum: 200_000,
            prio: 0,
            level: 0,
        };
        assert_eq!(class.encode(), htb_options_without_tables("htb-class"));
        assert_eq!(HtbClass::decode(&class.encode()), Some(class));
    }

    #[test]
    fn htb_rates_above_32_bits_use_the_64_bit_attributes_like_tc() {
        // tc class add ... htb rate 50gbit ceil 100gbit burst 6250000 cburst 12500000
        let class = HtbClass {
            rate_bytes: 6_250_000_000,
            ceil_bytes: 12_500_000_000,
            buffer_ticks: ticks(6_250_000, 6_250_000_000).unwrap(),
            cbuffer_ticks: ticks(12_500_000, 12_500_000_000).unwrap(),
            quantum: 200_000,
            prio: 0,
            level: 0,
        };
        assert_eq!(class.encode(), htb_options_without_tables("htb-class64"));
        assert_eq!(HtbClass::decode(&class.encode()), Some(class));
    }

    #[test]
    fn htb_class_change_matches_tc() {
        // tc class change ... htb rate 2mbit ceil 8mbit burst 1600 cburst 8000 quantum 1600
        let class = HtbClass {
            rate_bytes: 250_000,
            ceil_bytes: 1_000_000,
            buffer_ticks: ticks(1600, 250_000).unwrap(),
            cbuffer_ticks: ticks(8000, 1_000_000).unwrap(),
            quantum: 1600,
            prio: 0,
            level: 0,
        };
        assert_eq!(
            class.encode(),
            htb_options_without_tables("htb-class-change")
        );
    }

    #[test]
    fn bfifo_matches_tc() {
        assert_eq!(bfifo(25_000), options("bfifo"));
        assert_eq!(fifo_limit(&bfifo(25_000)), Some(25_000));
        assert_eq!(fifo_limit(&[1, 2]), None);
    }

    #[test]
    fn tbf_matches_tc() {
        // tc qdisc add ... tbf rate 100mbit burst 31250 limit 625000 (rate table removed: 2)
        let tbf = Tbf {
            rate_bytes: 12_500_000,
            burst_bytes: 31_250,
            limit_bytes: 625_000,
        };
        let mut expected = Vec::new();
        for (kind, value) in nlas(&options("tbf")).filter(|(k, _)| *k != 2) {
            push_nla(&mut expected, kind, value);
        }
        assert_eq!(tbf.encode().unwrap(), expected);
        assert_eq!(Tbf::decode(&tbf.encode().unwrap()), Some(tbf));
        let fast = Tbf {
            rate_bytes: 12_500_000_000,
            burst_bytes: 12_500_000,
            ..tbf
        };
        assert_eq!(Tbf::decode(&fast.encode().unwrap()), Some(fast));
    }

    #[test]
    fn netem_matches_tc() {
        // tc qdisc add ... netem limit 1000 delay 20ms 5ms loss 1%
        let netem = Netem {
            delay: Duration::from_millis(20),
            jitter: Duration::from_millis(5),
            loss: 0.01,
            limit_packets: 1000,
        };
        assert_eq!(netem.encode(), options("netem"));
        let back = Netem::decode(&netem.encode()).unwrap();
        assert!(back.same_as(&netem), "{back:?}");
        assert_eq!(back.delay, Duration::from_millis(20));
        assert_eq!(Netem::decode(&[0; 8]), None);
    }

    #[test]
    fn netem_layout_follows_the_uapi_struct() {
        // struct tc_netem_qopt { latency, limit, loss, gap, duplicate, jitter } (__u32 each).
        let bytes = Netem {
            delay: Duration::from_nanos(64 * 7),
            jitter: Duration::from_nanos(64 * 9),
            loss: 1.0,
            limit_packets: 5,
        }
        .encode();
        let fields: Vec<u32> = bytes
            .chunks(4)
            .map(|c| u32::from_ne_bytes(c.try_into().unwrap()))
            .collect();
        assert_eq!(fields, [7, 5, u32::MAX, 0, 0, 9]);
    }

    #[test]
    fn u32_filter_entries_read_back_keys_and_class() {
        // tc filter add ... u32 match ip dst 198.18.2.2/32 match ip protocol 6 0xff
        //   match ip dport 5001 0xffff flowid 7100:3
        let entry = U32Entry::decode(&options("u32")).unwrap();
        assert_eq!(
            entry.keys,
            [
                (0xffff_ffff, 0xc612_0202, 16),
                (0x00ff_0000, 0x0006_0000, 8),
                (0x0000_ffff, 5001, 20)
            ]
        );
        assert_eq!(entry.classid, Some(0x7100_0003));
        assert_eq!(entry.redirect_ifindex, None);
    }

    #[test]
    fn mirred_redirects_read_back_their_target() {
        let message = fixture("mirred");
        let ifindex = u32::from_ne_bytes(message[16 + 4..16 + 8].try_into().unwrap());
        let entry = U32Entry::decode(&options("mirred")).unwrap();
        // The ifb was created right after the veth pair in the capture namespace.
        assert_eq!(entry.redirect_ifindex, Some(ifindex + 1));
        assert_eq!(entry.keys, [(0, 0, 0)]);
    }

    #[test]
    fn counters_read_basic_and_queue_stats() {
        let mut basic = Vec::new();
        basic.extend_from_slice(&123_456u64.to_ne_bytes());
        basic.extend_from_slice(&789u32.to_ne_bytes());
        basic.extend_from_slice(&[0; 4]);
        let queue: Vec<u8> = [1u32, 1500, 7, 0, 42]
            .iter()
            .flat_map(|v| v.to_ne_bytes())
            .collect();
        let mut stats2 = Vec::new();
        push_nla(&mut stats2, TCA_STATS_BASIC, &basic);
        push_nla(&mut stats2, TCA_STATS_QUEUE, &queue);
        let c = Counters::decode(&stats2);
        assert_eq!(
            (
                c.bytes,
                c.packets,
                c.qlen,
                c.backlog_bytes,
                c.drops,
                c.overlimits
            ),
            (123_456, 789, 1, 1500, 7, 42)
        );
        assert_eq!(Counters::decode(&[1, 2, 3]), Counters::default());
    }

    #[test]
    fn malformed_attributes_end_the_iteration() {
        assert_eq!(
            nlas(&[8, 0, 1, 0, 1, 2]).count(),
            0,
            "length beyond the end"
        );
        assert_eq!(nlas(&[2, 0, 1, 0]).count(), 0, "length below the header");
        let mut two = Vec::new();
        push_nla(&mut two, 1, &[1]);
        push_nla(&mut two, 2, &[1, 2, 3, 4, 5]);
        let kinds: Vec<u16> = nlas(&two).map(|(k, _)| k).collect();
        assert_eq!(kinds, [1, 2]);
    }
}
