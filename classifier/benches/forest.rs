//! Fit time and held-out accuracy of our models on a CSV, for `bench/classifier.sh`.
//!
//! `cargo bench -p qoelab-classifier --bench forest -- CSV LABEL TRAIN_ROWS MODEL TREES SEED`
//! trains on the first TRAIN_ROWS rows, tests on the rest and prints one JSON object:
//! `{"model", "seed", "threads", "fit_s", "accuracy"}`. Only the fit is timed (not reading the
//! CSV or predicting). `RAYON_NUM_THREADS` sets the threads.
//!
//! MODEL `linfa-rf` fits linfa-ensemble's stock `RandomForest` instead (bootstrap, a quarter
//! of the features drawn per tree, trees one after another), so that the forest we built on
//! our own CART is measured against the one linfa ships, in the same run.

use std::path::Path;
use std::time::Instant;

use linfa::prelude::Predict;
use ndarray::Axis;
use qoelab_classifier::model::Fitted;
use qoelab_classifier::{
    Dataset, DatasetSpec, FeatureSpec, Frame, LabelSpec, MissingPolicy, ModelKind, ModelParams,
};

fn main() {
    let args: Vec<String> = std::env::args()
        .skip(1)
        .filter(|a| a != "--bench")
        .collect();
    let [csv, label, train_rows, model, trees, seed] = &args[..] else {
        eprintln!("usage: forest CSV LABEL TRAIN_ROWS rf|tree|logreg|nb|linfa-rf TREES SEED");
        std::process::exit(2);
    };
    let frame = Frame::read_csv_path(Path::new(csv), None).expect("readable CSV");
    let spec = DatasetSpec {
        label: LabelSpec::parse(label, None, None).expect("label"),
        features: FeatureSpec::default(),
        missing: MissingPolicy::Error,
        force: false,
    };
    let data = Dataset::from_frame(&frame, &spec).expect("dataset");
    let n: usize = train_rows.parse().expect("TRAIN_ROWS");
    let (x_train, x_test) = data.x.view().split_at(Axis(0), n);
    let (y_train, y_test) = data.y.split_at(n);
    let trees: usize = trees.parse().expect("TREES");
    let seed: u64 = seed.parse().expect("SEED");
    let start = Instant::now();
    let (fit_s, predicted) = if model == "linfa-rf" {
        let forest = linfa_forest(x_train, y_train, trees, seed);
        let fit_s = start.elapsed().as_secs_f64();
        (fit_s, forest.predict(&x_test.to_owned()).to_vec())
    } else {
        let mut params = ModelParams::new(model.parse::<ModelKind>().expect("model"));
        params.trees = trees;
        let classes = data.class_names.len();
        let fitted =
            Fitted::fit(&params, x_train, y_train, classes, None, false, seed).expect("fit");
        (start.elapsed().as_secs_f64(), fitted.predict(x_test))
    };
    let right = predicted.iter().zip(y_test).filter(|(p, t)| p == t).count();
    println!(
        "{{\"model\": \"{model}\", \"seed\": {seed}, \"threads\": {}, \"fit_s\": {fit_s:.4}, \
         \"accuracy\": {:.5}}}",
        rayon::current_num_threads(),
        right as f64 / y_test.len() as f64
    );
}

/// linfa-ensemble's `RandomForest` as its documentation sets it up.
fn linfa_forest(
    x: ndarray::ArrayView2<f64>,
    y: &[usize],
    trees: usize,
    seed: u64,
) -> linfa_ensemble::RandomForest<f64, usize> {
    use linfa::prelude::Fit;
    use ndarray_rand::rand::SeedableRng;
    let data = linfa::Dataset::new(x.to_owned(), ndarray::Array1::from(y.to_vec()));
    linfa_ensemble::RandomForestParams::new_fixed_rng(
        linfa_trees::DecisionTree::params(),
        ndarray_rand::rand::rngs::StdRng::seed_from_u64(seed),
    )
    .ensemble_size(trees)
    .bootstrap_proportion(1.0)
    .feature_proportion(0.25)
    .fit(&data)
    .expect("linfa forest")
}
