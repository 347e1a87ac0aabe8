//! Live captures as a service: start from a serde [`CaptureRequest`], snapshot while running,
//! stop for the results. What the agent's capture endpoints mount.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::mpsc::{self, Receiver, Sender};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};

use crate::analyzer::{Analyzer, AnalyzerConfig, CaptureOutput, CaptureStats};
use crate::filter::Filter;
use crate::live::{self, LiveError, LiveSource};

/// No capture runs longer than this, whatever the request says.
pub const MAX_CAPTURE_DURATION: Duration = Duration::from_secs(24 * 3600);

/// The longest lease a request may ask for.
pub const MAX_LEASE: Duration = Duration::from_secs(3600);

/// How often the capture thread looks at its stop flag and deadline when idle.
const POLL: Duration = Duration::from_millis(50);

/// A request to capture live traffic.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CaptureRequest {
    /// The interface, e.g. `qlab1-wan`.
    pub interface: String,
    /// The network namespace the interface is in (an `ip netns` name); `None`: this process's.
    #[serde(default)]
    pub netns: Option<String>,
    /// Which packets to keep.
    #[serde(default)]
    pub filter: Filter,
    /// Series bin size in ms; 0 turns series off. Default 1000.
    #[serde(default = "default_bin_ms")]
    pub bin_ms: u64,
    /// The capture stops itself after this many seconds (1 to 86400). Default 3600.
    #[serde(default = "default_max_duration_s")]
    pub max_duration_s: u64,
    /// With a lease, the capture also stops itself when nobody asked about it (snapshot,
    /// stats, [`LiveCapture::renew`]) for this many seconds (1 to 3600): a client that went
    /// away leaves nothing running. Its output is kept, as at `max_duration_s`. Default: none.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub lease_s: Option<u64>,
}

fn default_bin_ms() -> u64 {
    1000
}

fn default_max_duration_s() -> u64 {
    3600
}

impl CaptureRequest {
    /// A request for `interface` with the defaults.
    pub fn new(interface: &str) -> CaptureRequest {
        CaptureRequest {
            interface: interface.to_string(),
            netns: None,
            filter: Filter::default(),
            bin_ms: default_bin_ms(),
            max_duration_s: default_max_duration_s(),
            lease_s: None,
        }
    }

    /// Checks every field; the error names the field, the value and the accepted form.
    pub fn validate(&self) -> Result<(), CaptureError> {
        let invalid = |field: &'static str, value: String, expected: &'static str| {
            Err(CaptureError::InvalidRequest {
                field,
                value,
                expected,
            })
        };
        let bad_name = |s: &str| {
            s.is_empty()
                || s.len() > 15
                || s == "."
                || s == ".."
                || s.contains(['/', '\0'])
                || s.chars().any(char::is_whitespace)
        };
        if bad_name(&self.interface) {
            return invalid(
                "interface",
                self.interface.clone(),
                "an interface name of 1 to 15 characters without '/' or spaces",
            );
        }
        if let Some(ns) = &self.netns
            && (ns.is_empty() || ns == "." || ns == ".." || ns.contains(['/', '\0']))
        {
            return invalid(
                "netns",
                ns.clone(),
                "the name of a namespace under /run/netns (as `ip netns list` shows)",
            );
        }
        if self.bin_ms != 0 && !(10..=3_600_000).contains(&self.bin_ms) {
            return invalid(
                "bin_ms",
                self.bin_ms.to_string(),
                "0 (no series) or 10 to 3600000 milliseconds",
            );
        }
        if self.max_duration_s == 0 || self.max_duration_s > MAX_CAPTURE_DURATION.as_secs() {
            return invalid(
                "max_duration_s",
                self.max_duration_s.to_string(),
                "1 to 86400 seconds",
            );
        }
        if let Some(lease_s) = self.lease_s
            && !(1..=MAX_LEASE.as_secs()).contains(&lease_s)
        {
            return invalid(
                "lease_s",
                lease_s.to_string(),
                "1 to 3600 seconds, or none (no lease)",
            );
        }
        Ok(())
    }

    fn analyzer_config(&self) -> AnalyzerConfig {
        AnalyzerConfig {
            filter: self.filter.clone(),
            series_bin: (self.bin_ms > 0).then(|| Duration::from_millis(self.bin_ms)),
            ..AnalyzerConfig::default()
        }
    }
}

/// Errors of live captures.
#[derive(Debug, thiserror::Error)]
pub enum CaptureError {
    /// A request field is out of range.
    #[error("invalid capture request: {field} = '{value}': expected {expected}")]
    InvalidRequest {
        /// The field.
        field: &'static str,
        /// Its value.
        value: String,
        /// What is accepted.
        expected: &'static str,
    },
    /// The source could not be opened.
    #[error(transparent)]
    Source(#[from] LiveError),
    /// Reading from the socket failed while capturing; what was captured until then is lost
    /// only if this is returned by `stop`.
    #[error("capture on {interface} failed: {message}")]
    Failed {
        /// The interface.
        interface: String,
        /// What went wrong.
        message: String,
    },
}

enum Query {
    Snapshot(Sender<CaptureOutput>),
    Stats(Sender<CaptureStats>),
}

type Outcome = Result<CaptureOutput, String>;

/// When a capture was last asked about, shared with its thread, which enforces the lease.
#[derive(Debug)]
struct Touched {
    start: Instant,
    /// Milliseconds after `start`.
    at_ms: AtomicU64,
}

impl Touched {
    fn new() -> Touched {
        Touched {
            start: Instant::now(),
            at_ms: AtomicU64::new(0),
        }
    }

    fn renew(&self) {
        let now_ms = self.start.elapsed().as_millis() as u64;
        self.at_ms.fetch_max(now_ms, Ordering::Relaxed);
    }

    /// How long ago the capture was last asked about.
    fn idle(&self) -> Duration {
        self.start
            .elapsed()
            .saturating_sub(Duration::from_millis(self.at_ms.load(Ordering::Relaxed)))
    }
}

/// A running live capture. Dropping it stops the capture.
#[derive(Debug)]
pub struct LiveCapture {
    request: CaptureRequest,
    stop: Arc<AtomicBool>,
    touched: Arc<Touched>,
    queries: Mutex<Sender<Query>>,
    thread: Mutex<Option<JoinHandle<Outcome>>>,
    ended: Mutex<Option<Outcome>>,
}

impl std::fmt::Debug for Query {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Query::Snapshot(_) => "Snapshot",
            Query::Stats(_) => "Stats",
        })
    }
}

impl LiveCapture {
    /// Validates `request`, opens the socket (errors such as a missing interface are returned
    /// here), and starts capturing on a thread of its own.
    pub fn start(request: &CaptureRequest) -> Result<LiveCapture, CaptureError> {
        request.validate()?;
        let source = LiveSource::open(&request.interface, request.netns.as_deref())?;
        let stop = Arc::new(AtomicBool::new(false));
        let (tx, rx) = mpsc::channel();
        let config = request.analyzer_config();
        let limits = Limits {
            max: Duration::from_secs(request.max_duration_s).min(MAX_CAPTURE_DURATION),
            lease: request
                .lease_s
                .map(|s| Duration::from_secs(s).min(MAX_LEASE)),
        };
        let touched = Arc::new(Touched::new());
        let (flag, touched_by_thread) = (stop.clone(), touched.clone());
        let thread = std::thread::Builder::new()
            .name(format!("capture-{}", request.interface))
            .spawn(move || run(source, config, limits, &flag, &touched_by_thread, &rx))
            .map_err(|e| CaptureError::Failed {
                interface: request.interface.clone(),
                message: format!("cannot start the capture thread: {e}"),
            })?;
        tracing::info!(interface = %request.interface, netns = ?request.netns, lease_s = ?request.lease_s, "capture started");
        Ok(LiveCapture {
            request: request.clone(),
            stop,
            touched,
            queries: Mutex::new(tx),
            thread: Mutex::new(Some(thread)),
            ended: Mutex::new(None),
        })
    }

    /// The request this capture was started with.
    pub fn request(&self) -> &CaptureRequest {
        &self.request
    }

    /// Whether the capture has ended by itself (maximum duration reached, lease expired, or an
    /// error).
    pub fn is_finished(&self) -> bool {
        self.ended
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .is_some()
            || self
                .thread
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .as_ref()
                .is_none_or(JoinHandle::is_finished)
    }

    /// Renews the lease (see [`CaptureRequest::lease_s`]); [`snapshot`](Self::snapshot) and
    /// [`stats`](Self::stats) do too.
    pub fn renew(&self) {
        self.touched.renew();
    }

    /// Everything so far, without stopping: flows that ended, running flows (close reason
    /// `active`), series and counters. After the capture ended, its final output. Renews the
    /// lease.
    pub fn snapshot(&self) -> Result<CaptureOutput, CaptureError> {
        self.renew();
        let (tx, rx) = mpsc::channel();
        if self.ask(Query::Snapshot(tx))
            && let Ok(out) = rx.recv()
        {
            return Ok(out);
        }
        self.outcome()
    }

    /// The counters so far (cheap: no records are built). Renews the lease.
    pub fn stats(&self) -> Result<CaptureStats, CaptureError> {
        self.renew();
        let (tx, rx) = mpsc::channel();
        if self.ask(Query::Stats(tx))
            && let Ok(stats) = rx.recv()
        {
            return Ok(stats);
        }
        self.outcome().map(|o| o.stats)
    }

    /// Stops the capture and returns every flow record and series row.
    pub fn stop(self) -> Result<CaptureOutput, CaptureError> {
        self.stop.store(true, Ordering::Relaxed);
        self.outcome()
    }

    fn ask(&self, query: Query) -> bool {
        self.queries
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .send(query)
            .is_ok()
    }

    /// Waits for the capture thread to end and returns (a copy of) its outcome.
    fn outcome(&self) -> Result<CaptureOutput, CaptureError> {
        let mut ended = self.ended.lock().unwrap_or_else(|p| p.into_inner());
        if ended.is_none() {
            let handle = self.thread.lock().unwrap_or_else(|p| p.into_inner()).take();
            let outcome = match handle.map(JoinHandle::join) {
                Some(Ok(outcome)) => outcome,
                Some(Err(_)) => Err("the capture thread panicked".to_string()),
                None => Err("the capture was already collected".to_string()),
            };
            *ended = Some(outcome);
        }
        match ended.as_ref() {
            Some(Ok(out)) => Ok(out.clone()),
            Some(Err(message)) => Err(CaptureError::Failed {
                interface: self.request.interface.clone(),
                message: message.clone(),
            }),
            None => unreachable!("set above"),
        }
    }
}

impl Drop for LiveCapture {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(handle) = self.thread.lock().unwrap_or_else(|p| p.into_inner()).take() {
            let _ = handle.join();
        }
    }
}

/// When a capture stops itself.
struct Limits {
    /// After this long in any case.
    max: Duration,
    /// When nobody asked about it for this long.
    lease: Option<Duration>,
}

/// The capture loop: frames into the analyzer until stopped, the deadline passes or the lease
/// expires.
fn run(
    mut source: LiveSource,
    config: AnalyzerConfig,
    limits: Limits,
    stop: &AtomicBool,
    touched: &Touched,
    queries: &Receiver<Query>,
) -> Outcome {
    let deadline = Instant::now() + limits.max;
    let link = source.link();
    let mut analyzer = Analyzer::new(config);
    let mut since_check: u32 = 0;
    let reason = loop {
        match source.next_frame(POLL) {
            Ok(Some(frame)) => {
                analyzer.frame(link, frame.ts_ns, frame.wire_len, frame.data);
                since_check += 1;
                if since_check < 256 {
                    continue;
                }
            }
            Ok(None) => analyzer.expire(live::now_ns()),
            Err(err) => return Err(format!("reading packets failed: {err}")),
        }
        since_check = 0;
        if stop.load(Ordering::Relaxed) {
            break "stopped";
        }
        if Instant::now() >= deadline {
            break "maximum duration reached";
        }
        if limits.lease.is_some_and(|lease| touched.idle() >= lease) {
            break "lease expired: nobody asked about the capture";
        }
        while let Ok(query) = queries.try_recv() {
            if let Ok(drops) = source.kernel_drops() {
                analyzer.set_kernel_drops(drops);
            }
            match query {
                Query::Snapshot(reply) => {
                    let _ = reply.send(analyzer.snapshot());
                }
                Query::Stats(reply) => {
                    let _ = reply.send(analyzer.stats().clone());
                }
            }
        }
    };
    // Frames already queued in the socket belong to the capture.
    while let Ok(Some(frame)) = source.next_frame(Duration::ZERO) {
        analyzer.frame(link, frame.ts_ns, frame.wire_len, frame.data);
    }
    let drops = source
        .kernel_drops()
        .map_err(|e| format!("reading the drop counter failed: {e}"))?;
    analyzer.set_kernel_drops(drops);
    tracing::info!(
        reason,
        lease_s = ?limits.lease.map(|l| l.as_secs()),
        drops,
        packets = analyzer.stats().packets,
        "capture ended"
    );
    Ok(analyzer.finish())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn requests_take_defaults_and_refuse_unknown_fields() {
        let r: CaptureRequest = serde_json::from_str(r#"{"interface": "eth9"}"#).unwrap();
        assert_eq!(r, CaptureRequest::new("eth9"));
        assert_eq!((r.bin_ms, r.max_duration_s, r.lease_s), (1000, 3600, None));
        assert!(!serde_json::to_string(&r).unwrap().contains("lease_s"));
        let r: CaptureRequest =
            serde_json::from_str(r#"{"interface": "eth9", "lease_s": 30}"#).unwrap();
        assert_eq!(r.lease_s, Some(30));
        let err = serde_json::from_str::<CaptureRequest>(r#"{"interface": "x", "iface": "y"}"#)
            .unwrap_err();
        assert!(err.to_string().contains("unknown field `iface`"), "{err}");
    }

    #[test]
    fn invalid_fields_are_named_with_the_accepted_form() {
        let mut r = CaptureRequest::new("a-very-long-interface-name");
        let msg = r.validate().unwrap_err().to_string();
        assert!(
            msg.contains("interface = 'a-very-long-interface-name'"),
            "{msg}"
        );
        r.interface = "eth0".into();
        r.max_duration_s = 100_000;
        let msg = r.validate().unwrap_err().to_string();
        assert_eq!(
            msg,
            "invalid capture request: max_duration_s = '100000': expected 1 to 86400 seconds"
        );
        r.max_duration_s = 10;
        r.bin_ms = 5;
        assert!(
            r.validate()
                .unwrap_err()
                .to_string()
                .contains("bin_ms = '5'")
        );
        r.bin_ms = 0;
        r.netns = Some("../etc".into());
        assert!(r.validate().unwrap_err().to_string().contains("netns"));
        r.netns = None;
        for lease_s in [0, 3601] {
            r.lease_s = Some(lease_s);
            assert_eq!(
                r.validate().unwrap_err().to_string(),
                format!(
                    "invalid capture request: lease_s = '{lease_s}': expected 1 to 3600 \
                     seconds, or none (no lease)"
                )
            );
        }
        r.lease_s = Some(3600);
        assert!(r.validate().is_ok());
    }

    #[test]
    fn a_missing_interface_is_reported_at_start() {
        let err = LiveCapture::start(&CaptureRequest::new("qlnosuch0")).unwrap_err();
        let msg = err.to_string();
        assert!(
            msg.contains("interface 'qlnosuch0' does not exist") || msg.contains("CAP_NET_RAW"),
            "{msg}"
        );
    }
}
