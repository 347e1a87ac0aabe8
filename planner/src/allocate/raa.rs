//! `raa`: greedy knob stepping (the reference study's rate allocation algorithm).
//!
//! Admission drops the lowest weights while the minimum demands exceed the budget (and takes
//! back dropped ones that still fit); admitted analytics jump to their lowest knob. Then,
//! repeatedly, the analytic whose next step of α gives the largest weighted-QoS gain per bit/s
//! is raised by α (to at most 1). When the best step does not fit, that analytic gets the knob
//! that uses the rest exactly and the allocation ends. Steps that gain nothing are still taken
//! (in last place), as the reference does: the budget is handed out in full.
//!
//! Steps on the same linear piece of an analytic's curve all gain the same per bit/s, so the
//! greedy would pick that analytic again for each of them: they are taken as one move (same
//! knob grid, same result, far fewer heap operations).

use std::collections::BinaryHeap;
use std::collections::binary_heap::PeekMut;

use super::{Knobs, Move, Problem, admit_by_weight, knob_within, used_rate};
use crate::analytic::Analytic;

pub(super) fn allocate(problem: &Problem, alpha: f64) -> Knobs {
    let analytics = &problem.analytics;
    let admitted = admit_by_weight(problem);
    let mut knobs: Knobs = analytics
        .iter()
        .zip(&admitted)
        .map(|(a, &ok)| ok.then(|| a.entry_knob()))
        .collect();
    let mut rest = problem.budget() - used_rate(problem, &knobs);
    let next = |i: usize, k: f64| step(&analytics[i], &problem.vertices[i], i, k, alpha);
    let mut heap: BinaryHeap<Move> = (0..analytics.len())
        .filter_map(|i| next(i, knobs[i]?))
        .collect();
    while let Some(top) = heap.peek_mut() {
        let m = *top;
        let analytic = &analytics[m.index];
        let from = knobs[m.index].expect("only admitted analytics step");
        let cost = analytic.rate_bps(m.to) - analytic.rate_bps(from);
        if cost > rest {
            knobs[m.index] = Some(knob_within(analytic, from, rest));
            break;
        }
        rest -= cost;
        knobs[m.index] = Some(m.to);
        replace_or_pop(top, next(m.index, m.to));
    }
    knobs
}

/// The next move from knob `k` (below 1, on an analytic whose bitrate depends on the knob):
/// every whole step of α that stays on the current linear piece of the curve, or else the one
/// step of α that crosses a vertex.
fn step(analytic: &Analytic, vertices: &[f64], index: usize, k: f64, alpha: f64) -> Option<Move> {
    if k >= 1.0 || analytic.is_flat() {
        return None;
    }
    let vertex = vertices
        .iter()
        .copied()
        .find(|&v| v > k + 1e-12)
        .unwrap_or(1.0);
    let whole = ((vertex - k) / alpha + 1e-9).floor().max(1.0);
    let to = (k + whole * alpha).min(1.0);
    Some(Move {
        ratio: analytic.slope(k, to),
        index,
        to,
    })
}

/// Replaces the heap's top in place (one sift-down instead of a pop and a push).
fn replace_or_pop(mut top: PeekMut<'_, Move>, next: Option<Move>) {
    match next {
        Some(next) => *top = next,
        None => {
            PeekMut::pop(top);
        }
    }
}
