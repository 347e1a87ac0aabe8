//! Packet capture and tstat-class flow statistics: the numbers QoE classifiers learn from.
//!
//! Sources are capture files ([`file`](mod@file): pcap/pcapng, memory-mapped, zero-copy) and live
//! interfaces ([`live`]: an AF_PACKET socket, also inside a lab's network namespace, with the
//! kernel's drop counter). Frames go through [`decode`] (Ethernet, 802.1Q/QinQ, Linux SLL and
//! SLL2, raw IP; IPv4 with options and fragments, IPv6 with extension headers; TCP with
//! options, UDP, ICMP) into the [`Analyzer`]: a bounded table of bidirectional flows with
//! per-direction statistics — retransmissions, out-of-sequence, RTT by data→ACK matching with
//! Karn's rule, windows, sizes, inter-arrival times — and optional time-binned series. Every
//! output column is documented in `COLUMNS.md` (generated from [`record`]).
//!
//! Memory is bounded: a tracked flow's state is under 1 KiB (848 bytes with the 32 bytes each
//! direction keeps for RTT matching once it sent data; a test asserts ≤ 1024), plus, only
//! while a direction has them, 8 bytes per unacknowledged segment beyond those 4 (at most 256)
//! and per gap left by upstream losses (at most 64). Measured with the flow table's slack
//! (`tests/memory.rs`: 20,000 open flows, 10 segments in flight each): 970 bytes of heap per
//! active flow, and 32 more per bin of a per-flow series. The table holds
//! at most [`AnalyzerConfig::max_flows`] flows and evicts the least recently active eighth when
//! full (counted in [`CaptureStats::flows_evicted`]).
//!
//! # Capture API for the agent
//!
//! [`LiveCapture`] is what an HTTP endpoint mounts: start it from a [`CaptureRequest`]
//! (serde: interface, optional netns, [`Filter`], bin size, maximum duration, lease), poll
//! [`LiveCapture::snapshot`] while it runs (e.g. for live QoE prediction), and
//! [`LiveCapture::stop`] it to get the [`CaptureOutput`] (flow records and series, serde).
//! The capture stops itself after its maximum duration (never more than
//! [`MAX_CAPTURE_DURATION`]), and, if the request has a `lease_s`, when nobody asked about it
//! (snapshot, stats, [`LiveCapture::renew`]) for that long; either way its output waits for
//! [`LiveCapture::stop`]. Dropping the handle stops it too. A remote client keeps the lease
//! alive by polling; the agent's `AgentClient` does so for the captures it started, so a
//! capture whose client went away does not run on.
//!
//! ```no_run
//! use qoelab_capture::{CaptureRequest, LiveCapture};
//! # fn demo() -> Result<(), qoelab_capture::CaptureError> {
//! let request: CaptureRequest = serde_json::from_str(
//!     r#"{"interface": "qlab1-wan", "netns": "qlab1-router", "bin_ms": 1000,
//!         "max_duration_s": 600, "lease_s": 30, "filter": {"protocols": ["tcp"]}}"#,
//! ).expect("valid request");
//! let capture = LiveCapture::start(&request)?;
//! let so_far = capture.snapshot()?; // running flows have close_reason "active"
//! let output = capture.stop()?;     // every flow record and series row
//! println!("{} flows, {:?} kernel drops", output.flows.len(), output.stats.kernel_drops);
//! # Ok(()) }
//! ```
//!
//! For files, [`analyze_file`] runs the whole pipeline; the `qoelab flows` command adds
//! progress and CSV/JSONL output on top.
//!
//! Not here: storing records (the collector), HTTP (the agent), shaping (the shaper).

pub mod analyzer;
pub mod capture;
pub mod decode;
pub mod file;
pub mod filter;
mod flow;
pub mod live;
pub mod output;
pub mod record;
pub mod wire;

pub use analyzer::{Analyzer, AnalyzerConfig, CaptureOutput, CaptureStats};
pub use capture::{CaptureError, CaptureRequest, LiveCapture, MAX_CAPTURE_DURATION, MAX_LEASE};
pub use file::{CaptureFile, FileError};
pub use filter::{Filter, Protocol};
pub use record::{DirectionRecord, FlowColumns, FlowRecord, SeriesRow, columns_markdown};

/// Runs the whole pipeline over one capture file. A truncated or corrupt file still yields
/// the statistics of every frame before the damage, together with the error.
pub fn analyze_file(
    path: &std::path::Path,
    config: AnalyzerConfig,
) -> Result<(CaptureOutput, Option<FileError>), FileError> {
    let file = CaptureFile::open(path)?;
    let mut analyzer = Analyzer::new(config);
    let damage = feed(&file, &mut analyzer, |_, _| {});
    Ok((analyzer.finish(), damage))
}

/// Feeds every frame of `file` to `analyzer`; `progress` is called with the bytes consumed
/// and the analyzer every 64 Ki frames and at the end (to show progress and to take finished
/// flows). Returns the error that ended the file early, if any.
pub fn feed(
    file: &CaptureFile,
    analyzer: &mut Analyzer,
    mut progress: impl FnMut(u64, &mut Analyzer),
) -> Option<FileError> {
    let mut frames = file.frames();
    let mut n: u32 = 0;
    while let Some(frame) = frames.next() {
        match frame {
            Ok(f) => match f.link {
                Some(link) => analyzer.frame(link, f.ts_ns, f.wire_len, f.data),
                None => analyzer.unsupported_frame(f.wire_len),
            },
            Err(err) => {
                progress(frames.offset(), analyzer);
                return Some(err);
            }
        }
        n = n.wrapping_add(1);
        if n.is_multiple_of(16_384) {
            frames.release_read();
            if n.is_multiple_of(65_536) {
                progress(frames.offset(), analyzer);
            }
        }
    }
    progress(frames.offset(), analyzer);
    None
}
