//! `qoelab predict`: apply a saved model to a CSV of sessions.

use std::path::PathBuf;

use anyhow::Result;
use clap::{Args, ValueEnum};
use qoelab_classifier::{Frame, SavedModel};

use super::report;
use super::train::{parse_delimiter, spinner};
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
    /// A model saved by `qoelab train -o FILE`.
    #[arg(long, value_name = "FILE")]
    model: PathBuf,
    /// CSV file of sessions with (at least) the model's feature columns.
    csv: PathBuf,
    /// Field separator, if detection from the header is wrong.
    #[arg(long, value_parser = parse_delimiter)]
    delimiter: Option<u8>,
    /// Output format.
    #[arg(long, value_enum, default_value = "table")]
    format: Format,
}

/// Runs `qoelab predict`.
pub fn run(args: PredictArgs) -> Result<()> {
    let model = SavedModel::load(&args.model)?;
    let reading = spinner(&format!("reading {}", args.csv.display()));
    let frame = Frame::read_csv_path(&args.csv, args.delimiter)?;
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
            let mut header = vec!["line", "predicted", "probability"];
            if truth.is_some() {
                header.push("true");
            }
            let mut table = Table::new(&header);
            for (row, p) in predictions.iter().enumerate() {
                let mut cells = vec![
                    frame.line_number(row).to_string(),
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
                    "\nagainst the label in the file ({}):\n",
                    model.label.describe()
                );
                print!("{}", report::metrics(m, &[]));
            }
        }
        Format::Csv => {
            let mut out = csv_writer();
            let mut header = vec!["line".to_string(), "predicted".to_string()];
            header.extend(model.class_names.iter().map(|c| format!("p_{c}")));
            if truth.is_some() {
                header.push("true".to_string());
            }
            out.write_record(&header)?;
            for (row, p) in predictions.iter().enumerate() {
                let mut record = vec![frame.line_number(row).to_string(), p.class.clone()];
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
                "model": args.model.display().to_string(),
                "source": frame.source(),
                "predictions": predictions
                    .iter()
                    .enumerate()
                    .map(|(row, p)| serde_json::json!({
                        "line": frame.line_number(row),
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
