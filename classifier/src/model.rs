//! The four model kinds behind one type: fit on rows, predict class probabilities.
//!
//! Random forest and decision tree are this crate's CART ([`crate::forest`]); logistic
//! regression (multinomial, L2, L-BFGS) and Gaussian naive Bayes are linfa's. Preprocessing that
//! learns from data (medians for missing values, standardisation for logistic regression) is
//! fitted on the training rows only and stored with the model.

use linfa::traits::Fit;
use linfa_bayes::{GaussianNb, NaiveBayes};
use linfa_logistic::{MultiFittedLogisticRegression, MultiLogisticRegression};
use ndarray::{Array1, Array2, ArrayView2, Axis};
use serde::{Deserialize, Serialize};

use crate::choice::named_choices;
use crate::error::{Error, Result};
use crate::forest::{Forest, MaxFeatures, TreeParams};

/// Which model.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ModelKind {
    /// Random forest (`rf`).
    RandomForest,
    /// One CART decision tree (`tree`).
    DecisionTree,
    /// Multinomial logistic regression (`logreg`).
    LogisticRegression,
    /// Gaussian naive Bayes (`nb`).
    NaiveBayes,
}

named_choices!(ModelKind, "--model", [
    RandomForest => "rf",
    DecisionTree => "tree",
    LogisticRegression => "logreg",
    NaiveBayes => "nb",
]);

impl ModelKind {
    /// What the model is, in words.
    pub fn description(self) -> &'static str {
        match self {
            ModelKind::RandomForest => "random forest",
            ModelKind::DecisionTree => "decision tree",
            ModelKind::LogisticRegression => "logistic regression",
            ModelKind::NaiveBayes => "Gaussian naive Bayes",
        }
    }

    /// Whether the model can weight rows (for `--balance weights`).
    pub fn takes_row_weights(self) -> bool {
        matches!(self, ModelKind::RandomForest | ModelKind::DecisionTree)
    }
}

/// Hyperparameters; each kind reads the ones that concern it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ModelParams {
    /// The model kind.
    pub kind: ModelKind,
    /// Trees in a forest.
    pub trees: usize,
    /// Features per split in a forest.
    pub max_features: MaxFeatures,
    /// Depth limit of trees.
    pub max_depth: Option<usize>,
    /// Fewest rows in a tree leaf.
    pub min_samples_leaf: usize,
    /// L2 penalty of logistic regression.
    pub alpha: f64,
    /// L-BFGS iterations of logistic regression.
    pub max_iterations: u64,
}

impl ModelParams {
    /// Defaults for a kind: 100 trees with √features per split (as scikit-learn), fully grown;
    /// logistic regression with α = 1 and 200 iterations on standardised features.
    pub fn new(kind: ModelKind) -> ModelParams {
        ModelParams {
            kind,
            trees: 100,
            max_features: MaxFeatures::Sqrt,
            max_depth: None,
            min_samples_leaf: 1,
            alpha: 1.0,
            max_iterations: 200,
        }
    }

    /// Checks ranges before any work starts.
    pub fn validate(&self) -> Result<()> {
        if self.trees == 0 {
            return Err(Error::invalid("--trees", 0, "at least 1 tree"));
        }
        if self.max_depth == Some(0) {
            return Err(Error::invalid("--max-depth", 0, "at least 1"));
        }
        if self.min_samples_leaf == 0 {
            return Err(Error::invalid("--min-samples-leaf", 0, "at least 1"));
        }
        if !(self.alpha.is_finite() && self.alpha > 0.0) {
            return Err(Error::invalid("--alpha", self.alpha, "a positive number"));
        }
        Ok(())
    }

    fn tree_params(&self) -> TreeParams {
        let base = match self.kind {
            ModelKind::DecisionTree => TreeParams::single_tree(),
            _ => TreeParams {
                max_features: self.max_features,
                ..TreeParams::forest()
            },
        };
        TreeParams {
            max_depth: self.max_depth,
            min_samples_leaf: self.min_samples_leaf,
            ..base
        }
    }
}

/// Per-feature values learnt from training rows.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
struct Prep {
    /// Fill-in for missing values (median policy), per feature.
    medians: Option<Vec<f64>>,
    /// Mean and standard deviation per feature (logistic regression).
    standardise: Option<(Vec<f64>, Vec<f64>)>,
}

impl Prep {
    fn fit(x: ArrayView2<f64>, impute: bool, standardise: bool) -> Prep {
        let medians = impute.then(|| {
            x.columns()
                .into_iter()
                .map(|c| median(c.iter().copied().filter(|v| !v.is_nan()).collect()))
                .collect::<Vec<f64>>()
        });
        let mut prep = Prep {
            medians,
            standardise: None,
        };
        if standardise {
            let filled = prep.apply(x);
            let mean = filled.mean_axis(Axis(0)).expect("rows").to_vec();
            let std = filled
                .std_axis(Axis(0), 0.0)
                .iter()
                .map(|&s| if s > 0.0 { s } else { 1.0 })
                .collect();
            prep.standardise = Some((mean, std));
        }
        prep
    }

    fn apply(&self, x: ArrayView2<f64>) -> Array2<f64> {
        let mut out = x.to_owned();
        if let Some(medians) = &self.medians {
            for (mut column, &m) in out.columns_mut().into_iter().zip(medians) {
                column.mapv_inplace(|v| if v.is_nan() { m } else { v });
            }
        }
        if let Some((mean, std)) = &self.standardise {
            for ((mut column, &m), &s) in out.columns_mut().into_iter().zip(mean).zip(std) {
                column.mapv_inplace(|v| (v - m) / s);
            }
        }
        out
    }
}

/// The median of finite values; 0 when there are none (a column missing in every training row).
fn median(mut values: Vec<f64>) -> f64 {
    if values.is_empty() {
        return 0.0;
    }
    values.sort_by(f64::total_cmp);
    let mid = values.len() / 2;
    if values.len() % 2 == 1 {
        values[mid]
    } else {
        values[mid - 1] / 2.0 + values[mid] / 2.0
    }
}

/// The fitted estimator of each kind.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
enum Estimator {
    Trees(Forest),
    Logistic(MultiFittedLogisticRegression<f64, usize>),
    NaiveBayes(GaussianNb<f64, usize>),
}

/// A fitted model with its preprocessing.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Fitted {
    kind: ModelKind,
    classes: usize,
    prep: Prep,
    estimator: Estimator,
}

impl Fitted {
    /// Fits on `x` (NaN allowed only with `impute`) and classes `y` in `0..classes`.
    /// `weights` scale rows (trees only). `seed` makes trees reproducible.
    pub fn fit(
        params: &ModelParams,
        x: ArrayView2<f64>,
        y: &[usize],
        classes: usize,
        weights: Option<&[f64]>,
        impute: bool,
        seed: u64,
    ) -> Result<Fitted> {
        let kind = params.kind;
        let prep = Prep::fit(x, impute, kind == ModelKind::LogisticRegression);
        let x = prep.apply(x);
        let fit_error = |message: String| Error::Fit {
            model: kind.description().to_string(),
            message,
        };
        let estimator = match kind {
            ModelKind::RandomForest | ModelKind::DecisionTree => {
                let trees = if kind == ModelKind::DecisionTree {
                    1
                } else {
                    params.trees
                };
                let tree_params = params.tree_params();
                Estimator::Trees(Forest::fit(
                    x.view(),
                    y,
                    classes,
                    weights,
                    trees,
                    &tree_params,
                    seed,
                ))
            }
            ModelKind::LogisticRegression => {
                let data = linfa::Dataset::new(x, Array1::from(y.to_vec()));
                let model = MultiLogisticRegression::default()
                    .alpha(params.alpha)
                    .max_iterations(params.max_iterations)
                    .fit(&data)
                    .map_err(|e| fit_error(e.to_string()))?;
                Estimator::Logistic(model)
            }
            ModelKind::NaiveBayes => {
                let data = linfa::Dataset::new(x, Array1::from(y.to_vec()));
                let model = GaussianNb::params()
                    .fit(&data)
                    .map_err(|e| fit_error(e.to_string()))?;
                Estimator::NaiveBayes(model)
            }
        };
        Ok(Fitted {
            kind,
            classes,
            prep,
            estimator,
        })
    }

    /// Class probabilities (rows × classes). A decision tree gives its leaf's class shares.
    pub fn predict_proba(&self, x: ArrayView2<f64>) -> Array2<f64> {
        let x = self.prep.apply(x);
        let mut out = Array2::zeros((x.nrows(), self.classes));
        match &self.estimator {
            Estimator::Trees(forest) => return forest.predict_proba(x.view()),
            Estimator::Logistic(model) => {
                let probs = model.predict_probabilities(&x);
                for (j, &class) in model.classes().iter().enumerate() {
                    out.column_mut(class).assign(&probs.column(j));
                }
            }
            Estimator::NaiveBayes(model) => {
                // Softmax of the joint log-likelihoods, stable for very unlikely rows.
                let jll = model.joint_log_likelihood(x.view());
                let mut log = Array2::from_elem((x.nrows(), self.classes), f64::NEG_INFINITY);
                for (&class, values) in &jll {
                    log.column_mut(*class).assign(values);
                }
                for (mut probs, log) in out.rows_mut().into_iter().zip(log.rows()) {
                    let max = log.fold(f64::NEG_INFINITY, |a, &b| a.max(b));
                    probs.assign(&log.mapv(|l| (l - max).exp()));
                    let sum = probs.sum();
                    probs.mapv_inplace(|p| p / sum);
                }
            }
        }
        out
    }

    /// The most probable class of each row (the lowest class index on a tie).
    pub fn predict(&self, x: ArrayView2<f64>) -> Vec<usize> {
        self.predict_proba(x)
            .rows()
            .into_iter()
            .map(|p| argmax(p.as_slice().expect("standard layout")))
            .collect()
    }

    /// Mean decrease in impurity per feature (trees only).
    pub fn impurity_importance(&self) -> Option<Vec<f64>> {
        match &self.estimator {
            Estimator::Trees(forest) => Some(forest.impurity_importance().to_vec()),
            _ => None,
        }
    }

    /// The model kind.
    pub fn kind(&self) -> ModelKind {
        self.kind
    }

    /// Whether missing values are filled in (median policy).
    pub fn imputes(&self) -> bool {
        self.prep.medians.is_some()
    }
}

/// Index of the largest value; the first on a tie.
pub fn argmax(values: &[f64]) -> usize {
    (0..values.len()).fold(0, |best, i| if values[i] > values[best] { i } else { best })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn medians_and_standardisation_come_from_training_rows() {
        let x = ndarray::array![[1.0, 10.0], [f64::NAN, 20.0], [3.0, 30.0], [5.0, f64::NAN]];
        let prep = Prep::fit(x.view(), true, true);
        assert_eq!(prep.medians, Some(vec![3.0, 20.0]));
        let out = prep.apply(ndarray::array![[f64::NAN, 20.0]].view());
        assert!(out.iter().all(|v| v.abs() < 1e-12), "{out}");
        assert_eq!(median(vec![4.0, 1.0, 3.0, 2.0]), 2.5);
    }

    #[test]
    fn kinds_parse_from_short_names() {
        assert_eq!("rf".parse::<ModelKind>().unwrap(), ModelKind::RandomForest);
        let err = "svm".parse::<ModelKind>().unwrap_err().to_string();
        assert!(err.contains("one of rf, tree, logreg, nb"), "{err}");
    }

    #[test]
    fn naive_bayes_probabilities_survive_far_outliers() {
        let data = crate::synthetic::blobs(120, 2, 2, 3.0, 1);
        let params = ModelParams::new(ModelKind::NaiveBayes);
        let model = Fitted::fit(&params, data.x.view(), &data.y, 2, None, false, 1).unwrap();
        let probs = model.predict_proba(ndarray::array![[1e6, -1e6]].view());
        assert!(probs.iter().all(|p| p.is_finite()), "{probs}");
        assert!((probs.sum() - 1.0).abs() < 1e-9);
    }
}
