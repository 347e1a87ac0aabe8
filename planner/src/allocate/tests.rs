use qoelab_workload::model::{AnalyticModel, Bandwidth, Linear, Location};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

use super::*;
use crate::analytic::tests::builtin;

/// A random analytic: linear bitrate, a QoS curve that is concave when asked (decreasing
/// slopes from the lowest knob) or arbitrary monotone otherwise (flat starts, convex kinks).
fn random_analytic(rng: &mut ChaCha8Rng, i: usize, concave: bool) -> Analytic {
    let k_min: f64 = rng.random_range(0.05..0.6);
    let slope_kbps = rng.random_range(5.0..700.0);
    let intercept_kbps = rng.random_range(0.0..20.0);
    let points = rng.random_range(2..7);
    let first = if concave {
        k_min
    } else {
        rng.random_range(k_min..(k_min + 0.3).min(0.95))
    };
    let mut ks: Vec<f64> = (1..points).map(|_| rng.random_range(first..1.0)).collect();
    ks.push(first);
    ks.sort_by(f64::total_cmp);
    ks.dedup();
    let mut gains: Vec<f64> = (1..ks.len()).map(|_| rng.random_range(0.0..1.0)).collect();
    if concave {
        // Decreasing slopes: sort slopes descending, gains = slope × width.
        let mut slopes: Vec<f64> = gains.clone();
        slopes.sort_by(|a, b| b.total_cmp(a));
        gains = slopes
            .iter()
            .zip(ks.windows(2))
            .map(|(s, w)| s * (w[1] - w[0]))
            .collect();
    }
    let q0: f64 = rng.random_range(0.0..0.5);
    let total: f64 = gains.iter().sum::<f64>().max(1e-9);
    let scale = rng.random_range(0.1..(1.0 - q0)) / total;
    let mut q = q0;
    let mut qos = vec![[ks[0], q0]];
    for (k, g) in ks[1..].iter().zip(gains) {
        q += g * scale;
        qos.push([*k, q.min(1.0)]);
    }
    let location = if rng.random_bool(0.5) {
        Location::Cloud
    } else {
        Location::Edge
    };
    Analytic {
        id: format!("a{i}"),
        weight: rng.random_range(0.1..5.0),
        location,
        k_min,
        model: AnalyticModel {
            kind: "random".into(),
            k_min,
            bandwidth: Bandwidth {
                cloud: Linear {
                    slope_kbps,
                    intercept_kbps,
                },
                edge: Linear {
                    slope_kbps: slope_kbps * 0.5,
                    intercept_kbps,
                },
            },
            qos,
        },
        port: None,
        address: None,
    }
}

/// A random problem; `tight` budgets force admission decisions.
fn random_problem(rng: &mut ChaCha8Rng, n: usize, concave: bool, tight: bool) -> Problem {
    let analytics: Vec<Analytic> = (0..n).map(|i| random_analytic(rng, i, concave)).collect();
    let min: f64 = analytics.iter().map(Analytic::min_rate_bps).sum();
    let max: f64 = analytics.iter().map(Analytic::max_rate_bps).sum();
    let budget = if tight {
        rng.random_range(0.2..1.0) * min
    } else {
        min + rng.random_range(0.0..1.1) * (max - min)
    };
    Problem::new(budget.max(1.0) as u64, analytics).unwrap()
}

fn run(problem: &Problem, algorithm: Algorithm) -> Allocation {
    allocate(problem, algorithm, &Options::default()).unwrap()
}

fn assert_feasible(problem: &Problem, allocation: &Allocation) {
    let used: f64 = problem
        .analytics()
        .iter()
        .zip(&allocation.shares)
        .filter(|(_, s)| s.admitted)
        .map(|(a, s)| a.rate_bps(s.knob))
        .sum();
    let algorithm = allocation.algorithm;
    assert!(
        used <= problem.budget() * (1.0 + 1e-12),
        "{algorithm}: {used} over {}",
        problem.budget()
    );
    assert!(allocation.used_bps <= problem.budget_bps(), "{algorithm}");
    for (a, s) in problem.analytics().iter().zip(&allocation.shares) {
        if s.admitted {
            assert!(
                s.knob >= a.k_min.min(a.entry_knob()) && s.knob <= 1.0,
                "{algorithm}: {} knob {} outside [{}, 1]",
                a.id,
                s.knob,
                a.k_min
            );
        }
    }
    if !problem.admission_needed() {
        assert!(allocation.shares.iter().all(|s| s.admitted), "{algorithm}");
    }
}

#[test]
fn every_algorithm_respects_the_budget_and_the_knob_ranges() {
    let mut rng = ChaCha8Rng::seed_from_u64(1);
    for round in 0..150 {
        let problem = random_problem(&mut rng, 1 + round % 9, round % 2 == 0, round % 3 == 0);
        for algorithm in Algorithm::ALL {
            assert_feasible(&problem, &run(&problem, algorithm));
        }
    }
}

/// Largest relative gap of each algorithm to `optimal` over random instances, and the largest
/// relative amount by which any algorithm came out above `optimal`.
fn gaps(concave: bool, tight: bool, rounds: usize) -> (Vec<(Algorithm, f64)>, f64) {
    let mut rng = ChaCha8Rng::seed_from_u64(7 + concave as u64 * 2 + tight as u64);
    let mut worst = vec![0.0f64; Algorithm::ALL.len()];
    let mut above = 0.0f64;
    for round in 0..rounds {
        let problem = random_problem(&mut rng, 2 + round % 7, concave, tight);
        let optimal = run(&problem, Algorithm::Optimal);
        let bound = optimal.bound.unwrap();
        for (i, algorithm) in Algorithm::ALL.into_iter().enumerate() {
            let other = run(&problem, algorithm);
            assert!(
                other.total_weighted_qos <= bound.upper_bound * (1.0 + 1e-9) + 1e-12,
                "{algorithm} {} above the bound {}",
                other.total_weighted_qos,
                bound.upper_bound
            );
            above = above.max(-other.gap_to(optimal.total_weighted_qos));
            worst[i] = worst[i].max(other.gap_to(optimal.total_weighted_qos));
        }
    }
    (Algorithm::ALL.into_iter().zip(worst).collect(), above)
}

#[test]
fn optimal_is_exact_and_beats_every_algorithm_on_concave_instances() {
    let mut rng = ChaCha8Rng::seed_from_u64(3);
    for round in 0..100 {
        let problem = random_problem(&mut rng, 1 + round % 9, true, false);
        let bound = run(&problem, Algorithm::Optimal).bound.unwrap();
        assert!(bound.exact, "round {round}: water-filling is exact");
    }
    let (_, above) = gaps(true, false, 200);
    assert!(
        above < 1e-12,
        "an algorithm beat the exact optimum by {above}"
    );
}

#[test]
fn optimal_beats_every_algorithm_on_general_instances() {
    // On general curves `optimal` is a DP on a budget grid (4000 cells): its rounding may
    // leave it a hair below an allocation that hits a vertex exactly, never more.
    for tight in [false, true] {
        let (worst, above) = gaps(false, tight, 200);
        eprintln!("general curves, tight budget {tight}: worst gaps {worst:?}, above {above}");
        assert!(
            above < 1e-4,
            "tight {tight}: an algorithm beat optimal by {above}"
        );
    }
}

#[test]
fn raa_is_within_two_percent_of_optimal_on_concave_instances() {
    let (worst, _) = gaps(true, false, 200);
    let raa = worst[0].1;
    eprintln!("concave curves: worst gaps {worst:?}");
    assert!(raa < 0.02, "raa's worst gap {raa}");
    assert!(raa > 0.0, "the measurement compares different allocations");
}

#[test]
fn raa_admits_by_weight_and_uses_the_rest_exactly() {
    let analytics = vec![
        builtin("light", "object-detection", 1.0, Location::Cloud),
        builtin("heavy", "object-detection", 3.0, Location::Cloud),
        builtin("mid", "object-detection", 2.0, Location::Cloud),
    ];
    // Room for two lowest knobs (15.95 kbit/s each) and a bit more.
    let problem = Problem::new(40_000, analytics).unwrap();
    let allocation = run(&problem, Algorithm::Raa);
    let admitted: Vec<bool> = allocation.shares.iter().map(|s| s.admitted).collect();
    assert_eq!(admitted, [false, true, true]);
    let used: f64 = allocation
        .shares
        .iter()
        .zip(problem.analytics())
        .filter(|(s, _)| s.admitted)
        .map(|(s, a)| a.rate_bps(s.knob))
        .sum();
    assert!((used - 40_000.0).abs() < 1e-6, "{used}");
}

#[test]
fn weighted_shares_follow_the_weights_when_nothing_is_clamped() {
    let analytics = vec![
        builtin("a", "object-detection", 1.0, Location::Cloud),
        builtin("b", "object-detection", 3.0, Location::Cloud),
    ];
    // Shares 20 and 60 kbit/s: b's is above its highest bitrate (57.97 kbit/s at K = 1), so b
    // is clamped and a gets the rest.
    let problem = Problem::new(80_000, analytics).unwrap();
    let w = run(&problem, Algorithm::Weighted);
    let b_max = problem.analytics()[1].max_rate_bps();
    assert_eq!(w.shares[1].knob, 1.0);
    let a_rate = problem.analytics()[0].rate_bps(w.shares[0].knob);
    assert!((a_rate - (80_000.0 - b_max)).abs() < 1.0, "{a_rate}");
    // Unclamped, the shares are exactly B·w/Σw.
    let w = run(
        &Problem::new(64_000, problem.analytics().to_vec()).unwrap(),
        Algorithm::Weighted,
    );
    let b_rate = problem.analytics()[1].rate_bps(w.shares[1].knob);
    assert!((b_rate - 48_000.0).abs() < 1e-3, "{b_rate}");
    let u = run(
        &Problem::new(40_000, problem.analytics().to_vec()).unwrap(),
        Algorithm::Unweighted,
    );
    assert!((u.shares[0].knob - u.shares[1].knob).abs() < 1e-9);
    let rate = problem.analytics()[0].rate_bps(u.shares[0].knob);
    assert!((rate - 20_000.0).abs() < 1e-3, "{rate}");
}

#[test]
fn bad_inputs_are_refused_with_field_and_value() {
    let a = builtin("a", "object-detection", 1.0, Location::Cloud);
    let err = Problem::new(0, vec![a.clone()]).unwrap_err().to_string();
    assert_eq!(
        err,
        "budget = 0bit is not accepted: a positive rate, e.g. 1mbit"
    );
    let err = Problem::new(1000, vec![]).unwrap_err().to_string();
    assert!(err.starts_with("analytics = none"), "{err}");
    let err = Problem::new(1000, vec![a.clone(), a.clone()])
        .unwrap_err()
        .to_string();
    assert!(err.contains("'a' (twice)"), "{err}");
    let problem = Problem::new(1000, vec![a]).unwrap();
    for alpha in [0.0, 1.0, -0.1, f64::NAN] {
        let options = Options {
            alpha,
            ..Options::default()
        };
        let err = allocate(&problem, Algorithm::Raa, &options).unwrap_err();
        assert!(err.to_string().starts_with("alpha = "), "{err}");
    }
    let err = "greedy".parse::<Algorithm>().unwrap_err().to_string();
    assert_eq!(
        err,
        "rate allocation algorithm = 'greedy' is not accepted: one of raa, lagrange, weighted, \
         unweighted, optimal"
    );
    assert_eq!("RAA".parse::<Algorithm>().unwrap(), Algorithm::Raa);
}
