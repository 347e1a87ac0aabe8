//! `qoelab models list|show`: the models saved in a directory, or stored in a database.

use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};
use clap::Subcommand;
use qoelab_classifier::SavedModel;

use qoelab_collector::db::redact;
use qoelab_collector::models;

use super::{report, with_db};
use crate::table::Table;

/// Models subcommands.
#[derive(Debug, Subcommand)]
pub enum ModelsCommand {
    /// List the models (*.json) in a directory with their headline metrics.
    List {
        /// The directory.
        #[arg(long, default_value = "models")]
        dir: PathBuf,
        /// List the models stored in this database instead (`qoelab train --store`, the web).
        #[arg(long, value_name = "URL")]
        database: Option<String>,
    },
    /// Show a model: training data, features, evaluation, importances.
    Show {
        /// A model file, a model's name (file stem) in --dir, or with --database a stored
        /// model's id.
        model: String,
        /// The directory to look for a name in.
        #[arg(long, default_value = "models")]
        dir: PathBuf,
        /// Show a model stored in this database (MODEL is its id).
        #[arg(long, value_name = "URL")]
        database: Option<String>,
        /// Print the model's record (all but the fitted trees or coefficients) as JSON.
        #[arg(long)]
        json: bool,
    },
}

/// Runs a models subcommand.
pub fn run(command: ModelsCommand) -> Result<()> {
    match command {
        ModelsCommand::List { dir, database } => match database {
            Some(url) => list_stored(&url),
            None => list(&dir),
        },
        ModelsCommand::Show {
            model,
            dir,
            database,
            json,
        } => {
            let (saved, name) = match database {
                Some(url) => {
                    let id: i64 = model.parse().map_err(|_| {
                        anyhow::anyhow!("'{model}' is not a model id (a whole number; `qoelab models list --database URL` lists them)")
                    })?;
                    let (info, saved) = with_db(&url, async |db| Ok(models::get(db, id).await?))?;
                    (saved, format!("#{id} {}", info.name))
                }
                None => {
                    let path = resolve(&model, &dir)?;
                    (SavedModel::load(&path)?, path.display().to_string())
                }
            };
            if json {
                println!("{}", serde_json::to_string_pretty(&saved.summary())?);
            } else {
                print!("{}", report::model(&saved, &name));
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
    let mut table = models_table();
    let mut unreadable = Vec::new();
    for path in &paths {
        match SavedModel::load(path) {
            Ok(model) => {
                let name = path.file_stem().unwrap_or_default().to_string_lossy();
                table.row(model_row(&name, &model));
            }
            Err(e) => unreadable.push(e.to_string()),
        }
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

fn models_table() -> Table {
    Table::new(&[
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
    ])
}

/// A model's row in a list: `name`, then what it is and how well it did.
fn model_row(name: &str, model: &SavedModel) -> Vec<String> {
    let headline = model.headline();
    let metric = |f: fn(&qoelab_classifier::Metrics) -> f64| {
        headline.map_or("-".to_string(), |e| format!("{:.3}", f(&e.metrics)))
    };
    vec![
        name.to_string(),
        model.params.kind.name().to_string(),
        model.label.describe(),
        model.class_names.join(","),
        model.feature_names.len().to_string(),
        model.dataset.rows.to_string(),
        headline.map_or("none".to_string(), |e| e.method.clone()),
        metric(|m| m.accuracy),
        metric(|m| m.macro_f1),
        report::date(model.created_unix_s),
    ]
}

/// Lists the models stored in the database at `url`, named `#ID NAME`.
fn list_stored(url: &str) -> Result<()> {
    let stored = with_db(url, async |db| {
        let mut out = Vec::new();
        for info in models::list(db).await? {
            out.push(models::get(db, info.id).await?);
        }
        Ok(out)
    })?;
    if stored.is_empty() {
        println!(
            "no models stored in {} (store one with qoelab train --store NAME)",
            redact(url)
        );
        return Ok(());
    }
    let mut table = models_table();
    for (info, model) in &stored {
        table.row(model_row(&format!("#{} {}", info.id, info.name), model));
    }
    print!("{}", table.render());
    Ok(())
}
