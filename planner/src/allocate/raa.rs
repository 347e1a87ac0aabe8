//! `raa`: greedy knob stepping (the reference study's rate allocation algorithm).
//!
//! Admission drops the lowest weights while the minimum demands exceed the budget (and takes
//! back dropped ones that still fit); admitted analytics jump to their lowest knob. Then,
//! repeatedly, the analytic whose next step of α gives the largest weighted-QoS gain per bit/s
//! is raised by α (to at most 1). When the best step does not fit, that analytic gets the knob
//! that uses the rest exactly and the allocation ends. Steps that gain nothing are still taken
//! (in last place), as the reference does: the budget is handed out in full.

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
    let mut heap: BinaryHeap<Move> = analytics
        .iter()
        .enumerate()
        .filter_map(|(i, a)| step(a, i, knobs[i]?, alpha))
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
        replace_or_pop(top, step(analytic, m.index, m.to, alpha));
    }
    knobs
}

/// The step of α from knob `k`, if `k` is below 1 and the knob changes the bitrate.
fn step(analytic: &Analytic, index: usize, k: f64, alpha: f64) -> Option<Move> {
    if k >= 1.0 || analytic.is_flat() {
        return None;
    }
    let to = (k + alpha).min(1.0);
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
