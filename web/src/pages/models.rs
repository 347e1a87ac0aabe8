//! Model pages: stored models and training jobs with the train form; one model's metrics,
//! confusion matrix and feature importances.

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect, Response};
use maud::{Markup, html};
use serde::Deserialize;

use qoelab_classifier::Evaluation;
use qoelab_collector::{campaign, models};

use super::form::{self, Errors};
use super::format;
use super::layout::{Nav, Page};
use crate::App;
use crate::chart;
use crate::error::Problem;
use crate::extract::{Form, Path};
use crate::training::{self, JobState, TrainRequest};

/// The train form as typed.
#[derive(Debug, Clone, Deserialize)]
#[serde(default)]
pub struct TrainForm {
    name: String,
    campaign_id: String,
    label: String,
    thresholds: String,
    classes: String,
    model: String,
    folds: String,
    holdout: String,
    trees: String,
    missing: String,
    seed: String,
}

impl Default for TrainForm {
    fn default() -> TrainForm {
        TrainForm {
            name: String::new(),
            campaign_id: String::new(),
            label: "label_qoe_class".into(),
            thresholds: String::new(),
            classes: String::new(),
            model: "rf".into(),
            folds: "5".into(),
            holdout: String::new(),
            trees: "100".into(),
            missing: "median".into(),
            seed: "0".into(),
        }
    }
}

const FIELDS: [&str; 11] = [
    "name",
    "campaign_id",
    "label",
    "thresholds",
    "classes",
    "model",
    "folds",
    "holdout",
    "trees",
    "missing",
    "seed",
];

impl TrainForm {
    /// The request, or the problems of the fields that do not parse.
    fn request(&self) -> Result<TrainRequest, Errors> {
        let mut errors = Errors::default();
        fn number<T: std::str::FromStr>(
            errors: &mut Errors,
            field: &str,
            text: &str,
            accepted: &str,
        ) -> Option<T> {
            let parsed = text.trim().parse().ok();
            if parsed.is_none() {
                errors.add(&Problem::invalid(field, text, accepted));
            }
            parsed
        }
        let optional = |s: &str| Some(s.trim().to_string()).filter(|s| !s.is_empty());
        let campaign_id = number(
            &mut errors,
            "campaign_id",
            &self.campaign_id,
            "a campaign's number",
        );
        let folds = number(
            &mut errors,
            "folds",
            &self.folds,
            "a whole number (0 for none)",
        );
        let trees = number(&mut errors, "trees", &self.trees, "a whole number of trees");
        let seed = number(&mut errors, "seed", &self.seed, "a whole number");
        let holdout = match optional(&self.holdout) {
            None => Some(None),
            Some(h) => number(
                &mut errors,
                "holdout",
                &h,
                "a share between 0 and 1, e.g. 0.2",
            )
            .map(Some),
        };
        match (campaign_id, folds, trees, seed, holdout) {
            (Some(campaign_id), Some(folds), Some(trees), Some(seed), Some(holdout)) => {
                Ok(TrainRequest {
                    name: self.name.clone(),
                    campaign_id,
                    label: self.label.trim().to_string(),
                    thresholds: optional(&self.thresholds),
                    classes: optional(&self.classes),
                    model: self.model.clone(),
                    folds,
                    holdout,
                    trees,
                    max_depth: None,
                    balance: "none".into(),
                    missing: self.missing.clone(),
                    seed,
                })
            }
            _ => Err(errors),
        }
    }
}

fn jobs_table(jobs: &[training::Job]) -> Markup {
    html! {
        table { thead { tr { th { "Job" } th { "Model" } th { "Campaign" } th { "State" } } }
            tbody { @for j in jobs { tr {
                td { (j.id) } td { (j.name) " (" (j.model) ")" } td { "#" (j.campaign_id) }
                td { @match &j.state {
                    JobState::Running { step } => { span.badge.running { "training" } " " (step) }
                    JobState::Done { model_id } => { span.badge.done { "done" } " " a href={ "/models/" (model_id) } { "open" } }
                    JobState::Failed { error } => { span.badge.failed { "failed" } " " (error) }
                } }
            } } }
        }
    }
}

async fn list_page(
    app: &App,
    page: &Page,
    f: &TrainForm,
    errors: &Errors,
) -> Result<Markup, Problem> {
    let stored = models::list(app.db()).await?;
    let jobs = app.training().list();
    let campaigns = campaign::list(app.db()).await?;
    let campaign_options: Vec<(String, String)> =
        std::iter::once((String::new(), "choose…".to_string()))
            .chain(campaigns.iter().map(|c| {
                (
                    c.id.to_string(),
                    format!("#{} {} ({} stored)", c.id, c.spec.name, c.progress.done),
                )
            }))
            .collect();
    let options: Vec<(&str, &str)> = campaign_options
        .iter()
        .map(|(a, b)| (a.as_str(), b.as_str()))
        .collect();
    let running = jobs
        .iter()
        .any(|j| matches!(j.state, JobState::Running { .. }));
    let body = html! {
        h1 { "Models" }
        @if stored.is_empty() { p.muted { "No model is stored yet." } } @else {
            table {
                thead { tr { th { "Model" } th { "Kind" } th { "Label" } th { "Evaluation" } th.num { "Accuracy" } th.num { "Macro-F1" } th.num { "Baseline" } th { "Trained" } } }
                tbody { @for m in &stored {
                    @let metric = |key: &str| m.metrics["metrics"][key].as_f64().map_or("–".into(), format::percent);
                    tr {
                        td { a href={ "/models/" (m.id) } { (m.name) } }
                        td { (m.algorithm) } td { code { (m.label) } }
                        td { (m.metrics["method"].as_str().unwrap_or("none")) }
                        td.num { (metric("accuracy")) } td.num { (metric("macro_f1")) } td.num { (metric("majority_baseline")) }
                        td { (format::when(m.created_ms)) }
                    }
                } }
            }
        }
        @if !jobs.is_empty() {
            h2 { "Training" }
            div data-refresh=[running.then_some("/models?fragment=jobs")] { (jobs_table(&jobs)) }
        }
        h2 { "Train a model" }
        (form::banner(errors, &FIELDS))
        form.stacked.card method="post" action="/models" novalidate {
            (page.csrf())
            (form::text(errors, "name", "Name", &f.name, "unique, e.g. stall-rf"))
            (form::select(errors, "campaign_id", "Campaign", &f.campaign_id, &options))
            (form::text(errors, "label", "Label", &f.label, "a label column (label_qoe_class) or a rule NAME:COLUMN>VALUE, e.g. stall:label_stall_count>0"))
            (form::text(errors, "thresholds", "Thresholds (optional)", &f.thresholds, "cut a numeric label into ordered classes, e.g. 0.5,1.5"))
            (form::text(errors, "classes", "Class names (optional)", &f.classes, "lowest first, e.g. low,medium,high"))
            (form::select(errors, "model", "Model", &f.model, &[("rf", "random forest"), ("tree", "decision tree"), ("logreg", "logistic regression"), ("nb", "Gaussian naive Bayes")]))
            (form::text(errors, "folds", "Cross-validation folds", &f.folds, "stratified; 0 for none"))
            (form::text(errors, "holdout", "Held-out share (optional)", &f.holdout, "e.g. 0.2: tested on rows the model never saw"))
            (form::text(errors, "trees", "Trees (forest)", &f.trees, ""))
            (form::select(errors, "missing", "Missing values", &f.missing, &[("median", "fill with the training median"), ("drop", "drop those rows"), ("error", "refuse")]))
            (form::text(errors, "seed", "Seed", &f.seed, ""))
            div.actions { button type="submit" { "Train" } }
        }
    };
    Ok(page.render("Models", Nav::Models, body))
}

/// `?fragment=jobs` asks for the jobs table alone.
#[derive(Debug, Default, Deserialize)]
pub struct ListQuery {
    #[serde(default)]
    fragment: Option<String>,
}

/// `GET /models` (or its jobs table alone with `?fragment=jobs`, which the page refreshes).
pub async fn list(
    State(app): State<App>,
    page: Page,
    crate::extract::Query(q): crate::extract::Query<ListQuery>,
) -> Result<Markup, Problem> {
    if q.fragment.as_deref() == Some("jobs") {
        return Ok(jobs_table(&app.training().list()));
    }
    list_page(&app, &page, &TrainForm::default(), &Errors::default()).await
}

/// `POST /models`: starts training and goes back to the list, or shows the form again with
/// the messages (422).
pub async fn train(
    State(app): State<App>,
    page: Page,
    Form(f): Form<TrainForm>,
) -> Result<Response, Problem> {
    let problem = match f.request() {
        Ok(request) => match training::start(&app, request).await {
            Ok(_) => return Ok(Redirect::to("/models").into_response()),
            Err(p) => {
                let mut errors = Errors::default();
                errors.add(&p);
                errors
            }
        },
        Err(errors) => errors,
    };
    let body = list_page(&app, &page, &f, &problem).await?;
    Ok((StatusCode::UNPROCESSABLE_ENTITY, body).into_response())
}

fn evaluation(e: &Evaluation) -> Markup {
    let m = &e.metrics;
    let mut importance: Vec<(String, f64, Option<f64>)> = e
        .permutation_importance
        .iter()
        .map(|i| (i.feature.clone(), i.mean, Some(i.std)))
        .collect();
    importance.sort_by(|a, b| b.1.total_cmp(&a.1));
    importance.truncate(20);
    html! {
        h2 { (e.method) }
        div.grid {
            div.card { div.muted { "Accuracy" } div.stat { (format::percent(m.accuracy)) } }
            div.card { div.muted { "Balanced accuracy" } div.stat { (format::percent(m.balanced_accuracy)) } }
            div.card { div.muted { "Macro-F1" } div.stat { (format::percent(m.macro_f1)) } }
            div.card { div.muted { "Majority-class baseline" } div.stat { (format::percent(m.majority_baseline)) } }
        }
        div.grid {
            div.card {
                strong { "Confusion matrix" } span.muted { " (rows: true class)" }
                (chart::heatmap(&m.class_names, &m.confusion))
            }
            div.card {
                table { thead { tr { th { "Class" } th.num { "Precision" } th.num { "Recall" } th.num { "F1" } th.num { "Rows" } } }
                    tbody { @for c in &m.per_class { tr {
                        td { (c.class) } td.num { (format::percent(c.precision)) } td.num { (format::percent(c.recall)) }
                        td.num { (format::percent(c.f1)) } td.num { (c.support) }
                    } } }
                }
            }
        }
        @if !importance.is_empty() {
            div.card {
                strong { "Permutation importance" } span.muted { " (accuracy lost when a feature is shuffled; ± std)" }
                (chart::bars("permutation-importance", &importance, format::percent))
            }
        }
    }
}

/// `GET /models/{id}`.
pub async fn show(
    State(app): State<App>,
    page: Page,
    Path(id): Path<i64>,
) -> Result<Markup, Problem> {
    let (info, model) = models::get(app.db(), id).await?;
    let mut impurity: Vec<(String, f64, Option<f64>)> = model
        .impurity_importance
        .iter()
        .flat_map(|v| {
            model
                .feature_names
                .iter()
                .cloned()
                .zip(v.iter().copied())
                .map(|(n, v)| (n, v, None))
        })
        .collect();
    impurity.sort_by(|a, b| b.1.total_cmp(&a.1));
    impurity.truncate(20);
    let d = &model.dataset;
    let body = html! {
        h1 { "Model " (info.name) }
        div.card {
            dl.kv {
                dt { "Kind" } dd { (model.params.kind.description()) }
                dt { "Label" } dd { code { (info.label) } }
                dt { "Classes" } dd { (model.class_names.iter().zip(&d.class_counts).map(|(c, n)| format!("{c} ({n} rows)")).collect::<Vec<_>>().join(", ")) }
                dt { "Data" } dd { (d.source) ", " (d.rows) " rows, " (model.feature_names.len()) " features, missing values: " (d.missing) }
                dt { "Fingerprint" } dd { code { (d.fingerprint) } }
                dt { "Trained" } dd { (format::when(info.created_ms)) }
            }
            div.actions {
                a.button.secondary href={ "/api/v1/models/" (id) "/file" } download { "Download for qoelab predict" }
                form method="post" action={ "/models/" (id) "/delete" } data-confirm="Delete this model?" {
                    (page.csrf()) button.danger { "Delete" }
                }
            }
        }
        @for e in model.cross_validation.iter().chain(model.holdout.iter()) { (evaluation(e)) }
        @if !impurity.is_empty() {
            div.card {
                strong { "Impurity importance" } span.muted { " (mean decrease in impurity)" }
                (chart::bars("impurity-importance", &impurity, format::number))
            }
        }
        @if !d.report.warnings.is_empty() {
            h2 { "Warnings" }
            ul { @for w in &d.report.warnings { li { (w) } } }
        }
        details { summary { (d.report.excluded.len()) " columns not used as features" }
            table { @for x in &d.report.excluded { tr { td { code { (x.column) } } td { (x.reason) } } } }
        }
    };
    Ok(page.render(&format!("Model {}", info.name), Nav::Models, body))
}

/// `POST /models/{id}/delete`.
pub async fn delete(
    State(app): State<App>,
    Path(id): Path<i64>,
    Form(_): Form<std::collections::HashMap<String, String>>,
) -> Result<Redirect, Problem> {
    models::delete(app.db(), id).await?;
    Ok(Redirect::to("/models"))
}
