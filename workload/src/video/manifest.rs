//! The synthetic video: a bitrate ladder, fixed-length segments whose sizes vary around each
//! level's nominal bitrate (VBR, seeded), and the manifest the player reads.

use serde::{Deserialize, Serialize};

use super::VideoError;
use crate::random::Seeded;

/// Pensieve's ladder in bit/s (300 … 4300 kbit/s).
pub const PENSIEVE_LADDER_BPS: [u64; 6] =
    [300_000, 750_000, 1_200_000, 1_850_000, 2_850_000, 4_300_000];

/// The manifest format's version; bump it on any incompatible change.
pub const MANIFEST_VERSION: u32 = 1;

/// How a synthetic video is made.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct VideoSpec {
    /// Nominal bitrate of each level in bit/s, strictly ascending.
    pub ladder_bps: Vec<u64>,
    /// Media length of one segment, in seconds.
    pub segment_duration_s: f64,
    /// Distinct segments; the player loops over them for longer sessions.
    pub segment_count: usize,
    /// Seed of the segment sizes.
    pub seed: u64,
    /// Standard deviation of the log of a segment's size around its level's nominal size
    /// (0 = constant bitrate).
    pub vbr_sigma: f64,
}

impl Default for VideoSpec {
    /// Pensieve's setup: its ladder, 4 s segments, 48 of them, VBR with σ = 0.25.
    fn default() -> VideoSpec {
        VideoSpec {
            ladder_bps: PENSIEVE_LADDER_BPS.to_vec(),
            segment_duration_s: 4.0,
            segment_count: 48,
            seed: 1,
            vbr_sigma: 0.25,
        }
    }
}

/// Largest accepted segment duration (s).
const MAX_SEGMENT_S: f64 = 60.0;
/// Largest accepted VBR spread.
const MAX_VBR_SIGMA: f64 = 1.0;
/// How far a segment's size may stray from its level's nominal size (factor).
const VBR_CLAMP: (f64, f64) = (0.25, 4.0);

impl VideoSpec {
    /// Checks every field; errors name the field, its value and what is accepted.
    pub fn validate(&self) -> Result<(), VideoError> {
        let invalid = |field, value: String, accepted| {
            Err(VideoError::Invalid {
                field,
                value,
                accepted,
            })
        };
        let ascending = self.ladder_bps.windows(2).all(|w| w[0] < w[1]);
        if self.ladder_bps.is_empty() || !ascending || self.ladder_bps[0] == 0 {
            return invalid(
                "ladder",
                format!("{:?} bit/s", self.ladder_bps),
                "one or more positive bitrates in strictly ascending order",
            );
        }
        if !(self.segment_duration_s > 0.0 && self.segment_duration_s <= MAX_SEGMENT_S) {
            return invalid(
                "segment duration",
                format!("{} s", self.segment_duration_s),
                "more than 0 s and at most 60 s",
            );
        }
        if self.segment_count == 0 {
            return invalid("segment count", "0".into(), "at least 1");
        }
        if !(0.0..=MAX_VBR_SIGMA).contains(&self.vbr_sigma) {
            return invalid(
                "vbr",
                self.vbr_sigma.to_string(),
                "a spread from 0 (constant bitrate) to 1",
            );
        }
        Ok(())
    }

    /// The manifest: every segment's size at every level.
    ///
    /// A segment's size is its level's nominal size times a factor shared by all levels (scene
    /// complexity: log-normal with σ = `vbr_sigma`) and a small per-level jitter (σ/5),
    /// clamped to [¼, 4] of nominal and rescaled so that each level's mean bitrate over the
    /// segments is exactly its nominal bitrate.
    pub fn manifest(&self) -> Result<Manifest, VideoError> {
        self.validate()?;
        let mut rng = Seeded::new(self.seed);
        let complexity: Vec<f64> = (0..self.segment_count)
            .map(|_| (self.vbr_sigma * rng.normal()).exp())
            .collect();
        let segment_bytes = self
            .ladder_bps
            .iter()
            .map(|&rate_bps| {
                let factors: Vec<f64> = complexity
                    .iter()
                    .map(|c| {
                        let jitter = (self.vbr_sigma / 5.0 * rng.normal()).exp();
                        (c * jitter).clamp(VBR_CLAMP.0, VBR_CLAMP.1)
                    })
                    .collect();
                let mean = factors.iter().sum::<f64>() / factors.len() as f64;
                let nominal_bytes = rate_bps as f64 * self.segment_duration_s / 8.0;
                factors
                    .iter()
                    .map(|f| (nominal_bytes * f / mean).round().max(1.0) as u64)
                    .collect()
            })
            .collect();
        Ok(Manifest {
            version: MANIFEST_VERSION,
            segment_duration_s: self.segment_duration_s,
            bitrates_bps: self.ladder_bps.clone(),
            segment_bytes,
        })
    }
}

/// What the server publishes at `/manifest.json`: the ladder and every segment's size, so
/// that look-ahead algorithms (MPC) can plan with real sizes as DASH players do with segment
/// indexes.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Manifest {
    /// [`MANIFEST_VERSION`].
    pub version: u32,
    /// Media length of one segment, in seconds.
    pub segment_duration_s: f64,
    /// Nominal bitrate of each level in bit/s, ascending; levels are numbered from 0.
    pub bitrates_bps: Vec<u64>,
    /// `segment_bytes[level][i]`: size of segment `i` at `level`. Segment numbers beyond the
    /// list wrap around (the video loops).
    pub segment_bytes: Vec<Vec<u64>>,
}

impl Manifest {
    /// The number of distinct segments before the video loops.
    pub fn segment_count(&self) -> usize {
        self.segment_bytes.first().map_or(0, Vec::len)
    }

    /// The size of segment `index` (any number: the video loops) at `level`, or `None` if the
    /// level does not exist.
    pub fn bytes(&self, level: usize, index: u64) -> Option<u64> {
        let sizes = self.segment_bytes.get(level)?;
        sizes.get((index % sizes.len() as u64) as usize).copied()
    }

    /// Checks that a manifest read from a server is usable.
    pub fn validate(&self) -> Result<(), VideoError> {
        if self.version != MANIFEST_VERSION {
            return Err(VideoError::Invalid {
                field: "manifest version",
                value: self.version.to_string(),
                accepted: "version 1 (this player's format)",
            });
        }
        let count = self.segment_count();
        let shaped = self.segment_bytes.len() == self.bitrates_bps.len()
            && count > 0
            && self.segment_bytes.iter().all(|s| s.len() == count);
        if !shaped {
            return Err(VideoError::Invalid {
                field: "manifest segment_bytes",
                value: format!(
                    "{} levels of {:?} segments for {} bitrates",
                    self.segment_bytes.len(),
                    self.segment_bytes.iter().map(Vec::len).collect::<Vec<_>>(),
                    self.bitrates_bps.len()
                ),
                accepted: "one list of equal, non-zero length per bitrate",
            });
        }
        VideoSpec {
            ladder_bps: self.bitrates_bps.clone(),
            segment_duration_s: self.segment_duration_s,
            segment_count: count,
            seed: 0,
            vbr_sigma: 0.0,
        }
        .validate()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_vary_are_seeded_and_average_to_the_nominal_bitrate() {
        let spec = VideoSpec::default();
        let manifest = spec.manifest().unwrap();
        manifest.validate().unwrap();
        assert_eq!(manifest.segment_count(), 48);
        for (level, sizes) in manifest.segment_bytes.iter().enumerate() {
            let mean_bps = sizes.iter().sum::<u64>() as f64 * 8.0 / 4.0 / sizes.len() as f64;
            let nominal = spec.ladder_bps[level] as f64;
            assert!(
                (mean_bps / nominal - 1.0).abs() < 1e-3,
                "{mean_bps} {nominal}"
            );
            let (min, max) = (sizes.iter().min().unwrap(), sizes.iter().max().unwrap());
            assert!(*max as f64 > 1.2 * *min as f64, "VBR: {min}..{max}");
        }
        assert_eq!(spec.manifest().unwrap(), manifest);
        let other = VideoSpec {
            seed: 2,
            ..spec.clone()
        }
        .manifest()
        .unwrap();
        assert_ne!(other.segment_bytes, manifest.segment_bytes);
        let cbr = VideoSpec {
            vbr_sigma: 0.0,
            ..spec
        }
        .manifest()
        .unwrap();
        assert!(cbr.segment_bytes[0].iter().all(|&b| b == 150_000));
    }

    #[test]
    fn segments_loop_and_unknown_levels_are_none() {
        let manifest = VideoSpec::default().manifest().unwrap();
        assert_eq!(manifest.bytes(2, 3), manifest.bytes(2, 3 + 48));
        assert_eq!(manifest.bytes(6, 0), None);
    }

    #[test]
    fn bad_specs_name_the_field() {
        let bad = |spec: VideoSpec| spec.validate().unwrap_err().to_string();
        let d = VideoSpec::default;
        let err = bad(VideoSpec {
            ladder_bps: vec![750_000, 300_000],
            ..d()
        });
        assert!(err.contains("ladder") && err.contains("750000"), "{err}");
        assert!(
            bad(VideoSpec {
                segment_duration_s: 0.0,
                ..d()
            })
            .contains("segment duration")
        );
        assert!(
            bad(VideoSpec {
                segment_count: 0,
                ..d()
            })
            .contains("segment count")
        );
        assert!(
            bad(VideoSpec {
                vbr_sigma: 2.0,
                ..d()
            })
            .contains("vbr")
        );
        let mut manifest = d().manifest().unwrap();
        manifest.segment_bytes[1].pop();
        assert!(
            manifest
                .validate()
                .unwrap_err()
                .to_string()
                .contains("segment_bytes")
        );
    }
}
