//! Adaptive-bitrate algorithms: before each segment, pick a level of the ladder.
//!
//! | name | algorithm |
//! |---|---|
//! | `buffer` (`bba`) | buffer-based, BBA-0 of Huang et al. (SIGCOMM 2014): lowest level while the buffer is below the reservoir (5 s), highest above reservoir + cushion (5 + 10 s), a linear map in between, and a change only when the map crosses the neighbouring level |
//! | `rate` | rate-based: the highest level not above the harmonic mean of the last 5 segment throughputs |
//! | `mpc` (`robust-mpc`) | robustMPC (Yin et al., SIGCOMM 2015, as in Pensieve): throughput predicted as the harmonic mean of the last 5 divided by 1 + the largest of the last 5 prediction errors; every level sequence over the next 5 segments is simulated with the manifest's real sizes and the one with the best linear QoE gives the next level |
//!
//! Every algorithm starts at the lowest level when it has nothing to go by.

use std::collections::VecDeque;
use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

use super::qoe::REBUFFER_PENALTY;
use super::{Manifest, VideoError};

/// How many past throughputs the estimators use.
const HISTORY: usize = 5;
/// BBA's reservoir (s).
const RESERVOIR_S: f64 = 5.0;
/// BBA's cushion (s).
const CUSHION_S: f64 = 10.0;
/// robustMPC's look-ahead in segments.
const HORIZON: usize = 5;

/// The accepted ABR names, for error messages.
pub const ABR_NAMES: &str = "buffer (or bba), rate, mpc (or robust-mpc)";

/// An ABR algorithm, selected by name.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum AbrKind {
    /// Buffer-based (BBA-0).
    Buffer,
    /// Rate-based (harmonic mean of the last 5 throughputs).
    Rate,
    /// robustMPC with a 5-segment horizon.
    Mpc,
}

impl AbrKind {
    /// All algorithms, in the order of [`ABR_NAMES`].
    pub const ALL: [AbrKind; 3] = [AbrKind::Buffer, AbrKind::Rate, AbrKind::Mpc];

    /// A fresh instance of the algorithm, for one session.
    pub fn build(self) -> Box<dyn Abr> {
        match self {
            AbrKind::Buffer => Box::new(BufferBased),
            AbrKind::Rate => Box::new(RateBased),
            AbrKind::Mpc => Box::new(RobustMpc::default()),
        }
    }
}

impl FromStr for AbrKind {
    type Err = VideoError;

    fn from_str(name: &str) -> Result<AbrKind, VideoError> {
        match name {
            "buffer" | "bba" => Ok(AbrKind::Buffer),
            "rate" => Ok(AbrKind::Rate),
            "mpc" | "robust-mpc" | "robustmpc" => Ok(AbrKind::Mpc),
            _ => Err(VideoError::UnknownAbr {
                name: name.to_string(),
            }),
        }
    }
}

impl fmt::Display for AbrKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            AbrKind::Buffer => "buffer",
            AbrKind::Rate => "rate",
            AbrKind::Mpc => "mpc",
        })
    }
}

/// What an algorithm knows when it picks the next segment's level.
#[derive(Debug, Clone, Copy)]
pub struct AbrInput<'a> {
    /// The video's ladder and segment sizes.
    pub manifest: &'a Manifest,
    /// The number of the segment about to be requested.
    pub index: u64,
    /// Segments left in the session, this one included.
    pub remaining: usize,
    /// Media buffered, in seconds.
    pub buffer_s: f64,
    /// The previous segment's level.
    pub last_level: Option<usize>,
    /// Measured throughput of each segment so far (bit/s), oldest first.
    pub throughputs_bps: &'a [f64],
}

/// An ABR algorithm instance (it may keep state across one session's segments).
pub trait Abr: Send {
    /// The level for the next segment (an index into the ladder).
    fn choose(&mut self, input: &AbrInput<'_>) -> usize;
}

/// BBA-0.
#[derive(Debug, Clone, Copy, Default)]
pub struct BufferBased;

impl Abr for BufferBased {
    fn choose(&mut self, input: &AbrInput<'_>) -> usize {
        let rates = &input.manifest.bitrates_bps;
        let top = rates.len() - 1;
        let buffer = input.buffer_s;
        if buffer <= RESERVOIR_S {
            return 0;
        }
        if buffer >= RESERVOIR_S + CUSHION_S {
            return top;
        }
        let (low, high) = (rates[0] as f64, rates[top] as f64);
        let mapped = low + (high - low) * (buffer - RESERVOIR_S) / CUSHION_S;
        let prev = input.last_level.unwrap_or(0).min(top);
        let up = (prev + 1).min(top);
        let down = prev.saturating_sub(1);
        if prev < top && mapped >= rates[up] as f64 {
            // The highest level below the map.
            rates
                .iter()
                .rposition(|&r| (r as f64) < mapped)
                .unwrap_or(0)
        } else if prev > 0 && mapped <= rates[down] as f64 {
            // The lowest level above the map.
            rates.iter().position(|&r| r as f64 > mapped).unwrap_or(top)
        } else {
            prev
        }
    }
}

/// Rate-based.
#[derive(Debug, Clone, Copy, Default)]
pub struct RateBased;

impl Abr for RateBased {
    fn choose(&mut self, input: &AbrInput<'_>) -> usize {
        match harmonic_mean(recent(input.throughputs_bps)) {
            Some(estimate) => highest_at_most(&input.manifest.bitrates_bps, estimate),
            None => 0,
        }
    }
}

/// robustMPC.
#[derive(Debug, Clone, Default)]
pub struct RobustMpc {
    /// The estimate made for the segment being downloaded (undiscounted harmonic mean).
    last_estimate_bps: Option<f64>,
    /// Relative errors of the last estimates.
    errors: VecDeque<f64>,
}

impl Abr for RobustMpc {
    fn choose(&mut self, input: &AbrInput<'_>) -> usize {
        let history = recent(input.throughputs_bps);
        if let (Some(estimate), Some(&actual)) = (self.last_estimate_bps, history.last()) {
            self.errors.push_back((estimate - actual).abs() / actual);
            if self.errors.len() > HISTORY {
                self.errors.pop_front();
            }
        }
        let Some(estimate) = harmonic_mean(history) else {
            return 0;
        };
        self.last_estimate_bps = Some(estimate);
        let max_error = self.errors.iter().copied().fold(0.0, f64::max);
        best_plan(input, estimate / (1.0 + max_error))
    }
}

/// The first level of the level sequence over the horizon with the best predicted linear QoE
/// when every segment downloads at `throughput_bps`.
fn best_plan(input: &AbrInput<'_>, throughput_bps: f64) -> usize {
    let rates = &input.manifest.bitrates_bps;
    let levels = rates.len();
    let horizon = HORIZON.min(input.remaining.max(1));
    let segment_s = input.manifest.segment_duration_s;
    let mut best = (f64::NEG_INFINITY, 0);
    for plan in 0..levels.pow(horizon as u32) {
        let (mut code, mut buffer, mut qoe) = (plan, input.buffer_s, 0.0);
        let mut prev_mbps = input.last_level.map(|l| rates[l] as f64 / 1e6);
        let mut first = 0;
        for step in 0..horizon {
            let level = code % levels;
            code /= levels;
            if step == 0 {
                first = level;
            }
            let bytes = input
                .manifest
                .bytes(level, input.index + step as u64)
                .unwrap_or(0);
            let download_s = bytes as f64 * 8.0 / throughput_bps;
            let rebuffer_s = (download_s - buffer).max(0.0);
            buffer = (buffer - download_s).max(0.0) + segment_s;
            let mbps = rates[level] as f64 / 1e6;
            qoe +=
                mbps - REBUFFER_PENALTY * rebuffer_s - prev_mbps.map_or(0.0, |p| (mbps - p).abs());
            prev_mbps = Some(mbps);
        }
        if qoe > best.0 {
            best = (qoe, first);
        }
    }
    best.1
}

fn recent(throughputs: &[f64]) -> &[f64] {
    &throughputs[throughputs.len().saturating_sub(HISTORY)..]
}

fn harmonic_mean(values: &[f64]) -> Option<f64> {
    if values.is_empty() || values.iter().any(|&v| v <= 0.0) {
        return None;
    }
    Some(values.len() as f64 / values.iter().map(|v| 1.0 / v).sum::<f64>())
}

/// The highest level whose bitrate is at most `rate_bps` (the lowest if none is).
fn highest_at_most(rates: &[u64], rate_bps: f64) -> usize {
    rates
        .iter()
        .rposition(|&r| r as f64 <= rate_bps)
        .unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::video::VideoSpec;

    fn cbr() -> Manifest {
        VideoSpec {
            vbr_sigma: 0.0,
            ..VideoSpec::default()
        }
        .manifest()
        .unwrap()
    }

    fn input<'a>(
        manifest: &'a Manifest,
        buffer_s: f64,
        last_level: Option<usize>,
        throughputs_bps: &'a [f64],
    ) -> AbrInput<'a> {
        AbrInput {
            manifest,
            index: 0,
            remaining: 100,
            buffer_s,
            last_level,
            throughputs_bps,
        }
    }

    #[test]
    fn names_select_algorithms_and_unknown_names_are_refused() {
        assert_eq!("bba".parse::<AbrKind>().unwrap(), AbrKind::Buffer);
        assert_eq!("robust-mpc".parse::<AbrKind>().unwrap(), AbrKind::Mpc);
        for kind in AbrKind::ALL {
            assert_eq!(kind.to_string().parse::<AbrKind>().unwrap(), kind);
        }
        let err = "pensieve".parse::<AbrKind>().unwrap_err().to_string();
        assert!(
            err.contains("'pensieve'") && err.contains(ABR_NAMES),
            "{err}"
        );
    }

    #[test]
    fn buffer_based_follows_reservoir_cushion_and_hysteresis() {
        let m = cbr();
        let mut bba = BufferBased;
        assert_eq!(bba.choose(&input(&m, 4.9, Some(5), &[])), 0);
        assert_eq!(bba.choose(&input(&m, 15.0, Some(0), &[])), 5);
        // At 10 s the map is 300 + 4000·0.5 = 2300 kbit/s.
        assert_eq!(bba.choose(&input(&m, 10.0, Some(0), &[])), 3);
        // From 1850 neither neighbour (1200, 2850) is crossed: stay.
        assert_eq!(bba.choose(&input(&m, 10.0, Some(3), &[])), 3);
        // From 4300 the map is below 2850: the lowest level above 2300.
        assert_eq!(bba.choose(&input(&m, 10.0, Some(5), &[])), 4);
    }

    #[test]
    fn rate_based_uses_the_harmonic_mean_of_the_last_five() {
        let m = cbr();
        assert_eq!(RateBased.choose(&input(&m, 0.0, None, &[])), 0);
        // Harmonic mean of 1, 1, 4 Mbit/s is 1.33 Mbit/s: 1200 kbit/s.
        assert_eq!(RateBased.choose(&input(&m, 0.0, None, &[1e6, 1e6, 4e6])), 2);
        // Only the last five count.
        let history = [0.1e6, 5e6, 5e6, 5e6, 5e6, 5e6];
        assert_eq!(RateBased.choose(&input(&m, 0.0, None, &history)), 5);
        assert_eq!(RateBased.choose(&input(&m, 0.0, None, &[0.2e6])), 0);
    }

    #[test]
    fn mpc_plans_with_buffer_and_discounts_by_past_errors() {
        let m = cbr();
        let mut mpc = RobustMpc::default();
        assert_eq!(mpc.choose(&input(&m, 0.0, None, &[])), 0);
        // Ample bandwidth and buffer: the top level.
        assert_eq!(mpc.choose(&input(&m, 20.0, Some(5), &[20e6])), 5);
        // 1 Mbit/s with an empty buffer: nothing above 750 kbit/s avoids stalling.
        let mut fresh = RobustMpc::default();
        let level = fresh.choose(&input(&m, 0.0, Some(0), &[1e6]));
        assert!(level <= 1, "{level}");
        // A large buffer lets it reach above the throughput for a while.
        let mut fresh = RobustMpc::default();
        let level = fresh.choose(&input(&m, 40.0, Some(2), &[1.5e6]));
        assert!(level >= 3, "{level}");
        // After a prediction that was 4x too high, the same history is discounted.
        let mut burned = RobustMpc::default();
        burned.choose(&input(&m, 8.0, Some(3), &[3e6]));
        let after = burned.choose(&input(&m, 8.0, Some(3), &[3e6, 3e6, 3e6, 3e6, 0.75e6]));
        let mut naive = RobustMpc::default();
        let without = naive.choose(&input(&m, 8.0, Some(3), &[3e6, 3e6, 3e6, 3e6, 0.75e6]));
        assert!(after < without, "{after} {without}");
    }
}
