//! The video player: downloads segments over real HTTP in real time, keeps a playback buffer
//! that drains with the wall clock, asks an ABR algorithm for each segment's level, and records
//! the session's QoE.

use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use super::abr::{AbrInput, AbrKind};
use super::playback::{Playback, Stall};
use super::qoe::{QoeRecord, SegmentRecord, SessionInfo};
use super::{Manifest, VideoError};
use crate::decimals::micro;
use crate::http::{self, HttpClient};

/// How one session is played.
#[derive(Debug, Clone, PartialEq)]
pub struct PlayerConfig {
    /// The server's base URL, e.g. `http://198.18.2.2:8080`.
    pub server: String,
    /// The ABR algorithm.
    pub abr: AbrKind,
    /// Media to play, seconds (rounded up to whole segments).
    pub media_s: f64,
    /// Media buffered before playback starts, seconds.
    pub startup_s: f64,
    /// Most media buffered, seconds.
    pub buffer_cap_s: f64,
    /// Longest a request (manifest or segment) may take.
    pub request_timeout: Duration,
    /// Whether the session lasts until the buffered media has played out (true) or ends with
    /// the last download (false; the QoE is the same, the session is shorter).
    pub play_out: bool,
    /// A caller-chosen identifier copied into the record.
    pub session: Option<String>,
}

impl PlayerConfig {
    /// Plays `media_s` of the video at `server` with `abr`: startup at 4 s of media (one
    /// segment), a 60 s buffer cap, requests limited to 60 s, played out to the end.
    pub fn new(server: &str, abr: AbrKind, media_s: f64) -> PlayerConfig {
        PlayerConfig {
            server: server.to_string(),
            abr,
            media_s,
            startup_s: 4.0,
            buffer_cap_s: 60.0,
            request_timeout: Duration::from_secs(60),
            play_out: true,
            session: None,
        }
    }

    fn validate(&self) -> Result<(), VideoError> {
        let invalid = |field, value: f64, accepted| {
            Err(VideoError::Invalid {
                field,
                value: format!("{value} s"),
                accepted,
            })
        };
        if !(self.media_s > 0.0 && self.media_s.is_finite()) {
            return invalid("duration", self.media_s, "more than 0 s of media");
        }
        if !(self.buffer_cap_s > 0.0 && self.buffer_cap_s.is_finite()) {
            return invalid("buffer cap", self.buffer_cap_s, "more than 0 s");
        }
        if !(0.0..=self.buffer_cap_s).contains(&self.startup_s) {
            return invalid("startup", self.startup_s, "from 0 s up to the buffer cap");
        }
        http::parse_url(&self.server)?;
        Ok(())
    }
}

/// Plays one session and returns its QoE record; `on_segment` sees each segment as it arrives
/// (for progress displays).
pub async fn play(
    config: &PlayerConfig,
    mut on_segment: impl FnMut(&SegmentRecord),
) -> Result<QoeRecord, VideoError> {
    config.validate()?;
    let base = config.server.trim_end_matches('/');
    let client = HttpClient::new(config.request_timeout);
    let started_unix_ms = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or_default();
    let start = Instant::now();
    let clock = || start.elapsed().as_secs_f64();

    let manifest: Manifest = client.get_json(&format!("{base}/manifest.json")).await?;
    manifest.validate()?;
    let segment_s = manifest.segment_duration_s;
    let count = (config.media_s / segment_s - 1e-9).ceil().max(1.0) as u64;
    let startup_s = config.startup_s.min(count as f64 * segment_s);
    if config.buffer_cap_s < segment_s {
        return Err(VideoError::Invalid {
            field: "buffer cap",
            value: format!("{} s", config.buffer_cap_s),
            accepted: "at least one segment's duration (see the manifest)",
        });
    }

    let mut playback = Playback::new(startup_s, config.buffer_cap_s);
    let mut abr = config.abr.build();
    let mut throughputs_bps = Vec::with_capacity(count as usize);
    let mut segments: Vec<SegmentRecord> = Vec::with_capacity(count as usize);
    for index in 0..count {
        let wait_s = playback.wait_for_room_s(segment_s);
        if wait_s > 0.0 {
            tokio::time::sleep(Duration::from_secs_f64(wait_s)).await;
        }
        playback.advance(clock());
        let level = abr.choose(&AbrInput {
            manifest: &manifest,
            index,
            remaining: (count - index) as usize,
            buffer_s: playback.buffer_s(),
            last_level: segments.last().map(|s| s.level),
            throughputs_bps: &throughputs_bps,
        });
        let url = format!("{base}/segments/{level}/{index}");
        let requested_s = clock();
        let download = client.download(&url).await?;
        let expected = manifest.bytes(level, index).unwrap_or(0);
        if download.bytes != expected {
            return Err(VideoError::SegmentSize {
                url,
                expected,
                got: download.bytes,
            });
        }
        let stall = playback.add(clock(), segment_s);
        let download_s = download.total.as_secs_f64().max(1e-6);
        let throughput = download.bytes as f64 * 8.0 / download_s;
        throughputs_bps.push(throughput);
        let record = SegmentRecord {
            index,
            level,
            bitrate_bps: manifest.bitrates_bps[level],
            bytes: download.bytes,
            requested_s: micro(requested_s),
            ttfb_s: micro(download.ttfb.as_secs_f64()),
            download_s: micro(download_s),
            throughput_bps: throughput.round() as u64,
            buffer_s: micro(playback.buffer_s()),
            rebuffer_s: micro(stall.map_or(0.0, |s| s.duration_s)),
        };
        tracing::debug!(?record, "segment");
        on_segment(&record);
        segments.push(record);
    }
    if config.play_out {
        tokio::time::sleep(Duration::from_secs_f64(playback.buffer_s())).await;
    }
    let duration_s = clock();
    let info = SessionInfo {
        session: config.session.clone(),
        server: base.to_string(),
        abr: config.abr,
        started_unix_ms,
        duration_s,
        segment_duration_s: segment_s,
        ladder_bps: manifest.bitrates_bps.clone(),
        startup_delay_s: playback.startup_delay_s().unwrap_or(duration_s),
    };
    let stalls = playback
        .stalls()
        .iter()
        .map(|s| Stall {
            start_s: micro(s.start_s),
            duration_s: micro(s.duration_s),
        })
        .collect();
    Ok(QoeRecord::new(info, segments, stalls))
}
