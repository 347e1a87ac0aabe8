//! The video server: HTTP/1.1, a manifest and segments of a synthetic video.
//!
//! | route | answer |
//! |---|---|
//! | `GET /manifest.json` | the [`Manifest`] as JSON |
//! | `GET /segments/{level}/{index}` | segment `index` (any number: the video loops) at `level` (0 = lowest), `application/octet-stream` of the manifest's size |
//!
//! Anything else is a 4xx with a JSON body `{"error": "..."}` naming the bad value.

use std::future::Future;
use std::sync::Arc;

use axum::Json;
use axum::Router;
use axum::extract::rejection::PathRejection;
use axum::extract::{Path, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use bytes::Bytes;

use super::{Manifest, VideoError, VideoSpec};
use crate::random::Seeded;

#[derive(Debug)]
struct Video {
    manifest: Manifest,
    /// Random bytes as long as the largest segment; a segment is a prefix of it.
    payload: Bytes,
}

/// The routes of a server for the video `spec`.
pub fn router(spec: &VideoSpec) -> Result<Router, VideoError> {
    let manifest = spec.manifest()?;
    let largest = manifest
        .segment_bytes
        .iter()
        .flatten()
        .copied()
        .max()
        .unwrap_or(0);
    let mut payload = vec![0u8; largest as usize];
    Seeded::new(spec.seed).fill(&mut payload);
    let video = Arc::new(Video {
        manifest,
        payload: Bytes::from(payload),
    });
    Ok(Router::new()
        .route("/manifest.json", get(manifest_json))
        .route("/segments/{level}/{index}", get(segment))
        .fallback(not_found)
        .with_state(video))
}

/// Serves the video `spec` on `listener` until `shutdown` completes.
pub async fn serve(
    listener: tokio::net::TcpListener,
    spec: &VideoSpec,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<(), VideoError> {
    let app = router(spec)?;
    axum::serve(listener, app)
        .with_graceful_shutdown(shutdown)
        .await
        .map_err(VideoError::Serve)
}

async fn manifest_json(State(video): State<Arc<Video>>) -> Json<Manifest> {
    Json(video.manifest.clone())
}

async fn segment(
    State(video): State<Arc<Video>>,
    path: Result<Path<(usize, u64)>, PathRejection>,
) -> Response {
    let Ok(Path((level, index))) = path else {
        return error(
            StatusCode::BAD_REQUEST,
            "use /segments/{level}/{index} with a level number and a segment number".into(),
        );
    };
    match video.manifest.bytes(level, index) {
        Some(bytes) => (
            [(header::CONTENT_TYPE, "application/octet-stream")],
            video.payload.slice(..bytes as usize),
        )
            .into_response(),
        None => error(
            StatusCode::NOT_FOUND,
            format!(
                "level {level} does not exist: levels are 0 to {}",
                video.manifest.bitrates_bps.len() - 1
            ),
        ),
    }
}

async fn not_found(uri: axum::http::Uri) -> Response {
    error(
        StatusCode::NOT_FOUND,
        format!("no route {uri}: use /manifest.json or /segments/{{level}}/{{index}}"),
    )
}

fn error(status: StatusCode, message: String) -> Response {
    (status, Json(serde_json::json!({ "error": message }))).into_response()
}
