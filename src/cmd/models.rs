//! `qoelab models list|show`: the models saved in a directory.

use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};
use clap::Subcommand;
use qoelab_classifier::SavedModel;

use super::report;
use crate::table::Table;

/// Models subcommands.
#[derive(Debug, Subcommand)]
pub enum ModelsCommand {
    /// List the models (*.json) in a directory with their headline metrics.
    List {
        /// The directory.
        #[arg(long, default_value = "models")]
        dir: PathBuf,
    },
    /// Show a model: training data, features, evaluation, importances.
    Show {
        /// A model file, or a model's name (file stem) in --dir.
        model: String,
        /// The directory to look for a name in.
        #[arg(long, default_value = "models")]
        dir: PathBuf,
        /// Print the model's record (all but the fitted trees or coefficients) as JSON.
        #[arg(long)]
        json: bool,
    },
}

/// Runs a models subcommand.
pub fn run(command: ModelsCommand) -> Result<()> {
    match command {
        ModelsCommand::List { dir } => list(&dir),
        ModelsCommand::Show { model, dir, json } => {
            let path = resolve(&model, &dir)?;
            let saved = SavedModel::load(&path)?;
            if json {
                println!("{}", serde_json::to_string_pretty(&saved.summary())?);
            } else {
                print!("{}", report::model(&saved, &path.display().to_string()));
            }
            Ok(())
        }
    }
}

fn resolve(model: &str, dir: &Path) -> Result<PathBuf> {
    let direct = PathBuf::from(model);
    if direct.is_file() {
        return Ok(direct);
    }
    let named = dir.join(format!("{model}.json"));
    if named.is_file() {
        return Ok(named);
    }
    bail!(
        "no model '{model}': neither a file nor {} exists (see qoelab models list --dir {})",
        named.display(),
        dir.display()
    )
}

fn list(dir: &Path) -> Result<()> {
    let entries = std::fs::read_dir(dir)
        .with_context(|| format!("cannot list models in {}", dir.display()))?;
    let mut paths: Vec<PathBuf> = entries
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|e| e == "json"))
        .collect();
    paths.sort();
    let mut table = Table::new(&[
        "name",
        "model",
        "label",
        "classes",
        "features",
        "rows",
        "evaluation",
        "accuracy",
        "macro-F1",
        "trained",
    ]);
    let mut unreadable = Vec::new();
    for path in &paths {
        let model = match SavedModel::load(path) {
            Ok(m) => m,
            Err(e) => {
                unreadable.push(e.to_string());
                continue;
            }
        };
        let headline = model.headline();
        let metric = |f: fn(&qoelab_classifier::Metrics) -> f64| {
            headline.map_or("-".to_string(), |e| format!("{:.3}", f(&e.metrics)))
        };
        table.row(vec![
            path.file_stem()
                .unwrap_or_default()
                .to_string_lossy()
                .into_owned(),
            model.params.kind.name().to_string(),
            model.label.describe(),
            model.class_names.join(","),
            model.feature_names.len().to_string(),
            model.dataset.rows.to_string(),
            headline.map_or("none".to_string(), |e| e.method.clone()),
            metric(|m| m.accuracy),
            metric(|m| m.macro_f1),
            report::date(model.created_unix_s),
        ]);
    }
    if paths.len() == unreadable.len() && unreadable.is_empty() {
        println!(
            "no models in {} (save one with qoelab train -o FILE)",
            dir.display()
        );
    } else {
        print!("{}", table.render());
    }
    for problem in unreadable {
        eprintln!("skipped: {problem}");
    }
    Ok(())
}
