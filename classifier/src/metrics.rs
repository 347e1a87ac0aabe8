//! Classification metrics computed from a confusion matrix, with scikit-learn's definitions.
//!
//! macro-F1 is the mean of the per-class F1 scores (not linfa's harmonic mean of macro precision
//! and macro recall). Classes that neither occur nor are predicted are left out of the macro
//! averages; a class that is never predicted has precision 0.

use serde::{Deserialize, Serialize};

/// Precision, recall and F1 of one class.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ClassMetrics {
    /// The class.
    pub class: String,
    /// Of the rows predicted as this class, the share that is.
    pub precision: f64,
    /// Of the rows of this class, the share predicted as it.
    pub recall: f64,
    /// Harmonic mean of precision and recall.
    pub f1: f64,
    /// Rows of this class.
    pub support: usize,
}

/// The metrics of one evaluation.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Metrics {
    /// Class names, in class order.
    pub class_names: Vec<String>,
    /// `confusion[true][predicted]` row counts.
    pub confusion: Vec<Vec<usize>>,
    /// Share of rows predicted right.
    pub accuracy: f64,
    /// Mean recall over the classes that occur.
    pub balanced_accuracy: f64,
    /// Mean F1 over the classes that occur or are predicted.
    pub macro_f1: f64,
    /// Accuracy of always answering the most frequent class of these rows.
    pub majority_baseline: f64,
    /// Per class, in class order.
    pub per_class: Vec<ClassMetrics>,
}

impl Metrics {
    /// Metrics of `predicted` against `truth` (class indices into `class_names`).
    pub fn new(truth: &[usize], predicted: &[usize], class_names: &[String]) -> Metrics {
        assert_eq!(truth.len(), predicted.len(), "one prediction per row");
        let k = class_names.len();
        let mut confusion = vec![vec![0; k]; k];
        for (&t, &p) in truth.iter().zip(predicted) {
            confusion[t][p] += 1;
        }
        Metrics::from_confusion(confusion, class_names)
    }

    /// Metrics of a confusion matrix (`confusion[true][predicted]`).
    pub fn from_confusion(confusion: Vec<Vec<usize>>, class_names: &[String]) -> Metrics {
        let k = class_names.len();
        let total: usize = confusion.iter().flatten().sum();
        let ratio = |a: usize, b: usize| if b == 0 { 0.0 } else { a as f64 / b as f64 };
        let per_class: Vec<ClassMetrics> = (0..k)
            .map(|c| {
                let right = confusion[c][c];
                let support: usize = confusion[c].iter().sum();
                let predicted: usize = confusion.iter().map(|row| row[c]).sum();
                let (precision, recall) = (ratio(right, predicted), ratio(right, support));
                let f1 = if precision + recall > 0.0 {
                    2.0 * precision * recall / (precision + recall)
                } else {
                    0.0
                };
                ClassMetrics {
                    class: class_names[c].clone(),
                    precision,
                    recall,
                    f1,
                    support,
                }
            })
            .collect();
        let mean = |values: Vec<f64>| {
            if values.is_empty() {
                0.0
            } else {
                values.iter().sum::<f64>() / values.len() as f64
            }
        };
        let occurring = |c: &&ClassMetrics| c.support > 0;
        let seen = |c: usize| per_class[c].support > 0 || confusion.iter().any(|row| row[c] > 0);
        let right: usize = (0..k).map(|c| confusion[c][c]).sum();
        let largest = per_class.iter().map(|c| c.support).max().unwrap_or(0);
        Metrics {
            class_names: class_names.to_vec(),
            accuracy: ratio(right, total),
            balanced_accuracy: mean(
                per_class
                    .iter()
                    .filter(occurring)
                    .map(|c| c.recall)
                    .collect(),
            ),
            macro_f1: mean(
                (0..k)
                    .filter(|&c| seen(c))
                    .map(|c| per_class[c].f1)
                    .collect(),
            ),
            majority_baseline: ratio(largest, total),
            confusion,
            per_class,
        }
    }

    /// Rows evaluated.
    pub fn rows(&self) -> usize {
        self.confusion.iter().flatten().sum()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn names(n: usize) -> Vec<String> {
        (0..n).map(|i| format!("c{i}")).collect()
    }

    #[test]
    fn matches_scikit_learn_on_a_worked_example() {
        // sklearn.metrics on y_true=[0,0,0,0,1,1,2,2,2,2], y_pred=[0,0,1,2,1,1,2,2,0,2]:
        // accuracy 0.7, balanced_accuracy 0.75, f1_score(average="macro") 0.70714…
        let truth = [0, 0, 0, 0, 1, 1, 2, 2, 2, 2];
        let predicted = [0, 0, 1, 2, 1, 1, 2, 2, 0, 2];
        let m = Metrics::new(&truth, &predicted, &names(3));
        assert!((m.accuracy - 0.7).abs() < 1e-12);
        assert!((m.balanced_accuracy - 0.75).abs() < 1e-12);
        assert!(
            (m.macro_f1 - 0.707_142_857_142_857_2).abs() < 1e-12,
            "{}",
            m.macro_f1
        );
        assert_eq!(m.confusion[0], [2, 1, 1]);
        assert!((m.per_class[1].precision - 2.0 / 3.0).abs() < 1e-12);
        assert_eq!(m.per_class[2].support, 4);
        assert!((m.majority_baseline - 0.4).abs() < 1e-12);
        // linfa's "F1" would be the harmonic mean of macro precision and recall: not this.
        let macro_p = m.per_class.iter().map(|c| c.precision).sum::<f64>() / 3.0;
        let macro_r = m.per_class.iter().map(|c| c.recall).sum::<f64>() / 3.0;
        assert!((2.0 * macro_p * macro_r / (macro_p + macro_r) - m.macro_f1).abs() > 1e-3);
    }

    #[test]
    fn never_predicted_and_absent_classes() {
        // Class 2 never occurs and is never predicted: left out of the averages.
        let m = Metrics::new(&[0, 0, 1, 1], &[0, 0, 0, 1], &names(3));
        assert_eq!(m.per_class[2].f1, 0.0);
        assert!((m.balanced_accuracy - 0.75).abs() < 1e-12);
        let f1_0 = 2.0 * (2.0 / 3.0) / (2.0 / 3.0 + 1.0);
        let f1_1 = 2.0 * 0.5 / 1.5;
        assert!((m.macro_f1 - (f1_0 + f1_1) / 2.0).abs() < 1e-12);
        // Class 1 is never predicted: precision 0, F1 0.
        let m = Metrics::new(&[0, 1], &[0, 0], &names(2));
        assert_eq!(m.per_class[1].precision, 0.0);
        assert_eq!(m.per_class[1].f1, 0.0);
    }
}
