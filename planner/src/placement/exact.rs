//! `exact`: branch and bound over the images worth placing, best value per byte first.
//!
//! The bound at a node is [`fractional_bound`] over the images not yet decided. The greedy
//! choice is the first incumbent.

use super::{Instance, Union, fractional_bound, greedy};
use crate::PlanError;

/// The most images with value that `exact` accepts: beyond that its running time may explode.
pub const MAX_IMAGES: usize = 48;

pub(super) fn solve(instance: &Instance) -> Result<Vec<usize>, PlanError> {
    let empty = Union::new(instance);
    // Images costing nothing are always taken; the others are searched.
    let (free, mut items): (Vec<usize>, Vec<usize>) = instance
        .candidates()
        .into_iter()
        .partition(|&i| empty.marginal(i) == 0);
    if items.len() > MAX_IMAGES {
        return Err(PlanError::invalid(
            "images for exact placement",
            items.len(),
            format!("at most {MAX_IMAGES} images with value; use fptas or greedy for more"),
        ));
    }
    let density = |i: usize| instance.values[i] / empty.marginal(i) as f64;
    items.sort_by(|&a, &b| density(b).total_cmp(&density(a)).then(a.cmp(&b)));
    let mut search = Search {
        instance,
        items,
        union: Union::new(instance),
        taken: Vec::new(),
        value: 0.0,
        best: greedy::solve(instance),
        best_value: 0.0,
    };
    search.best.retain(|i| !free.contains(i));
    search.best_value = instance.value(&search.best);
    for &i in &free {
        search.union.add(i);
    }
    search.branch(0);
    let mut chosen = search.best;
    chosen.extend(free);
    Ok(chosen)
}

struct Search<'a> {
    instance: &'a Instance,
    items: Vec<usize>,
    union: Union<'a>,
    taken: Vec<usize>,
    value: f64,
    best: Vec<usize>,
    best_value: f64,
}

impl Search<'_> {
    fn branch(&mut self, at: usize) {
        if self.value > self.best_value {
            self.best_value = self.value;
            self.best = self.taken.clone();
        }
        if at == self.items.len() || self.bound(at) <= self.best_value * (1.0 + 1e-12) {
            return;
        }
        let i = self.items[at];
        if self.union.bytes + self.union.marginal(i) <= self.instance.capacity_bytes {
            self.union.add(i);
            self.taken.push(i);
            self.value += self.instance.values[i];
            self.branch(at + 1);
            self.value -= self.instance.values[i];
            self.taken.pop();
            self.union.remove(i);
        }
        self.branch(at + 1);
    }

    /// An upper bound on the value reachable by deciding items `at..`.
    fn bound(&self, at: usize) -> f64 {
        self.value + fractional_bound(&self.union, &self.items[at..])
    }
}
