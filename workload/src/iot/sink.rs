//! The sink: receives uploads (one TCP connection per analytic session), measures delivery of
//! each frame, and reports the achieved QoS periodically and at the end of each session.
//!
//! A session ends when every frame is complete, when the uploader closes the connection, or
//! [`LINGER`] after the last frame's deadline, whichever comes first. Its final report goes
//! back to the uploader, to the [`Reporter`]'s destinations and to the caller's callback.

use std::future::Future;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::task::Poll;
use std::time::Duration;

use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::tcp::OwnedReadHalf;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::mpsc;

use super::qos::Accounting;
use super::report::Reporter;
use super::uploader::unix_now_us;
use super::wire::{FrameHeader, HEADER_BYTES, Hello, MAX_HELLO_BYTES};
use super::{IotError, QosReport};

/// How long the sink waits after the last frame's deadline before it closes a session.
pub const LINGER: Duration = Duration::from_secs(2);
/// How long an uploader has to send its hello after connecting.
const HELLO_TIMEOUT: Duration = Duration::from_secs(10);

/// How the sink reports.
#[derive(Debug, Clone)]
pub struct SinkConfig {
    /// Where reports go.
    pub reporter: Reporter,
    /// Time between a session's periodic reports (the final one comes in addition).
    pub report_interval: Duration,
}

/// Accepts sessions on `listener` until `shutdown` completes; `on_final` sees each session's
/// final report. Sessions still running at shutdown are ended and reported.
pub async fn run_sink(
    listener: TcpListener,
    config: SinkConfig,
    shutdown: impl Future<Output = ()>,
    on_final: impl Fn(&QosReport) + Send + Sync + 'static,
) -> Result<(), IotError> {
    run_sinks(vec![listener], config, shutdown, on_final).await
}

/// [`run_sink`] on several listeners at once (e.g. one port per analytic, so that each
/// analytic's traffic can be told apart by its port), all sessions alike.
pub async fn run_sinks(
    listeners: Vec<TcpListener>,
    config: SinkConfig,
    shutdown: impl Future<Output = ()>,
    on_final: impl Fn(&QosReport) + Send + Sync + 'static,
) -> Result<(), IotError> {
    let on_final = Arc::new(on_final);
    let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
    let mut sessions = tokio::task::JoinSet::new();
    let accept = || {
        std::future::poll_fn(|cx| {
            listeners
                .iter()
                .find_map(|l| match l.poll_accept(cx) {
                    Poll::Ready(accepted) => Some(accepted),
                    Poll::Pending => None,
                })
                .map_or(Poll::Pending, Poll::Ready)
        })
    };
    tokio::pin!(shutdown);
    loop {
        tokio::select! {
            _ = &mut shutdown => break,
            accepted = accept() => {
                let (stream, peer) = match accepted {
                    Ok(accepted) => accepted,
                    Err(err) => {
                        tracing::warn!("accepting an upload failed: {err}");
                        continue;
                    }
                };
                let (config, on_final, mut stop) = (config.clone(), on_final.clone(), stop_rx.clone());
                sessions.spawn(async move {
                    let stopped = async move {
                        let _ = stop.wait_for(|s| *s).await;
                    };
                    match session(stream, &config, stopped).await {
                        Ok(report) => on_final(&report),
                        Err(err) => tracing::warn!("upload session from {peer}: {err}"),
                    }
                });
            }
            Some(_) = sessions.join_next(), if !sessions.is_empty() => {}
        }
    }
    let _ = stop_tx.send(true);
    while sessions.join_next().await.is_some() {}
    Ok(())
}

enum Event {
    /// Frame `seq` captured at `capture_us` was complete at `at_us`.
    Complete {
        seq: u64,
        capture_us: u64,
        at_us: u64,
    },
    /// The uploader closed the connection or broke the protocol.
    End(Option<IotError>),
}

async fn session(
    stream: TcpStream,
    config: &SinkConfig,
    stopped: impl Future<Output = ()>,
) -> Result<QosReport, IotError> {
    let peer = stream
        .peer_addr()
        .map(|a| a.to_string())
        .unwrap_or_else(|_| "?".into());
    let (read_half, mut write_half) = stream.into_split();
    let mut reader = BufReader::new(read_half);
    let hello = match read_hello(&mut reader, &peer).await {
        Ok(hello) => hello,
        Err(err) => {
            let refusal = serde_json::json!({ "error": err.to_string() }).to_string() + "\n";
            let _ = write_half.write_all(refusal.as_bytes()).await;
            return Err(err);
        }
    };
    tracing::info!(
        "session {}/{} from {peer}: {} frames of {} bytes",
        hello.spec.gateway,
        hello.spec.analytic,
        hello.frames,
        hello.spec.frame_bytes
    );
    let mut accounting = Accounting::new(hello);
    let close_at = tokio::time::Instant::now()
        + Duration::from_micros(
            accounting
                .close_at_us(LINGER.as_micros() as u64)
                .saturating_sub(unix_now_us()),
        );
    let bytes = Arc::new(AtomicU64::new(0));
    let (events_tx, mut events) = mpsc::unbounded_channel();
    let frames = accounting.hello().frames;
    let receive = tokio::spawn(receive_frames(reader, frames, bytes.clone(), events_tx));
    // Reports go out in order, without holding up the measurement.
    let (reports, mut to_deliver) = mpsc::unbounded_channel::<QosReport>();
    let reporter = config.reporter.clone();
    let delivery = tokio::spawn(async move {
        while let Some(report) = to_deliver.recv().await {
            reporter.send(&report).await;
        }
    });
    let mut ticks = tokio::time::interval(config.report_interval);
    ticks.tick().await;
    tokio::pin!(stopped);
    loop {
        tokio::select! {
            event = events.recv() => match event {
                Some(Event::Complete { seq, capture_us, at_us }) => {
                    accounting.complete(seq, capture_us, at_us);
                    if accounting.all_complete() {
                        break;
                    }
                }
                Some(Event::End(err)) => {
                    if let Some(err) = err {
                        tracing::warn!("session from {peer}: {err}");
                    }
                    break;
                }
                None => break,
            },
            _ = ticks.tick() => {
                let now = unix_now_us();
                if accounting.any_due(now) {
                    accounting.set_bytes_received(bytes.load(Ordering::Relaxed));
                    let _ = reports.send(accounting.report(now, false));
                }
            }
            _ = tokio::time::sleep_until(close_at) => break,
            _ = &mut stopped => break,
        }
    }
    receive.abort();
    accounting.set_bytes_received(bytes.load(Ordering::Relaxed));
    let report = accounting.report(unix_now_us(), true);
    let mut line = serde_json::to_vec(&report).expect("reports serialize");
    line.push(b'\n');
    if let Err(err) = write_half.write_all(&line).await {
        tracing::debug!("final report not returned to {peer}: {err}");
    }
    let _ = reports.send(report.clone());
    drop(reports);
    let _ = delivery.await;
    Ok(report)
}

async fn read_hello(reader: &mut BufReader<OwnedReadHalf>, peer: &str) -> Result<Hello, IotError> {
    let mut line = Vec::new();
    let mut limited = (&mut *reader).take(MAX_HELLO_BYTES as u64);
    match tokio::time::timeout(HELLO_TIMEOUT, limited.read_until(b'\n', &mut line)).await {
        Err(_) => {
            return Err(IotError::Protocol {
                peer: peer.to_string(),
                reason: format!("no session announcement within {HELLO_TIMEOUT:?}"),
            });
        }
        Ok(Err(err)) => return Err(IotError::io(format!("read the hello of {peer}"), err)),
        Ok(Ok(_)) => {}
    }
    let hello: Hello = serde_json::from_slice(&line).map_err(|e| IotError::Protocol {
        peer: peer.to_string(),
        reason: format!("the session announcement is not a valid hello: {e}"),
    })?;
    hello.validate()?;
    Ok(hello)
}

/// Reads frames until the connection ends, reporting each completed frame, then the end.
async fn receive_frames(
    mut reader: BufReader<OwnedReadHalf>,
    frames: u64,
    bytes: Arc<AtomicU64>,
    events: mpsc::UnboundedSender<Event>,
) {
    let outcome = read_frames(&mut reader, frames, &bytes, &events).await;
    let _ = events.send(Event::End(outcome.err()));
}

async fn read_frames(
    reader: &mut BufReader<OwnedReadHalf>,
    frames: u64,
    bytes: &AtomicU64,
    events: &mpsc::UnboundedSender<Event>,
) -> Result<(), IotError> {
    let io = |e| IotError::io("read a frame", e);
    let mut header = [0u8; HEADER_BYTES];
    let mut buf = vec![0u8; 64 * 1024];
    loop {
        if !read_full(reader, &mut header, bytes).await.map_err(io)? {
            return Ok(());
        }
        let frame = FrameHeader::decode(&header);
        if frame.seq >= frames {
            return Err(IotError::Protocol {
                peer: "uploader".into(),
                reason: format!(
                    "frame {} is beyond the announced {frames} frames",
                    frame.seq
                ),
            });
        }
        let mut left = frame.len as usize;
        while left > 0 {
            let n = left.min(buf.len());
            if !read_full(reader, &mut buf[..n], bytes).await.map_err(io)? {
                return Ok(());
            }
            left -= n;
        }
        let complete = Event::Complete {
            seq: frame.seq,
            capture_us: frame.capture_us,
            at_us: unix_now_us(),
        };
        if events.send(complete).is_err() {
            return Ok(());
        }
    }
}

/// Fills `buf`, counting bytes as they arrive; false if the connection ended first.
async fn read_full(
    reader: &mut BufReader<OwnedReadHalf>,
    buf: &mut [u8],
    bytes: &AtomicU64,
) -> std::io::Result<bool> {
    let mut filled = 0;
    while filled < buf.len() {
        let n = reader.read(&mut buf[filled..]).await?;
        if n == 0 {
            return Ok(false);
        }
        bytes.fetch_add(n as u64, Ordering::Relaxed);
        filled += n;
    }
    Ok(true)
}
