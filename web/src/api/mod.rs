//! The JSON API under `/api/v1`: everything the pages do, plus ingest and the external-client
//! protocol. Each module holds the operations the pages share and their JSON handlers.
//! Documented in [`crate::openapi`].

pub mod analytics;
pub mod campaigns;
pub mod ingest;
pub mod models;
pub mod sessions;

use axum::Router;
use axum::extract::DefaultBodyLimit;
use axum::routing::{get, post};

use crate::App;

/// Largest ingest body: a batch of [`qoelab_collector::ingest::MAX_BATCH`] items.
pub const INGEST_LIMIT_BYTES: usize = 16 << 20;

/// The API routes.
pub fn routes() -> Router<App> {
    let ingest = Router::new()
        .route("/api/v1/ingest/qos", post(ingest::qos))
        .route("/api/v1/ingest/placements", post(ingest::placements))
        .route("/api/v1/ingest/allocations", post(ingest::allocations))
        .layer(DefaultBodyLimit::max(INGEST_LIMIT_BYTES));
    Router::new()
        .route("/api/v1/agent", get(analytics::agent))
        .route(
            "/api/v1/campaigns",
            get(campaigns::list).post(campaigns::create),
        )
        .route("/api/v1/campaigns/{id}", get(campaigns::get))
        .route("/api/v1/campaigns/{id}/start", post(campaigns::start))
        .route("/api/v1/campaigns/{id}/stop", post(campaigns::stop))
        .route("/api/v1/campaigns/{id}/events", get(campaigns::events))
        .route("/api/v1/campaigns/{id}/export", get(campaigns::export))
        .route("/api/v1/campaigns/{id}/next", post(sessions::external_next))
        .route("/api/v1/sessions", get(sessions::list))
        .route("/api/v1/sessions/{id}", get(sessions::get))
        .route(
            "/api/v1/sessions/{id}/start",
            post(sessions::external_start),
        )
        .route(
            "/api/v1/sessions/{id}/finish",
            post(sessions::external_finish),
        )
        .route(
            "/api/v1/sessions/{id}/prediction",
            get(sessions::prediction),
        )
        .route("/api/v1/analytics", get(analytics::list))
        .route(
            "/api/v1/analytics/{gateway}/{analytic}",
            get(analytics::get),
        )
        .route("/api/v1/models", get(models::list).post(models::train))
        .route("/api/v1/models/jobs", get(models::jobs))
        .route("/api/v1/models/jobs/{id}", get(models::job))
        .route(
            "/api/v1/models/{id}",
            get(models::get).delete(models::delete),
        )
        .route("/api/v1/models/{id}/file", get(models::file))
        .merge(ingest)
}
