//! Models: list, train (a background job), jobs, read, delete, download.

use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::IntoResponse;

use qoelab_collector::models;

use crate::App;
use crate::error::Problem;
use crate::extract::{Json, Path};
use crate::training::{self, TrainRequest};

/// `GET /api/v1/models`: stored models, newest first.
pub async fn list(State(app): State<App>) -> Result<impl IntoResponse, Problem> {
    Ok(axum::Json(models::list(app.db()).await?))
}

/// `POST /api/v1/models`: checks the request, builds the dataset and starts training → 202
/// with the job (poll `/api/v1/models/jobs/{id}`).
pub async fn train(
    State(app): State<App>,
    Json(request): Json<TrainRequest>,
) -> Result<impl IntoResponse, Problem> {
    let job = training::start(&app, request).await?;
    let location = format!("/api/v1/models/jobs/{}", job.id);
    Ok((
        StatusCode::ACCEPTED,
        [(header::LOCATION, location)],
        axum::Json(job),
    ))
}

/// `GET /api/v1/models/jobs`: recent training jobs, newest first.
pub async fn jobs(State(app): State<App>) -> impl IntoResponse {
    axum::Json(app.training().list())
}

/// `GET /api/v1/models/jobs/{id}`.
pub async fn job(
    State(app): State<App>,
    Path(id): Path<u64>,
) -> Result<impl IntoResponse, Problem> {
    app.training().get(id).map(axum::Json).ok_or_else(|| {
        Problem::not_found(format!("no training job {id} since this server started"))
    })
}

/// `GET /api/v1/models/{id}`: the model's record (everything but the fitted trees or
/// coefficients).
pub async fn get(
    State(app): State<App>,
    Path(id): Path<i64>,
) -> Result<impl IntoResponse, Problem> {
    let (info, model) = models::get(app.db(), id).await?;
    Ok(axum::Json(
        serde_json::json!({ "info": info, "model": model.summary() }),
    ))
}

/// `DELETE /api/v1/models/{id}` → 204.
pub async fn delete(
    State(app): State<App>,
    Path(id): Path<i64>,
) -> Result<impl IntoResponse, Problem> {
    models::delete(app.db(), id).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// `GET /api/v1/models/{id}/file`: the whole model as a file for `qoelab predict --model`.
pub async fn file(
    State(app): State<App>,
    Path(id): Path<i64>,
) -> Result<impl IntoResponse, Problem> {
    let (info, model) = models::get(app.db(), id).await?;
    let bytes = model.to_bytes()?;
    let disposition = format!(
        "attachment; filename=\"model-{}-{}.json\"",
        info.id, info.algorithm
    );
    Ok((
        [
            (header::CONTENT_TYPE, "application/json".to_string()),
            (header::CONTENT_DISPOSITION, disposition),
        ],
        bytes,
    ))
}
