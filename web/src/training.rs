//! Training a QoE model on a campaign's stored sessions, in the background: the request is
//! checked and the dataset built before it is accepted (bad input is refused with its field),
//! then the model is trained on a blocking thread and stored in the database.

use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};

use axum::http::StatusCode;
use serde::{Deserialize, Serialize};

use qoelab_classifier::{
    Balance, Dataset, DatasetSpec, EvalSpec, FeatureSpec, LabelSpec, MissingPolicy, ModelKind,
    ModelParams, TrainSpec,
};
use qoelab_collector::db::now_ms;
use qoelab_collector::{campaign, models};

use crate::App;
use crate::error::Problem;

/// What to train.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TrainRequest {
    /// Unique model name.
    pub name: String,
    /// The campaign whose stored sessions are the data.
    pub campaign_id: i64,
    /// Label column (e.g. `label_qoe_class`) or binary rule `NAME:COLUMN>VALUE` (e.g.
    /// `stall:label_stall_count>0`).
    pub label: String,
    /// Thresholds cutting a numeric label into ordered classes, e.g. `0.5,1.5`.
    #[serde(default)]
    pub thresholds: Option<String>,
    /// Class names, lowest first, e.g. `low,medium,high`.
    #[serde(default)]
    pub classes: Option<String>,
    /// `rf`, `tree`, `logreg` or `nb`.
    #[serde(default = "default_model")]
    pub model: String,
    /// Folds of stratified cross-validation (0 = none).
    #[serde(default = "default_folds")]
    pub folds: usize,
    /// Share of rows held out for the final test, e.g. 0.2.
    #[serde(default)]
    pub holdout: Option<f64>,
    /// Trees of a random forest.
    #[serde(default = "default_trees")]
    pub trees: usize,
    /// Depth limit of trees.
    #[serde(default)]
    pub max_depth: Option<usize>,
    /// `none`, `weights` or `undersample`.
    #[serde(default = "default_balance")]
    pub balance: String,
    /// Missing values: `error`, `drop` or `median`.
    #[serde(default = "default_missing")]
    pub missing: String,
    /// Seed of every random choice.
    #[serde(default)]
    pub seed: u64,
}

fn default_model() -> String {
    "rf".into()
}
fn default_folds() -> usize {
    5
}
fn default_trees() -> usize {
    100
}
fn default_balance() -> String {
    "none".into()
}
fn default_missing() -> String {
    "median".into()
}

/// Where a training job is.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "state", rename_all = "snake_case")]
pub enum JobState {
    /// Training; the last step finished.
    Running {
        /// e.g. `fold 3 done`.
        step: String,
    },
    /// Stored as this model.
    Done {
        /// The model's id.
        model_id: i64,
    },
    /// Failed.
    Failed {
        /// Why.
        error: String,
    },
}

/// A training job.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Job {
    /// Job id (this server's run only).
    pub id: u64,
    /// The model's name.
    pub name: String,
    /// The campaign trained on.
    pub campaign_id: i64,
    /// Model kind.
    pub model: String,
    /// Start, Unix ms.
    pub started_ms: i64,
    /// Where it is.
    #[serde(flatten)]
    pub state: JobState,
}

/// Recent training jobs.
#[derive(Default)]
pub struct Jobs {
    next: AtomicU64,
    list: Mutex<Vec<Job>>,
}

/// Finished jobs kept for the pages.
const KEEP: usize = 20;

impl Jobs {
    /// The jobs, newest first.
    pub fn list(&self) -> Vec<Job> {
        let list = self.list.lock().unwrap_or_else(|p| p.into_inner());
        list.iter().rev().cloned().collect()
    }

    /// Job `id`.
    pub fn get(&self, id: u64) -> Option<Job> {
        self.list().into_iter().find(|j| j.id == id)
    }

    fn add(&self, mut job: Job) -> Job {
        job.id = self.next.fetch_add(1, Ordering::Relaxed) + 1;
        let mut list = self.list.lock().unwrap_or_else(|p| p.into_inner());
        list.push(job.clone());
        while list.len() > KEEP {
            match list
                .iter()
                .position(|j| !matches!(j.state, JobState::Running { .. }))
            {
                Some(oldest_finished) => list.remove(oldest_finished),
                None => break,
            };
        }
        job
    }

    fn set(&self, id: u64, state: JobState) {
        let mut list = self.list.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(job) = list.iter_mut().find(|j| j.id == id) {
            job.state = state;
        }
    }
}

fn parse<T: std::str::FromStr<Err = qoelab_classifier::Error>>(
    field: &str,
    text: &str,
) -> Result<T, Problem> {
    text.parse().map_err(|e: qoelab_classifier::Error| {
        let mut p = Problem::from(e);
        p.field = Some(field.to_string());
        p
    })
}

/// Checks `req`, builds its dataset and starts training; the job runs on.
pub async fn start(app: &App, req: TrainRequest) -> Result<Job, Problem> {
    let name = req.name.trim().to_string();
    if name.is_empty() || name.chars().count() > 100 {
        return Err(Problem::invalid("name", &req.name, "1 to 100 characters"));
    }
    if models::list(app.db()).await?.iter().any(|m| m.name == name) {
        let error = format!("a model named '{name}' exists already; choose another name");
        return Err(Problem {
            field: Some("name".into()),
            ..Problem::new(StatusCode::CONFLICT, error)
        });
    }
    let label = LabelSpec::parse(
        &req.label,
        req.thresholds.as_deref(),
        req.classes.as_deref(),
    )?;
    let kind: ModelKind = parse("model", &req.model)?;
    let mut params = ModelParams::new(kind);
    params.trees = req.trees;
    params.max_depth = req.max_depth;
    let spec = TrainSpec {
        params,
        eval: EvalSpec {
            folds: req.folds,
            holdout: req.holdout,
            balance: parse::<Balance>("balance", &req.balance)?,
            permutations: 10,
            seed: req.seed,
        },
    };
    spec.params.validate()?;
    spec.eval.validate(&spec.params)?;
    let missing: MissingPolicy = parse("missing", &req.missing)?;
    if let Err(e) = campaign::get(app.db(), req.campaign_id).await {
        let p = Problem::from(e);
        return Err(Problem {
            field: Some("campaign_id".into()),
            ..p.with_status(StatusCode::UNPROCESSABLE_ENTITY)
        });
    }
    let frame = qoelab_collector::models::frame(app.db(), &[req.campaign_id]).await?;
    let dataset_spec = DatasetSpec {
        label: label.clone(),
        features: FeatureSpec::default(),
        missing,
        force: false,
    };
    let dataset = tokio::task::spawn_blocking(move || Dataset::from_frame(&frame, &dataset_spec))
        .await
        .map_err(|e| Problem::new(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()))??;
    let job = app.training().add(Job {
        id: 0,
        name: name.clone(),
        campaign_id: req.campaign_id,
        model: kind.name().to_string(),
        started_ms: now_ms(),
        state: JobState::Running {
            step: "started".into(),
        },
    });
    let (app, id) = (app.clone(), job.id);
    tokio::spawn(async move {
        let jobs = app.clone();
        let trained = tokio::task::spawn_blocking(move || {
            let step = |what: &str| {
                jobs.training().set(
                    id,
                    JobState::Running {
                        step: format!("{what} done"),
                    },
                )
            };
            qoelab_classifier::train(&dataset, &label, &spec, &step)
        })
        .await;
        let state = match trained {
            Ok(Ok(model)) => match models::store(app.db(), &name, &model).await {
                Ok(model_id) => JobState::Done { model_id },
                Err(e) => JobState::Failed {
                    error: e.to_string(),
                },
            },
            Ok(Err(e)) => JobState::Failed {
                error: e.to_string(),
            },
            Err(e) => JobState::Failed {
                error: format!("training crashed: {e}"),
            },
        };
        if let JobState::Failed { error } = &state {
            tracing::warn!(model = name, "training failed: {error}");
        }
        app.training().set(id, state);
    });
    Ok(job)
}
