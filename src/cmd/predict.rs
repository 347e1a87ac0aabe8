//! `qoelab predict`: apply a saved model (a file or a stored one) to a CSV of sessions or to a
//! stored session.

use std::path::{Path, PathBuf};

use anyhow::{Result, anyhow, bail};
use clap::{Args, ValueEnum};
use qoelab_classifier::{Frame, SavedModel};

use qoelab_collector::models;

use super::campaign::DatabaseArg;
use super::train::{parse_delimiter, spinner};
use super::{report, with_db};
use crate::table::Table;

/// Output formats of `qoelab predict`.
#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum Format {
    /// A table, then metrics if the file has the label column.
    Table,
    /// CSV: line in the input file, predicted class, one probability column per class (and the
    /// true class).
    Csv,
    /// JSON: predictions and metrics.
    Json,
}

/// Arguments of `qoelab predict`.
#[derive(Debug, Args)]
pub struct PredictArgs {
    /// The model: a file saved by `qoelab train -o FILE`, or the id of a model stored in the
    /// database (`qoelab train --store NAME`, the web's models page).
    #[arg(long, value_name = "FILE|ID")]
    model: String,
    /// CSV file of sessions with (at least) the model's feature columns.
    #[arg(required_unless_present = "session", conflicts_with = "session")]
    csv: Option<PathBuf>,
    /// A stored session: predict from its dataset row (and score against its label).
    #[arg(long, value_name = "ID")]
    session: Option<i64>,
    #[command(flatten)]
    db: DatabaseArg,
    /// Field separator, if detection from the header is wrong.
    #[arg(long, value_parser = parse_delimiter)]
    delimiter: Option<u8>,
    /// Output format.
    #[arg(long, value_enum, default_value = "table")]
    format: Format,
}

/// The model `--model` names: a file if one exists at that path, else a stored model's id.
fn load_model(model: &str, database: &str) -> Result<SavedModel> {
    if Path::new(model).exists() {
        return Ok(SavedModel::load(Path::new(model))?);
    }
    let id: i64 = model.parse().map_err(|_| {
        anyhow!("--model '{model}': no such file, and not a model id (a whole number; `qoelab models` lists files, the web's /models stored models)")
    })?;
    with_db(database, async |db| Ok(models::get(db, id).await?.1))
}

/// Runs `qoelab predict`.
pub fn run(args: PredictArgs) -> Result<()> {
    let model = load_model(&args.model, &args.db.database)?;
    let (reading, frame, row_header) = match (&args.csv, args.session) {
        (Some(csv), _) => (
            spinner(&format!("reading {}", csv.display())),
            Frame::read_csv_path(csv, args.delimiter)?,
            "line",
        ),
        (None, Some(id)) => (
            spinner(&format!("reading session {id}")),
            with_db(&args.db.database, async |db| {
                Ok(models::session_frame(db, id).await?)
            })?,
            "session",
        ),
        (None, None) => bail!("give the sessions to predict: a CSV file or --session ID"),
    };
    // Rows are named by their line in the file, or by the session's id.
    let row_name = |row: usize| match args.session {
        Some(id) => id.to_string(),
        None => frame.line_number(row).to_string(),
    };
    let predictions = model.predict_frame(&frame)?;
    reading.finish_and_clear();
    // A label column that does not fit the model's classes spoils the scoring, not the predictions.
    let scored = model
        .score_frame(&frame, &predictions)
        .and_then(|m| Ok(m.zip(Some(model.label.assign(&frame)?.classes))))
        .unwrap_or_else(|e| {
            eprintln!("warning: predictions not scored against the file's label: {e}");
            None
        });
    let (metrics, truth) = scored.unzip();
    let true_class = |row: usize| -> String {
        truth
            .as_ref()
            .and_then(|t| t[row])
            .map_or(String::new(), |c| model.class_names[c].clone())
    };
    match args.format {
        Format::Table => {
            let mut header = vec![row_header, "predicted", "probability"];
            if truth.is_some() {
                header.push("true");
            }
            let mut table = Table::new(&header);
            for (row, p) in predictions.iter().enumerate() {
                let mut cells = vec![
                    row_name(row),
                    p.class.clone(),
                    format!("{:.3}", p.probabilities[p.class_index]),
                ];
                if truth.is_some() {
                    cells.push(true_class(row));
                }
                table.row(cells);
            }
            print!("{}", table.render());
            if let Some(m) = &metrics {
                println!(
                    "\nagainst the label in {} ({}):\n",
                    frame.source(),
                    model.label.describe()
                );
                print!("{}", report::metrics(m, &[]));
            }
        }
        Format::Csv => {
            let mut out = csv_writer();
            let mut header = vec![row_header.to_string(), "predicted".to_string()];
            header.extend(model.class_names.iter().map(|c| format!("p_{c}")));
            if truth.is_some() {
                header.push("true".to_string());
            }
            out.write_record(&header)?;
            for (row, p) in predictions.iter().enumerate() {
                let mut record = vec![row_name(row), p.class.clone()];
                record.extend(p.probabilities.iter().map(|v| format!("{v:.6}")));
                if truth.is_some() {
                    record.push(true_class(row));
                }
                out.write_record(&record)?;
            }
            out.flush()?;
        }
        Format::Json => {
            let json = serde_json::json!({
                "model": args.model,
                "source": frame.source(),
                "predictions": predictions
                    .iter()
                    .enumerate()
                    .map(|(row, p)| serde_json::json!({
                        row_header: row_name(row),
                        "class": p.class,
                        "probabilities": p.probabilities,
                    }))
                    .collect::<Vec<_>>(),
                "metrics": metrics,
            });
            println!("{}", serde_json::to_string_pretty(&json)?);
        }
    }
    Ok(())
}

fn csv_writer() -> csv::Writer<std::io::Stdout> {
    csv::Writer::from_writer(std::io::stdout())
}
