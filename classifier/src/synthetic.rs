//! Generated datasets with known structure, for tests, examples and benchmarks.
//!
//! [`blobs`] places one Gaussian cluster per class in the first half of the features (the
//! informative ones); the other half is noise. [`sessions_csv`] writes a CSV shaped like
//! qoelab's session export: identifiers, an address, context and label columns beside traffic
//! features, with stalls caused by a low throughput or a high RTT.

use std::fmt::Write;

use ndarray::Array2;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

/// Features and classes.
#[derive(Debug, Clone)]
pub struct Synthetic {
    /// Rows × features.
    pub x: Array2<f64>,
    /// Class per row.
    pub y: Vec<usize>,
}

/// A standard normal draw (Box–Muller).
fn normal(rng: &mut ChaCha8Rng) -> f64 {
    let u: f64 = 1.0 - rng.random::<f64>();
    let v: f64 = rng.random();
    (-2.0 * u.ln()).sqrt() * (std::f64::consts::TAU * v).cos()
}

/// `rows` rows, classes dealt in turn; class centres drawn in `[-separation, separation]` on the
/// first `max(features / 2, 1)` features, unit-variance noise everywhere.
pub fn blobs(
    rows: usize,
    features: usize,
    classes: usize,
    separation: f64,
    seed: u64,
) -> Synthetic {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let informative = (features / 2).max(1);
    let centres: Vec<Vec<f64>> = (0..classes)
        .map(|_| {
            (0..informative)
                .map(|_| rng.random_range(-separation..=separation))
                .collect()
        })
        .collect();
    let y: Vec<usize> = (0..rows).map(|i| i % classes).collect();
    let x = Array2::from_shape_fn((rows, features), |(r, f)| {
        let centre = if f < informative {
            centres[y[r]][f]
        } else {
            0.0
        };
        centre + normal(&mut rng)
    });
    Synthetic { x, y }
}

/// A session export of `rows` sessions: a stall happens when the throughput is below 1 Mbit/s or
/// the RTT above 200 ms (with 5% label noise); about 44% of the sessions stall. `label_qoe` is a 1–5 score falling with stalls.
pub fn sessions_csv(rows: usize, seed: u64) -> String {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let mut out = String::from(
        "session_id,c_ip,ctx_limit_bps,throughput_bps,rtt_ms,retrans_ratio,pkts,noise,\
         label_stall_count,label_qoe\n",
    );
    for id in 0..rows {
        let limit_bps: f64 = [750_000.0, 1_500_000.0, 3_000_000.0, 6_000_000.0][id % 4];
        let throughput_bps = limit_bps * rng.random_range(0.5..1.0);
        let rtt_ms = 20.0 + rng.random::<f64>().powi(2) * 250.0;
        let retrans_ratio = rng.random::<f64>() * 0.05;
        let pkts = (throughput_bps / 12_000.0 * 60.0).round();
        let mut stall = throughput_bps < 1_000_000.0 || rtt_ms > 200.0;
        if rng.random::<f64>() < 0.05 {
            stall = !stall;
        }
        let stalls = if stall { rng.random_range(1..5) } else { 0 };
        let qoe = (5.0 - stalls as f64 - rtt_ms / 200.0).clamp(1.0, 5.0);
        let _ = writeln!(
            out,
            "{id},10.0.{}.{},{limit_bps},{throughput_bps:.0},{rtt_ms:.2},{retrans_ratio:.5},{pkts},\
             {:.4},{stalls},{qoe:.2}",
            id / 250,
            id % 250,
            normal(&mut rng),
        );
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn blobs_are_seeded_and_balanced() {
        let a = blobs(90, 4, 3, 2.0, 1);
        assert_eq!(a.x, blobs(90, 4, 3, 2.0, 1).x);
        assert_ne!(a.x, blobs(90, 4, 3, 2.0, 2).x);
        assert_eq!(a.y.iter().filter(|&&c| c == 2).count(), 30);
    }

    #[test]
    fn sessions_stall_about_44_percent_of_the_time() {
        let csv = sessions_csv(1000, 1);
        let stalls = csv
            .lines()
            .skip(1)
            .filter(|l| !l.split(',').nth(8).unwrap().starts_with('0'))
            .count();
        assert!((380..500).contains(&stalls), "{stalls}");
    }
}
