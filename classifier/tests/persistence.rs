//! Saved models: byte-exact round trips, provenance, prediction by feature name.

use std::collections::HashMap;

use qoelab_classifier::{
    Dataset, DatasetSpec, Error, EvalSpec, FeatureSpec, Frame, LabelSpec, MissingPolicy, ModelKind,
    ModelParams, SavedModel, TrainSpec, synthetic, train,
};

fn trained(kind: ModelKind, missing: MissingPolicy, csv: &str) -> (SavedModel, Frame) {
    let frame = Frame::read_csv(csv.as_bytes(), "sessions.csv", None).unwrap();
    let spec = DatasetSpec {
        label: LabelSpec::parse("label_qoe", Some("2,4"), Some("low,medium,high")).unwrap(),
        features: FeatureSpec::default(),
        missing,
        force: false,
    };
    let data = Dataset::from_frame(&frame, &spec).unwrap();
    let mut params = ModelParams::new(kind);
    params.trees = 20;
    let train_spec = TrainSpec {
        params,
        eval: EvalSpec {
            folds: 3,
            holdout: Some(0.25),
            seed: 11,
            ..EvalSpec::default()
        },
    };
    let model = train(&data, &spec.label, &train_spec, &|_| {}).unwrap();
    (model, frame)
}

#[test]
fn every_kind_round_trips_through_bytes_with_identical_predictions() {
    let csv = synthetic::sessions_csv(300, 1);
    for kind in [
        ModelKind::RandomForest,
        ModelKind::DecisionTree,
        ModelKind::LogisticRegression,
        ModelKind::NaiveBayes,
    ] {
        let (model, frame) = trained(kind, MissingPolicy::Error, &csv);
        let bytes = model.to_bytes().unwrap();
        let back = SavedModel::from_bytes(&bytes).unwrap();
        assert_eq!(back, model, "{kind}");
        let pretty = SavedModel::from_bytes(model.to_json().unwrap().as_bytes()).unwrap();
        assert_eq!(pretty, model, "{kind}");
        let before = model.predict_frame(&frame).unwrap();
        let after = back.predict_frame(&frame).unwrap();
        assert_eq!(
            before, after,
            "{kind}: predictions changed after a round trip"
        );
    }
}

#[test]
fn the_record_keeps_features_classes_fingerprint_and_metrics() {
    let csv = synthetic::sessions_csv(300, 2);
    let (model, _) = trained(ModelKind::RandomForest, MissingPolicy::Error, &csv);
    assert_eq!(
        model.feature_names,
        ["throughput_bps", "rtt_ms", "retrans_ratio", "pkts", "noise"]
    );
    assert_eq!(model.class_names, ["low", "medium", "high"]);
    assert_eq!(model.label.classes.as_deref(), Some(&model.class_names[..]));
    assert_eq!(model.dataset.fingerprint.len(), 64);
    assert_eq!(model.dataset.rows, 300);
    assert_eq!(model.dataset.class_counts.iter().sum::<usize>(), 300);
    // 25% of each class, rounded per class.
    let held_out = model.holdout.as_ref().unwrap().metrics.rows();
    assert!((74..=76).contains(&held_out), "{held_out}");
    let cv_rows = model.cross_validation.as_ref().unwrap().metrics.rows();
    assert_eq!(cv_rows + held_out, 300);
    let text = model.to_json().unwrap();
    for key in [
        "\"fingerprint\"",
        "\"feature_names\"",
        "\"macro_f1\"",
        "\"confusion\"",
    ] {
        assert!(text.contains(key), "{key} missing from the stored model");
    }
}

#[test]
fn live_rows_are_aligned_by_name_and_missing_features_are_named() {
    let csv = synthetic::sessions_csv(300, 3);
    let (model, frame) = trained(ModelKind::RandomForest, MissingPolicy::Error, &csv);
    let columns = frame.columns();
    let value =
        |name: &str, row: usize| columns.iter().find(|c| c.name() == name).unwrap().values()[row];
    // Named values in any order, with extras, give the same answer as the file row.
    let mut row: HashMap<String, f64> = model
        .feature_names
        .iter()
        .rev()
        .map(|f| (f.clone(), value(f, 7)))
        .collect();
    row.insert("s_port".to_string(), 443.0);
    let by_name = model.predict_map(&row).unwrap();
    assert_eq!(by_name, model.predict_frame(&frame).unwrap()[7]);
    let vector: Vec<f64> = model.feature_names.iter().map(|f| value(f, 7)).collect();
    assert_eq!(model.predict_vector(&vector).unwrap(), by_name);
    assert!((by_name.probabilities.iter().sum::<f64>() - 1.0).abs() < 1e-9);

    row.remove("rtt_ms");
    row.remove("pkts");
    match model.predict_map(&row).unwrap_err() {
        Error::MissingFeatures { missing, .. } => assert_eq!(missing, ["rtt_ms", "pkts"]),
        other => panic!("unexpected error {other}"),
    }
    let err = model.predict_vector(&vector[..3]).unwrap_err().to_string();
    assert!(
        err.contains("5 values in this order: throughput_bps, rtt_ms"),
        "{err}"
    );
    let mut gap = vector.clone();
    gap[1] = f64::NAN;
    let err = model.predict_vector(&gap).unwrap_err().to_string();
    assert!(
        err.contains("feature 'rtt_ms' has no finite value"),
        "{err}"
    );
    assert!(err.contains("--missing median"), "{err}");
}

#[test]
fn a_median_model_fills_gaps_with_training_medians() {
    // Blank the retrans_ratio cell of three rows.
    let csv: Vec<String> = synthetic::sessions_csv(300, 4)
        .lines()
        .enumerate()
        .map(|(i, line)| {
            let mut cells: Vec<&str> = line.split(',').collect();
            if (1..4).contains(&i) {
                cells[5] = "";
            }
            cells.join(",")
        })
        .collect();
    let csv = csv.join("\n");
    let (model, _) = trained(ModelKind::LogisticRegression, MissingPolicy::Median, &csv);
    let mut row: HashMap<String, f64> = model
        .feature_names
        .iter()
        .map(|f| (f.clone(), 1.0))
        .collect();
    row.insert("rtt_ms".to_string(), f64::NAN);
    let prediction = model.predict_map(&row).unwrap();
    assert!(prediction.probabilities.iter().all(|p| p.is_finite()));
}

#[test]
fn files_that_are_not_models_are_refused_with_a_reason() {
    let err = SavedModel::from_bytes(b"{\"hello\": 1}")
        .unwrap_err()
        .to_string();
    assert!(err.contains("not a qoelab model"), "{err}");
    let csv = synthetic::sessions_csv(120, 5);
    let (model, _) = trained(ModelKind::NaiveBayes, MissingPolicy::Error, &csv);
    let mut newer: serde_json::Value = serde_json::from_slice(&model.to_bytes().unwrap()).unwrap();
    newer["format_version"] = 99.into();
    let err = SavedModel::from_bytes(newer.to_string().as_bytes())
        .unwrap_err()
        .to_string();
    assert!(err.contains("format version 99 is newer"), "{err}");
    let dir = std::env::temp_dir().join(format!("qoelab-model-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("m.json");
    model.save(&path).unwrap();
    assert_eq!(SavedModel::load(&path).unwrap(), model);
    std::fs::remove_dir_all(&dir).unwrap();
}
