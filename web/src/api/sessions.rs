//! Sessions: lists, details, QoE predictions, and the external-client protocol (next, start,
//! finish).

use std::collections::BTreeMap;

use axum::extract::State;
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::Serialize;
use serde_json::Value;

use qoelab_classifier::SavedModel;
use qoelab_collector::campaign::{self, SessionStatus};
use qoelab_collector::models::{self, ModelInfo};
use qoelab_collector::session::{self, Results, SessionQuery};

use crate::App;
use crate::error::Problem;
use crate::extract::{Json, Path, Query};

/// Whether the request asks for data straight from the database (`Cache-Control: no-cache`).
pub fn no_cache(headers: &HeaderMap) -> bool {
    headers
        .get_all(header::CACHE_CONTROL)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .any(|v| v.contains("no-cache") || v.contains("max-age=0"))
}

/// `GET /api/v1/sessions?campaign_id&status&rate_bps&label&sort&desc&page&per_page`.
pub async fn list(
    State(app): State<App>,
    headers: HeaderMap,
    Query(q): Query<SessionQuery>,
) -> Result<impl IntoResponse, Problem> {
    let page = app.totals().list(app.db(), &q, no_cache(&headers)).await?;
    Ok(axum::Json(page))
}

/// `GET /api/v1/sessions/{id}`: the session with flows, series, QoE record and features.
pub async fn get(
    State(app): State<App>,
    Path(id): Path<i64>,
) -> Result<impl IntoResponse, Problem> {
    Ok(axum::Json(session::detail(app.db(), id).await?))
}

/// `POST /api/v1/campaigns/{id}/next`: 200 with the next session (now running) of an external
/// campaign, 204 when none is left.
pub async fn external_next(
    State(app): State<App>,
    Path(id): Path<i64>,
) -> Result<Response, Problem> {
    Ok(match app.control().external_next(id).await? {
        Some(s) => axum::Json(s).into_response(),
        None => StatusCode::NO_CONTENT.into_response(),
    })
}

/// `POST /api/v1/sessions/{id}/start`: the link is shaped to the session's profile and the
/// capture starts.
pub async fn external_start(
    State(app): State<App>,
    Path(id): Path<i64>,
) -> Result<impl IntoResponse, Problem> {
    Ok(axum::Json(app.control().external_start(id).await?))
}

/// `POST /api/v1/sessions/{id}/finish` with the application's data (`qoelab.app-qoe.v1`, see
/// `qoelab_collector::application`): the capture stops and the session is stored. Refused
/// data is a 422 naming the field, and the session keeps running.
pub async fn external_finish(
    State(app): State<App>,
    Path(id): Path<i64>,
    Json(application): Json<Value>,
) -> Result<impl IntoResponse, Problem> {
    app.control().external_finish(id, application).await?;
    Ok(axum::Json(session::get(app.db(), id).await?))
}

/// One model's prediction for a session.
#[derive(Debug, Clone, Serialize)]
pub struct ModelPrediction {
    /// The model.
    pub model: ModelInfo,
    /// The predicted class and probabilities.
    pub prediction: Option<qoelab_classifier::Prediction>,
    /// Why there is no prediction (e.g. a feature the model needs is missing).
    pub error: Option<String>,
    /// The model's class names, in the order of the probabilities.
    pub classes: Vec<String>,
    /// The label column's value in the session, if it has one (stored sessions).
    pub actual: Option<Value>,
}

/// Predictions for one session.
#[derive(Debug, Clone, Serialize)]
pub struct Predictions {
    /// `stored` (from the stored features), `live` (from the running capture) or `none`.
    pub source: &'static str,
    /// Why there are no predictions, if there are none.
    pub note: Option<String>,
    /// One per model, newest model first.
    pub predictions: Vec<ModelPrediction>,
}

/// Models consulted per prediction: the newest few (each is read whole from the database).
const MODELS_CONSULTED: usize = 3;

/// The QoE predicted for session `id` by the newest stored models: from its features once
/// stored, from the agent's running capture while it runs.
pub async fn predictions(app: &App, id: i64) -> Result<Predictions, Problem> {
    let detail = session::detail(app.db(), id).await?;
    let (source, row): (&'static str, Result<BTreeMap<String, Value>, String>) =
        match detail.session.status {
            SessionStatus::Done => ("stored", Ok(detail.features)),
            SessionStatus::Running => ("live", live_features(app, &detail.session).await),
            other => {
                return Ok(Predictions {
                    source: "none",
                    note: Some(format!(
                        "the session is {other}: no traffic to predict from"
                    )),
                    predictions: Vec::new(),
                });
            }
        };
    let row = match row {
        Ok(row) => row,
        Err(note) => {
            return Ok(Predictions {
                source: "none",
                note: Some(note),
                predictions: Vec::new(),
            });
        }
    };
    let listed = models::list(app.db()).await?;
    if listed.is_empty() {
        return Ok(Predictions {
            source,
            note: Some("no model is stored yet: train one on the Models page".into()),
            predictions: Vec::new(),
        });
    }
    let mut out = Vec::new();
    for info in listed.into_iter().take(MODELS_CONSULTED) {
        let (info, model) = models::get(app.db(), info.id).await?;
        out.push(predict(info, &model, &row));
    }
    Ok(Predictions {
        source,
        note: None,
        predictions: out,
    })
}

fn predict(
    model_info: ModelInfo,
    model: &SavedModel,
    row: &BTreeMap<String, Value>,
) -> ModelPrediction {
    let prediction =
        model.predict_with(|name| row.get(name).map(|v| v.as_f64().unwrap_or(f64::NAN)));
    ModelPrediction {
        model: model_info,
        error: prediction.as_ref().err().map(ToString::to_string),
        prediction: prediction.ok(),
        classes: model.class_names.clone(),
        actual: row.get(model.label.column()).cloned(),
    }
}

async fn live_features(app: &App, s: &session::Session) -> Result<BTreeMap<String, Value>, String> {
    let spec = campaign::get(app.db(), s.campaign_id)
        .await
        .map_err(|e| e.to_string())?
        .spec;
    let gateway = app.gateway(spec.gateway.as_deref()).map_err(|p| p.error)?;
    let agent = app.agent(gateway).ok_or_else(|| {
        format!("live predictions need the agent of gateway {gateway}, which is not connected")
    })?;
    let capture = s
        .capture_id
        .as_deref()
        .ok_or("the capture has not started yet")?;
    let so_far = agent.capture(capture).await?;
    let results: Results = serde_json::from_value(so_far)
        .map_err(|e| format!("the agent's capture statistics are not in the expected form: {e}"))?;
    Ok(qoelab_collector::features::feature_row(s, &results))
}

/// `GET /api/v1/sessions/{id}/prediction`.
pub async fn prediction(
    State(app): State<App>,
    Path(id): Path<i64>,
) -> Result<impl IntoResponse, Problem> {
    Ok(axum::Json(predictions(&app, id).await?))
}
