//! Seeded randomness: the same seed gives the same video and the same trace on every machine
//! and every build (xoshiro256++ has a fixed output sequence, unlike `StdRng`).

use rand::rngs::Xoshiro256PlusPlus;
use rand::{RngExt, SeedableRng};

/// A reproducible generator for `seed`.
pub(crate) struct Seeded(Xoshiro256PlusPlus);

impl Seeded {
    /// The generator for `seed`.
    pub(crate) fn new(seed: u64) -> Seeded {
        Seeded(Xoshiro256PlusPlus::seed_from_u64(seed))
    }

    /// Uniform in [0, 1).
    pub(crate) fn uniform(&mut self) -> f64 {
        self.0.random::<f64>()
    }

    /// Standard normal (mean 0, standard deviation 1), by the Box–Muller transform.
    pub(crate) fn normal(&mut self) -> f64 {
        let u1 = 1.0 - self.uniform(); // in (0, 1]: ln is finite
        let u2 = self.uniform();
        (-2.0 * u1.ln()).sqrt() * (std::f64::consts::TAU * u2).cos()
    }

    /// Exponential with the given mean.
    pub(crate) fn exponential(&mut self, mean: f64) -> f64 {
        -mean * (1.0 - self.uniform()).ln()
    }

    /// Fills `out` with random bytes.
    pub(crate) fn fill(&mut self, out: &mut [u8]) {
        for chunk in out.chunks_mut(8) {
            let word = self.0.random::<u64>().to_le_bytes();
            chunk.copy_from_slice(&word[..chunk.len()]);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn same_seed_same_sequence_and_sane_moments() {
        let (mut a, mut b) = (Seeded::new(7), Seeded::new(7));
        let xs: Vec<f64> = (0..20_000).map(|_| a.normal()).collect();
        let ys: Vec<f64> = (0..20_000).map(|_| b.normal()).collect();
        assert_eq!(xs, ys);
        let mean = xs.iter().sum::<f64>() / xs.len() as f64;
        let var = xs.iter().map(|x| (x - mean).powi(2)).sum::<f64>() / xs.len() as f64;
        assert!(
            mean.abs() < 0.03 && (var - 1.0).abs() < 0.05,
            "{mean} {var}"
        );
        let exp_mean = (0..20_000).map(|_| a.exponential(3.0)).sum::<f64>() / 20_000.0;
        assert!((exp_mean - 3.0).abs() < 0.15, "{exp_mean}");
        assert_ne!(Seeded::new(8).uniform(), Seeded::new(7).uniform());
    }
}
