//! `fptas`: value scaling over the layer tree.
//!
//! Images are paths in a tree of layer prefixes (images on the same base share the base's
//! nodes, as Docker's chain IDs do). Choosing an image means taking every node on its path;
//! each node costs its layer's bytes (nothing if present). Values are scaled down by
//! K = ε·LB/n (LB: the greedy value, a feasible lower bound on the optimum; n: images with
//! value) and a DP over the nodes in depth-first order finds the least bytes for each scaled
//! value: at a node, either skip its whole subtree or take it and go on. Rounding loses less
//! than K per chosen image, so the result is worth at least OPT − ε·LB ≥ (1 − ε)·OPT.
//!
//! The DP keeps only the rows still needed (those a later skip jumps to), so memory stays at
//! the tree's depth times the value range, plus one bit per node and value for the choices.

use std::collections::HashMap;

use super::{Instance, Union, fractional_bound, greedy};

/// The prefix tree of the candidate images.
struct Tree {
    /// Per node in depth-first order: bytes, value, index after its subtree.
    bytes: Vec<u64>,
    value: Vec<f64>,
    skip: Vec<usize>,
    /// Images ending at each node.
    ends: Vec<Vec<usize>>,
}

fn tree(instance: &Instance, images: &[usize]) -> Tree {
    // Build with children maps, then lay out depth first.
    let mut children: Vec<HashMap<usize, usize>> = vec![HashMap::new()];
    let mut layer_of = vec![usize::MAX];
    let mut ends: Vec<Vec<usize>> = vec![Vec::new()];
    for &i in images {
        let mut node = 0;
        for &l in &instance.images[i] {
            let next = children.len();
            node = *children[node].entry(l).or_insert(next);
            if node == next {
                children.push(HashMap::new());
                layer_of.push(l);
                ends.push(Vec::new());
            }
        }
        ends[node].push(i);
    }
    let mut out = Tree {
        bytes: Vec::new(),
        value: Vec::new(),
        skip: Vec::new(),
        ends: Vec::new(),
    };
    // Iterative depth-first layout; the root itself (no layer) is not a node.
    let mut stack: Vec<(usize, bool)> = Vec::new();
    let mut roots: Vec<(usize, usize)> = children[0].iter().map(|(&l, &n)| (l, n)).collect();
    roots.sort_unstable();
    stack.extend(roots.into_iter().rev().map(|(_, n)| (n, false)));
    let mut position = vec![0usize; children.len()];
    while let Some((node, done)) = stack.pop() {
        if done {
            out.skip[position[node]] = out.bytes.len();
            continue;
        }
        position[node] = out.bytes.len();
        let l = layer_of[node];
        out.bytes.push(if instance.present[l] {
            0
        } else {
            instance.layer_bytes[l]
        });
        out.value
            .push(ends[node].iter().map(|&i| instance.values[i]).sum());
        out.skip.push(0);
        out.ends.push(std::mem::take(&mut ends[node]));
        stack.push((node, true));
        let mut kids: Vec<(usize, usize)> = children[node].iter().map(|(&l, &n)| (l, n)).collect();
        kids.sort_unstable();
        stack.extend(kids.into_iter().rev().map(|(_, n)| (n, false)));
    }
    out
}

pub(super) fn solve(instance: &Instance, epsilon: f64) -> Vec<usize> {
    let greedy = greedy::solve(instance);
    let lower = instance.value(&greedy);
    let images = instance.candidates();
    if lower <= 0.0 {
        return greedy;
    }
    let t = tree(instance, &images);
    let valued = t.value.iter().filter(|&&v| v > 0.0).count();
    let scale = epsilon * lower / valued as f64;
    let scaled: Vec<usize> = t
        .value
        .iter()
        .map(|v| (v / scale).floor() as usize)
        .collect();
    // No choice is worth more than the fractional bound: values above it need no column.
    let bound = fractional_bound(&Union::new(instance), &images);
    let top = scaled
        .iter()
        .sum::<usize>()
        .min((bound / scale).floor() as usize);
    let nodes = t.bytes.len();
    let width = top + 1;

    // Rows f[i][s]: least bytes to reach scaled value ≥ s with nodes i.. (u64::MAX: cannot).
    let mut needed = vec![0u32; nodes + 1];
    for i in 0..nodes {
        needed[i + 1] += 1;
        needed[t.skip[i]] += 1;
    }
    let mut rows: HashMap<usize, Vec<u64>> = HashMap::new();
    let mut last = vec![u64::MAX; width];
    last[0] = 0;
    rows.insert(nodes, last);
    let mut take = vec![0u64; (nodes * width).div_ceil(64)];
    for i in (0..nodes).rev() {
        let row = {
            let after = &rows[&(i + 1)];
            let skipped = &rows[&t.skip[i]];
            let (bytes, gain) = (t.bytes[i], scaled[i]);
            let mut row = skipped.clone();
            for (s, cell) in row.iter_mut().enumerate() {
                let through = after[s.saturating_sub(gain)].saturating_add(bytes);
                if through < *cell {
                    *cell = through;
                    let bit = i * width + s;
                    take[bit / 64] |= 1 << (bit % 64);
                }
            }
            row
        };
        for j in [i + 1, t.skip[i]] {
            needed[j] -= 1;
            if needed[j] == 0 {
                rows.remove(&j);
            }
        }
        rows.insert(i, row);
    }
    let first = &rows[&0];
    let mut s = (0..width)
        .rev()
        .find(|&s| first[s] <= instance.capacity_bytes)
        .unwrap_or(0);
    let mut chosen = Vec::new();
    let mut i = 0;
    while i < nodes {
        let bit = i * width + s;
        if take[bit / 64] >> (bit % 64) & 1 == 1 {
            chosen.extend(&t.ends[i]);
            s = s.saturating_sub(scaled[i]);
            i += 1;
        } else {
            i = t.skip[i];
        }
    }
    fill(instance, chosen)
}

/// Adds, best value per byte first, every remaining image that still fits (layers shared other
/// than by prefix were charged per prefix, so room may be left).
fn fill(instance: &Instance, mut chosen: Vec<usize>) -> Vec<usize> {
    let mut union = Union::new(instance);
    for &i in &chosen {
        union.add(i);
    }
    let mut rest: Vec<usize> = instance
        .candidates()
        .into_iter()
        .filter(|i| !chosen.contains(i))
        .collect();
    rest.sort_by(|&a, &b| {
        let density = |i: usize| instance.values[i] / (union.marginal(i) as f64);
        density(b).total_cmp(&density(a))
    });
    for i in rest {
        if union.bytes + union.marginal(i) <= instance.capacity_bytes {
            union.add(i);
            chosen.push(i);
        }
    }
    chosen
}
