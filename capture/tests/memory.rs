//! Memory per active flow, measured: a counting allocator around the engine while many TCP
//! flows are open at once, each past its handshake with a window of data in flight, delayed
//! ACKs and its per-flow series on (1 s bins). The figure is the engine's whole heap growth
//! (flow table, flow state, RTT matching, series) divided by the flows it holds.

use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use qoelab_capture::decode::LinkType;
use qoelab_capture::{Analyzer, AnalyzerConfig};

/// The system allocator, counting the bytes it holds.
struct Counting;

static HELD: AtomicUsize = AtomicUsize::new(0);

// SAFETY: every call is the system allocator's; the counter is only arithmetic.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        let ptr = unsafe { System.alloc(layout) };
        if !ptr.is_null() {
            HELD.fetch_add(layout.size(), Ordering::Relaxed);
        }
        ptr
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        unsafe { System.dealloc(ptr, layout) };
        HELD.fetch_sub(layout.size(), Ordering::Relaxed);
    }
}

#[global_allocator]
static ALLOCATOR: Counting = Counting;

const MSS: usize = 1448;
/// Segments a sender keeps unacknowledged.
const IN_FLIGHT: u32 = 10;

/// Writes an Ethernet + IPv4 + TCP frame (no options) of flow `i` into `frame`.
fn tcp(frame: &mut Vec<u8>, i: u32, from_client: bool, flags: u8, seq: u32, ack: u32, len: usize) {
    let (client, server) = ([198, 18, (i >> 8) as u8, i as u8], [198, 19, 0, 1]);
    let (src, dst, sport, dport) = if from_client {
        (client, server, 10_000 + (i % 50_000) as u16, 443u16)
    } else {
        (server, client, 443, 10_000 + (i % 50_000) as u16)
    };
    frame.clear();
    frame.extend_from_slice(&[2, 0, 0, 0, 0, 1, 2, 0, 0, 0, 0, 2, 0x08, 0x00]);
    let total = (20 + 20 + len) as u16;
    frame.extend_from_slice(&[
        0x45,
        0,
        (total >> 8) as u8,
        total as u8,
        0,
        0,
        0x40,
        0,
        64,
        6,
    ]);
    frame.extend_from_slice(&[0, 0]);
    frame.extend_from_slice(&src);
    frame.extend_from_slice(&dst);
    frame.extend_from_slice(&sport.to_be_bytes());
    frame.extend_from_slice(&dport.to_be_bytes());
    frame.extend_from_slice(&seq.to_be_bytes());
    frame.extend_from_slice(&ack.to_be_bytes());
    frame.extend_from_slice(&[0x50, flags, 0xff, 0xff, 0, 0, 0, 0]);
    frame.resize(frame.len() + len, 0);
}

const SYN: u8 = 0x02;
const ACK: u8 = 0x10;
const SYN_ACK: u8 = 0x12;
const PSH_ACK: u8 = 0x18;

/// Opens `flows` TCP flows that stay open together, each through `steps` rounds of 100 ms
/// (handshake, then two data segments a round and delayed ACKs, [`IN_FLIGHT`] segments
/// unacknowledged); returns the bytes the engine holds per flow afterwards.
fn held_per_flow(flows: u32, steps: u32, series_bin: Option<Duration>) -> usize {
    let before = HELD.load(Ordering::Relaxed);
    let mut analyzer = Analyzer::new(AnalyzerConfig {
        series_bin,
        ..AnalyzerConfig::default()
    });
    let mut frame = Vec::with_capacity(1600);
    let feed = |analyzer: &mut Analyzer, ts_ns: u64, frame: &[u8]| {
        analyzer.frame(LinkType::Ethernet, ts_ns, frame.len() as u32, frame)
    };
    for step in 0..steps {
        for i in 0..flows {
            let ts_ns = u64::from(step) * 100_000_000 + u64::from(i) * 1_000;
            match step {
                0 => tcp(&mut frame, i, true, SYN, 0, 0, 0),
                1 => tcp(&mut frame, i, false, SYN_ACK, 0, 1, 0),
                2 => tcp(&mut frame, i, true, ACK, 1, 1, 0),
                _ => {
                    let sent = (step - 3) * 2;
                    for k in 0..2 {
                        let seq = 1 + (sent + k) * MSS as u32;
                        tcp(&mut frame, i, true, PSH_ACK, seq, 1, MSS);
                        feed(&mut analyzer, ts_ns + u64::from(k), &frame);
                    }
                    let acked = (sent + 2).saturating_sub(IN_FLIGHT);
                    if acked == 0 {
                        continue;
                    }
                    tcp(&mut frame, i, false, ACK, 1, 1 + acked * MSS as u32, 0);
                }
            }
            feed(&mut analyzer, ts_ns + 2, &frame);
        }
    }
    assert_eq!(
        analyzer.active_flows(),
        flows as usize,
        "every flow is open"
    );
    assert_eq!(analyzer.stats().malformed_packets, 0);
    (HELD.load(Ordering::Relaxed) - before) / flows as usize
}

#[test]
fn an_active_flow_holds_at_most_one_kilobyte() {
    // 20,000 flows fill the flow table's buckets to 61%: its slack is part of the figure.
    let (flows, steps) = (20_000, 40);
    let state = held_per_flow(flows, steps, None);
    let with_series = held_per_flow(flows, steps, Some(Duration::from_secs(1)));
    // Four seconds of packets: five 1 s bins of each flow's series.
    let per_bin = with_series.saturating_sub(state) / 5;
    eprintln!(
        "{flows} active flows, {IN_FLIGHT} segments in flight each: {state} bytes per flow \
         (table, state, RTT matching); per-flow series {per_bin} bytes per bin on top"
    );
    assert!(state <= 1024, "{state} bytes per active flow");
    assert!(per_bin <= 64, "{per_bin} bytes per series bin");
}
