//! `qoelab train`: build a dataset from a CSV or a stored campaign, evaluate a model honestly,
//! save it to a file or the database.

use std::io::Write;
use std::path::PathBuf;

use anyhow::{Context, Result, bail};
use clap::Args;
use indicatif::{ProgressBar, ProgressStyle};
use qoelab_classifier::forest::MaxFeatures;
use qoelab_classifier::{
    Balance, Dataset, DatasetSpec, EvalSpec, FeatureSpec, Frame, LabelSpec, MissingPolicy,
    ModelKind, ModelParams, TrainSpec,
};

use qoelab_collector::db::redact;
use qoelab_collector::models;

use super::campaign::DatabaseArg;
use super::{report, with_db};

/// Arguments of `qoelab train`.
#[derive(Debug, Args)]
pub struct TrainArgs {
    /// CSV file with a header line (comma, tab, semicolon or space separated; detected).
    #[arg(
        long,
        value_name = "FILE",
        required_unless_present = "campaign",
        conflicts_with = "campaign"
    )]
    csv: Option<PathBuf>,
    /// Train on the stored sessions of one or more campaigns (their datasets, as `qoelab
    /// export` writes them), comma separated, instead of a CSV.
    #[arg(long, value_name = "ID,…", value_delimiter = ',')]
    campaign: Option<Vec<i64>>,
    #[command(flatten)]
    db: DatabaseArg,
    /// Store the trained model in the database under this name (for `qoelab predict --model
    /// ID` and the web's models page).
    #[arg(long, value_name = "NAME")]
    store: Option<String>,
    /// Label column, or a binary rule NAME:COLUMN>VALUE (also >=, <, <=, ==, !=),
    /// e.g. stall:label_stall_count>0.
    #[arg(long, value_name = "COLUMN|RULE")]
    label: String,
    /// Cut the label column into ordered classes at these ascending values, e.g. 0.5,1.5.
    #[arg(long, value_name = "T1,T2,…")]
    thresholds: Option<String>,
    /// Class names, lowest class first, e.g. low,medium,high.
    #[arg(long, value_name = "A,B,…")]
    classes: Option<String>,
    /// Feature columns, names or globs (c_*), comma separated. Default: every numeric column
    /// except the label, label_* and ctx_* columns, identifiers, addresses, ports and timestamps.
    #[arg(long, value_delimiter = ',', value_name = "COLUMNS")]
    features: Option<Vec<String>>,
    /// Columns to leave out, names or globs, comma separated.
    #[arg(long, value_delimiter = ',', value_name = "COLUMNS")]
    exclude: Vec<String>,
    /// Missing values: error (refuse and list them), drop (drop the rows), median (fill
    /// features with the training rows' median).
    #[arg(long, default_value = "error", value_name = "POLICY")]
    missing: MissingPolicy,
    /// Accept the label or other label_* columns as features (leakage guard off).
    #[arg(long)]
    force: bool,
    /// Field separator, if detection from the header is wrong (e.g. ';' or 'tab').
    #[arg(long, value_parser = parse_delimiter)]
    delimiter: Option<u8>,
    /// Model: rf (random forest), tree (decision tree), logreg (logistic regression),
    /// nb (Gaussian naive Bayes).
    #[arg(long, default_value = "rf")]
    model: ModelKind,
    /// Folds of stratified cross-validation (0 = none).
    #[arg(long, default_value_t = 10)]
    folds: usize,
    /// Share of rows held out (stratified) to test the final model, e.g. 0.2.
    #[arg(long, value_name = "SHARE")]
    holdout: Option<f64>,
    /// Trees in a random forest.
    #[arg(long, default_value_t = 100)]
    trees: usize,
    /// Features drawn at each split of a forest (default: √features).
    #[arg(long, value_name = "N")]
    max_features: Option<usize>,
    /// Depth limit of trees (default: grow until leaves are pure).
    #[arg(long, value_name = "N")]
    max_depth: Option<usize>,
    /// Fewest rows in a tree leaf.
    #[arg(long, default_value_t = 1, value_name = "N")]
    min_samples_leaf: usize,
    /// L2 penalty of logistic regression.
    #[arg(long, default_value_t = 1.0)]
    alpha: f64,
    /// Class balancing inside training folds: none, weights (rf, tree), undersample.
    #[arg(long, default_value = "none")]
    balance: Balance,
    /// Shuffles per feature for permutation importance, in total over the test sets, at least
    /// one per test set (0 = skip).
    #[arg(long, default_value_t = 10, value_name = "N")]
    permutations: usize,
    /// Seed of every random choice (folds, bootstrap, features, permutations).
    #[arg(long, default_value_t = 0)]
    seed: u64,
    /// Write the trained model (JSON) to this file.
    #[arg(short, long, value_name = "FILE")]
    output: Option<PathBuf>,
    /// Print the model's record (all but the fitted trees or coefficients) as JSON instead of
    /// tables.
    #[arg(long)]
    json: bool,
}

/// Reads `--delimiter`: one ASCII character, or `tab`.
pub fn parse_delimiter(s: &str) -> Result<u8, String> {
    match s {
        "tab" | "\\t" => Ok(b'\t'),
        _ if s.len() == 1 && s.is_ascii() => Ok(s.as_bytes()[0]),
        _ => Err(format!(
            "'{s}' is not a separator: give one character such as , ; | or the word tab"
        )),
    }
}

/// Runs `qoelab train`.
pub fn run(args: TrainArgs) -> Result<()> {
    let label = LabelSpec::parse(
        &args.label,
        args.thresholds.as_deref(),
        args.classes.as_deref(),
    )?;
    let mut params = ModelParams::new(args.model);
    params.trees = args.trees;
    params.max_depth = args.max_depth;
    params.min_samples_leaf = args.min_samples_leaf;
    params.alpha = args.alpha;
    if let Some(n) = args.max_features {
        params.max_features = MaxFeatures::Count(n);
    }
    let spec = TrainSpec {
        params,
        eval: EvalSpec {
            folds: args.folds,
            holdout: args.holdout,
            balance: args.balance,
            permutations: args.permutations,
            seed: args.seed,
        },
    };
    spec.params.validate()?;
    spec.eval.validate(&spec.params)?;

    let (reading, frame) = match (&args.csv, &args.campaign) {
        (Some(path), _) => (
            spinner(&format!("reading {}", path.display())),
            Frame::read_csv_path(path, args.delimiter)?,
        ),
        (None, Some(ids)) => (
            spinner("reading the campaigns' sessions"),
            with_db(&args.db.database, async |db| {
                Ok(models::frame(db, ids).await?)
            })?,
        ),
        (None, None) => bail!("give the sessions to train on: --csv FILE or --campaign ID"),
    };
    let dataset = Dataset::from_frame(
        &frame,
        &DatasetSpec {
            label: label.clone(),
            features: FeatureSpec {
                include: args.features,
                exclude: args.exclude,
            },
            missing: args.missing,
            force: args.force,
        },
    )?;
    reading.finish_and_clear();
    drop(frame);

    let bar = ProgressBar::new(spec.steps()).with_style(
        ProgressStyle::with_template("{spinner} [{elapsed}] {bar:30} {pos}/{len} {msg}")
            .expect("a valid template"),
    );
    bar.set_message(format!("training {}", spec.params.kind.description()));
    let step = |what: &str| {
        bar.inc(1);
        bar.set_message(format!("{what} done"));
    };
    let model = qoelab_classifier::train(&dataset, &label, &spec, &step)?;
    bar.finish_and_clear();

    if args.json {
        println!("{}", serde_json::to_string_pretty(&model.summary())?);
    } else {
        let name = match (&args.output, &args.store) {
            (Some(path), _) => path.display().to_string(),
            (None, Some(name)) => name.clone(),
            (None, None) => "(not saved)".to_string(),
        };
        print!("{}", report::model(&model, &name));
    }
    std::io::stdout().flush()?;
    let fingerprint = &model.dataset.fingerprint[..12];
    if let Some(path) = &args.output {
        model
            .save(path)
            .with_context(|| format!("saving the model to {}", path.display()))?;
        eprintln!(
            "model saved to {} (dataset fingerprint {fingerprint})",
            path.display()
        );
    }
    if let Some(name) = &args.store {
        let id = with_db(&args.db.database, async |db| {
            Ok(models::store(db, name, &model).await?)
        })?;
        eprintln!(
            "model stored in {} as #{id} (dataset fingerprint {fingerprint})",
            redact(&args.db.database)
        );
    }
    if args.output.is_none() && args.store.is_none() {
        eprintln!("model not saved: pass -o FILE or --store NAME to keep it");
    }
    Ok(())
}

/// A spinner on stderr for work of unknown length (hidden when stderr is not a terminal).
pub fn spinner(message: &str) -> ProgressBar {
    let spinner = ProgressBar::new_spinner();
    spinner.set_message(message.to_string());
    spinner.enable_steady_tick(std::time::Duration::from_millis(120));
    spinner
}
