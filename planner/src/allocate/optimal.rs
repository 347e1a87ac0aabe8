//! `optimal`: the reference every other algorithm's gap is measured against.
//!
//! - Every curve concave and all lowest knobs fit: marginal-utility water-filling from the
//!   lowest knobs is exact (a separable concave maximization under one budget).
//! - Otherwise (a curve with a convex part, or admission to decide — both make the problem a
//!   knapsack): a multiple-choice knapsack DP over each curve's vertices on a grid of the
//!   budget (costs rounded up, so the result always fits), then the rest of the budget is spent
//!   on the best gains. Between vertices the value is linear in the bitrate, so an optimum
//!   exists with all analytics but one on vertices; the grid's rounding is the only loss.
//!
//! Beside the value it reports an upper bound: the LP relaxation (water-filling over each
//! curve's concave envelope, including "not admitted" at rate 0 when admission is decided). No
//! allocation can exceed it, so value/bound is a certificate of how close the reference is.

use super::{Bound, Knobs, Problem, fill, knob_within, used_rate};
use crate::analytic::Analytic;

pub(super) fn allocate(problem: &Problem, grid: u32) -> (Knobs, Bound) {
    let may_drop = problem.admission_needed();
    let upper_bound = relaxation(problem, may_drop);
    let base: Knobs = problem
        .analytics
        .iter()
        .map(|a| (!may_drop).then(|| a.entry_knob()))
        .collect();
    let mut knobs = if !may_drop && problem.analytics.iter().all(Analytic::is_concave) {
        base
    } else {
        knapsack(problem, base, grid as usize)
    };
    fill(problem, &mut knobs);
    let value: f64 = problem
        .analytics
        .iter()
        .zip(&knobs)
        .filter_map(|(a, k)| k.map(|k| a.value(k)))
        .sum();
    let tolerance = 1e-9 * upper_bound.abs().max(1.0);
    let bound = Bound {
        upper_bound: upper_bound.max(value),
        exact: value >= upper_bound - tolerance,
    };
    (knobs, bound)
}

/// One way an analytic can take part in the knapsack: a vertex, or a linear piece between two
/// vertices on which it may take any whole number of cells (the "interior" analytic).
struct Choices {
    /// (cells, extra value, knob), the base option first at no cost.
    vertices: Vec<(usize, f64, Option<f64>)>,
    /// (lowest cells, highest cells, value at the piece's start minus slope × its start in
    /// cells, value per cell, the piece's start knob).
    pieces: Vec<(usize, usize, f64, f64, f64)>,
}

fn choices(a: &Analytic, from: Option<f64>, cell: f64, grid: usize) -> Choices {
    let (base_rate, base_value) = from.map_or((0.0, 0.0), |k| (a.rate_bps(k), a.value(k)));
    let cells = |k: f64| (a.rate_bps(k) - base_rate) / cell;
    let mut vertices = vec![(0, 0.0, from)];
    let knobs: Vec<f64> = a
        .vertices()
        .into_iter()
        .filter(|&v| from.is_none_or(|k| v >= k))
        .collect();
    for &v in knobs.iter().filter(|&&v| from.is_none_or(|k| v > k)) {
        let c = (cells(v) - 1e-9).ceil().max(0.0) as usize;
        if c <= grid {
            vertices.push((c, a.value(v) - base_value, Some(v)));
        }
    }
    let pieces = knobs
        .windows(2)
        .filter_map(|w| {
            let (x0, x1) = (cells(w[0]), cells(w[1]));
            let (lo, hi) = ((x0 - 1e-9).ceil().max(0.0) as usize, (x1 + 1e-9).floor());
            let hi = (hi.max(0.0) as usize).min(grid);
            let per_cell = (a.value(w[1]) - a.value(w[0])) / (x1 - x0);
            (lo <= hi && per_cell > 0.0).then(|| {
                (
                    lo,
                    hi,
                    a.value(w[0]) - base_value - per_cell * x0,
                    per_cell,
                    w[0],
                )
            })
        })
        .collect();
    Choices { vertices, pieces }
}

/// The marker of an interior choice in the choice table: the high bit, the cells below it.
const INTERIOR: u32 = 1 << 31;

/// Multiple-choice knapsack over the vertices above `base`, on `grid` cells of the budget left
/// after `base`, where one analytic may instead take any number of cells on a linear piece
/// (two layers: before and after that analytic; the piece's best predecessor over a window is
/// a sliding-window maximum).
fn knapsack(problem: &Problem, base: Knobs, grid: usize) -> Knobs {
    let analytics = &problem.analytics;
    let rest = problem.budget() - used_rate(problem, &base);
    if rest <= 0.0 {
        return base;
    }
    let cell = rest / grid as f64;
    let all: Vec<Choices> = analytics
        .iter()
        .zip(&base)
        .map(|(a, &from)| choices(a, from, cell, grid))
        .collect();
    let width = grid + 1;
    // best0: every analytic so far on a vertex; best1: one of them interior.
    let mut best0 = vec![0.0f64; width];
    let mut best1 = vec![f64::NEG_INFINITY; width];
    let mut choice0 = vec![0u16; analytics.len() * width];
    let mut choice1 = vec![0u32; analytics.len() * width];
    let mut window = std::collections::VecDeque::new();
    for (i, c) in all.iter().enumerate() {
        let row0 = &mut choice0[i * width..(i + 1) * width];
        let row1 = &mut choice1[i * width..(i + 1) * width];
        let mut next0 = vec![f64::NEG_INFINITY; width];
        let mut next1 = vec![f64::NEG_INFINITY; width];
        for (o, &(cells, gain, _)) in c.vertices.iter().enumerate() {
            for at in cells..width {
                if best0[at - cells] + gain > next0[at] {
                    next0[at] = best0[at - cells] + gain;
                    row0[at] = o as u16;
                }
                if best1[at - cells] + gain > next1[at] {
                    next1[at] = best1[at - cells] + gain;
                    row1[at] = o as u32;
                }
            }
        }
        for &(lo, hi, offset, per_cell, _) in &c.pieces {
            // Interior with r cells: best0[at - r] + offset + per_cell * r, r in [lo, hi].
            // With p = at - r: (best0[p] - per_cell * p) + per_cell * at + offset.
            window.clear();
            let key = |p: usize| best0[p] - per_cell * p as f64;
            for at in lo..width {
                let newest = at - lo;
                while window.back().is_some_and(|&p| key(p) <= key(newest)) {
                    window.pop_back();
                }
                window.push_back(newest);
                while window.front().is_some_and(|&p| at - p > hi) {
                    window.pop_front();
                }
                let p = *window
                    .front()
                    .expect("the newest predecessor is in the window");
                let total = key(p) + per_cell * at as f64 + offset;
                if total > next1[at] {
                    next1[at] = total;
                    row1[at] = INTERIOR | (at - p) as u32;
                }
            }
        }
        best0 = next0;
        best1 = next1;
    }
    let mut knobs = base;
    let mut at = grid;
    let mut interior = best1[grid] > best0[grid];
    for i in (0..analytics.len()).rev() {
        let c = &all[i];
        if interior {
            let pick = choice1[i * width + at];
            if pick & INTERIOR != 0 {
                let cells = (pick & !INTERIOR) as usize;
                // The piece that produced this choice: the one holding `cells` with the best value.
                let piece = c
                    .pieces
                    .iter()
                    .filter(|p| p.0 <= cells && cells <= p.1)
                    .max_by(|a, b| {
                        (a.2 + a.3 * cells as f64).total_cmp(&(b.2 + b.3 * cells as f64))
                    })
                    .expect("an interior choice lies on a piece");
                let a = &analytics[i];
                let base_rate = knobs[i].map_or(0.0, |k| a.rate_bps(k));
                let extra = base_rate + cells as f64 * cell - a.rate_bps(piece.4);
                knobs[i] = Some(knob_within(a, piece.4, extra.max(0.0)));
                at -= cells;
                interior = false;
                continue;
            }
            let (cells, _, knob) = c.vertices[pick as usize];
            knobs[i] = knob;
            at -= cells;
        } else {
            let (cells, _, knob) = c.vertices[choice0[i * width + at] as usize];
            knobs[i] = knob;
            at -= cells;
        }
    }
    knobs
}

/// The LP relaxation's value: every analytic starts at its base point (its lowest knob, or
/// rate 0 when it may be dropped) and the rest of the budget is water-filled over the segments
/// of each curve's concave envelope.
fn relaxation(problem: &Problem, may_drop: bool) -> f64 {
    let mut value = 0.0;
    let mut rest = problem.budget();
    let mut segments: Vec<(f64, f64)> = Vec::new(); // (slope, length in bit/s)
    for a in &problem.analytics {
        let mut points: Vec<(f64, f64)> = Vec::new();
        if may_drop {
            points.push((0.0, 0.0));
        }
        points.extend(
            a.vertices()
                .into_iter()
                .map(|v| (a.rate_bps(v), a.value(v))),
        );
        let hull = upper_hull(&points);
        value += hull[0].1;
        rest -= hull[0].0;
        segments.extend(hull.windows(2).map(|w| {
            let length = w[1].0 - w[0].0;
            ((w[1].1 - w[0].1) / length, length)
        }));
    }
    segments.sort_by(|a, b| b.0.total_cmp(&a.0));
    for (slope, length) in segments {
        if rest <= 0.0 || slope <= 0.0 {
            break;
        }
        let take = length.min(rest);
        value += slope * take;
        rest -= take;
    }
    value
}

/// The upper concave hull of points sorted by x.
fn upper_hull(points: &[(f64, f64)]) -> Vec<(f64, f64)> {
    let mut hull: Vec<(f64, f64)> = Vec::with_capacity(points.len());
    for &p in points {
        while hull.len() >= 2 {
            let (a, b) = (hull[hull.len() - 2], hull[hull.len() - 1]);
            // Drop b when it lies on or below the chord a → p.
            if (b.0 - a.0) * (p.1 - a.1) - (b.1 - a.1) * (p.0 - a.0) >= 0.0 {
                hull.pop();
            } else {
                break;
            }
        }
        hull.push(p);
    }
    hull
}

#[cfg(test)]
mod tests {
    use super::upper_hull;

    #[test]
    fn the_hull_drops_points_under_chords() {
        let hull = upper_hull(&[(0.0, 0.0), (1.0, 0.1), (2.0, 2.0), (3.0, 2.5)]);
        assert_eq!(hull, vec![(0.0, 0.0), (2.0, 2.0), (3.0, 2.5)]);
    }
}
