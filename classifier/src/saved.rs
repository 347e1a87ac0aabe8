//! [`SavedModel`]: a trained model with everything needed to trust and use it later — feature
//! list, class names and label rule, dataset fingerprint, evaluation — stored as JSON (a file,
//! or a text/JSON/BLOB column of any database), and the prediction API.
//!
//! Prediction aligns inputs by feature name: a map of named values (live flow statistics every
//! few seconds), a vector in the model's feature order, or a [`Frame`] (a CSV of new sessions).
//! A missing feature is an error naming it; extra inputs are ignored.

use std::collections::HashMap;
use std::path::Path;

use ndarray::Array2;
use serde::{Deserialize, Serialize};

use crate::dataset::{DatasetReport, MissingPolicy};
use crate::error::{Error, Result};
use crate::eval::{EvalSpec, Evaluation};
use crate::frame::Frame;
use crate::label::LabelSpec;
use crate::metrics::Metrics;
use crate::model::{Fitted, ModelParams, argmax};

/// The version of the stored format; readers refuse newer ones.
pub const FORMAT_VERSION: u32 = 1;

/// The data a model was trained on.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DatasetInfo {
    /// Where the rows came from (file name, campaign).
    pub source: String,
    /// SHA-256 of the training data ([`crate::Dataset::fingerprint`]).
    pub fingerprint: String,
    /// Rows used.
    pub rows: usize,
    /// Rows per class, in class order.
    pub class_counts: Vec<usize>,
    /// The missing-value policy.
    pub missing: MissingPolicy,
    /// Exclusions, drops and missing counts.
    pub report: DatasetReport,
}

/// A trained model and its provenance.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SavedModel {
    /// [`FORMAT_VERSION`] at the time of writing.
    pub format_version: u32,
    /// The qoelab version that trained it.
    pub qoelab_version: String,
    /// Training time, seconds since the Unix epoch.
    pub created_unix_s: u64,
    /// Hyperparameters.
    pub params: ModelParams,
    /// How it was evaluated (folds, held-out share, balancing, seed).
    pub evaluation: EvalSpec,
    /// Feature names in input order.
    pub feature_names: Vec<String>,
    /// Class names in class order.
    pub class_names: Vec<String>,
    /// The label rule with the class names fixed.
    pub label: LabelSpec,
    /// The training data.
    pub dataset: DatasetInfo,
    /// Cross-validation on the training rows.
    pub cross_validation: Option<Evaluation>,
    /// The held-out test of the final model.
    pub holdout: Option<Evaluation>,
    /// Mean decrease in impurity per feature (trees only).
    pub impurity_importance: Option<Vec<f64>>,
    /// The model itself.
    pub fitted: Fitted,
}

/// One row's prediction.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Prediction {
    /// The predicted class.
    pub class: String,
    /// Its index in the model's class names.
    pub class_index: usize,
    /// Probability per class, in class order.
    pub probabilities: Vec<f64>,
}

impl SavedModel {
    /// The model as pretty JSON.
    pub fn to_json(&self) -> Result<String> {
        serde_json::to_string_pretty(self).map_err(|e| Error::ModelFormat(e.to_string()))
    }

    /// Everything but the fitted model itself (trees, coefficients), as JSON: what a listing,
    /// an API or a web page shows.
    pub fn summary(&self) -> serde_json::Value {
        let mut value = serde_json::to_value(self).expect("a model serialises");
        if let Some(object) = value.as_object_mut() {
            object.remove("fitted");
        }
        value
    }

    /// The model as compact JSON bytes (for a database column).
    pub fn to_bytes(&self) -> Result<Vec<u8>> {
        serde_json::to_vec(self).map_err(|e| Error::ModelFormat(e.to_string()))
    }

    /// Reads a model written by [`SavedModel::to_json`] or [`SavedModel::to_bytes`].
    pub fn from_bytes(bytes: &[u8]) -> Result<SavedModel> {
        #[derive(Deserialize)]
        struct Version {
            format_version: u32,
        }
        let version: Version = serde_json::from_slice(bytes).map_err(|e| {
            Error::ModelFormat(format!(
                "not a qoelab model (JSON with format_version): {e}"
            ))
        })?;
        if version.format_version > FORMAT_VERSION {
            return Err(Error::ModelFormat(format!(
                "format version {} is newer than this qoelab reads ({FORMAT_VERSION}); update \
                 qoelab",
                version.format_version
            )));
        }
        serde_json::from_slice(bytes).map_err(|e| Error::ModelFormat(e.to_string()))
    }

    /// Writes the model as compact JSON to a file.
    pub fn save(&self, path: &Path) -> Result<()> {
        std::fs::write(path, self.to_bytes()?).map_err(|source| Error::Io {
            path: path.display().to_string(),
            source,
        })
    }

    /// Reads a model file.
    pub fn load(path: &Path) -> Result<SavedModel> {
        let bytes = std::fs::read(path).map_err(|source| Error::Io {
            path: path.display().to_string(),
            source,
        })?;
        SavedModel::from_bytes(&bytes).map_err(|e| match e {
            Error::ModelFormat(m) => Error::ModelFormat(format!("{}: {m}", path.display())),
            other => other,
        })
    }

    /// The headline evaluation: the held-out test if there is one, else cross-validation.
    pub fn headline(&self) -> Option<&Evaluation> {
        self.holdout.as_ref().or(self.cross_validation.as_ref())
    }

    /// Predicts one row whose values are looked up by feature name (`None` = absent).
    pub fn predict_with(&self, value: impl Fn(&str) -> Option<f64>) -> Result<Prediction> {
        let mut missing = Vec::new();
        let row: Vec<f64> = self
            .feature_names
            .iter()
            .map(|name| {
                value(name).unwrap_or_else(|| {
                    missing.push(name.clone());
                    f64::NAN
                })
            })
            .collect();
        if !missing.is_empty() {
            return Err(Error::MissingFeatures {
                missing,
                needed: self.feature_names.clone(),
            });
        }
        self.predict_vector(&row)
    }

    /// Predicts one row given as named values, e.g. a running flow's statistics.
    pub fn predict_map(&self, row: &HashMap<String, f64>) -> Result<Prediction> {
        self.predict_with(|name| row.get(name).copied())
    }

    /// Predicts one row given in the model's feature order.
    pub fn predict_vector(&self, row: &[f64]) -> Result<Prediction> {
        if row.len() != self.feature_names.len() {
            let expected = format!(
                "{} values in this order: {}",
                self.feature_names.len(),
                self.feature_names.join(", ")
            );
            let given = format!("{} values", row.len());
            return Err(Error::invalid("feature vector", given, expected));
        }
        self.check_finite(row, "")?;
        let x = Array2::from_shape_vec((1, row.len()), row.to_vec()).expect("one row");
        Ok(self.predictions(x).remove(0))
    }

    /// Predicts every row of a frame, matching columns to features by name.
    pub fn predict_frame(&self, frame: &Frame) -> Result<Vec<Prediction>> {
        let mut missing = Vec::new();
        let mut columns = Vec::new();
        for name in &self.feature_names {
            match frame.find(name) {
                Ok(i) => columns.push(i),
                Err(_) => missing.push(name.clone()),
            }
        }
        if !missing.is_empty() {
            return Err(Error::MissingFeatures {
                missing,
                needed: self.feature_names.clone(),
            });
        }
        for &i in &columns {
            frame.check_numeric(i, "")?;
        }
        let x = Array2::from_shape_fn((frame.nrows(), columns.len()), |(r, f)| {
            frame.columns()[columns[f]].values()[r]
        });
        for (r, row) in x.rows().into_iter().enumerate() {
            self.check_finite(row.as_slice().expect("standard layout"), &frame.place(r))?;
        }
        Ok(self.predictions(x))
    }

    /// Metrics of the predictions against a frame's label column, if the frame has it.
    pub fn score_frame(
        &self,
        frame: &Frame,
        predictions: &[Prediction],
    ) -> Result<Option<Metrics>> {
        if frame.find(self.label.column()).is_err() {
            return Ok(None);
        }
        let labels = self.label.assign(frame)?;
        let (truth, predicted): (Vec<usize>, Vec<usize>) = labels
            .classes
            .iter()
            .zip(predictions)
            .filter_map(|(t, p)| t.map(|t| (t, p.class_index)))
            .unzip();
        Ok(Some(Metrics::new(&truth, &predicted, &self.class_names)))
    }

    fn check_finite(&self, row: &[f64], place: &str) -> Result<()> {
        if self.fitted.imputes() {
            return Ok(());
        }
        match row.iter().position(|v| !v.is_finite()) {
            None => Ok(()),
            Some(f) => Err(Error::MissingFeatureValue {
                place: if place.is_empty() {
                    String::new()
                } else {
                    format!("{place}: ")
                },
                feature: self.feature_names[f].clone(),
                value: row[f].to_string(),
                policy: self.dataset.missing.to_string(),
            }),
        }
    }

    fn predictions(&self, x: Array2<f64>) -> Vec<Prediction> {
        // Infinities count as missing for the median fill-in.
        let x = x.mapv(|v| if v.is_finite() { v } else { f64::NAN });
        self.fitted
            .predict_proba(x.view())
            .rows()
            .into_iter()
            .map(|p| {
                let probabilities = p.to_vec();
                let class_index = argmax(&probabilities);
                Prediction {
                    class: self.class_names[class_index].clone(),
                    class_index,
                    probabilities,
                }
            })
            .collect()
    }
}
