//! The per-session QoE record of the video player (format `qoelab.video-qoe.v1`, documented
//! field by field in `workload/FORMATS.md`), and how its scores and labels are computed.
//!
//! Scores, per segment n with nominal bitrate R_n (Mbit/s) and rebuffering T_n (s) during its
//! download, averaged over the session's segments:
//!
//! - `qoe_lin` (Pensieve's QoE_lin): R_n − 4.3·T_n − |R_n − R_{n−1}|
//! - `qoe_log` (Pensieve's QoE_log): q(R_n) − 2.66·T_n − |q(R_n) − q(R_{n−1})| with
//!   q(R) = ln(R / R_min), R_min the ladder's lowest bitrate
//!
//! The first segment has no switch term; startup is not rebuffering (it is `startup_delay_s`).
//!
//! Labels: `stall` is any stall after startup. `qoe_class` is
//! - `low` if the stall ratio exceeds 5 %, or the average bitrate is below 750 kbit/s, or
//!   startup took more than 10 s;
//! - `high` if there was no stall after startup, the average bitrate is at least 1850 kbit/s and
//!   startup took at most 5 s;
//! - `medium` otherwise.

use serde::{Deserialize, Serialize};

use super::AbrKind;
use super::playback::Stall;
use crate::decimals::micro;

/// The `schema` value of records in this format.
pub const QOE_SCHEMA: &str = "qoelab.video-qoe.v1";
/// QoE_lin's penalty per second of rebuffering (in Mbit/s of bitrate).
pub const REBUFFER_PENALTY: f64 = 4.3;
/// QoE_log's penalty per second of rebuffering.
pub const REBUFFER_PENALTY_LOG: f64 = 2.66;

/// `qoe_class` thresholds (see the module documentation).
const LOW_STALL_RATIO: f64 = 0.05;
const LOW_BITRATE_BPS: u64 = 750_000;
const LOW_STARTUP_S: f64 = 10.0;
const HIGH_BITRATE_BPS: u64 = 1_850_000;
const HIGH_STARTUP_S: f64 = 5.0;

/// A coarse QoE label.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum QoeClass {
    /// Frequent stalls, SD quality or a long startup.
    Low,
    /// Neither low nor high.
    Medium,
    /// No stall, HD quality, quick startup.
    High,
}

impl QoeClass {
    /// The label's name as serialized.
    pub fn as_str(self) -> &'static str {
        match self {
            QoeClass::Low => "low",
            QoeClass::Medium => "medium",
            QoeClass::High => "high",
        }
    }
}

/// One downloaded segment.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SegmentRecord {
    /// Segment number in the session, from 0.
    pub index: u64,
    /// Ladder level, 0 = lowest.
    pub level: usize,
    /// Nominal bitrate of the level, bit/s.
    pub bitrate_bps: u64,
    /// Body bytes received.
    pub bytes: u64,
    /// When it was requested, seconds since the session started.
    pub requested_s: f64,
    /// Request to response head, seconds.
    pub ttfb_s: f64,
    /// Request to last byte, seconds.
    pub download_s: f64,
    /// `bytes · 8 / download_s`, bit/s.
    pub throughput_bps: u64,
    /// Media buffered right after it arrived, seconds.
    pub buffer_s: f64,
    /// Playback stalled this long while it downloaded, seconds.
    pub rebuffer_s: f64,
}

/// What is known about a session apart from its segments and stalls.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SessionInfo {
    /// A caller-chosen session identifier (e.g. a campaign's session id).
    pub session: Option<String>,
    /// The server's base URL.
    pub server: String,
    /// The ABR algorithm.
    pub abr: AbrKind,
    /// Session start (before the manifest request), milliseconds since the Unix epoch.
    pub started_unix_ms: u64,
    /// Session start to end, seconds of wall time.
    pub duration_s: f64,
    /// Media length of one segment, seconds.
    pub segment_duration_s: f64,
    /// The ladder, bit/s.
    pub ladder_bps: Vec<u64>,
    /// Session start to playback start, seconds.
    pub startup_delay_s: f64,
}

/// A session's QoE: measurements, scores and labels (format `qoelab.video-qoe.v1`). Times,
/// ratios and scores are rounded to 6 decimals. In JSON the [`SessionInfo`] fields sit at the
/// top level with the others.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct QoeRecord {
    /// Always [`QOE_SCHEMA`].
    pub schema: String,
    /// The session's settings and timing.
    #[serde(flatten)]
    pub info: SessionInfo,
    /// Media downloaded, seconds.
    pub media_s: f64,
    /// Stalls after startup.
    pub stall_count: u32,
    /// Total stall time after startup, seconds.
    pub stall_time_s: f64,
    /// `stall_time_s / (media_s + stall_time_s)`.
    pub stall_ratio: f64,
    /// Mean nominal bitrate of the segments, bit/s.
    pub avg_bitrate_bps: u64,
    /// Consecutive segments at different levels.
    pub switch_count: u32,
    /// Sum of |R_n − R_{n−1}| over consecutive segments, bit/s.
    pub switch_magnitude_bps: u64,
    /// Segment body bytes received.
    pub bytes: u64,
    /// Bytes · 8 over the total download time, bit/s.
    pub avg_throughput_bps: u64,
    /// Linear QoE per segment (Pensieve's QoE_lin).
    pub qoe_lin: f64,
    /// Logarithmic QoE per segment (Pensieve's QoE_log).
    pub qoe_log: f64,
    /// Any stall after startup.
    pub stall: bool,
    /// Low, medium or high.
    pub qoe_class: QoeClass,
    /// Each stall.
    pub stalls: Vec<Stall>,
    /// Each segment, in order.
    pub segments: Vec<SegmentRecord>,
}

impl QoeRecord {
    /// Computes the record of a session from its segments and stalls.
    pub fn new(
        mut info: SessionInfo,
        segments: Vec<SegmentRecord>,
        stalls: Vec<Stall>,
    ) -> QoeRecord {
        info.duration_s = micro(info.duration_s);
        info.startup_delay_s = micro(info.startup_delay_s);
        let n = segments.len().max(1) as f64;
        let media_s = segments.len() as f64 * info.segment_duration_s;
        let stall_time_s: f64 = stalls.iter().map(|s| s.duration_s).sum();
        let stall_ratio = if media_s + stall_time_s > 0.0 {
            stall_time_s / (media_s + stall_time_s)
        } else {
            0.0
        };
        let avg_bitrate_bps =
            (segments.iter().map(|s| s.bitrate_bps as f64).sum::<f64>() / n).round() as u64;
        let pairs = || segments.windows(2).map(|w| (&w[0], &w[1]));
        let switch_count = pairs().filter(|(a, b)| a.level != b.level).count() as u32;
        let switch_magnitude_bps = pairs()
            .map(|(a, b)| a.bitrate_bps.abs_diff(b.bitrate_bps))
            .sum();
        let bytes = segments.iter().map(|s| s.bytes).sum::<u64>();
        let download_s: f64 = segments.iter().map(|s| s.download_s).sum();
        let avg_throughput_bps = if download_s > 0.0 {
            (bytes as f64 * 8.0 / download_s).round() as u64
        } else {
            0
        };
        let r_min = info.ladder_bps.first().copied().unwrap_or(1).max(1) as f64;
        let qoe_lin = score(&segments, REBUFFER_PENALTY, |bps| bps / 1e6) / n;
        let qoe_log = score(&segments, REBUFFER_PENALTY_LOG, |bps| (bps / r_min).ln()) / n;
        let stall = !stalls.is_empty();
        let qoe_class = if stall_ratio > LOW_STALL_RATIO
            || avg_bitrate_bps < LOW_BITRATE_BPS
            || info.startup_delay_s > LOW_STARTUP_S
        {
            QoeClass::Low
        } else if !stall
            && avg_bitrate_bps >= HIGH_BITRATE_BPS
            && info.startup_delay_s <= HIGH_STARTUP_S
        {
            QoeClass::High
        } else {
            QoeClass::Medium
        };
        QoeRecord {
            schema: QOE_SCHEMA.to_string(),
            info,
            media_s,
            stall_count: stalls.len() as u32,
            stall_time_s: micro(stall_time_s),
            stall_ratio: micro(stall_ratio),
            avg_bitrate_bps,
            switch_count,
            switch_magnitude_bps,
            bytes,
            avg_throughput_bps,
            qoe_lin: micro(qoe_lin),
            qoe_log: micro(qoe_log),
            stall,
            qoe_class,
            stalls,
            segments,
        }
    }
}

/// Σ utility(R_n) − penalty·T_n − |utility(R_n) − utility(R_{n−1})|.
fn score(segments: &[SegmentRecord], penalty: f64, utility: impl Fn(f64) -> f64) -> f64 {
    let mut total = 0.0;
    let mut prev: Option<f64> = None;
    for segment in segments {
        let u = utility(segment.bitrate_bps as f64);
        total += u - penalty * segment.rebuffer_s - prev.map_or(0.0, |p| (u - p).abs());
        prev = Some(u);
    }
    total
}

#[cfg(test)]
mod tests {
    use super::*;

    fn segment(level: usize, bitrate_bps: u64, rebuffer_s: f64) -> SegmentRecord {
        SegmentRecord {
            index: 0,
            level,
            bitrate_bps,
            bytes: bitrate_bps / 2,
            requested_s: 0.0,
            ttfb_s: 0.01,
            download_s: 1.0,
            throughput_bps: bitrate_bps * 4,
            buffer_s: 4.0,
            rebuffer_s,
        }
    }

    fn info(startup_delay_s: f64) -> SessionInfo {
        SessionInfo {
            session: Some("s1".into()),
            server: "http://198.18.2.2:8080".into(),
            abr: AbrKind::Buffer,
            started_unix_ms: 1,
            duration_s: 20.0,
            segment_duration_s: 4.0,
            ladder_bps: vec![300_000, 750_000, 1_200_000, 1_850_000, 2_850_000, 4_300_000],
            startup_delay_s,
        }
    }

    #[test]
    fn scores_follow_the_pensieve_forms() {
        let segments = vec![
            segment(0, 300_000, 0.0),
            segment(3, 1_850_000, 0.0),
            segment(2, 1_200_000, 1.5),
        ];
        let stalls = vec![Stall {
            start_s: 9.0,
            duration_s: 1.5,
        }];
        let r = QoeRecord::new(info(1.0), segments, stalls);
        // (0.3) + (1.85 − 1.55) + (1.2 − 4.3·1.5 − 0.65) = −5.3 over 3 segments.
        assert!((r.qoe_lin - (-5.3 / 3.0)).abs() < 1e-6, "{}", r.qoe_lin);
        let q = |bps: f64| (bps / 300_000.0).ln();
        let log = q(300e3) + q(1850e3) - (q(1850e3) - q(300e3)) + q(1200e3)
            - 2.66 * 1.5
            - (q(1850e3) - q(1200e3));
        assert!((r.qoe_log - log / 3.0).abs() < 1e-6);
        assert_eq!(r.switch_count, 2);
        assert_eq!(r.switch_magnitude_bps, 1_550_000 + 650_000);
        assert_eq!(r.avg_bitrate_bps, 1_116_667);
        assert_eq!(r.stall_count, 1);
        assert!((r.stall_ratio - 1.5 / 13.5).abs() < 1e-6);
        assert!(r.stall);
        assert_eq!(r.qoe_class, QoeClass::Low);
        assert_eq!(r.media_s, 12.0);
        assert_eq!(r.bytes, (300_000 + 1_850_000 + 1_200_000) / 2);
        assert_eq!(r.schema, QOE_SCHEMA);
    }

    #[test]
    fn classes_follow_the_documented_thresholds() {
        let class = |bitrate_bps, rebuffer_s: f64, startup_s| {
            let stalls = if rebuffer_s > 0.0 {
                vec![Stall {
                    start_s: 5.0,
                    duration_s: rebuffer_s,
                }]
            } else {
                vec![]
            };
            let segments = (0..10).map(|_| segment(3, bitrate_bps, 0.0)).collect();
            QoeRecord::new(info(startup_s), segments, stalls).qoe_class
        };
        assert_eq!(class(1_850_000, 0.0, 2.0), QoeClass::High);
        assert_eq!(class(1_850_000, 0.0, 6.0), QoeClass::Medium);
        assert_eq!(class(1_850_000, 1.0, 2.0), QoeClass::Medium);
        assert_eq!(class(1_200_000, 0.0, 2.0), QoeClass::Medium);
        // 40 s of media: 2.2 s of stalls is above 5 %.
        assert_eq!(class(1_850_000, 2.2, 2.0), QoeClass::Low);
        assert_eq!(class(300_000, 0.0, 2.0), QoeClass::Low);
        assert_eq!(class(4_300_000, 0.0, 11.0), QoeClass::Low);
    }
}
