//! QoE classifiers for qoelab: predict an application's quality of experience (stall / no stall,
//! low / medium / high) from traffic statistics alone.
//!
//! The path from data to prediction:
//! 1. [`Frame`]: named columns read from a CSV file (ours or a tstat/nfstream-style export) or
//!    handed over as rows (the collector's stored sessions).
//! 2. [`Dataset`]: a [`LabelSpec`] turns the label column into classes, features are selected
//!    (identifiers, addresses, timestamps, other labels and context excluded by default, with
//!    reasons), missing values are handled by an explicit [`MissingPolicy`], and label leakage is
//!    refused.
//! 3. [`train()`]: random forest, decision tree (this crate's CART with per-split feature sampling,
//!    grown in parallel), logistic regression and Gaussian naive Bayes (linfa), evaluated by
//!    stratified k-fold cross-validation and/or a stratified held-out split, with balancing only
//!    inside training folds; [`Metrics`] as scikit-learn defines them; impurity and permutation
//!    importances. Every random choice derives from one seed.
//! 4. [`SavedModel`]: the model with its features, classes, label rule, dataset fingerprint and
//!    evaluation, stored as JSON; prediction from named values ([`SavedModel::predict_map`]), a
//!    feature vector, or a frame.
//!
//! Not here: reading the database, the live capture or the web UI (the collector, agent and web
//! crates hand rows to this crate), and model selection or hyperparameter search.

mod choice;
pub mod dataset;
pub mod error;
pub mod eval;
pub mod forest;
pub mod frame;
pub mod label;
pub mod metrics;
pub mod model;
pub mod saved;
pub mod synthetic;
pub mod train;

pub use dataset::{Dataset, DatasetSpec, FeatureSpec, MissingPolicy};
pub use error::{Error, Result};
pub use eval::{Balance, EvalSpec, Evaluation, Importance};
pub use frame::{Cell, Frame};
pub use label::LabelSpec;
pub use metrics::Metrics;
pub use model::{ModelKind, ModelParams};
pub use saved::{Prediction, SavedModel};
pub use train::{TrainSpec, train};
