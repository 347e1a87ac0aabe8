//! Training and evaluation end to end on generated data with known structure.

use ndarray::Array2;
use qoelab_classifier::eval::{Balance, cv_splits};
use qoelab_classifier::{
    Dataset, DatasetSpec, EvalSpec, FeatureSpec, Frame, LabelSpec, Metrics, MissingPolicy,
    ModelKind, ModelParams, SavedModel, TrainSpec, synthetic, train,
};

const KINDS: [ModelKind; 4] = [
    ModelKind::RandomForest,
    ModelKind::DecisionTree,
    ModelKind::LogisticRegression,
    ModelKind::NaiveBayes,
];

fn spec(label: &str) -> DatasetSpec {
    DatasetSpec {
        label: LabelSpec::parse(label, None, None).unwrap(),
        features: FeatureSpec::default(),
        missing: MissingPolicy::Error,
        force: false,
    }
}

fn sessions(rows: usize, seed: u64) -> (Dataset, LabelSpec) {
    let csv = synthetic::sessions_csv(rows, seed);
    let frame = Frame::read_csv(csv.as_bytes(), "sessions.csv", None).unwrap();
    let spec = spec("stall:label_stall_count>0");
    (Dataset::from_frame(&frame, &spec).unwrap(), spec.label)
}

/// A dataset from a matrix: columns f0, f1, … and class column `y`.
fn matrix_dataset(x: &Array2<f64>, y: &[usize]) -> (Dataset, LabelSpec) {
    let mut names: Vec<String> = (0..x.ncols()).map(|f| format!("f{f}")).collect();
    names.push("y".to_string());
    let rows = x.rows().into_iter().zip(y).map(|(row, &c)| {
        let mut cells: Vec<Option<f64>> = row.iter().map(|&v| Some(v)).collect();
        cells.push(Some(c as f64));
        cells
    });
    let frame = Frame::from_numeric_rows("generated", names, rows).unwrap();
    let spec = spec("y");
    (Dataset::from_frame(&frame, &spec).unwrap(), spec.label)
}

fn train_spec(kind: ModelKind, folds: usize, seed: u64) -> TrainSpec {
    let mut params = ModelParams::new(kind);
    params.trees = 30;
    TrainSpec {
        params,
        eval: EvalSpec {
            folds,
            seed,
            ..EvalSpec::default()
        },
    }
}

fn cv_accuracy(model: &SavedModel) -> f64 {
    model.cross_validation.as_ref().unwrap().metrics.accuracy
}

/// Cross-validates every model kind; each must beat the majority baseline by `margin` and test
/// every row exactly once. Returns the metrics by kind.
fn assert_all_beat_baseline(data: &Dataset, label: &LabelSpec, margin: f64) -> Vec<Metrics> {
    KINDS
        .iter()
        .map(|&kind| {
            let model = train(data, label, &train_spec(kind, 5, 1), &|_| {}).unwrap();
            let m = model.cross_validation.unwrap().metrics;
            assert!(
                m.accuracy > m.majority_baseline + margin,
                "{kind}: accuracy {:.3}, baseline {:.3}",
                m.accuracy,
                m.majority_baseline
            );
            assert_eq!(m.rows(), data.nrows(), "every row is tested exactly once");
            m
        })
        .collect()
}

#[test]
fn every_model_beats_the_majority_baseline_on_stalls() {
    let (data, label) = sessions(800, 1);
    for m in assert_all_beat_baseline(&data, &label, 0.15) {
        assert!(m.macro_f1 > 0.7, "macro-F1 {:.3}", m.macro_f1);
    }
}

#[test]
fn every_model_beats_the_majority_baseline_with_three_classes() {
    let blobs = synthetic::blobs(600, 6, 3, 3.0, 3);
    let (data, label) = matrix_dataset(&blobs.x, &blobs.y);
    assert_all_beat_baseline(&data, &label, 0.3);
}

#[test]
fn cross_validation_on_noise_stays_at_chance() {
    // Labels independent of the features: a fully grown forest memorises its training rows, so
    // any test row that leaked into training would lift the accuracy far above one half.
    let noise = synthetic::blobs(400, 5, 1, 0.0, 8);
    let y: Vec<usize> = (0..400).map(|i| usize::from((i * 7919) % 13 < 6)).collect();
    let (data, label) = matrix_dataset(&noise.x, &y);
    for balance in [Balance::None, Balance::Undersample, Balance::Weights] {
        let mut spec = train_spec(ModelKind::RandomForest, 10, 3);
        spec.eval.balance = balance;
        let model = train(&data, &label, &spec, &|_| {}).unwrap();
        let accuracy = cv_accuracy(&model);
        assert!(accuracy < 0.6, "{balance}: accuracy {accuracy:.3} on noise");
    }
}

#[test]
fn folds_never_share_rows_and_test_each_row_once() {
    let y: Vec<usize> = (0..250).map(|i| [0, 0, 0, 1, 2][i % 5]).collect();
    let rows: Vec<usize> = (0..250).filter(|r| r % 9 != 0).collect(); // a subset, as with --holdout
    let splits = cv_splits(&y, &rows, 10, 5);
    let mut tested = vec![0; 250];
    for (train, test) in &splits {
        assert!(
            train.iter().all(|r| !test.contains(r)),
            "a row in train and test"
        );
        assert_eq!(train.len() + test.len(), rows.len());
        for &r in test {
            tested[r] += 1;
        }
        let share = |rows: &[usize], c| rows.iter().filter(|&&r| y[r] == c).count() as f64;
        let ratio = share(test, 0) / test.len() as f64;
        assert!(
            (ratio - 0.6).abs() < 0.07,
            "class 0 share {ratio:.2} in a test fold"
        );
    }
    for (r, &times) in tested.iter().enumerate() {
        assert_eq!(times, usize::from(rows.contains(&r)), "row {r}");
    }
}

#[test]
fn the_held_out_rows_are_not_trained_on() {
    let (data, label) = sessions(500, 2);
    let mut spec = train_spec(ModelKind::DecisionTree, 5, 4);
    spec.eval.holdout = Some(0.2);
    let model = train(&data, &label, &spec, &|_| {}).unwrap();
    let holdout = model.holdout.as_ref().unwrap();
    let cv = model.cross_validation.as_ref().unwrap();
    assert_eq!(holdout.metrics.rows(), 100);
    assert_eq!(cv.metrics.rows(), 400);
    // A single fully grown tree is perfect on its training rows; on held-out rows it is not.
    assert!(
        holdout.metrics.accuracy < 0.99,
        "{}",
        holdout.metrics.accuracy
    );
    assert!(
        holdout.metrics.accuracy > 0.8,
        "{}",
        holdout.metrics.accuracy
    );
}

#[test]
fn training_is_reproducible_from_the_seed() {
    let (data, label) = sessions(300, 3);
    let run = |seed| {
        let mut model = train(
            &data,
            &label,
            &train_spec(ModelKind::RandomForest, 5, seed),
            &|_| {},
        )
        .unwrap();
        model.created_unix_s = 0;
        model
    };
    let a = run(7);
    assert_eq!(a, run(7));
    let b = run(8);
    assert_ne!(a.fitted, b.fitted);
}

#[test]
fn permutation_importance_ranks_the_causes_of_stalls_first() {
    let (data, label) = sessions(600, 5);
    let model = train(
        &data,
        &label,
        &train_spec(ModelKind::RandomForest, 5, 1),
        &|_| {},
    )
    .unwrap();
    let importance = &model
        .cross_validation
        .as_ref()
        .unwrap()
        .permutation_importance;
    let drop = |name: &str| importance.iter().find(|i| i.feature == name).unwrap().mean;
    for cause in ["rtt_ms", "throughput_bps"] {
        for noise in ["noise", "retrans_ratio"] {
            assert!(
                drop(cause) > drop(noise) + 0.05,
                "{cause} vs {noise}: {importance:?}"
            );
        }
    }
    let impurity = model.impurity_importance.as_ref().unwrap();
    let rtt = data
        .feature_names
        .iter()
        .position(|f| f == "rtt_ms")
        .unwrap();
    let noise = data
        .feature_names
        .iter()
        .position(|f| f == "noise")
        .unwrap();
    assert!(impurity[rtt] > impurity[noise]);
}

#[test]
fn progress_is_reported_once_per_fold_and_for_the_final_fit() {
    let (data, label) = sessions(200, 6);
    let spec = train_spec(ModelKind::NaiveBayes, 4, 1);
    let steps = std::sync::Mutex::new(Vec::new());
    train(&data, &label, &spec, &|s| {
        steps.lock().unwrap().push(s.to_string())
    })
    .unwrap();
    let steps = steps.into_inner().unwrap();
    assert_eq!(steps.len() as u64, spec.steps());
    assert_eq!(steps.last().unwrap(), "final model");
}

#[test]
fn invalid_settings_are_refused_before_training() {
    let (data, label) = sessions(100, 1);
    let mut spec = train_spec(ModelKind::LogisticRegression, 5, 1);
    spec.eval.balance = Balance::Weights;
    let err = train(&data, &label, &spec, &|_| {})
        .unwrap_err()
        .to_string();
    assert!(err.contains("--balance undersample"), "{err}");
    let mut spec = train_spec(ModelKind::RandomForest, 1, 1);
    let err = train(&data, &label, &spec, &|_| {})
        .unwrap_err()
        .to_string();
    assert!(err.contains("invalid --folds '1'"), "{err}");
    spec.eval.folds = 60;
    let err = train(&data, &label, &spec, &|_| {})
        .unwrap_err()
        .to_string();
    assert!(err.contains("use fewer folds"), "{err}");
}
