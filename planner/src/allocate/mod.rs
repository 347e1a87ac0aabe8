//! Rate allocation: split an upload budget B (bit/s) among analytics by choosing each one's QoS
//! knob K in [K_min, 1], maximizing the total weighted QoS Σ wᵢ·QoSᵢ(Kᵢ) subject to
//! Σ rateᵢ(Kᵢ) ≤ B.
//!
//! Every analytic runs (at least at its lowest knob) when the lowest knobs fit in the budget
//! together; otherwise some are not admitted (rate 0, QoS 0) and choosing which is part of the
//! problem. Algorithms:
//!
//! | name | what it does |
//! |---|---|
//! | `raa` | greedy knob stepping by α on the best weighted-QoS gain per bit/s; drops lowest weights first while the minimums exceed B |
//! | `lagrange` | dual subgradient on the budget constraint, primal recovered by filling the rest |
//! | `weighted` | B·w/Σw per analytic, inverted through its bitrate model, clamped (the excess of clamped analytics goes to the others) |
//! | `unweighted` | B/N the same way |
//! | `optimal` | exact water-filling when every curve is concave and all minimums fit; otherwise a DP over the curves' vertices on a budget grid, with an upper bound (LP relaxation) reported beside it |

mod lagrange;
mod optimal;
mod raa;
mod share;

use std::collections::BinaryHeap;

use qoelab_workload::model::Location;
use serde::{Deserialize, Serialize};

use crate::PlanError;
use crate::analytic::Analytic;
use crate::error::named_enum;

/// A rate allocation algorithm.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Algorithm {
    /// Greedy knob stepping (the reference study's RAA).
    Raa,
    /// Dual subgradient on the budget constraint.
    Lagrange,
    /// Budget shares proportional to weight.
    Weighted,
    /// Equal budget shares.
    Unweighted,
    /// Exact (concave curves) or DP (general curves): the reference for optimality gaps.
    Optimal,
}

named_enum!(
    Algorithm,
    "rate allocation algorithm",
    [
        Raa => "raa",
        Lagrange => "lagrange",
        Weighted => "weighted",
        Unweighted => "unweighted",
        Optimal => "optimal",
    ]
);

/// Tuning of the algorithms.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Options {
    /// Knob step of `raa`, in (0, 1).
    pub alpha: f64,
    /// Subgradient iterations of `lagrange`.
    pub lagrange_iterations: u32,
    /// Budget grid of `optimal`'s DP (cells); finer is slower and closer to the optimum.
    pub dp_grid: u32,
}

impl Default for Options {
    fn default() -> Options {
        Options {
            alpha: 0.01,
            lagrange_iterations: 200,
            dp_grid: 4000,
        }
    }
}

impl Options {
    /// Checks every field.
    pub fn validate(&self) -> Result<(), PlanError> {
        if !(self.alpha > 0.0 && self.alpha < 1.0) {
            return Err(PlanError::invalid(
                "alpha",
                self.alpha,
                "a knob step in (0, 1), e.g. 0.01",
            ));
        }
        if self.lagrange_iterations == 0 {
            return Err(PlanError::invalid("lagrange iterations", 0, "at least 1"));
        }
        if !(10..=1_000_000).contains(&self.dp_grid) {
            return Err(PlanError::invalid(
                "dp grid",
                self.dp_grid,
                "10 to 1000000 cells",
            ));
        }
        Ok(())
    }
}

/// A validated allocation problem: a budget and the analytics sharing it.
#[derive(Debug, Clone, PartialEq)]
pub struct Problem {
    budget_bps: u64,
    analytics: Vec<Analytic>,
    /// Each analytic's [`Analytic::vertices`], computed once.
    vertices: Vec<Vec<f64>>,
}

impl Problem {
    /// Checks that the budget is positive and the analytics non-empty with unique ids.
    pub fn new(budget_bps: u64, analytics: Vec<Analytic>) -> Result<Problem, PlanError> {
        if budget_bps == 0 {
            return Err(PlanError::invalid(
                "budget",
                "0bit",
                "a positive rate, e.g. 1mbit",
            ));
        }
        if analytics.is_empty() {
            return Err(PlanError::invalid(
                "analytics",
                "none",
                "at least one analytic to allocate to",
            ));
        }
        let mut ids = std::collections::HashSet::new();
        if let Some(dup) = analytics.iter().find(|a| !ids.insert(a.id.as_str())) {
            return Err(PlanError::invalid(
                "analytic id",
                format!("'{}' (twice)", dup.id),
                "unique ids",
            ));
        }
        Ok(Problem {
            budget_bps,
            vertices: analytics.iter().map(Analytic::vertices).collect(),
            analytics,
        })
    }

    /// The budget in bit/s.
    pub fn budget_bps(&self) -> u64 {
        self.budget_bps
    }

    /// The analytics.
    pub fn analytics(&self) -> &[Analytic] {
        &self.analytics
    }

    fn budget(&self) -> f64 {
        self.budget_bps as f64
    }

    /// Whether the lowest knobs of all analytics together exceed the budget.
    fn admission_needed(&self) -> bool {
        self.analytics
            .iter()
            .map(Analytic::min_rate_bps)
            .sum::<f64>()
            > self.budget()
    }
}

/// What one analytic gets.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Share {
    /// The analytic's id.
    pub id: String,
    /// Its weight.
    pub weight: f64,
    /// Where it runs.
    pub location: Location,
    /// Whether it runs at all (false: the budget does not fit it).
    pub admitted: bool,
    /// Its knob (0 when not admitted).
    pub knob: f64,
    /// Its upload bitrate at that knob, rounded down (0 when not admitted).
    pub rate_bps: u64,
    /// Expected QoS at that knob (0 when not admitted).
    pub expected_qos: f64,
}

/// How close an allocation is known to be to the optimum.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Bound {
    /// No allocation has a higher total weighted QoS than this.
    pub upper_bound: f64,
    /// Whether the allocation is proven optimal (its value equals the bound).
    pub exact: bool,
}

/// The result of an allocation.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Allocation {
    /// The algorithm that produced it.
    pub algorithm: Algorithm,
    /// The budget, bit/s.
    pub budget_bps: u64,
    /// Σ rate_bps of the shares, ≤ budget.
    pub used_bps: u64,
    /// Σ weight · expected QoS.
    pub total_weighted_qos: f64,
    /// Per analytic, in the problem's order.
    pub shares: Vec<Share>,
    /// Only from `optimal`: the proven upper bound.
    pub bound: Option<Bound>,
}

impl Allocation {
    /// Total weighted QoS divided by the total weight: 1 when every analytic has QoS 1.
    pub fn mean_weighted_qos(&self) -> f64 {
        let weights: f64 = self.shares.iter().map(|s| s.weight).sum();
        self.total_weighted_qos / weights
    }

    /// Relative shortfall from `reference` (e.g. `optimal`'s value): (ref − value) / ref.
    pub fn gap_to(&self, reference: f64) -> f64 {
        if reference <= 0.0 {
            0.0
        } else {
            (reference - self.total_weighted_qos) / reference
        }
    }
}

/// Knobs chosen by an algorithm, per analytic; `None` = not admitted.
type Knobs = Vec<Option<f64>>;

/// Allocates the problem's budget with `algorithm`.
pub fn allocate(
    problem: &Problem,
    algorithm: Algorithm,
    options: &Options,
) -> Result<Allocation, PlanError> {
    options.validate()?;
    let (knobs, bound) = match algorithm {
        Algorithm::Raa => (raa::allocate(problem, options.alpha), None),
        Algorithm::Lagrange => (
            lagrange::allocate(problem, options.lagrange_iterations),
            None,
        ),
        Algorithm::Weighted => (share::allocate(problem, true), None),
        Algorithm::Unweighted => (share::allocate(problem, false), None),
        Algorithm::Optimal => {
            let (knobs, bound) = optimal::allocate(problem, options.dp_grid);
            (knobs, Some(bound))
        }
    };
    Ok(finish(problem, algorithm, &knobs, bound))
}

fn finish(
    problem: &Problem,
    algorithm: Algorithm,
    knobs: &Knobs,
    bound: Option<Bound>,
) -> Allocation {
    let shares: Vec<Share> = problem
        .analytics
        .iter()
        .zip(knobs)
        .map(|(a, knob)| Share {
            id: a.id.clone(),
            weight: a.weight,
            location: a.location,
            admitted: knob.is_some(),
            knob: knob.unwrap_or(0.0),
            rate_bps: knob.map_or(0, |k| a.rate_bps(k).floor() as u64),
            expected_qos: knob.map_or(0.0, |k| a.expected_qos(k)),
        })
        .collect();
    let total_weighted_qos = shares.iter().map(|s| s.weight * s.expected_qos).sum();
    Allocation {
        algorithm,
        budget_bps: problem.budget_bps,
        used_bps: shares.iter().map(|s| s.rate_bps).sum(),
        total_weighted_qos,
        shares,
        bound,
    }
}

/// Σ rate of the admitted analytics at their knobs.
fn used_rate(problem: &Problem, knobs: &Knobs) -> f64 {
    problem
        .analytics
        .iter()
        .zip(knobs)
        .filter_map(|(a, k)| k.map(|k| a.rate_bps(k)))
        .sum()
}

/// Which analytics run: all when their lowest knobs fit together; otherwise the lowest weights
/// (then the largest minimum demands) are dropped until they fit, and dropped analytics that
/// still fit in what is left are taken back, heaviest first.
fn admit_by_weight(problem: &Problem) -> Vec<bool> {
    let analytics = &problem.analytics;
    let mut admitted = vec![true; analytics.len()];
    let mut demand: f64 = analytics.iter().map(Analytic::min_rate_bps).sum();
    let mut order: Vec<usize> = (0..analytics.len()).collect();
    order.sort_by(|&a, &b| {
        let (a, b) = (&analytics[a], &analytics[b]);
        a.weight
            .total_cmp(&b.weight)
            .then(b.min_rate_bps().total_cmp(&a.min_rate_bps()))
            .then(b.id.cmp(&a.id))
    });
    let mut dropped = Vec::new();
    for &i in &order {
        if demand <= problem.budget() {
            break;
        }
        admitted[i] = false;
        demand -= analytics[i].min_rate_bps();
        dropped.push(i);
    }
    for &i in dropped.iter().rev() {
        if demand + analytics[i].min_rate_bps() <= problem.budget() {
            admitted[i] = true;
            demand += analytics[i].min_rate_bps();
        }
    }
    admitted
}

/// The highest knob reachable from `from` with `extra` more bit/s, never over `extra`.
fn knob_within(analytic: &Analytic, from: f64, extra: f64) -> f64 {
    let base = analytic.rate_bps(from);
    let mut k = analytic.knob_for_rate(base + extra).max(from);
    while k > from && analytic.rate_bps(k) - base > extra {
        k = k.next_down();
    }
    k
}

/// A candidate move of one analytic to a higher vertex, ordered by gain per bit/s.
#[derive(Debug, Clone, Copy, PartialEq)]
struct Move {
    ratio: f64,
    index: usize,
    to: f64,
}

impl Eq for Move {}

impl Ord for Move {
    fn cmp(&self, other: &Move) -> std::cmp::Ordering {
        self.ratio
            .total_cmp(&other.ratio)
            .then(other.index.cmp(&self.index))
    }
}

impl PartialOrd for Move {
    fn partial_cmp(&self, other: &Move) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}

/// The best move of analytic `index` from knob `k`: to the higher vertex with the largest gain per
/// bit/s (the nearest on ties), if it gains anything.
fn best_move(problem: &Problem, index: usize, k: f64) -> Option<Move> {
    let analytic = &problem.analytics[index];
    problem.vertices[index]
        .iter()
        .copied()
        .filter(|&v| v > k)
        .map(|v| Move {
            ratio: analytic.slope(k, v),
            index,
            to: v,
        })
        .filter(|m| m.ratio > 0.0)
        .reduce(|best, m| if m.ratio > best.ratio { m } else { best })
}

/// Spends what is left of the budget on the admitted analytics: repeatedly the move with the
/// best gain per bit/s, the last one partially. On concave curves, starting from vertices,
/// this is marginal-utility water-filling and exact.
fn fill(problem: &Problem, knobs: &mut Knobs) {
    let mut rest = problem.budget() - used_rate(problem, knobs);
    let mut heap: BinaryHeap<Move> = knobs
        .iter()
        .enumerate()
        .filter_map(|(i, k)| best_move(problem, i, (*k)?))
        .collect();
    while rest > 0.0
        && let Some(m) = heap.pop()
    {
        let analytic = &problem.analytics[m.index];
        let from = knobs[m.index].expect("moves are only made for admitted analytics");
        let cost = analytic.rate_bps(m.to) - analytic.rate_bps(from);
        if cost <= rest {
            knobs[m.index] = Some(m.to);
            rest -= cost;
            heap.extend(best_move(problem, m.index, m.to));
        } else {
            knobs[m.index] = Some(knob_within(analytic, from, rest));
            break;
        }
    }
}

#[cfg(test)]
mod tests;
