//! `lagrange`: dual subgradient on the budget constraint.
//!
//! For a price λ (weighted QoS per bit/s) each analytic independently picks the vertex of its
//! curve that maximizes wᵢ·QoSᵢ − λ·rateᵢ (or stays out, when admission is part of the
//! problem and nothing pays). The price moves against the budget's violation with a
//! diminishing step: λ ← max(0, λ − λ₀/√(t+1) · (B − Σ rate)/B). Every iterate that fits the
//! budget is completed by spending the rest on the best gains per bit/s, and the best one is
//! kept. The lowest-knob allocation (with weight-based admission) is the starting candidate, so
//! there is always a feasible answer.

use super::{Knobs, Problem, admit_by_weight, fill, used_rate};

pub(super) fn allocate(problem: &Problem, iterations: u32) -> Knobs {
    let analytics = &problem.analytics;
    let budget = problem.budget();
    let may_drop = problem.admission_needed();
    let respond = |price: f64| -> Knobs {
        analytics
            .iter()
            .zip(&problem.vertices)
            .map(|(a, vertices)| {
                let (k, surplus) = vertices
                    .iter()
                    .copied()
                    .map(|v| (v, a.value(v) - price * a.rate_bps(v)))
                    .fold((f64::NAN, f64::NEG_INFINITY), |best, c| {
                        if c.1 > best.1 { c } else { best }
                    });
                (!may_drop || surplus >= 0.0).then_some(k)
            })
            .collect()
    };
    let value = |knobs: &Knobs| -> f64 {
        analytics
            .iter()
            .zip(knobs)
            .filter_map(|(a, k)| k.map(|k| a.value(k)))
            .sum()
    };

    let mut best: Knobs = analytics
        .iter()
        .zip(admit_by_weight(problem))
        .map(|(a, ok)| ok.then(|| a.entry_knob()))
        .collect();
    fill(problem, &mut best);
    let mut best_value = value(&best);

    let entry_value: f64 = analytics.iter().map(|a| a.value(a.entry_knob())).sum();
    let entry_rate: f64 = analytics.iter().map(|a| a.min_rate_bps()).sum();
    let start = (entry_value / entry_rate).max(f64::MIN_POSITIVE);
    let mut price = start;
    for t in 0..iterations {
        let mut knobs = respond(price);
        let used = used_rate(problem, &knobs);
        if used <= budget {
            fill(problem, &mut knobs);
            let v = value(&knobs);
            if v > best_value {
                best_value = v;
                best = knobs;
            }
        }
        let violation = (budget - used) / budget;
        price = (price - start / f64::from(t + 1).sqrt() * violation).max(0.0);
    }
    best
}
