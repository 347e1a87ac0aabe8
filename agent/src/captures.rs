//! The `/v1/captures` resource: live captures of an interface (also inside a network
//! namespace) into flow statistics and time series.
//!
//! | method | path | what |
//! |---|---|---|
//! | POST | `/v1/captures` | start a capture (a `CaptureRequest`); 201 with its id |
//! | GET | `/v1/captures` | the captures held (their requests, `lease_s` too), running or finished |
//! | GET | `/v1/captures/{id}` | a snapshot of the flows so far, without stopping (`?stats_only=true`: counters); renews the lease |
//! | DELETE | `/v1/captures/{id}` | stop it and return every flow record and series row |
//!
//! A capture never outlives its `max_duration_s`, nor, if its request has a `lease_s`, that
//! many seconds without a GET of it: it stops itself then, and its output waits for the
//! client. [`AgentClient`](crate::client::AgentClient) asks for a lease and renews it for as
//! long as the client lives. Output nobody collects is dropped [`UNCOLLECTED_TTL`] after the
//! capture ended, so a client that went away leaves nothing running and nothing held for long.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use axum::body::Bytes;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::routing::{get, post};
use axum::{Json, Router};
use qoelab_capture::{CaptureError, CaptureRequest, LiveCapture};
use serde::{Deserialize, Serialize};

use crate::api::{CaptureInfo, CaptureStarted, ErrorBody};
use crate::server::{AgentState, ApiError};
use crate::shaping::parse_body;

/// Most captures held at once (running or waiting to be collected).
pub const MAX_CAPTURES: usize = 32;
/// How long the output of an ended capture waits for its client.
pub const UNCOLLECTED_TTL: Duration = Duration::from_secs(600);

struct Held {
    capture: Arc<LiveCapture>,
    started_unix_ms: u64,
    ended_at: Option<Instant>,
}

/// The captures the agent holds.
#[derive(Default)]
pub struct Captures {
    held: Mutex<BTreeMap<String, Held>>,
    next: AtomicU64,
}

impl std::fmt::Debug for Captures {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Captures")
            .field("held", &self.lock().len())
            .finish()
    }
}

impl Captures {
    fn lock(&self) -> std::sync::MutexGuard<'_, BTreeMap<String, Held>> {
        self.held.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Drops the output of captures that ended more than [`UNCOLLECTED_TTL`] ago.
    pub fn sweep(&self) {
        let mut held = self.lock();
        for entry in held.values_mut() {
            if entry.ended_at.is_none() && entry.capture.is_finished() {
                entry.ended_at = Some(Instant::now());
            }
        }
        held.retain(|id, h| {
            let keep = h.ended_at.is_none_or(|t| t.elapsed() < UNCOLLECTED_TTL);
            if !keep {
                tracing::info!(capture = %id, "dropping the uncollected output of an ended capture");
            }
            keep
        });
    }

    fn get(&self, id: &str) -> Result<Arc<LiveCapture>, ApiError> {
        self.lock()
            .get(id)
            .map(|h| h.capture.clone())
            .ok_or_else(|| not_found(id))
    }
}

fn not_found(id: &str) -> ApiError {
    ApiError {
        status: StatusCode::NOT_FOUND,
        body: ErrorBody {
            error: format!(
                "no capture '{id}': it was collected already, or dropped {} s after it ended",
                UNCOLLECTED_TTL.as_secs()
            ),
            field: Some("id".into()),
            value: Some(id.into()),
            accepted: Some("an id returned by POST /v1/captures".into()),
        },
    }
}

impl From<CaptureError> for ApiError {
    fn from(err: CaptureError) -> ApiError {
        let error = err.to_string();
        let (status, field, value, accepted) = match &err {
            CaptureError::InvalidRequest {
                field,
                value,
                expected,
            } => (
                StatusCode::UNPROCESSABLE_ENTITY,
                Some(field.to_string()),
                Some(value.clone()),
                Some(expected.to_string()),
            ),
            CaptureError::Source(qoelab_capture::live::LiveError::Netns { name, source })
                if source.kind() == std::io::ErrorKind::PermissionDenied =>
            {
                (
                    StatusCode::FORBIDDEN,
                    Some("netns".into()),
                    Some(name.clone()),
                    Some("none, for the agent's own namespace (others need CAP_SYS_ADMIN)".into()),
                )
            }
            CaptureError::Source(qoelab_capture::live::LiveError::Netns { name, .. }) => (
                StatusCode::NOT_FOUND,
                Some("netns".into()),
                Some(name.clone()),
                Some("a namespace from `ip netns list`".into()),
            ),
            CaptureError::Source(qoelab_capture::live::LiveError::NoInterface { name, .. }) => (
                StatusCode::NOT_FOUND,
                Some("interface".into()),
                Some(name.clone()),
                Some("an existing interface".into()),
            ),
            CaptureError::Source(qoelab_capture::live::LiveError::LinkType { name, .. }) => (
                StatusCode::UNPROCESSABLE_ENTITY,
                Some("interface".into()),
                Some(name.clone()),
                Some("an Ethernet, loopback or raw-IP interface".into()),
            ),
            _ => (StatusCode::INTERNAL_SERVER_ERROR, None, None, None),
        };
        ApiError {
            status,
            body: ErrorBody {
                error,
                field,
                value,
                accepted,
            },
        }
    }
}

/// The routes of this resource.
pub fn routes() -> Router<AgentState> {
    Router::new()
        .route("/v1/captures", post(start).get(list))
        .route("/v1/captures/{id}", get(snapshot).delete(stop))
}

/// Sweeps ended captures every 30 s for as long as the agent runs.
pub async fn sweeper(captures: Arc<Captures>) {
    loop {
        tokio::time::sleep(Duration::from_secs(30)).await;
        captures.sweep();
    }
}

async fn blocking<T: Send + 'static>(
    work: impl FnOnce() -> Result<T, CaptureError> + Send + 'static,
) -> Result<T, ApiError> {
    tokio::task::spawn_blocking(work)
        .await
        .map_err(|e| {
            ApiError::message(
                StatusCode::INTERNAL_SERVER_ERROR,
                format!("the capture task failed: {e}"),
            )
        })?
        .map_err(ApiError::from)
}

async fn start(
    State(state): State<AgentState>,
    body: Bytes,
) -> Result<(StatusCode, Json<CaptureStarted>), ApiError> {
    let request: CaptureRequest = parse_body(&body)?;
    state.captures.sweep();
    if state.captures.lock().len() >= MAX_CAPTURES {
        return Err(ApiError::message(
            StatusCode::TOO_MANY_REQUESTS,
            format!("the agent holds {MAX_CAPTURES} captures already; stop (DELETE) one first"),
        ));
    }
    let req = request.clone();
    let capture = blocking(move || LiveCapture::start(&req)).await?;
    let id = format!(
        "c{}",
        state.captures.next.fetch_add(1, Ordering::Relaxed) + 1
    );
    let started_unix_ms = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0);
    state.captures.lock().insert(
        id.clone(),
        Held {
            capture: Arc::new(capture),
            started_unix_ms,
            ended_at: None,
        },
    );
    tracing::info!(capture = %id, interface = %request.interface, netns = ?request.netns, "capture started");
    Ok((StatusCode::CREATED, Json(CaptureStarted { id, request })))
}

async fn list(State(state): State<AgentState>) -> Json<Vec<CaptureInfo>> {
    state.captures.sweep();
    let held = state.captures.lock();
    Json(
        held.iter()
            .map(|(id, h)| CaptureInfo {
                id: id.clone(),
                request: h.capture.request().clone(),
                started_unix_ms: h.started_unix_ms,
                running: !h.capture.is_finished(),
            })
            .collect(),
    )
}

#[derive(Debug, Deserialize, Serialize)]
struct SnapshotQuery {
    #[serde(default)]
    stats_only: bool,
}

async fn snapshot(
    State(state): State<AgentState>,
    Path(id): Path<String>,
    Query(query): Query<SnapshotQuery>,
) -> Result<Json<serde_json::Value>, ApiError> {
    let capture = state.captures.get(&id)?;
    let value = if query.stats_only {
        serde_json::to_value(blocking(move || capture.stats()).await?)
    } else {
        serde_json::to_value(blocking(move || capture.snapshot()).await?)
    };
    value
        .map(Json)
        .map_err(|e| ApiError::message(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()))
}

async fn stop(
    State(state): State<AgentState>,
    Path(id): Path<String>,
) -> Result<Json<serde_json::Value>, ApiError> {
    let held = state
        .captures
        .lock()
        .remove(&id)
        .ok_or_else(|| not_found(&id))?;
    // Snapshots in flight may still hold the capture for a moment; wait for them to let go.
    let mut capture = held.capture;
    let capture = loop {
        match Arc::try_unwrap(capture) {
            Ok(c) => break c,
            Err(shared) => {
                capture = shared;
                tokio::time::sleep(Duration::from_millis(5)).await;
            }
        }
    };
    let output = blocking(move || capture.stop()).await?;
    tracing::info!(capture = %id, flows = output.flows.len(), "capture stopped");
    serde_json::to_value(output)
        .map(Json)
        .map_err(|e| ApiError::message(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()))
}
