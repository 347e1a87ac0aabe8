//! Request traces: which analytic app is requested when, and for how long.
//!
//! The file format is one request per line, `app, arrival_min, lifetime_min` (whole minutes,
//! lifetime ≥ 1); blank lines and lines starting with `#` are ignored. [`generate`] draws a
//! seeded trace: Poisson arrivals per minute, lifetimes uniform in [min, max], apps drawn from
//! a weighted mix. The same spec and seed give the same trace on every machine (ChaCha8).

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use serde::{Deserialize, Serialize};

use crate::PlanError;

/// One request.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Request {
    /// The app asked for.
    pub app: String,
    /// Minute it arrives.
    pub arrival_min: u32,
    /// Minutes it runs (≥ 1); it departs at arrival + lifetime.
    pub lifetime_min: u32,
}

/// How to draw a trace.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Spec {
    /// Mean arrivals per minute (Poisson), > 0.
    pub per_minute: f64,
    /// Shortest lifetime, minutes (≥ 1).
    pub lifetime_min: u32,
    /// Longest lifetime, minutes (≥ shortest).
    pub lifetime_max: u32,
    /// Minutes with arrivals: 0 .. minutes.
    pub minutes: u32,
    /// Apps and their relative frequencies (> 0).
    pub mix: Vec<(String, f64)>,
    /// Random seed.
    pub seed: u64,
}

impl Spec {
    fn validate(&self) -> Result<(), PlanError> {
        if !(self.per_minute.is_finite() && self.per_minute > 0.0 && self.per_minute <= 10_000.0) {
            return Err(PlanError::invalid(
                "requests per minute",
                self.per_minute,
                "a number in (0, 10000]",
            ));
        }
        if self.lifetime_min == 0 {
            return Err(PlanError::invalid("lifetime min", 0, "at least 1 minute"));
        }
        if self.lifetime_max < self.lifetime_min {
            return Err(PlanError::invalid(
                "lifetime max",
                self.lifetime_max,
                format!("at least the lifetime min ({})", self.lifetime_min),
            ));
        }
        if self.minutes == 0 {
            return Err(PlanError::invalid("minutes", 0, "at least 1"));
        }
        if self.mix.is_empty() {
            return Err(PlanError::invalid("app mix", "empty", "at least one app"));
        }
        if let Some((app, w)) = self.mix.iter().find(|(_, w)| !(w.is_finite() && *w > 0.0)) {
            return Err(PlanError::invalid(
                format!("app mix weight of '{app}'"),
                w,
                "a positive number",
            ));
        }
        Ok(())
    }
}

/// Draws a trace, sorted by arrival.
pub fn generate(spec: &Spec) -> Result<Vec<Request>, PlanError> {
    spec.validate()?;
    let mut rng = ChaCha8Rng::seed_from_u64(spec.seed);
    let total: f64 = spec.mix.iter().map(|(_, w)| w).sum();
    let mut requests = Vec::new();
    for minute in 0..spec.minutes {
        for _ in 0..poisson(&mut rng, spec.per_minute) {
            let mut pick = rng.random_range(0.0..total);
            let app = spec
                .mix
                .iter()
                .find(|(_, w)| {
                    pick -= w;
                    pick < 0.0
                })
                .unwrap_or(&spec.mix[spec.mix.len() - 1]);
            requests.push(Request {
                app: app.0.clone(),
                arrival_min: minute,
                lifetime_min: rng.random_range(spec.lifetime_min..=spec.lifetime_max),
            });
        }
    }
    Ok(requests)
}

/// A Poisson draw with mean `mean`: Knuth's product of uniforms, in chunks of mean ≤ 30 so
/// e^−mean never underflows (a sum of independent Poisson draws is Poisson).
fn poisson(rng: &mut ChaCha8Rng, mean: f64) -> u32 {
    let mut left = mean;
    let mut count = 0;
    while left > 0.0 {
        let chunk = left.min(30.0);
        left -= chunk;
        let limit = (-chunk).exp();
        let mut product: f64 = rng.random();
        while product > limit {
            count += 1;
            product *= rng.random::<f64>();
        }
    }
    count
}

/// Writes a trace in the file format, with a header comment.
pub fn format(requests: &[Request]) -> String {
    let mut out = String::from("# app, arrival_min, lifetime_min\n");
    for r in requests {
        out.push_str(&format!(
            "{}, {}, {}\n",
            r.app, r.arrival_min, r.lifetime_min
        ));
    }
    out
}

/// Parses a trace; errors name the source, the line and the field.
pub fn parse(text: &str, source_name: &str) -> Result<Vec<Request>, PlanError> {
    let mut requests = Vec::new();
    for (n, line) in text.lines().enumerate() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let at = || format!("{source_name} line {}", n + 1);
        let fields: Vec<&str> = line.split(',').map(str::trim).collect();
        let [app, arrival, lifetime] = fields[..] else {
            return Err(PlanError::syntax(
                at(),
                format!(
                    "'{line}' has {} fields; expected app, arrival_min, lifetime_min",
                    fields.len()
                ),
            ));
        };
        if app.is_empty() {
            return Err(PlanError::syntax(at(), "the app is empty"));
        }
        let minutes = |field: &str, value: &str, least: u32| {
            value
                .parse::<u32>()
                .ok()
                .filter(|&v| v >= least)
                .ok_or_else(|| {
                    PlanError::syntax(
                        at(),
                        format!("{field} = '{value}' is not accepted: whole minutes ≥ {least}"),
                    )
                })
        };
        requests.push(Request {
            app: app.to_string(),
            arrival_min: minutes("arrival_min", arrival, 0)?,
            lifetime_min: minutes("lifetime_min", lifetime, 1)?,
        });
    }
    Ok(requests)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec(seed: u64) -> Spec {
        Spec {
            per_minute: 2.0,
            lifetime_min: 1,
            lifetime_max: 10,
            minutes: 2000,
            mix: vec![("yolo".into(), 3.0), ("audio".into(), 1.0)],
            seed,
        }
    }

    #[test]
    fn traces_are_seeded_and_follow_the_spec() {
        let a = generate(&spec(1)).unwrap();
        assert_eq!(a, generate(&spec(1)).unwrap());
        assert_ne!(a, generate(&spec(2)).unwrap());
        // Poisson(2) per minute over 2000 minutes: mean 4000, sd ≈ 63.
        assert!((3750..4250).contains(&a.len()), "{}", a.len());
        let yolo = a.iter().filter(|r| r.app == "yolo").count() as f64 / a.len() as f64;
        assert!((yolo - 0.75).abs() < 0.03, "{yolo}");
        assert!(
            a.iter()
                .all(|r| (1..=10).contains(&r.lifetime_min) && r.arrival_min < 2000)
        );
        assert!(a.iter().any(|r| r.lifetime_min == 1) && a.iter().any(|r| r.lifetime_min == 10));
        assert!(a.windows(2).all(|w| w[0].arrival_min <= w[1].arrival_min));
    }

    #[test]
    fn large_means_do_not_underflow() {
        let mut rng = ChaCha8Rng::seed_from_u64(5);
        let n = 200;
        let mean = (0..n).map(|_| poisson(&mut rng, 900.0)).sum::<u32>() as f64 / n as f64;
        assert!((mean - 900.0).abs() < 10.0, "{mean}");
    }

    #[test]
    fn the_file_format_round_trips() {
        let trace = generate(&spec(3)).unwrap();
        let text = format(&trace);
        assert!(text.lines().nth(1).unwrap().split(", ").count() == 3);
        assert_eq!(parse(&text, "t").unwrap(), trace);
    }

    #[test]
    fn bad_lines_and_specs_are_refused_with_the_place() {
        let err = parse("# header\nyolo, 1\n", "r.txt")
            .unwrap_err()
            .to_string();
        assert_eq!(
            err,
            "r.txt line 2: 'yolo, 1' has 2 fields; expected app, arrival_min, lifetime_min"
        );
        let err = parse("yolo, 1, 0", "r.txt").unwrap_err().to_string();
        assert_eq!(
            err,
            "r.txt line 1: lifetime_min = '0' is not accepted: whole minutes ≥ 1"
        );
        let err = parse("yolo, -3, 2", "r.txt").unwrap_err().to_string();
        assert!(err.contains("arrival_min = '-3'"), "{err}");
        type Spoil = fn(&mut Spec);
        let cases: [(Spoil, &str); 3] = [
            (|s| s.lifetime_max = 0, "lifetime max = 0"),
            (|s| s.per_minute = 0.0, "requests per minute = 0"),
            (|s| s.mix[1].1 = -1.0, "app mix weight of 'audio' = -1"),
        ];
        for (spoil, expected) in cases {
            let mut bad = spec(1);
            spoil(&mut bad);
            let err = generate(&bad).unwrap_err().to_string();
            assert!(err.starts_with(expected), "{err}");
        }
    }
}
