//! Planner benchmarks against the targets, one line each with the ratio to the target:
//!
//! - `raa` on 1,000 analytics ≤ 5 ms (and every other algorithm on the same instance, with its
//!   optimality gap);
//! - `exact` placement of 24 images ≤ 10 ms;
//! - `fptas` with ε = 0.1 on 500 images ≤ 100 ms.
//!
//! Run: `cargo bench -p qoelab-planner --bench planner` (or `bench/planner.sh`, which also
//! prints the simulation table). Times are medians; the machine's load is printed beside them.

use std::collections::HashSet;
use std::hint::black_box;
use std::time::{Duration, Instant};

use qoelab_planner::allocate::{self, Algorithm, Options, Problem};
use qoelab_planner::analytic::{Analytic, AnalyticSpec};
use qoelab_planner::placement::{self, Instance, Method, synthetic};
use qoelab_workload::model::{Location, ModelSet};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

/// Median and 90th percentile of `f`'s run time over `runs` runs after 3 warm-ups.
fn time<T>(runs: usize, mut f: impl FnMut() -> T) -> (Duration, Duration) {
    for _ in 0..3 {
        black_box(f());
    }
    let mut times: Vec<Duration> = (0..runs)
        .map(|_| {
            let started = Instant::now();
            black_box(f());
            started.elapsed()
        })
        .collect();
    times.sort();
    (times[runs / 2], times[runs * 9 / 10])
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1e3
}

fn report(what: &str, (median, p90): (Duration, Duration), target_ms: Option<f64>) {
    let versus = target_ms.map_or(String::new(), |target| {
        format!(
            "  target {target:>6.1} ms  ratio {:.3}",
            ms(median) / target
        )
    });
    println!(
        "{what:<48} median {:>8.3} ms  p90 {:>8.3} ms{versus}",
        ms(median),
        ms(p90)
    );
}

fn load() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .map(|l| l.split_whitespace().take(3).collect::<Vec<_>>().join(" "))
        .unwrap_or_else(|_| "unknown".into())
}

/// 1,000 analytics of the built-in kinds at both locations, random weights, and a budget
/// halfway between their minimum and maximum demand (so every knob is contested).
fn analytics_problem(n: usize) -> Problem {
    let models = ModelSet::builtin();
    let mut rng = ChaCha8Rng::seed_from_u64(42);
    let analytics: Vec<Analytic> = (0..n)
        .map(|i| {
            let kind = if rng.random_bool(0.8) {
                "object-detection"
            } else {
                "audio-classification"
            };
            let spec = AnalyticSpec {
                id: format!("a{i}"),
                kind: kind.into(),
                weight: rng.random_range(0.5..3.0),
                location: if rng.random_bool(0.5) {
                    Location::Cloud
                } else {
                    Location::Edge
                },
                k_min: None,
                port: None,
                address: None,
            };
            Analytic::new(spec, &models).expect("built-in kinds")
        })
        .collect();
    let min: f64 = analytics.iter().map(Analytic::min_rate_bps).sum();
    let max: f64 = analytics.iter().map(Analytic::max_rate_bps).sum();
    Problem::new(((min + max) / 2.0) as u64, analytics).expect("valid problem")
}

fn placement_instance(seed: u64, images: usize, capacity_share: f64) -> Instance {
    let (layers, list) = synthetic::docker_like(seed, images);
    let total: u64 = layers.iter().map(|l| l.bytes).sum();
    Instance::new(
        &layers,
        &list,
        &HashSet::new(),
        (total as f64 * capacity_share) as u64,
    )
    .expect("valid instance")
}

fn main() {
    println!("load average before: {}", load());
    let options = Options::default();
    let problem = analytics_problem(1000);
    let optimal = allocate::allocate(&problem, Algorithm::Optimal, &options).expect("allocates");
    for algorithm in Algorithm::ALL {
        let runs = if algorithm == Algorithm::Lagrange {
            11
        } else {
            51
        };
        let timing = time(runs, || allocate::allocate(&problem, algorithm, &options));
        let value = allocate::allocate(&problem, algorithm, &options)
            .expect("allocates")
            .gap_to(optimal.total_weighted_qos);
        let target = (algorithm == Algorithm::Raa).then_some(5.0);
        report(
            &format!("{algorithm} on 1000 analytics (gap {:.4}%)", 100.0 * value),
            timing,
            target,
        );
    }
    println!(
        "  optimal: exact = {}, bound {:.4}",
        optimal.bound.expect("optimal reports a bound").exact,
        optimal.bound.expect("optimal reports a bound").upper_bound
    );

    // The slowest of 30 instances (10 seeds × capacity 20%, 40%, 60% of all layers).
    let mut slowest: Option<(Duration, Duration, Instance)> = None;
    for seed in 0..10 {
        for share in [0.2, 0.4, 0.6] {
            let instance = placement_instance(seed, 24, share);
            let (median, p90) = time(21, || placement::place(&instance, Method::Exact, 0.1));
            if slowest.as_ref().is_none_or(|s| median > s.0) {
                slowest = Some((median, p90, instance));
            }
        }
    }
    let (median, p90, small) = slowest.expect("instances were timed");
    report(
        "exact placement, 24 images (slowest of 30)",
        (median, p90),
        Some(10.0),
    );
    let exact = placement::place(&small, Method::Exact, 0.1).expect("places");
    for method in [Method::Fptas, Method::Greedy] {
        let p = placement::place(&small, method, 0.1).expect("places");
        println!(
            "  {method} on the same 24 images: {:.4} of exact",
            p.value_bps / exact.value_bps
        );
    }

    let large = placement_instance(7, 500, 0.1);
    let fptas = placement::place(&large, Method::Fptas, 0.1).expect("places");
    let greedy = placement::place(&large, Method::Greedy, 0.1).expect("places");
    report(
        "fptas ε=0.1 placement, 500 images",
        time(21, || placement::place(&large, Method::Fptas, 0.1)),
        Some(100.0),
    );
    report(
        "greedy placement, 500 images",
        time(21, || placement::place(&large, Method::Greedy, 0.1)),
        None,
    );
    println!(
        "  fptas chose {} images, {:.1} kbit/s ({:.4} × greedy's {:.1} kbit/s)",
        fptas.images.len(),
        fptas.value_bps / 1e3,
        fptas.value_bps / greedy.value_bps,
        greedy.value_bps / 1e3
    );
    println!("load average after: {}", load());
}
