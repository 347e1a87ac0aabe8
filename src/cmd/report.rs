//! Plain-text reports of datasets, evaluations and models, shared by `train`, `predict` and
//! `models`.

use qoelab_classifier::SavedModel;
use qoelab_classifier::dataset::DatasetReport;
use qoelab_classifier::eval::Evaluation;
use qoelab_classifier::metrics::Metrics;
use qoelab_classifier::model::ModelKind;

use crate::table::Table;

/// Most features listed in an importance table.
const TOP_FEATURES: usize = 15;

fn f3(v: f64) -> String {
    format!("{v:.3}")
}

/// Rows, classes, features, exclusions, missing values and warnings of a dataset.
pub fn dataset(
    source: &str,
    report: &DatasetReport,
    rows: usize,
    class_names: &[String],
    class_counts: &[usize],
    features: &[String],
) -> String {
    let mut out = format!(
        "dataset   {source}: {} rows read, {rows} used",
        report.rows_read
    );
    if report.dropped_missing_label > 0 {
        out += &format!(", {} without a label dropped", report.dropped_missing_label);
    }
    if report.dropped_missing_features > 0 {
        out += &format!(
            ", {} with missing features dropped",
            report.dropped_missing_features
        );
    }
    if report.imputed_cells > 0 {
        out += &format!(
            ", {} missing feature cells filled with training medians",
            report.imputed_cells
        );
    }
    let classes: Vec<String> = class_names
        .iter()
        .zip(class_counts)
        .map(|(c, n)| format!("{c} {n} ({:.1}%)", 100.0 * *n as f64 / rows.max(1) as f64))
        .collect();
    out += &format!("\nclasses   {}", classes.join(", "));
    out += &format!("\nfeatures  {}: {}", features.len(), features.join(", "));
    if !report.excluded.is_empty() {
        let excluded: Vec<String> = report
            .excluded
            .iter()
            .map(|e| format!("{} ({})", e.column, e.reason))
            .collect();
        out += &format!("\nexcluded  {}", excluded.join(", "));
    }
    if !report.missing.is_empty() {
        let missing: Vec<String> = report
            .missing
            .iter()
            .map(|m| format!("{} {}", m.column, m.count))
            .collect();
        out += &format!("\nmissing   {}", missing.join(", "));
    }
    for warning in &report.warnings {
        out += &format!("\nwarning   {warning}");
    }
    out + "\n"
}

/// Headline metrics, per-class metrics and the confusion matrix.
pub fn metrics(m: &Metrics, fold_accuracy: &[f64]) -> String {
    let mut summary = Table::new(&["metric", "value"]);
    summary.row(vec!["accuracy".into(), f3(m.accuracy)]);
    summary.row(vec!["balanced accuracy".into(), f3(m.balanced_accuracy)]);
    summary.row(vec!["macro-F1".into(), f3(m.macro_f1)]);
    summary.row(vec![
        "majority baseline".into(),
        format!("{} (share of the largest class)", f3(m.majority_baseline)),
    ]);
    if fold_accuracy.len() > 1 {
        let n = fold_accuracy.len() as f64;
        let mean = fold_accuracy.iter().sum::<f64>() / n;
        let std = (fold_accuracy
            .iter()
            .map(|a| (a - mean).powi(2))
            .sum::<f64>()
            / n)
            .sqrt();
        let (lo, hi) = fold_accuracy
            .iter()
            .fold((f64::MAX, f64::MIN), |(lo, hi), &a| (lo.min(a), hi.max(a)));
        summary.row(vec![
            "fold accuracy".into(),
            format!(
                "{} ± {} (min {}, max {})",
                f3(mean),
                f3(std),
                f3(lo),
                f3(hi)
            ),
        ]);
    }
    let mut per_class = Table::new(&["class", "precision", "recall", "F1", "support"]);
    for c in &m.per_class {
        per_class.row(vec![
            c.class.clone(),
            f3(c.precision),
            f3(c.recall),
            f3(c.f1),
            c.support.to_string(),
        ]);
    }
    let mut header = vec!["true \\ predicted"];
    header.extend(m.class_names.iter().map(String::as_str));
    let mut confusion = Table::new(&header);
    for (class, row) in m.class_names.iter().zip(&m.confusion) {
        let mut cells = vec![class.clone()];
        cells.extend(row.iter().map(usize::to_string));
        confusion.row(cells);
    }
    format!(
        "{}\n{}\nconfusion matrix (rows: true class, columns: predicted)\n{}",
        summary.render(),
        per_class.render(),
        confusion.render()
    )
}

/// An evaluation: method, metrics and permutation importance.
pub fn evaluation(e: &Evaluation, impurity: Option<&[f64]>, features: &[String]) -> String {
    format!(
        "{} on {} rows\n\n{}\n{}",
        e.method,
        e.metrics.rows(),
        metrics(&e.metrics, &e.fold_accuracy),
        importance(e, impurity, features)
    )
}

/// Features ranked by permutation importance (or impurity where there is none).
fn importance(e: &Evaluation, impurity: Option<&[f64]>, features: &[String]) -> String {
    let permutation = &e.permutation_importance;
    if permutation.is_empty() && impurity.is_none() {
        return String::new();
    }
    let mut order: Vec<usize> = (0..features.len()).collect();
    let key = |f: usize| match permutation.get(f) {
        Some(p) => p.mean,
        None => impurity.map_or(0.0, |i| i[f]),
    };
    order.sort_by(|&a, &b| key(b).total_cmp(&key(a)));
    let mut header = vec!["feature", "permutation (accuracy drop ± std)"];
    if impurity.is_some() {
        header.push("impurity (final model)");
    }
    let mut table = Table::new(&header);
    for &f in order.iter().take(TOP_FEATURES) {
        let mut cells = vec![
            features[f].clone(),
            permutation
                .get(f)
                .map_or("-".into(), |p| format!("{:.4} ± {:.4}", p.mean, p.std)),
        ];
        cells.extend(impurity.map(|i| f3(i[f])));
        table.row(cells);
    }
    let more = features.len().saturating_sub(TOP_FEATURES);
    let tail = if more > 0 {
        format!("… and {more} more\n")
    } else {
        String::new()
    };
    format!("feature importance\n{}{tail}", table.render())
}

/// Model kind and the hyperparameters that concern it.
pub fn model_line(model: &SavedModel) -> String {
    let p = &model.params;
    let e = &model.evaluation;
    let mut out = p.kind.description().to_string();
    match p.kind {
        ModelKind::RandomForest => out += &format!(", {} trees", p.trees),
        ModelKind::LogisticRegression => out += &format!(", alpha {}", p.alpha),
        _ => {}
    }
    if let Some(d) = p.max_depth.filter(|_| p.kind.takes_row_weights()) {
        out += &format!(", max depth {d}");
    }
    out + &format!(
        ", balance {}, missing {}, seed {}",
        e.balance, model.dataset.missing, e.seed
    )
}

/// The whole stored record of a model.
pub fn model(model: &SavedModel, name: &str) -> String {
    let d = &model.dataset;
    let mut out = format!(
        "model     {name}\nkind      {}\nlabel     {}\ntrained   {} by qoelab {}\ndata      sha256 {}\n",
        model_line(model),
        model.label.describe(),
        date(model.created_unix_s),
        model.qoelab_version,
        d.fingerprint,
    );
    out += &dataset(
        &d.source,
        &d.report,
        d.rows,
        &model.class_names,
        &d.class_counts,
        &model.feature_names,
    );
    let impurity = model.impurity_importance.as_deref();
    if model.headline().is_none() {
        out += "\nnot evaluated (--folds 0 and no --holdout): its accuracy is unknown\n";
    }
    for e in model.cross_validation.iter().chain(&model.holdout) {
        out += &format!("\n{}", evaluation(e, impurity, &model.feature_names));
    }
    out
}

/// `YYYY-MM-DD HH:MM UTC` from seconds since the Unix epoch.
pub fn date(unix_s: u64) -> String {
    qoelab_units::utc_minute(unix_s)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn confusion_matrix_rows_are_true_classes() {
        let names = vec!["no_stall".to_string(), "stall".to_string()];
        let m = Metrics::new(&[0, 0, 1], &[0, 1, 1], &names);
        let text = metrics(&m, &[]);
        assert!(
            text.contains("true \\ predicted  no_stall  stall"),
            "{text}"
        );
        assert!(text.contains("no_stall          1         1"), "{text}");
        assert!(text.contains("stall             0         1"), "{text}");
    }
}
