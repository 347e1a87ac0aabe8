//! Delivery accounting at the sink and the QoS report (format `qoelab.iot-qos.v1`, documented
//! field by field in `workload/FORMATS.md`).
//!
//! **Achieved QoS.** Frame n is captured at `start + n · period` and is *due* once its deadline
//! (`capture + deadline`) has passed. A due frame is *on time* if all its bytes reached the
//! sink within the deadline, *late* if they arrived after it, and *missing* if they have not
//! (all) arrived; in the final report missing frames are the incomplete ones. An analytic's
//! result for a frame that is late or incomplete is useless (a late detection is a missed
//! detection), so
//!
//! > achieved QoS = expected QoS(K) × on-time frames / due frames
//!
//! e.g. a detector expected at 0.99 that gets 70 % of its frames in time achieves 0.693. With
//! no frame due yet, the achieved QoS is the expected one. Counters are cumulative from the
//! session's start; the report with `final: true` is the session's result.
//!
//! Latency is measured from the capture time in the frame header (the uploader's clock) to the
//! arrival of the frame's last byte (the sink's clock): the clocks must agree, which they do
//! inside one machine's lab and need NTP or PTP across machines.

use serde::{Deserialize, Serialize};

use super::wire::{Hello, UploadSpec};
use crate::decimals::{micro, round};

/// The `schema` value of reports in this format.
pub const QOS_SCHEMA: &str = "qoelab.iot-qos.v1";

/// The QoS of one analytic's session, so far or final. Ratios are rounded to 6 decimals,
/// milliseconds to 3.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct QosReport {
    /// Always [`QOS_SCHEMA`].
    pub schema: String,
    /// The upload.
    #[serde(flatten)]
    pub spec: UploadSpec,
    /// Capture time of the first frame, ms since the Unix epoch.
    pub started_unix_ms: u64,
    /// When this report was made, ms since the Unix epoch.
    pub report_unix_ms: u64,
    /// `report_unix_ms − started_unix_ms`, seconds.
    pub elapsed_s: f64,
    /// Whether this is the session's last report.
    #[serde(rename = "final")]
    pub is_final: bool,
    /// Frames in the session.
    pub frames_expected: u64,
    /// Frames whose deadline has passed (all of them in the final report).
    pub frames_due: u64,
    /// Frames complete at the sink, due or not.
    pub frames_received: u64,
    /// Due frames that were complete within the deadline.
    pub frames_on_time: u64,
    /// Due frames that were complete after the deadline.
    pub frames_late: u64,
    /// Due frames not complete (in the final report: never completed).
    pub frames_missing: u64,
    /// Bytes received on the connection (headers and payloads).
    pub bytes_received: u64,
    /// `bytes_received · 8 / elapsed_s`, bit/s.
    pub throughput_bps: u64,
    /// Mean capture-to-arrival time of complete frames, ms (`null` if none).
    pub latency_ms_mean: Option<f64>,
    /// 95th percentile of the same (nearest rank), ms.
    pub latency_ms_p95: Option<f64>,
    /// Largest of the same, ms.
    pub latency_ms_max: Option<f64>,
    /// Mean time late frames arrived after their deadline, ms (`null` if none was late).
    pub lateness_ms_mean: Option<f64>,
    /// Complete due frames / due frames (1 when none is due).
    pub completeness: f64,
    /// On-time frames / due frames (1 when none is due).
    pub on_time_ratio: f64,
    /// QoS the model expects at K.
    pub expected_qos: f64,
    /// `expected_qos · on_time_ratio`.
    pub achieved_qos: f64,
}

impl QosReport {
    /// The MQTT topic of this analytic's reports: `qoelab/<gateway>/<analytic>/qos`.
    pub fn topic(&self) -> String {
        format!("qoelab/{}/{}/qos", self.spec.gateway, self.spec.analytic)
    }
}

#[derive(Debug, Clone, Copy, Default)]
struct Frame {
    capture_us: Option<u64>,
    complete_us: Option<u64>,
}

/// What a sink knows about one session's frames.
#[derive(Debug, Clone)]
pub struct Accounting {
    hello: Hello,
    frames: Vec<Frame>,
    bytes_received: u64,
}

impl Accounting {
    /// Accounting for the session `hello` announces.
    pub fn new(hello: Hello) -> Accounting {
        let frames = vec![Frame::default(); hello.frames as usize];
        Accounting {
            hello,
            frames,
            bytes_received: 0,
        }
    }

    /// The session's announcement.
    pub fn hello(&self) -> &Hello {
        &self.hello
    }

    /// Frame `seq`, captured at `capture_us`, is complete at `at_us`. Returns false for a
    /// sequence number outside the session.
    pub fn complete(&mut self, seq: u64, capture_us: u64, at_us: u64) -> bool {
        match self.frames.get_mut(seq as usize) {
            Some(frame) => {
                frame.capture_us = Some(capture_us);
                frame.complete_us = Some(at_us);
                true
            }
            None => false,
        }
    }

    /// Bytes received on the connection so far.
    pub fn set_bytes_received(&mut self, bytes: u64) {
        self.bytes_received = bytes;
    }

    /// Whether every frame is complete.
    pub fn all_complete(&self) -> bool {
        self.frames.iter().all(|f| f.complete_us.is_some())
    }

    /// Whether any frame is due at `now_us`.
    pub fn any_due(&self, now_us: u64) -> bool {
        self.due_at_us(0) <= now_us
    }

    /// When the sink stops waiting: the last frame's deadline plus `linger_us`.
    pub fn close_at_us(&self, linger_us: u64) -> u64 {
        self.due_at_us(self.hello.frames - 1) + linger_us
    }

    fn due_at_us(&self, seq: u64) -> u64 {
        self.hello.capture_us(seq) + self.hello.spec.deadline_ms * 1000
    }

    /// The report at `now_us`; in a final report every frame is due.
    pub fn report(&self, now_us: u64, is_final: bool) -> QosReport {
        let hello = &self.hello;
        let deadline_us = hello.spec.deadline_ms * 1000;
        let (mut due, mut on_time, mut late, mut missing) = (0u64, 0u64, 0u64, 0u64);
        let mut latencies_ms = Vec::new();
        let mut lateness_ms = Vec::new();
        for (seq, frame) in self.frames.iter().enumerate() {
            let capture_us = frame
                .capture_us
                .unwrap_or_else(|| hello.capture_us(seq as u64));
            let latency_us = frame.complete_us.map(|at| at.saturating_sub(capture_us));
            if let Some(latency_us) = latency_us {
                latencies_ms.push(latency_us as f64 / 1000.0); // whole µs: exact to 3 places
            }
            if !is_final && self.due_at_us(seq as u64) > now_us {
                continue;
            }
            due += 1;
            match latency_us {
                Some(l) if l <= deadline_us => on_time += 1,
                Some(l) => {
                    late += 1;
                    lateness_ms.push((l - deadline_us) as f64 / 1000.0);
                }
                None => missing += 1,
            }
        }
        let ratio = |n: u64| if due == 0 { 1.0 } else { n as f64 / due as f64 };
        let on_time_ratio = ratio(on_time);
        let started_us = hello.start_unix_us;
        let elapsed_s = now_us.saturating_sub(started_us) as f64 / 1e6;
        latencies_ms.sort_by(f64::total_cmp);
        QosReport {
            schema: QOS_SCHEMA.to_string(),
            spec: hello.spec.clone(),
            started_unix_ms: started_us / 1000,
            report_unix_ms: now_us / 1000,
            elapsed_s: micro(elapsed_s),
            is_final,
            frames_expected: hello.frames,
            frames_due: due,
            frames_received: latencies_ms.len() as u64,
            frames_on_time: on_time,
            frames_late: late,
            frames_missing: missing,
            bytes_received: self.bytes_received,
            throughput_bps: if elapsed_s > 0.0 {
                (self.bytes_received as f64 * 8.0 / elapsed_s).round() as u64
            } else {
                0
            },
            latency_ms_mean: mean(&latencies_ms).map(|l| round(l, 3)),
            latency_ms_p95: percentile(&latencies_ms, 0.95),
            latency_ms_max: latencies_ms.last().copied(),
            lateness_ms_mean: mean(&lateness_ms).map(|l| round(l, 3)),
            completeness: micro(ratio(on_time + late)),
            on_time_ratio: micro(on_time_ratio),
            expected_qos: hello.expected_qos,
            achieved_qos: micro(hello.expected_qos * on_time_ratio),
        }
    }
}

fn mean(values: &[f64]) -> Option<f64> {
    (!values.is_empty()).then(|| values.iter().sum::<f64>() / values.len() as f64)
}

/// Nearest-rank percentile of sorted values.
fn percentile(sorted: &[f64], p: f64) -> Option<f64> {
    if sorted.is_empty() {
        return None;
    }
    let rank = (p * sorted.len() as f64).ceil() as usize;
    Some(sorted[rank.clamp(1, sorted.len()) - 1])
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::model::Location;

    /// A session of `frames` frames, one per second from t = 0, deadline 1 s.
    pub(crate) fn hello(frames: u64) -> Hello {
        Hello {
            version: 1,
            spec: UploadSpec {
                gateway: "gw".into(),
                analytic: "cam".into(),
                kind: "object-detection".into(),
                location: Location::Cloud,
                knob: 1.0,
                rate_bps: 57_969,
                frame_bytes: 7_246,
                period_ms: 1000,
                deadline_ms: 1000,
            },
            frames,
            start_unix_us: 0,
            expected_qos: 0.99,
        }
    }

    const S: u64 = 1_000_000;

    #[test]
    fn on_time_late_and_missing_frames_set_the_achieved_qos() {
        let mut acc = Accounting::new(hello(4));
        assert!(acc.complete(0, 0, S / 2)); // latency 0.5 s: on time
        assert!(!acc.complete(9, 0, 0));
        // At 2.5 s frames 0 and 1 are due (deadlines 1 s, 2 s).
        let r = acc.report(5 * S / 2, false);
        assert_eq!((r.frames_due, r.frames_on_time, r.frames_late), (2, 1, 0));
        assert_eq!(
            r.frames_missing, 1,
            "frame 1 is due and not complete at 2.5 s"
        );
        assert!(acc.complete(1, S, 3 * S)); // latency 2 s: late by 1 s
        acc.set_bytes_received(2 * 7_266);
        let r = acc.report(3 * S, false);
        assert_eq!((r.frames_due, r.frames_on_time, r.frames_late), (3, 1, 1));
        assert_eq!(r.frames_missing, 1);
        assert!((r.achieved_qos - 0.99 / 3.0).abs() < 1e-12);
        assert!(!acc.all_complete());
        let f = acc.report(6 * S, true);
        assert!(f.is_final);
        assert_eq!(
            (f.frames_due, f.frames_missing, f.frames_received),
            (4, 2, 2)
        );
        assert_eq!(f.completeness, 0.5);
        assert_eq!(f.on_time_ratio, 0.25);
        assert_eq!(f.latency_ms_mean, Some(1250.0));
        assert_eq!(f.latency_ms_max, Some(2000.0));
        assert_eq!(f.lateness_ms_mean, Some(1000.0));
        assert_eq!(f.throughput_bps, (2 * 7_266 * 8) / 6);
        assert_eq!(f.schema, QOS_SCHEMA);
    }

    #[test]
    fn nothing_due_means_expected_qos_and_close_time_follows_the_schedule() {
        let acc = Accounting::new(hello(3));
        assert!(!acc.any_due(S - 1) && acc.any_due(S));
        let r = acc.report(S / 2, false);
        assert_eq!((r.frames_due, r.achieved_qos), (0, 0.99));
        assert_eq!(acc.close_at_us(2 * S), 2 * S + S + 2 * S);
        assert_eq!(percentile(&[1.0, 2.0, 3.0, 4.0], 0.95), Some(4.0));
        assert_eq!(
            percentile(&(1..=100).map(f64::from).collect::<Vec<_>>(), 0.95),
            Some(95.0)
        );
    }
}
