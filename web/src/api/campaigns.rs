//! Campaigns: create (and start), list, read, start/resume, stop, live events, export.

use std::io;

use axum::body::Body;
use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use bytes::Bytes;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use qoelab_collector::campaign::{self, Campaign, CampaignSpec, Progress};
use qoelab_collector::export::{self, Format};

use crate::App;
use crate::error::Problem;
use crate::extract::{Json, Path, Query, from_value};

/// Stores `spec` and starts it if asked; returns the campaign. A gateway this server does not
/// have is refused (422 naming `gateway`) before anything is stored.
pub async fn create_campaign(
    app: &App,
    spec: &CampaignSpec,
    start: bool,
) -> Result<Campaign, Problem> {
    app.gateway(spec.gateway.as_deref())?;
    let id = campaign::create(app.db(), spec).await?;
    if start {
        app.control().start(id).await?;
    }
    Ok(campaign::get(app.db(), id).await?)
}

/// A campaign with its sessions per limit.
#[derive(Debug, Serialize)]
pub struct CampaignDetail {
    /// The campaign.
    #[serde(flatten)]
    pub campaign: Campaign,
    /// Sessions per state for each limit (`rate_bps` `null` = unlimited).
    pub by_limit: Vec<LimitProgress>,
}

/// Sessions per state of one limit.
#[derive(Debug, Serialize)]
pub struct LimitProgress {
    /// The limit, bit/s; `None` = unlimited.
    pub rate_bps: Option<u64>,
    /// Sessions per state.
    pub progress: Progress,
}

/// Campaign `id` with its sessions per limit.
pub async fn detail(app: &App, id: i64) -> Result<CampaignDetail, Problem> {
    let campaign = campaign::get(app.db(), id).await?;
    let by_limit = campaign::progress_by_limit(app.db(), id)
        .await?
        .into_iter()
        .map(|(rate_bps, progress)| LimitProgress { rate_bps, progress })
        .collect();
    Ok(CampaignDetail { campaign, by_limit })
}

/// `GET /api/v1/campaigns`.
pub async fn list(State(app): State<App>) -> Result<impl IntoResponse, Problem> {
    Ok(axum::Json(campaign::list(app.db()).await?))
}

/// `POST /api/v1/campaigns` with a spec and `"start": true|false` (default false) → 201 with
/// the campaign.
pub async fn create(
    State(app): State<App>,
    Json(mut body): Json<Value>,
) -> Result<impl IntoResponse, Problem> {
    let start = match body.as_object_mut().and_then(|o| o.remove("start")) {
        None => false,
        Some(Value::Bool(start)) => start,
        Some(other) => {
            return Err(Problem::invalid("start", other, "true or false")
                .with_status(StatusCode::BAD_REQUEST));
        }
    };
    let spec: CampaignSpec = from_value(body)?;
    let c = create_campaign(&app, &spec, start).await?;
    let location = format!("/api/v1/campaigns/{}", c.id);
    Ok((
        StatusCode::CREATED,
        [(header::LOCATION, location)],
        axum::Json(c),
    ))
}

/// `GET /api/v1/campaigns/{id}`.
pub async fn get(
    State(app): State<App>,
    Path(id): Path<i64>,
) -> Result<impl IntoResponse, Problem> {
    Ok(axum::Json(detail(&app, id).await?))
}

/// `POST /api/v1/campaigns/{id}/start`: starts a pending or resumes a stopped campaign.
pub async fn start(
    State(app): State<App>,
    Path(id): Path<i64>,
) -> Result<impl IntoResponse, Problem> {
    app.control().start(id).await?;
    Ok(axum::Json(campaign::get(app.db(), id).await?))
}

/// `POST /api/v1/campaigns/{id}/stop`: its running session goes back to pending.
pub async fn stop(
    State(app): State<App>,
    Path(id): Path<i64>,
) -> Result<impl IntoResponse, Problem> {
    app.control().stop(id).await?;
    Ok(axum::Json(campaign::get(app.db(), id).await?))
}

/// `GET /api/v1/campaigns/{id}/events`: server-sent events.
pub async fn events(
    State(app): State<App>,
    Path(id): Path<i64>,
) -> Result<impl IntoResponse, Problem> {
    crate::events::stream(app, id).await
}

/// `?format=` of an export.
#[derive(Debug, Deserialize)]
pub struct ExportQuery {
    /// `csv`, `jsonl` or `parquet`.
    pub format: String,
}

/// `GET /api/v1/campaigns/{id}/export?format=csv|jsonl|parquet`: the dataset, streamed.
pub async fn export(
    State(app): State<App>,
    Path(id): Path<i64>,
    Query(q): Query<ExportQuery>,
) -> Result<Response, Problem> {
    download(&app, id, &q.format).await
}

/// Campaign `id`'s dataset in `format`, streamed through a channel as the collector writes
/// it: memory stays bounded whatever the campaign's size. An error after the first bytes
/// ends the download early (the client sees a truncated transfer, never a partial file
/// passed off as whole).
pub async fn download(app: &App, id: i64, format: &str) -> Result<Response, Problem> {
    let format: Format = format.parse()?;
    let c = campaign::get(app.db(), id).await?;
    let (sender, mut receiver) = tokio::sync::mpsc::channel::<io::Result<Bytes>>(4);
    let db = app.db().clone();
    tokio::spawn(async move {
        let chunks = sender.clone();
        let written = export::stream(&db, id, format, async move |chunk: Vec<u8>| {
            if chunk.is_empty() {
                return Ok(());
            }
            chunks
                .send(Ok(Bytes::from(chunk)))
                .await
                .map_err(|_| qoelab_collector::Error::Io(io::Error::other("the client went away")))
        })
        .await;
        if let Err(e) = written {
            tracing::warn!(campaign = id, "export ended early: {e}");
            let _ = sender.send(Err(io::Error::other(e.to_string()))).await;
        }
    });
    let body = futures::stream::poll_fn(move |cx| receiver.poll_recv(cx));
    let slug: String = c
        .spec
        .name
        .chars()
        .map(|ch| {
            if ch.is_ascii_alphanumeric() {
                ch.to_ascii_lowercase()
            } else {
                '-'
            }
        })
        .collect();
    let filename = format!(
        "campaign-{id}-{}.{}",
        slug.trim_matches('-'),
        format.extension()
    );
    Ok((
        [
            (header::CONTENT_TYPE, format.content_type().to_string()),
            (
                header::CONTENT_DISPOSITION,
                format!("attachment; filename=\"{filename}\""),
            ),
        ],
        Body::from_stream(body),
    )
        .into_response())
}
