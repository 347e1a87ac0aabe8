//! The uploader: one gateway analytic that captures a frame (or audio clip) every period and
//! uploads it over TCP to a sink, at the bitrate its knob K sets through its model.
//!
//! Frames are captured on schedule whatever the network does, and queue in the uploader while
//! the connection is slow (as a naive camera pipeline does), so a link below the analytic's
//! bitrate makes frames late, and frames still queued when the sink closes the session are
//! incomplete.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::TcpStream;
use tokio::sync::mpsc;

use super::sink::LINGER;
use super::wire::{FrameHeader, Hello, PROTOCOL_VERSION, UploadSpec};
use super::{IotError, QosReport};
use crate::decimals::micro;
use crate::model::{Location, ModelSet};

/// How long connecting to the sink may take.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);
/// Extra time to wait for the sink's final report after it should have closed the session.
const REPORT_MARGIN: Duration = Duration::from_secs(10);
/// Longest final report line accepted.
const MAX_REPORT_BYTES: u64 = 1 << 20;

/// One analytic's upload session.
#[derive(Debug, Clone, PartialEq)]
pub struct UploaderConfig {
    /// The sink, `HOST:PORT`.
    pub sink: String,
    /// The gateway's name (an MQTT topic level).
    pub gateway: String,
    /// The analytic's name on the gateway (an MQTT topic level).
    pub analytic: String,
    /// The analytic's kind, a kind of the model set.
    pub kind: String,
    /// The QoS knob K in [k_min, 1].
    pub knob: f64,
    /// Where the analytic runs (which bitrate model applies).
    pub location: Location,
    /// Time between frame captures.
    pub period: Duration,
    /// A frame is on time if it is complete at the sink within this time of its capture.
    pub deadline: Duration,
    /// Session length; frames are captured at 0, period, 2·period, … before it ends.
    pub duration: Duration,
}

impl UploaderConfig {
    /// Uploads `kind` at knob `knob` to `sink` for `duration`: gateway `gateway`, the analytic
    /// named after its kind, in the cloud, a frame per second due within a second.
    pub fn new(sink: &str, kind: &str, knob: f64, duration: Duration) -> UploaderConfig {
        UploaderConfig {
            sink: sink.to_string(),
            gateway: "gateway".to_string(),
            analytic: kind.to_string(),
            kind: kind.to_string(),
            knob,
            location: Location::Cloud,
            period: Duration::from_secs(1),
            deadline: Duration::from_secs(1),
            duration,
        }
    }

    /// The session's announcement (its start time is set when it connects).
    pub fn hello(&self, models: &ModelSet) -> Result<Hello, IotError> {
        let model = models.get(&self.kind)?;
        let knob = model.check_knob(self.knob)?;
        let period_ms = self.period.as_millis() as u64;
        if period_ms == 0 || self.deadline.as_millis() == 0 {
            return Err(IotError::Invalid {
                field: "period/deadline",
                value: format!("{:?} / {:?}", self.period, self.deadline),
                accepted: "at least 1ms each",
            });
        }
        if self.duration < self.period {
            return Err(IotError::Invalid {
                field: "duration",
                value: format!("{:?}", self.duration),
                accepted: "at least one period",
            });
        }
        let rate_bps = model.rate_bps(knob, self.location);
        let hello = Hello {
            version: PROTOCOL_VERSION,
            spec: UploadSpec {
                gateway: self.gateway.clone(),
                analytic: self.analytic.clone(),
                kind: self.kind.clone(),
                location: self.location,
                knob,
                rate_bps: rate_bps.round() as u64,
                frame_bytes: (rate_bps * period_ms as f64 / 1000.0 / 8.0).round() as u64,
                period_ms,
                deadline_ms: self.deadline.as_millis() as u64,
            },
            frames: self.duration.as_millis().div_ceil(u128::from(period_ms)) as u64,
            start_unix_us: 0,
            expected_qos: micro(model.expected_qos(knob)),
        };
        hello.validate()?;
        Ok(hello)
    }
}

/// Runs one upload session and returns the sink's final QoS report.
pub async fn upload(config: &UploaderConfig, models: &ModelSet) -> Result<QosReport, IotError> {
    let mut hello = config.hello(models)?;
    let stream = connect(&config.sink).await?;
    let (read_half, mut write_half) = stream.into_split();

    let start = tokio::time::Instant::now();
    hello.start_unix_us = unix_now_us();
    let mut line = serde_json::to_vec(&hello).expect("hellos serialize");
    line.push(b'\n');
    write_half
        .write_all(&line)
        .await
        .map_err(|e| IotError::io(format!("send the session to {}", config.sink), e))?;

    let (frames_tx, mut frames_rx) = mpsc::unbounded_channel::<FrameHeader>();
    let (frame_count, period) = (hello.frames, config.period);
    let frame_len = hello.spec.frame_bytes as u32;
    let capture = tokio::spawn(async move {
        for seq in 0..frame_count {
            tokio::time::sleep_until(start + period * seq as u32).await;
            let header = FrameHeader {
                seq,
                capture_us: unix_now_us(),
                len: frame_len,
            };
            if frames_tx.send(header).is_err() {
                return;
            }
        }
    });
    let sink = config.sink.clone();
    let send = tokio::spawn(async move {
        let payload = vec![0x5a; frame_len as usize];
        while let Some(header) = frames_rx.recv().await {
            write_half.write_all(&header.encode()).await?;
            write_half.write_all(&payload).await?;
        }
        write_half.shutdown().await
    });

    let wait = config.duration + config.deadline + LINGER + REPORT_MARGIN;
    let mut reply = String::new();
    let mut reader = BufReader::new(read_half.take(MAX_REPORT_BYTES));
    let outcome = tokio::time::timeout(wait, reader.read_line(&mut reply)).await;
    capture.abort();
    send.abort();
    match outcome {
        Err(_) => Err(IotError::Protocol {
            peer: sink,
            reason: format!("no final report within {wait:?}"),
        }),
        Ok(Err(err)) => Err(IotError::io(
            format!("read the final report from {sink}"),
            err,
        )),
        Ok(Ok(_)) => parse_reply(&sink, &reply),
    }
}

fn parse_reply(sink: &str, reply: &str) -> Result<QosReport, IotError> {
    if reply.trim().is_empty() {
        return Err(IotError::Protocol {
            peer: sink.to_string(),
            reason: "the sink closed the connection without a report".into(),
        });
    }
    if let Ok(report) = serde_json::from_str::<QosReport>(reply) {
        return Ok(report);
    }
    #[derive(serde::Deserialize)]
    struct Refusal {
        error: String,
    }
    match serde_json::from_str::<Refusal>(reply) {
        Ok(refusal) => Err(IotError::Refused {
            sink: sink.to_string(),
            reason: refusal.error,
        }),
        Err(_) => Err(IotError::Protocol {
            peer: sink.to_string(),
            reason: format!(
                "not a QoS report: {}",
                reply.trim().chars().take(200).collect::<String>()
            ),
        }),
    }
}

async fn connect(sink: &str) -> Result<TcpStream, IotError> {
    let unreachable = |reason: String| IotError::Unreachable {
        addr: sink.to_string(),
        reason,
    };
    if !sink.contains(':') {
        return Err(IotError::Invalid {
            field: "sink address",
            value: format!("'{sink}'"),
            accepted: "HOST:PORT, e.g. 198.18.2.2:9000",
        });
    }
    let stream = tokio::time::timeout(CONNECT_TIMEOUT, TcpStream::connect(sink))
        .await
        .map_err(|_| unreachable(format!("no answer within {CONNECT_TIMEOUT:?}")))?
        .map_err(|e| unreachable(e.to_string()))?;
    stream
        .set_nodelay(true)
        .map_err(|e| IotError::io(format!("configure the connection to {sink}"), e))?;
    Ok(stream)
}

/// Microseconds since the Unix epoch.
pub(crate) fn unix_now_us() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_micros() as u64)
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::http::tests::closed_port;

    /// Object detection at `knob` for `seconds`, to `sink`.
    fn detection(sink: &str, knob: f64, seconds: u64) -> UploaderConfig {
        UploaderConfig::new(sink, "object-detection", knob, Duration::from_secs(seconds))
    }

    #[test]
    fn the_knob_sets_frame_size_through_the_model() {
        let models = ModelSet::builtin();
        let hello = detection("127.0.0.1:1", 1.0, 20).hello(&models).unwrap();
        assert_eq!(hello.spec.rate_bps, 57_969);
        assert_eq!(hello.spec.frame_bytes, 7_246);
        assert_eq!(hello.frames, 20);
        assert_eq!(hello.expected_qos, 0.99);
        let low = detection("127.0.0.1:1", 0.2, 20).hello(&models).unwrap();
        assert_eq!(low.spec.frame_bytes, 1_994);
        assert_eq!(low.expected_qos, 0.525);
        let edge = UploaderConfig {
            location: Location::Edge,
            period: Duration::from_millis(500),
            duration: Duration::from_millis(20_100),
            ..detection("127.0.0.1:1", 1.0, 20)
        };
        let edge = edge.hello(&models).unwrap();
        assert_eq!((edge.spec.frame_bytes, edge.frames), (2_136, 41));
    }

    #[test]
    fn bad_settings_are_refused_by_name() {
        let models = ModelSet::builtin();
        let base = detection("127.0.0.1:1", 1.0, 5);
        let err = |c: UploaderConfig| c.hello(&models).unwrap_err().to_string();
        let e = err(detection("127.0.0.1:1", 0.1, 5));
        assert!(e.contains("K = 0.1") && e.contains("[0.2, 1]"), "{e}");
        let e = err(UploaderConfig {
            kind: "lidar".into(),
            ..base.clone()
        });
        assert!(
            e.contains("'lidar'") && e.contains("object-detection"),
            "{e}"
        );
        let e = err(UploaderConfig {
            gateway: "gw/1".into(),
            ..base.clone()
        });
        assert!(e.contains("'gw/1'"), "{e}");
        let e = err(UploaderConfig {
            duration: Duration::from_millis(10),
            ..base
        });
        assert!(e.contains("duration"), "{e}");
    }

    #[tokio::test]
    async fn an_unreachable_sink_is_named() {
        let models = ModelSet::builtin();
        let sink = format!("127.0.0.1:{}", closed_port());
        for (sink, needles) in [
            (sink.as_str(), [sink.as_str(), "refused"]),
            ("localhost", ["'localhost'", "HOST:PORT"]),
        ] {
            let err = upload(&detection(sink, 1.0, 2), &models)
                .await
                .unwrap_err()
                .to_string();
            assert!(needles.iter().all(|n| err.contains(n)), "{err}");
        }
    }
}
