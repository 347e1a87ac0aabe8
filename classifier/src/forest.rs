//! CART decision trees and random forests, grown on presorted feature columns.
//!
//! Why not linfa: linfa-trees 0.8.1 has no per-split feature sampling, scans every row of the
//! dataset at every node, treats feature values closer than 1e-5 as equal (a feature measured in
//! small units cannot be split), and breaks ties between classes in `HashMap` order, so the same
//! seed and data give different trees in different processes. linfa-ensemble's forest samples
//! features per tree and trains sequentially.
//!
//! This module grows trees the way scikit-learn's `RandomForestClassifier` does: Gini impurity,
//! a bootstrap sample per tree (drawn as per-row counts), `max_features` features drawn afresh at
//! every split (constant features do not count), thresholds halfway between neighbouring
//! distinct values, leaves that keep class probabilities, soft voting. Each feature's row order
//! is sorted once per fit; a node's rows stay contiguous and sorted in every feature's order by
//! stable partitioning, so finding a split is one linear scan per drawn feature. Trees grow in
//! parallel (rayon); each tree's random stream depends only on the seed and the tree's index, so
//! results do not depend on the number of threads.

use ndarray::{Array2, ArrayView1, ArrayView2};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use rayon::prelude::*;
use serde::{Deserialize, Serialize};

/// How many features a split may look at.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum MaxFeatures {
    /// ⌊√features⌋ (at least 1): the forest default.
    Sqrt,
    /// Every feature: a plain decision tree.
    All,
    /// A fixed number (capped at the number of features).
    Count(usize),
}

impl MaxFeatures {
    fn resolve(self, features: usize) -> usize {
        match self {
            MaxFeatures::Sqrt => ((features as f64).sqrt() as usize).max(1),
            MaxFeatures::All => features,
            MaxFeatures::Count(n) => n.clamp(1, features),
        }
        .min(features)
    }
}

/// How trees are grown.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct TreeParams {
    /// Features drawn at each split.
    pub max_features: MaxFeatures,
    /// Depth limit; `None` grows until leaves are pure or too small.
    pub max_depth: Option<usize>,
    /// Fewest distinct rows in a node that may be split.
    pub min_samples_split: usize,
    /// Fewest distinct rows on each side of a split.
    pub min_samples_leaf: usize,
    /// Draw a bootstrap sample per tree.
    pub bootstrap: bool,
}

impl TreeParams {
    /// A random forest's trees: √features per split, bootstrap, fully grown.
    pub fn forest() -> TreeParams {
        TreeParams {
            max_features: MaxFeatures::Sqrt,
            max_depth: None,
            min_samples_split: 2,
            min_samples_leaf: 1,
            bootstrap: true,
        }
    }

    /// A single decision tree: every feature at every split, all rows.
    pub fn single_tree() -> TreeParams {
        TreeParams {
            max_features: MaxFeatures::All,
            bootstrap: false,
            ..TreeParams::forest()
        }
    }
}

const LEAF: u32 = u32::MAX;

/// One fitted tree as flat arrays (compact when serialized).
///
/// Node `i` is a split on `feature[i]` at `threshold[i]` (rows with a value ≤ the threshold go to
/// `left[i]`, the others to `right[i]`), or a leaf when `feature[i]` is `u32::MAX`; a leaf's class
/// probabilities are `value[left[i]..left[i] + classes]`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Tree {
    feature: Vec<u32>,
    threshold: Vec<f64>,
    left: Vec<u32>,
    right: Vec<u32>,
    value: Vec<f32>,
}

impl Tree {
    fn leaf_of(&self, row: ArrayView1<f64>) -> usize {
        let mut node = 0;
        while self.feature[node] != LEAF {
            node = if row[self.feature[node] as usize] <= self.threshold[node] {
                self.left[node] as usize
            } else {
                self.right[node] as usize
            };
        }
        self.left[node] as usize
    }

    /// Number of nodes.
    pub fn nodes(&self) -> usize {
        self.feature.len()
    }
}

/// An ensemble of trees voting with their leaves' class probabilities.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Forest {
    features: usize,
    classes: usize,
    trees: Vec<Tree>,
    impurity_importance: Vec<f64>,
}

impl Forest {
    /// Grows `trees` trees on `x` (rows × features, finite values) with classes `y` in
    /// `0..classes`. `weights` scale each row (class balancing); `None` = 1.
    pub fn fit(
        x: ArrayView2<f64>,
        y: &[usize],
        classes: usize,
        weights: Option<&[f64]>,
        trees: usize,
        params: &TreeParams,
        seed: u64,
    ) -> Forest {
        assert_eq!(x.nrows(), y.len(), "one class per row");
        assert!(
            x.nrows() > 0 && x.ncols() > 0,
            "at least one row and one feature"
        );
        assert!(x.iter().all(|v| v.is_finite()), "features must be finite");
        let columns: Vec<Vec<f64>> = x.columns().into_iter().map(|c| c.to_vec()).collect();
        let order: Vec<Vec<u32>> = columns
            .par_iter()
            .map(|values| {
                let mut order: Vec<u32> = (0..values.len() as u32).collect();
                order.sort_by(|&a, &b| values[a as usize].total_cmp(&values[b as usize]));
                order
            })
            .collect();
        let data = Data {
            columns: &columns,
            order: &order,
            y,
            classes,
            weights,
        };
        let grown: Vec<(Tree, Vec<f64>)> = (0..trees)
            .into_par_iter()
            .map(|t| {
                let mut rng = ChaCha8Rng::seed_from_u64(seed);
                rng.set_stream(t as u64);
                Grower::new(&data, params, rng).grow()
            })
            .collect();
        let mut impurity_importance = vec![0.0; x.ncols()];
        for (_, importance) in &grown {
            let total: f64 = importance.iter().sum();
            if total > 0.0 {
                for (sum, v) in impurity_importance.iter_mut().zip(importance) {
                    *sum += v / total;
                }
            }
        }
        let total: f64 = impurity_importance.iter().sum();
        if total > 0.0 {
            impurity_importance.iter_mut().for_each(|v| *v /= total);
        }
        Forest {
            features: x.ncols(),
            classes,
            trees: grown.into_iter().map(|(tree, _)| tree).collect(),
            impurity_importance,
        }
    }

    /// Class probabilities per row (rows × classes): the mean of the trees' leaf probabilities.
    pub fn predict_proba(&self, x: ArrayView2<f64>) -> Array2<f64> {
        assert_eq!(x.ncols(), self.features, "feature count");
        let mut out = Array2::zeros((x.nrows(), self.classes));
        out.axis_iter_mut(ndarray::Axis(0))
            .into_par_iter()
            .zip(x.axis_iter(ndarray::Axis(0)).into_par_iter())
            .for_each(|(mut probs, row)| {
                for tree in &self.trees {
                    let at = tree.leaf_of(row);
                    for (p, &v) in probs.iter_mut().zip(&tree.value[at..at + self.classes]) {
                        *p += f64::from(v);
                    }
                }
                probs.mapv_inplace(|p| p / self.trees.len() as f64);
            });
        out
    }

    /// Mean decrease in Gini impurity per feature, normalised per tree and then to sum 1.
    pub fn impurity_importance(&self) -> &[f64] {
        &self.impurity_importance
    }

    /// The trees.
    pub fn trees(&self) -> &[Tree] {
        &self.trees
    }

    /// Number of features the forest was trained on.
    pub fn features(&self) -> usize {
        self.features
    }
}

/// The training data shared by all trees.
struct Data<'a> {
    /// Feature values, one vector per feature.
    columns: &'a [Vec<f64>],
    /// Row indices sorted by each feature's value.
    order: &'a [Vec<u32>],
    y: &'a [usize],
    classes: usize,
    weights: Option<&'a [f64]>,
}

/// The best split found in a node.
struct Split {
    feature: usize,
    /// Rows going left, counted from the node's start.
    left_rows: usize,
    threshold: f64,
    proxy: f64,
}

/// Grows one tree. Its rows (those with a positive weight) are kept as one segment per feature,
/// each sorted by that feature; a node is the range `start..end` in every segment.
struct Grower<'a> {
    data: &'a Data<'a>,
    params: &'a TreeParams,
    rng: ChaCha8Rng,
    /// Per-row weight in this tree: bootstrap count × row weight.
    weight: Vec<f64>,
    /// `features` segments of `rows` row indices.
    sorted: Vec<u32>,
    rows: usize,
    goes_left: Vec<bool>,
    scratch: Vec<u32>,
    feature_pool: Vec<usize>,
    tree: Tree,
    importance: Vec<f64>,
}

impl<'a> Grower<'a> {
    fn new(data: &'a Data<'a>, params: &'a TreeParams, mut rng: ChaCha8Rng) -> Grower<'a> {
        let n = data.y.len();
        let mut weight = vec![0.0; n];
        if params.bootstrap {
            for _ in 0..n {
                weight[rng.random_range(0..n)] += 1.0;
            }
        } else {
            weight.fill(1.0);
        }
        if let Some(w) = data.weights {
            weight.iter_mut().zip(w).for_each(|(a, b)| *a *= b);
        }
        let features = data.columns.len();
        let mut sorted = Vec::new();
        for order in data.order {
            sorted.extend(order.iter().filter(|&&i| weight[i as usize] > 0.0));
        }
        let rows = sorted.len() / features;
        Grower {
            data,
            params,
            rng,
            weight,
            sorted,
            rows,
            goes_left: vec![false; n],
            scratch: Vec::with_capacity(rows),
            feature_pool: (0..features).collect(),
            tree: Tree {
                feature: Vec::new(),
                threshold: Vec::new(),
                left: Vec::new(),
                right: Vec::new(),
                value: Vec::new(),
            },
            importance: vec![0.0; features],
        }
    }

    fn grow(mut self) -> (Tree, Vec<f64>) {
        // (start, end, depth, node index)
        let mut stack = vec![(0, self.rows, 0, self.push_node())];
        let mut counts = vec![0.0; self.data.classes];
        while let Some((start, end, depth, node)) = stack.pop() {
            counts.fill(0.0);
            for &i in &self.sorted[start..end] {
                counts[self.data.y[i as usize]] += self.weight[i as usize];
            }
            let split = if self.may_split(&counts, end - start, depth) {
                self.best_split(start, end, &counts)
            } else {
                None
            };
            let Some(split) = split else {
                self.make_leaf(node, &counts);
                continue;
            };
            let mid = start + split.left_rows;
            self.partition(start, end, &split);
            self.record_importance(&split, &counts, start, mid);
            let (left, right) = (self.push_node(), self.push_node());
            self.tree.feature[node] = split.feature as u32;
            self.tree.threshold[node] = split.threshold;
            self.tree.left[node] = left as u32;
            self.tree.right[node] = right as u32;
            stack.push((mid, end, depth + 1, right));
            stack.push((start, mid, depth + 1, left));
        }
        (self.tree, self.importance)
    }

    fn push_node(&mut self) -> usize {
        self.tree.feature.push(LEAF);
        self.tree.threshold.push(0.0);
        self.tree.left.push(0);
        self.tree.right.push(0);
        self.tree.feature.len() - 1
    }

    fn may_split(&self, counts: &[f64], rows: usize, depth: usize) -> bool {
        let pure = counts.iter().filter(|&&c| c > 0.0).count() <= 1;
        !pure
            && rows >= self.params.min_samples_split.max(2)
            && rows >= 2 * self.params.min_samples_leaf
            && self.params.max_depth.is_none_or(|d| depth < d)
    }

    fn make_leaf(&mut self, node: usize, counts: &[f64]) {
        let total: f64 = counts.iter().sum();
        self.tree.left[node] = self.tree.value.len() as u32;
        self.tree
            .value
            .extend(counts.iter().map(|&c| (c / total) as f32));
    }

    /// Draws features until `max_features` non-constant ones were scanned; keeps the split with
    /// the largest Gini proxy `Σ left_c²/left + Σ right_c²/right`.
    fn best_split(&mut self, start: usize, end: usize, counts: &[f64]) -> Option<Split> {
        let features = self.feature_pool.len();
        let wanted = self.params.max_features.resolve(features);
        let total_sq: f64 = counts.iter().map(|c| c * c).sum();
        let total: f64 = counts.iter().sum();
        let mut best: Option<Split> = None;
        let (mut scanned, mut drawn) = (0, 0);
        let mut left = vec![0.0; counts.len()];
        let mut right = vec![0.0; counts.len()];
        while scanned < wanted && drawn < features {
            let pick = self.rng.random_range(drawn..features);
            self.feature_pool.swap(drawn, pick);
            let feature = self.feature_pool[drawn];
            drawn += 1;
            let values = &self.data.columns[feature];
            let segment = &self.sorted[feature * self.rows + start..feature * self.rows + end];
            let first = values[segment[0] as usize];
            if first == values[segment[segment.len() - 1] as usize] {
                continue;
            }
            scanned += 1;
            left.fill(0.0);
            right.copy_from_slice(counts);
            let (mut left_sq, mut right_sq) = (0.0, total_sq);
            let mut left_weight = 0.0;
            let min_leaf = self.params.min_samples_leaf;
            for k in 0..segment.len() - 1 {
                let i = segment[k] as usize;
                let (w, c) = (self.weight[i], self.data.y[i]);
                left_sq += w * (2.0 * left[c] + w);
                right_sq += w * (w - 2.0 * right[c]);
                left[c] += w;
                right[c] -= w;
                left_weight += w;
                let (v, next) = (values[i], values[segment[k + 1] as usize]);
                if next <= v || k + 1 < min_leaf || segment.len() - k - 1 < min_leaf {
                    continue;
                }
                let proxy = left_sq / left_weight + right_sq / (total - left_weight);
                if best.as_ref().is_none_or(|b| proxy > b.proxy) {
                    let mid = v / 2.0 + next / 2.0;
                    best = Some(Split {
                        feature,
                        left_rows: k + 1,
                        threshold: if mid < next { mid } else { v },
                        proxy,
                    });
                }
            }
        }
        best
    }

    /// Reorders every feature's segment `start..end` so the split's left rows come first,
    /// keeping each side sorted.
    fn partition(&mut self, start: usize, end: usize, split: &Split) {
        let rows = self.rows;
        let own = &self.sorted[split.feature * rows + start..split.feature * rows + end];
        for (k, &i) in own.iter().enumerate() {
            self.goes_left[i as usize] = k < split.left_rows;
        }
        for feature in 0..self.feature_pool.len() {
            if feature == split.feature {
                continue; // already ordered: sorted by this feature, left values first
            }
            let segment = &mut self.sorted[feature * rows + start..feature * rows + end];
            self.scratch.clear();
            let mut kept = 0;
            for k in 0..segment.len() {
                let i = segment[k];
                if self.goes_left[i as usize] {
                    segment[kept] = i;
                    kept += 1;
                } else {
                    self.scratch.push(i);
                }
            }
            segment[kept..].copy_from_slice(&self.scratch);
        }
    }

    /// Adds the split's weighted impurity decrease to its feature.
    fn record_importance(&mut self, split: &Split, counts: &[f64], start: usize, mid: usize) {
        let mut left = vec![0.0; counts.len()];
        let segment =
            &self.sorted[split.feature * self.rows + start..split.feature * self.rows + mid];
        for &i in segment {
            left[self.data.y[i as usize]] += self.weight[i as usize];
        }
        let right: Vec<f64> = counts.iter().zip(&left).map(|(c, l)| c - l).collect();
        let weighted_gini = |counts: &[f64]| {
            let total: f64 = counts.iter().sum();
            if total <= 0.0 {
                return 0.0;
            }
            total - counts.iter().map(|c| c * c).sum::<f64>() / total
        };
        self.importance[split.feature] +=
            weighted_gini(counts) - weighted_gini(&left) - weighted_gini(&right);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::synthetic;

    fn accuracy(forest: &Forest, x: ArrayView2<f64>, y: &[usize]) -> f64 {
        let probs = forest.predict_proba(x);
        let right = probs
            .rows()
            .into_iter()
            .zip(y)
            .filter(|(p, c)| argmax(p.as_slice().unwrap()) == **c)
            .count();
        right as f64 / y.len() as f64
    }

    fn argmax(p: &[f64]) -> usize {
        (0..p.len()).fold(0, |b, i| if p[i] > p[b] { i } else { b })
    }

    #[test]
    fn a_single_tree_fits_its_training_data_exactly() {
        let data = synthetic::blobs(300, 5, 3, 1.5, 7);
        let tree = Forest::fit(
            data.x.view(),
            &data.y,
            3,
            None,
            1,
            &TreeParams::single_tree(),
            1,
        );
        assert_eq!(accuracy(&tree, data.x.view(), &data.y), 1.0);
    }

    #[test]
    fn tiny_feature_scales_still_split() {
        // linfa-trees cannot split this: it treats values closer than 1e-5 as equal.
        let x = Array2::from_shape_fn((100, 1), |(i, _)| i as f64 * 1e-7);
        let y: Vec<usize> = (0..100).map(|i| usize::from(i >= 50)).collect();
        let tree = Forest::fit(x.view(), &y, 2, None, 1, &TreeParams::single_tree(), 1);
        assert_eq!(accuracy(&tree, x.view(), &y), 1.0);
        assert_eq!(tree.trees()[0].nodes(), 3);
    }

    #[test]
    fn ties_give_probabilities_not_an_arbitrary_class() {
        let x = Array2::from_shape_vec((4, 1), vec![0.0, 0.0, 1.0, 1.0]).unwrap();
        let tree = Forest::fit(
            x.view(),
            &[0, 1, 1, 1],
            2,
            None,
            1,
            &TreeParams::single_tree(),
            1,
        );
        let probs = tree.predict_proba(x.view());
        assert_eq!(probs.row(0).to_vec(), [0.5, 0.5]);
        assert_eq!(probs.row(2).to_vec(), [0.0, 1.0]);
    }

    #[test]
    fn the_same_seed_gives_the_same_forest_whatever_the_threads() {
        let data = synthetic::blobs(200, 6, 3, 2.0, 3);
        let fit = || {
            Forest::fit(
                data.x.view(),
                &data.y,
                3,
                None,
                8,
                &TreeParams::forest(),
                42,
            )
        };
        let a = fit();
        let one_thread = rayon::ThreadPoolBuilder::new()
            .num_threads(1)
            .build()
            .unwrap();
        assert_eq!(a, one_thread.install(fit));
        let other = Forest::fit(
            data.x.view(),
            &data.y,
            3,
            None,
            8,
            &TreeParams::forest(),
            43,
        );
        assert_ne!(a, other);
    }

    #[test]
    fn splits_sample_features_per_node() {
        // With one feature per split, a tree uses many different features; a per-tree sample
        // of one feature would use a single one.
        let data = synthetic::blobs(400, 8, 3, 1.0, 5);
        let params = TreeParams {
            max_features: MaxFeatures::Count(1),
            ..TreeParams::forest()
        };
        let forest = Forest::fit(data.x.view(), &data.y, 3, None, 1, &params, 9);
        let tree = &forest.trees()[0];
        let mut used: Vec<u32> = tree
            .feature
            .iter()
            .copied()
            .filter(|&f| f != LEAF)
            .collect();
        used.sort_unstable();
        used.dedup();
        assert!(used.len() >= 6, "features used: {used:?}");
    }

    #[test]
    fn importance_finds_the_informative_feature() {
        let n = 300;
        let mut x = Array2::zeros((n, 3));
        let mut y = vec![0; n];
        let mut rng = ChaCha8Rng::seed_from_u64(1);
        for i in 0..n {
            for f in 0..3 {
                x[[i, f]] = rng.random::<f64>();
            }
            y[i] = usize::from(x[[i, 1]] > 0.5);
        }
        let forest = Forest::fit(x.view(), &y, 2, None, 20, &TreeParams::forest(), 1);
        let imp = forest.impurity_importance();
        assert!(imp[1] > 0.8, "{imp:?}");
        assert!((imp.iter().sum::<f64>() - 1.0).abs() < 1e-9);
    }

    #[test]
    fn depth_limits_and_weights_are_honoured() {
        let data = synthetic::blobs(300, 4, 2, 3.0, 11);
        let stump = TreeParams {
            max_depth: Some(1),
            ..TreeParams::single_tree()
        };
        let f = Forest::fit(data.x.view(), &data.y, 2, None, 1, &stump, 1);
        assert_eq!(f.trees()[0].nodes(), 3);
        // Weight only class 1: every leaf then predicts class 1.
        let weights: Vec<f64> = data
            .y
            .iter()
            .map(|&c| if c == 1 { 1.0 } else { 0.0 })
            .collect();
        let f = Forest::fit(data.x.view(), &data.y, 2, Some(&weights), 1, &stump, 1);
        let probs = f.predict_proba(data.x.view());
        assert!(probs.rows().into_iter().all(|p| p[1] == 1.0));
    }
}
