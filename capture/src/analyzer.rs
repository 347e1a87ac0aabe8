//! The engine: decode → filter → flow table → statistics and series, fed one frame at a time
//! by a file reader or a live socket.

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::decode::{self, Fragment, LinkType, Transport};
use crate::filter::Filter;
use crate::flow::{Bin, CloseReason, Flow, FlowKey};
use crate::record::{FlowRecord, SeriesRow};

/// Flows are boxed: the table's free buckets (up to half of them after it grows) then cost a
/// key and a pointer each, not a whole flow, which keeps an active flow under 1 KiB of heap.
type FlowMap = HashMap<FlowKey, Box<Flow>, foldhash::fast::RandomState>;

/// The most bins a series covers from the capture's first packet (12 days of 1 s bins);
/// packets time-stamped later (a clock jump, a corrupt file) are left out of the series.
pub const MAX_BINS: u64 = 1 << 20;

/// How flows are tracked.
#[derive(Debug, Clone, PartialEq)]
pub struct AnalyzerConfig {
    /// Which packets to keep.
    pub filter: Filter,
    /// Bin size of the time series; `None` turns series off.
    pub series_bin: Option<Duration>,
    /// A TCP flow without packets for this long is written out (close reason `idle`).
    pub tcp_idle: Duration,
    /// The same for UDP, ICMP and other flows.
    pub other_idle: Duration,
    /// A flow closed by FIN or RST is kept this long for late packets (final ACKs,
    /// retransmitted FINs) before it is written out.
    pub linger: Duration,
    /// The most flows tracked at once; when full, the least recently active eighth is written
    /// out (close reason `evicted`).
    pub max_flows: usize,
}

impl Default for AnalyzerConfig {
    fn default() -> Self {
        AnalyzerConfig {
            filter: Filter::default(),
            series_bin: None,
            tcp_idle: Duration::from_secs(300),
            other_idle: Duration::from_secs(120),
            linger: Duration::from_secs(2),
            max_flows: 1_000_000,
        }
    }
}

/// Counters of a whole capture.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct CaptureStats {
    /// Frames read.
    pub packets: u64,
    /// Their bytes as on the wire.
    pub wire_bytes: u64,
    /// Frames captured shorter than on the wire (snaplen); their lengths come from IP headers.
    pub snaplen_cut_packets: u64,
    /// IPv4 packets.
    pub ipv4_packets: u64,
    /// IPv6 packets.
    pub ipv6_packets: u64,
    /// TCP packets.
    pub tcp_packets: u64,
    /// UDP packets.
    pub udp_packets: u64,
    /// ICMP and ICMPv6 packets.
    pub icmp_packets: u64,
    /// Frames that are not IP (ARP, LLDP, …); skipped.
    pub non_ip_packets: u64,
    /// Frames whose headers were inconsistent or cut before the transport header; skipped.
    pub malformed_packets: u64,
    /// `malformed_packets` by reason.
    pub malformed_reasons: BTreeMap<String, u64>,
    /// IP fragments (first and later).
    pub fragment_packets: u64,
    /// Later fragments: no transport header, so not attributed to a flow.
    pub unattributed_fragments: u64,
    /// IP packets the filter dropped.
    pub filtered_packets: u64,
    /// Packets left out of the series because their time stamp lies more than
    /// [`MAX_BINS`] bins after the first packet's.
    pub series_skipped_packets: u64,
    /// Flows seen.
    pub flows: u64,
    /// Flows written out early because the flow table was full.
    pub flows_evicted: u64,
    /// Packets the kernel dropped before the capture read them (live captures only).
    pub kernel_drops: Option<u64>,
    /// Time of the first frame, seconds since the Unix epoch.
    pub first_unix_s: Option<f64>,
    /// Time of the last frame, seconds since the Unix epoch.
    pub last_unix_s: Option<f64>,
}

/// Everything a capture produced: counters, flow records and series rows.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct CaptureOutput {
    /// Counters of the capture.
    pub stats: CaptureStats,
    /// One record per flow, in the order flows ended.
    pub flows: Vec<FlowRecord>,
    /// Series rows: per flow, then for the whole capture (`flow_id` empty). Empty when series
    /// are off.
    pub series: Vec<SeriesRow>,
}

/// One packet on its way into a flow.
struct Seen<'a> {
    p: &'a decode::Packet,
    from_a: bool,
    ts_ns: u64,
    wire_len: u32,
    /// Its series bin, when series are on.
    bin: Option<u32>,
}

/// What the engine tracks besides the flows themselves.
#[derive(Debug, Default)]
struct Tracking {
    /// Flows closed by FIN/RST (key, flow id, time of its last packet then), in order of
    /// closing, to be written after the linger time.
    closing: VecDeque<(FlowKey, u64, u64)>,
    /// Bins of the whole capture, dense from the first bin.
    capture_bins: Vec<Bin>,
}

impl Tracking {
    /// Counts a packet into `flow`, its series bin and the capture's.
    #[inline]
    fn count(&mut self, flow: &mut Flow, key: FlowKey, seen: &Seen) {
        let was_closed = flow.is_closed();
        let (dir, retransmitted) = flow.packet(seen.p, seen.from_a, seen.ts_ns, seen.wire_len);
        if let Some(index) = seen.bin {
            flow.bin(index, dir, seen.p.ip_len, retransmitted);
            let i = index as usize;
            if self.capture_bins.len() <= i {
                self.capture_bins.resize_with(i + 1, Bin::default);
            }
            self.capture_bins[i].add(dir, seen.p.ip_len, retransmitted);
        }
        if !was_closed && flow.is_closed() {
            self.closing.push_back((key, flow.id, seen.ts_ns));
        }
    }
}

/// The flow statistics engine.
#[derive(Debug)]
pub struct Analyzer {
    config: AnalyzerConfig,
    bin_ns: Option<u64>,
    flows: FlowMap,
    track: Tracking,
    next_sweep_ns: u64,
    next_id: u64,
    stats: CaptureStats,
    first_ns: Option<u64>,
    last_ns: u64,
    /// The first bin number (time / bin size) of the capture.
    first_bin: u64,
    done: Vec<FlowRecord>,
    done_series: Vec<SeriesRow>,
}

impl Analyzer {
    /// An engine with this configuration.
    pub fn new(config: AnalyzerConfig) -> Analyzer {
        Analyzer {
            bin_ns: config.series_bin.map(|b| (b.as_nanos() as u64).max(1_000)),
            config,
            flows: FlowMap::default(),
            track: Tracking::default(),
            next_sweep_ns: 0,
            next_id: 1,
            stats: CaptureStats::default(),
            first_ns: None,
            last_ns: 0,
            first_bin: 0,
            done: Vec::new(),
            done_series: Vec::new(),
        }
    }

    /// The counters so far.
    pub fn stats(&self) -> &CaptureStats {
        &self.stats
    }

    /// Flows currently tracked.
    pub fn active_flows(&self) -> usize {
        self.flows.len()
    }

    /// Sets the kernel drop counter (live captures).
    pub fn set_kernel_drops(&mut self, drops: u64) {
        self.stats.kernel_drops = Some(drops);
    }

    /// Counts a frame of a link type that cannot be decoded (a pcapng interface of another
    /// kind) as not IP.
    pub fn unsupported_frame(&mut self, wire_len: u32) {
        self.stats.packets += 1;
        self.stats.wire_bytes += u64::from(wire_len);
        self.stats.non_ip_packets += 1;
    }

    /// Processes one frame of link type `link`, captured at `ts_ns` (ns since the epoch),
    /// `wire_len` bytes long on the wire, of which `data` was captured.
    pub fn frame(&mut self, link: LinkType, ts_ns: u64, wire_len: u32, data: &[u8]) {
        let s = &mut self.stats;
        s.packets += 1;
        s.wire_bytes += u64::from(wire_len);
        if (data.len() as u64) < u64::from(wire_len) {
            s.snaplen_cut_packets += 1;
        }
        if self.first_ns.is_none() {
            self.first_ns = Some(ts_ns);
            if let Some(bin) = self.bin_ns {
                self.first_bin = ts_ns / bin;
            }
        }
        self.last_ns = self.last_ns.max(ts_ns);
        self.expire(ts_ns);
        let decoded = decode::decode(link, data);
        // Borrowed, not moved: the packet is large.
        let p = match &decoded {
            Ok(Some(p)) => p,
            Ok(None) => {
                self.stats.non_ip_packets += 1;
                return;
            }
            Err(err) => {
                let s = &mut self.stats;
                s.malformed_packets += 1;
                let reason = err.to_string();
                match s.malformed_reasons.get_mut(&reason) {
                    Some(n) => *n += 1,
                    None => {
                        s.malformed_reasons.insert(reason, 1);
                    }
                }
                return;
            }
        };
        let s = &mut self.stats;
        if p.ipv6 {
            s.ipv6_packets += 1;
        } else {
            s.ipv4_packets += 1;
        }
        if p.fragment != Fragment::No {
            s.fragment_packets += 1;
            if p.fragment == Fragment::Later {
                s.unattributed_fragments += 1;
                return;
            }
        }
        if !self.config.filter.is_empty() && !self.config.filter.matches(p) {
            s.filtered_packets += 1;
            return;
        }
        match p.transport {
            Transport::Tcp(_) => s.tcp_packets += 1,
            Transport::Udp { .. } => s.udp_packets += 1,
            Transport::Icmp { .. } => s.icmp_packets += 1,
            Transport::Other => {}
        }
        let (key, from_a) = FlowKey::of(p);
        let bin = match self.bin_ns {
            Some(bin_ns) => {
                let index = (ts_ns / bin_ns).saturating_sub(self.first_bin);
                if index < MAX_BINS {
                    Some(index as u32)
                } else {
                    self.stats.series_skipped_packets += 1;
                    None
                }
            }
            None => None,
        };
        let seen = Seen {
            p,
            from_a,
            ts_ns,
            wire_len,
            bin,
        };
        // The common case, one lookup: a packet of a flow already tracked.
        let reopened = match self.flows.get_mut(&key) {
            Some(flow) if !flow.reopened_by(p) => {
                self.track.count(flow, key, &seen);
                return;
            }
            Some(_) => true,
            None => false,
        };
        if reopened {
            self.finish_flow(key, CloseReason::Fin);
        }
        if self.flows.len() >= self.config.max_flows.max(1) {
            self.evict();
        }
        self.stats.flows += 1;
        self.next_id += 1;
        let mut flow = Box::new(Flow::new(self.next_id - 1, p, from_a, ts_ns));
        self.track.count(&mut flow, key, &seen);
        self.flows.insert(key, flow);
    }

    /// Writes out flows whose linger or idle time has passed at `now_ns`. Called for every
    /// frame; live captures also call it when no packet arrives.
    #[inline]
    pub fn expire(&mut self, now_ns: u64) {
        // Cheap for every packet: the closing queue's head is checked by time first.
        let linger = self.config.linger.as_nanos() as u64;
        let closing_due = self
            .track
            .closing
            .front()
            .is_some_and(|&(_, _, last_ns)| last_ns.saturating_add(linger) <= now_ns);
        if closing_due || now_ns >= self.next_sweep_ns {
            self.expire_due(now_ns, linger);
        }
    }

    /// The work of [`Analyzer::expire`] once a closed flow or the idle sweep is due.
    fn expire_due(&mut self, now_ns: u64, linger: u64) {
        while let Some(&(key, id, last_ns)) = self.track.closing.front() {
            if last_ns.saturating_add(linger) > now_ns {
                break;
            }
            self.track.closing.pop_front();
            let Some(flow) = self.flows.get(&key).filter(|f| f.id == id) else {
                continue;
            };
            if flow.last_ns().saturating_add(linger) > now_ns {
                // Late packets arrived: wait again from the latest.
                let last = flow.last_ns();
                self.track.closing.push_back((key, id, last));
                continue;
            }
            let reason = if flow.is_closed_by_rst() {
                CloseReason::Rst
            } else {
                CloseReason::Fin
            };
            self.finish_flow(key, reason);
        }
        if now_ns >= self.next_sweep_ns {
            let tcp_idle = self.config.tcp_idle.as_nanos() as u64;
            let other_idle = self.config.other_idle.as_nanos() as u64;
            if self.next_sweep_ns != 0 {
                let idle: Vec<FlowKey> = self
                    .flows
                    .iter()
                    .filter(|(k, f)| {
                        let limit = if k.is_tcp() { tcp_idle } else { other_idle };
                        f.last_ns().saturating_add(limit) <= now_ns
                    })
                    .map(|(k, _)| *k)
                    .collect();
                for key in idle {
                    self.finish_flow(key, CloseReason::Idle);
                }
            }
            self.next_sweep_ns =
                now_ns.saturating_add((tcp_idle.min(other_idle) / 4).max(1_000_000));
        }
    }

    /// Writes out the least recently active eighth of the flows.
    fn evict(&mut self) {
        let mut lasts: Vec<u64> = self.flows.values().map(|f| f.last_ns()).collect();
        let n = (lasts.len() / 8).max(1);
        let (_, &mut threshold, _) = lasts.select_nth_unstable(n - 1);
        let victims: Vec<FlowKey> = self
            .flows
            .iter()
            .filter(|(_, f)| f.last_ns() <= threshold)
            .map(|(k, _)| *k)
            .take(n)
            .collect();
        self.stats.flows_evicted += victims.len() as u64;
        for key in victims {
            self.finish_flow(key, CloseReason::Evicted);
        }
    }

    fn finish_flow(&mut self, key: FlowKey, reason: CloseReason) {
        if let Some(flow) = self.flows.remove(&key) {
            self.done.push(flow.record(&key, reason));
            self.push_series(&flow);
        }
    }

    fn push_series(&mut self, flow: &Flow) {
        if let Some(bin_ns) = self.bin_ns {
            self.done_series.extend(
                flow.series
                    .iter()
                    .map(|b| b.row(Some(flow.id), self.first_bin, bin_ns)),
            );
        }
    }

    /// Takes the records (and series rows) of the flows that ended so far.
    pub fn take_finished(&mut self) -> (Vec<FlowRecord>, Vec<SeriesRow>) {
        (
            std::mem::take(&mut self.done),
            std::mem::take(&mut self.done_series),
        )
    }

    /// Everything so far without stopping: ended flows not yet taken, running flows (close
    /// reason `active`), and the series.
    pub fn snapshot(&self) -> CaptureOutput {
        let mut flows = self.done.clone();
        let mut series = self.done_series.clone();
        let mut active: Vec<(&FlowKey, &Box<Flow>)> = self.flows.iter().collect();
        active.sort_by_key(|(_, f)| f.id);
        for (key, flow) in active {
            flows.push(flow.record(key, CloseReason::Active));
            if let Some(bin_ns) = self.bin_ns {
                series.extend(
                    flow.series
                        .iter()
                        .map(|b| b.row(Some(flow.id), self.first_bin, bin_ns)),
                );
            }
        }
        series.extend(self.capture_series());
        CaptureOutput {
            stats: self.stats_with_times(),
            flows,
            series,
        }
    }

    fn capture_series(&self) -> Vec<SeriesRow> {
        let Some(bin_ns) = self.bin_ns else {
            return Vec::new();
        };
        self.track
            .capture_bins
            .iter()
            .enumerate()
            .map(|(i, b)| {
                Bin {
                    index: i as u32,
                    ..*b
                }
                .row(None, self.first_bin, bin_ns)
            })
            .collect()
    }

    fn stats_with_times(&self) -> CaptureStats {
        CaptureStats {
            first_unix_s: self.first_ns.map(|t| t as f64 / 1e9),
            last_unix_s: self.first_ns.map(|_| self.last_ns as f64 / 1e9),
            ..self.stats.clone()
        }
    }

    /// Ends the capture: every running flow is written out (close reason `end`, or `fin`/`rst`
    /// if it had closed), followed by the whole-capture series.
    pub fn finish(mut self) -> CaptureOutput {
        let mut rest: Vec<(FlowKey, u64)> = self.flows.iter().map(|(k, f)| (*k, f.id)).collect();
        rest.sort_by_key(|&(_, id)| id);
        for (key, _) in rest {
            let reason = match self.flows.get(&key) {
                Some(f) if f.is_closed_by_rst() => CloseReason::Rst,
                Some(f) if f.is_closed() => CloseReason::Fin,
                _ => CloseReason::End,
            };
            self.finish_flow(key, reason);
        }
        let mut series = std::mem::take(&mut self.done_series);
        series.extend(self.capture_series());
        CaptureOutput {
            stats: self.stats_with_times(),
            flows: std::mem::take(&mut self.done),
            series,
        }
    }
}
