//! Honest evaluation: stratified k-fold cross-validation and a stratified held-out split.
//!
//! Every step that learns from data — balancing, medians for missing values, standardisation,
//! the model itself — sees only the training rows of its fold; the test rows are never
//! resampled. Folds, splits, undersampling and permutations draw from streams derived from one
//! seed, so a run is reproducible.

use ndarray::{Array2, Axis};
use rand::SeedableRng;
use rand::seq::SliceRandom;
use rand_chacha::ChaCha8Rng;
use rayon::prelude::*;
use serde::{Deserialize, Serialize};

use crate::choice::named_choices;
use crate::dataset::{Dataset, MissingPolicy};
use crate::error::{Error, Result};
use crate::metrics::Metrics;
use crate::model::{Fitted, ModelParams};

/// How training rows are balanced between classes (inside training folds only).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Balance {
    /// Use the rows as they are.
    #[default]
    None,
    /// Weight rows by `rows / (classes × rows of their class)` (trees only).
    Weights,
    /// Randomly drop rows of larger classes down to the smallest class.
    Undersample,
}

named_choices!(Balance, "--balance", [
    None => "none",
    Weights => "weights",
    Undersample => "undersample",
]);

/// How a model is evaluated.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct EvalSpec {
    /// Folds of stratified cross-validation; 0 = none.
    pub folds: usize,
    /// Share of rows held out for a final test; `None` = no held-out split.
    pub holdout: Option<f64>,
    /// Class balancing of training rows.
    pub balance: Balance,
    /// Permutations per feature for permutation importance, in total over the test sets (at
    /// least one per test set: 10-fold cross-validation with 10 shuffles each fold once, a
    /// held-out test shuffles its rows 10 times); 0 = skip.
    pub permutations: usize,
    /// The seed of every random choice.
    pub seed: u64,
}

impl Default for EvalSpec {
    fn default() -> EvalSpec {
        EvalSpec {
            folds: 10,
            holdout: None,
            balance: Balance::None,
            permutations: 10,
            seed: 0,
        }
    }
}

impl EvalSpec {
    /// Checks the values against each other and the model.
    pub fn validate(&self, params: &ModelParams) -> Result<()> {
        if self.folds == 1 {
            let expected = "0 (no cross-validation) or at least 2";
            return Err(Error::invalid("--folds", 1, expected));
        }
        if let Some(h) = self.holdout
            && !(h > 0.0 && h < 1.0)
        {
            let expected = "a share between 0 and 1, e.g. 0.2";
            return Err(Error::invalid("--holdout", h, expected));
        }
        if self.balance == Balance::Weights && !params.kind.takes_row_weights() {
            let expected =
                "row weights work with rf and tree; use --balance undersample with logreg or nb";
            return Err(Error::invalid("--balance", "weights", expected));
        }
        Ok(())
    }
}

/// Feature importance by permutation: the drop in accuracy when one feature's test values are
/// shuffled.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Importance {
    /// The feature.
    pub feature: String,
    /// Mean accuracy drop.
    pub mean: f64,
    /// Standard deviation of the drop over test sets and repeats.
    pub std: f64,
}

/// The result of cross-validation or of a held-out test.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Evaluation {
    /// `10-fold stratified cross-validation` or `held-out 20%`.
    pub method: String,
    /// Metrics over all test rows (each row tested once).
    pub metrics: Metrics,
    /// Accuracy of each test fold.
    pub fold_accuracy: Vec<f64>,
    /// Permutation importance per feature, in feature order (empty if skipped).
    pub permutation_importance: Vec<Importance>,
}

/// Test fold (`0..k`) of each row: every class is shuffled and dealt over the folds in turn,
/// continuing where the previous class stopped, so each fold holds every class in proportion
/// and fold sizes differ by at most one.
pub fn stratified_folds(y: &[usize], k: usize, seed: u64) -> Vec<usize> {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let mut fold = vec![0; y.len()];
    let mut next = 0;
    for mut rows in rows_by_class(y) {
        rows.shuffle(&mut rng);
        for row in rows {
            fold[row] = next % k;
            next += 1;
        }
    }
    fold
}

/// Training and test rows with `fraction` of every class (rounded, at least one row of a class
/// with two or more) in the test rows.
pub fn stratified_holdout(y: &[usize], fraction: f64, seed: u64) -> (Vec<usize>, Vec<usize>) {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let (mut train, mut test) = (Vec::new(), Vec::new());
    for mut rows in rows_by_class(y) {
        rows.shuffle(&mut rng);
        let mut n = (rows.len() as f64 * fraction).round() as usize;
        if rows.len() >= 2 {
            n = n.clamp(1, rows.len() - 1);
        }
        test.extend_from_slice(&rows[..n]);
        train.extend_from_slice(&rows[n..]);
    }
    train.sort_unstable();
    test.sort_unstable();
    (train, test)
}

fn rows_by_class(y: &[usize]) -> Vec<Vec<usize>> {
    let classes = y.iter().max().map_or(0, |m| m + 1);
    let mut rows = vec![Vec::new(); classes];
    for (row, &c) in y.iter().enumerate() {
        rows[c].push(row);
    }
    rows
}

/// A seed for one purpose (`tag`) and index, derived from the run's seed (SplitMix64).
pub fn derive_seed(seed: u64, tag: u64, index: u64) -> u64 {
    let mut z = seed
        .wrapping_add(tag.wrapping_mul(0x9E37_79B9_7F4A_7C15))
        .wrapping_add(index.wrapping_mul(0xBF58_476D_1CE4_E5B9));
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

/// Purposes of derived seeds.
pub(crate) mod tag {
    pub const FOLDS: u64 = 1;
    pub const HOLDOUT: u64 = 2;
    pub const BALANCE: u64 = 3;
    pub const MODEL: u64 = 4;
    pub const PERMUTE: u64 = 5;
}

/// Training rows after balancing, and per-row weights (for `Balance::Weights`).
pub fn balance_rows(
    y: &[usize],
    rows: &[usize],
    classes: usize,
    balance: Balance,
    seed: u64,
) -> (Vec<usize>, Option<Vec<f64>>) {
    let mut counts = vec![0usize; classes];
    for &r in rows {
        counts[y[r]] += 1;
    }
    let present = counts.iter().filter(|&&c| c > 0).count();
    match balance {
        Balance::None => (rows.to_vec(), None),
        Balance::Weights => {
            let weights = rows
                .iter()
                .map(|&r| rows.len() as f64 / (present * counts[y[r]]) as f64)
                .collect();
            (rows.to_vec(), Some(weights))
        }
        Balance::Undersample => {
            let smallest = counts.iter().copied().filter(|&c| c > 0).min().unwrap_or(0);
            let mut rng = ChaCha8Rng::seed_from_u64(seed);
            let mut by_class = vec![Vec::new(); classes];
            for &r in rows {
                by_class[y[r]].push(r);
            }
            let mut kept: Vec<usize> = by_class
                .into_iter()
                .flat_map(|mut class_rows| {
                    class_rows.shuffle(&mut rng);
                    class_rows.truncate(smallest);
                    class_rows
                })
                .collect();
            kept.sort_unstable();
            (kept, None)
        }
    }
}

/// Fits a model on some rows of the dataset, balancing them first.
pub fn fit_rows(
    dataset: &Dataset,
    rows: &[usize],
    params: &ModelParams,
    spec: &EvalSpec,
    index: u64,
) -> Result<Fitted> {
    let classes = dataset.class_names.len();
    let balance_seed = derive_seed(spec.seed, tag::BALANCE, index);
    let (rows, weights) = balance_rows(&dataset.y, rows, classes, spec.balance, balance_seed);
    let x = dataset.x.select(Axis(0), &rows);
    let y: Vec<usize> = rows.iter().map(|&r| dataset.y[r]).collect();
    Fitted::fit(
        params,
        x.view(),
        &y,
        classes,
        weights.as_deref(),
        dataset.missing == MissingPolicy::Median,
        derive_seed(spec.seed, tag::MODEL, index),
    )
}

/// Accuracy drops when each feature of `x` is shuffled, `repeats` times per feature.
fn permutation_drops(
    model: &Fitted,
    x: &Array2<f64>,
    y: &[usize],
    base: f64,
    repeats: usize,
    seed: u64,
) -> Vec<Vec<f64>> {
    (0..x.ncols())
        .map(|feature| {
            (0..repeats)
                .map(|r| {
                    let mut rng =
                        ChaCha8Rng::seed_from_u64(derive_seed(seed, feature as u64, r as u64));
                    let mut shuffled = x.clone();
                    let mut column: Vec<f64> = x.column(feature).to_vec();
                    column.shuffle(&mut rng);
                    shuffled
                        .column_mut(feature)
                        .assign(&ndarray::Array1::from(column));
                    base - accuracy(&model.predict(shuffled.view()), y)
                })
                .collect()
        })
        .collect()
}

fn accuracy(predicted: &[usize], truth: &[usize]) -> f64 {
    let right = predicted.iter().zip(truth).filter(|(p, t)| p == t).count();
    right as f64 / truth.len().max(1) as f64
}

/// Tests `model` on `rows`: predictions, accuracy and permutation drops.
struct TestResult {
    rows: Vec<usize>,
    predicted: Vec<usize>,
    drops: Vec<Vec<f64>>,
}

/// Tests `model` on `rows`, one of `test_sets` test sets.
fn test_rows(
    dataset: &Dataset,
    model: &Fitted,
    rows: &[usize],
    spec: &EvalSpec,
    (index, test_sets): (u64, usize),
) -> TestResult {
    let x = dataset.x.select(Axis(0), rows);
    let y: Vec<usize> = rows.iter().map(|&r| dataset.y[r]).collect();
    let seed = derive_seed(spec.seed, tag::PERMUTE, index);
    let predicted = model.predict(x.view());
    let drops = if spec.permutations == 0 {
        Vec::new()
    } else {
        let base = accuracy(&predicted, &y);
        let repeats = spec.permutations.div_ceil(test_sets);
        permutation_drops(model, &x, &y, base, repeats, seed)
    };
    TestResult {
        rows: rows.to_vec(),
        predicted,
        drops,
    }
}

fn summarise(dataset: &Dataset, method: String, results: Vec<TestResult>) -> Evaluation {
    let truth: Vec<usize> = results
        .iter()
        .flat_map(|r| r.rows.iter().map(|&row| dataset.y[row]))
        .collect();
    let predicted: Vec<usize> = results.iter().flat_map(|r| r.predicted.clone()).collect();
    let fold_accuracy = results
        .iter()
        .map(|r| {
            let truth: Vec<usize> = r.rows.iter().map(|&row| dataset.y[row]).collect();
            accuracy(&r.predicted, &truth)
        })
        .collect();
    let permuted = results.iter().all(|r| !r.drops.is_empty());
    let permutation_importance = if permuted {
        let features = dataset.feature_names.iter().enumerate();
        features
            .map(|(f, name)| {
                let drops: Vec<f64> = results.iter().flat_map(|r| r.drops[f].clone()).collect();
                let mean = drops.iter().sum::<f64>() / drops.len() as f64;
                let var =
                    drops.iter().map(|d| (d - mean).powi(2)).sum::<f64>() / drops.len() as f64;
                Importance {
                    feature: name.clone(),
                    mean,
                    std: var.sqrt(),
                }
            })
            .collect()
    } else {
        Vec::new()
    };
    Evaluation {
        method,
        metrics: Metrics::new(&truth, &predicted, &dataset.class_names),
        fold_accuracy,
        permutation_importance,
    }
}

/// The (training rows, test rows) of each fold of stratified k-fold cross-validation over
/// `rows` (indices into `y`).
pub fn cv_splits(
    y: &[usize],
    rows: &[usize],
    k: usize,
    seed: u64,
) -> Vec<(Vec<usize>, Vec<usize>)> {
    let classes: Vec<usize> = rows.iter().map(|&r| y[r]).collect();
    let fold = stratified_folds(&classes, k, seed);
    (0..k)
        .map(|f| {
            let (mut train, mut test) = (Vec::new(), Vec::new());
            for (i, &row) in rows.iter().enumerate() {
                if fold[i] == f { &mut test } else { &mut train }.push(row);
            }
            (train, test)
        })
        .collect()
}

/// Stratified k-fold cross-validation on `rows` of the dataset; folds run in parallel.
/// `step` is called after each fold.
pub fn cross_validate(
    dataset: &Dataset,
    rows: &[usize],
    params: &ModelParams,
    spec: &EvalSpec,
    step: &(dyn Fn(&str) + Sync),
) -> Result<Evaluation> {
    let k = spec.folds;
    let splits = cv_splits(&dataset.y, rows, k, derive_seed(spec.seed, tag::FOLDS, 0));
    let results = splits
        .par_iter()
        .enumerate()
        .map(|(f, (train, test))| {
            let model = fit_rows(dataset, train, params, spec, f as u64)?;
            let result = test_rows(dataset, &model, test, spec, (f as u64, k));
            tracing::debug!(
                fold = f + 1,
                train_rows = train.len(),
                test_rows = test.len(),
                "fold tested"
            );
            step(&format!("fold {} of {k}", f + 1));
            Ok(result)
        })
        .collect::<Result<Vec<TestResult>>>()?;
    Ok(summarise(
        dataset,
        format!("{k}-fold stratified cross-validation"),
        results,
    ))
}

/// Tests a model trained on other rows on the held-out `rows`.
pub fn holdout_test(
    dataset: &Dataset,
    model: &Fitted,
    rows: &[usize],
    spec: &EvalSpec,
    fraction: f64,
) -> Evaluation {
    let result = test_rows(dataset, model, rows, spec, (u64::MAX, 1));
    summarise(
        dataset,
        format!("held-out {:.0}%", fraction * 100.0),
        vec![result],
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stratified_folds_keep_class_ratios() {
        // 600 rows: 60% class 0, 30% class 1, 10% class 2, in a sorted (worst-case) order.
        let y: Vec<usize> = (0..600)
            .map(|i| match i {
                0..360 => 0,
                360..540 => 1,
                _ => 2,
            })
            .collect();
        let fold = stratified_folds(&y, 10, 7);
        for f in 0..10 {
            let rows: Vec<usize> = (0..600).filter(|&r| fold[r] == f).collect();
            assert_eq!(rows.len(), 60);
            let count = |c| rows.iter().filter(|&&r| y[r] == c).count();
            assert_eq!((count(0), count(1), count(2)), (36, 18, 6), "fold {f}");
        }
        assert_eq!(fold, stratified_folds(&y, 10, 7));
        assert_ne!(fold, stratified_folds(&y, 10, 8));
    }

    #[test]
    fn uneven_classes_give_fold_sizes_within_one() {
        let y: Vec<usize> = (0..103).map(|i| usize::from(i % 7 == 0)).collect();
        let fold = stratified_folds(&y, 10, 1);
        let sizes: Vec<usize> = (0..10)
            .map(|f| fold.iter().filter(|&&x| x == f).count())
            .collect();
        assert!(
            sizes.iter().max().unwrap() - sizes.iter().min().unwrap() <= 1,
            "{sizes:?}"
        );
    }

    #[test]
    fn holdout_is_stratified_and_disjoint() {
        let y: Vec<usize> = (0..500).map(|i| usize::from(i % 5 == 0)).collect();
        let (train, test) = stratified_holdout(&y, 0.2, 3);
        assert_eq!((train.len(), test.len()), (400, 100));
        assert_eq!(test.iter().filter(|&&r| y[r] == 1).count(), 20);
        assert!(train.iter().all(|r| test.binary_search(r).is_err()));
    }

    #[test]
    fn undersampling_and_weights_balance_only_the_given_rows() {
        let y: Vec<usize> = (0..100).map(|i| usize::from(i >= 80)).collect();
        let rows: Vec<usize> = (0..90).collect(); // 80 of class 0, 10 of class 1
        let (kept, _) = balance_rows(&y, &rows, 2, Balance::Undersample, 1);
        assert_eq!(kept.len(), 20);
        assert!(kept.iter().all(|r| rows.contains(r)));
        assert_eq!(kept.iter().filter(|&&r| y[r] == 1).count(), 10);
        let (_, weights) = balance_rows(&y, &rows, 2, Balance::Weights, 1);
        let weights = weights.unwrap();
        let class_weight = |c| -> f64 {
            rows.iter()
                .zip(&weights)
                .filter(|(r, _)| y[**r] == c)
                .map(|(_, w)| w)
                .sum()
        };
        assert!((class_weight(0) - class_weight(1)).abs() < 1e-9);
    }

    #[test]
    fn derived_seeds_differ_by_tag_and_index() {
        let a = derive_seed(1, tag::FOLDS, 0);
        assert_ne!(a, derive_seed(1, tag::MODEL, 0));
        assert_ne!(a, derive_seed(1, tag::FOLDS, 1));
        assert_ne!(a, derive_seed(2, tag::FOLDS, 0));
        assert_eq!(a, derive_seed(1, tag::FOLDS, 0));
    }
}
