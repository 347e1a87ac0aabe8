//! Training end to end: held-out split, cross-validation, the final fit, a [`SavedModel`].

use crate::dataset::Dataset;
use crate::error::{Error, Result};
use crate::eval::{self, EvalSpec, derive_seed, tag};
use crate::label::LabelSpec;
use crate::model::ModelParams;
use crate::saved::{DatasetInfo, FORMAT_VERSION, SavedModel};

/// The model and how to evaluate it.
#[derive(Debug, Clone, PartialEq)]
pub struct TrainSpec {
    /// Model kind and hyperparameters.
    pub params: ModelParams,
    /// Folds, held-out share, balancing, seed.
    pub eval: EvalSpec,
}

/// Index of the final fit among the fits of a run (the folds use `0..k`).
const FINAL_FIT: u64 = u64::MAX;

impl TrainSpec {
    /// How many times [`train`] calls its `step` callback: once per fold and once for the final
    /// fit.
    pub fn steps(&self) -> u64 {
        self.eval.folds as u64 + 1
    }
}

/// Evaluates and trains a model on `dataset` (labeled by `label`).
///
/// With a held-out share, the held-out rows are set aside first; cross-validation runs on the
/// remaining rows, the final model is fitted on them and tested on the held-out rows. Without,
/// cross-validation runs on all rows and the final model is fitted on all rows. `step` is called
/// after each fold and after the final fit (from worker threads).
pub fn train(
    dataset: &Dataset,
    label: &LabelSpec,
    spec: &TrainSpec,
    step: &(dyn Fn(&str) + Sync),
) -> Result<SavedModel> {
    spec.params.validate()?;
    spec.eval.validate(&spec.params)?;
    let eval = &spec.eval;
    let all: Vec<usize> = (0..dataset.nrows()).collect();
    let (train_rows, test_rows) = match eval.holdout {
        Some(fraction) => eval::stratified_holdout(
            &dataset.y,
            fraction,
            derive_seed(eval.seed, tag::HOLDOUT, 0),
        ),
        None => (all, Vec::new()),
    };
    tracing::info!(
        model = spec.params.kind.name(),
        rows = dataset.nrows(),
        features = dataset.feature_names.len(),
        train_rows = train_rows.len(),
        held_out_rows = test_rows.len(),
        "training"
    );
    let mut report = dataset.report.clone();
    let cross_validation = if eval.folds >= 2 {
        check_folds(dataset, &train_rows, eval.folds, &mut report.warnings)?;
        Some(eval::cross_validate(
            dataset,
            &train_rows,
            &spec.params,
            eval,
            step,
        )?)
    } else {
        None
    };
    let fitted = eval::fit_rows(dataset, &train_rows, &spec.params, eval, FINAL_FIT)?;
    step("final model");
    let holdout = eval
        .holdout
        .map(|fraction| eval::holdout_test(dataset, &fitted, &test_rows, eval, fraction));
    Ok(SavedModel {
        format_version: FORMAT_VERSION,
        qoelab_version: env!("CARGO_PKG_VERSION").to_string(),
        created_unix_s: std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_secs()),
        params: spec.params.clone(),
        evaluation: eval.clone(),
        feature_names: dataset.feature_names.clone(),
        class_names: dataset.class_names.clone(),
        label: label.with_classes(&dataset.class_names),
        dataset: DatasetInfo {
            source: dataset.source.clone(),
            fingerprint: dataset.fingerprint(),
            rows: dataset.nrows(),
            class_counts: dataset.class_counts(),
            missing: dataset.missing,
            report,
        },
        cross_validation,
        holdout,
        impurity_importance: fitted.impurity_importance(),
        fitted,
    })
}

/// Cross-validation needs at least one training row per fold; a class smaller than the number
/// of folds is missing from some test folds, which the user should know.
fn check_folds(
    dataset: &Dataset,
    rows: &[usize],
    folds: usize,
    warnings: &mut Vec<String>,
) -> Result<()> {
    if rows.len() < 2 * folds {
        let expected = format!(
            "at most half the {} training rows; use fewer folds",
            rows.len()
        );
        return Err(Error::invalid("--folds", folds, expected));
    }
    let mut counts = vec![0usize; dataset.class_names.len()];
    for &r in rows {
        counts[dataset.y[r]] += 1;
    }
    for (class, &count) in dataset.class_names.iter().zip(&counts) {
        if count > 0 && count < folds {
            warnings.push(format!(
                "class '{class}' has {count} training rows, fewer than the {folds} folds: some \
                 test folds have none"
            ));
        }
    }
    Ok(())
}
