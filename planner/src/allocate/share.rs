//! `weighted` and `unweighted`: each admitted analytic gets a share of the budget (B·w/Σw or
//! B/N), inverted through its bitrate model and clamped to its knob range. Clamping must not
//! break the budget, so shares are water-filled: rateᵢ = clamp(λ·sᵢ, minᵢ, maxᵢ) with the
//! largest level λ that fits (sᵢ = wᵢ or 1). Without clamping this is exactly B·sᵢ/Σs.

use super::{Knobs, Problem, admit_by_weight, knob_within};

pub(super) fn allocate(problem: &Problem, weighted: bool) -> Knobs {
    let admitted = admit_by_weight(problem);
    let analytics = &problem.analytics;
    let share = |i: usize| if weighted { analytics[i].weight } else { 1.0 };
    let rate_at = |level: f64, i: usize| {
        let a = &analytics[i];
        (level * share(i)).clamp(a.min_rate_bps(), a.max_rate_bps())
    };
    let members: Vec<usize> = (0..analytics.len()).filter(|&i| admitted[i]).collect();
    let total = |level: f64| members.iter().map(|&i| rate_at(level, i)).sum::<f64>();
    let budget = problem.budget();
    // Bisection on the level: total(level) is continuous and non-decreasing, and at `high`
    // every member is at its highest knob.
    let mut low = 0.0;
    let mut high = members
        .iter()
        .map(|&i| analytics[i].max_rate_bps() / share(i))
        .fold(0.0, f64::max);
    if total(high) <= budget {
        low = high;
    } else {
        for _ in 0..100 {
            let mid = 0.5 * (low + high);
            if total(mid) <= budget {
                low = mid;
            } else {
                high = mid;
            }
        }
    }
    (0..analytics.len())
        .map(|i| {
            admitted[i].then(|| {
                let a = &analytics[i];
                knob_within(a, a.entry_knob(), rate_at(low, i) - a.min_rate_bps())
            })
        })
        .collect()
}
