//! Server-rendered pages. Every page works without JavaScript; the script only adds live
//! progress (server-sent events) and self-refreshing panels.

pub mod analytics;
pub mod campaigns;
pub mod dashboard;
pub mod form;
pub mod format;
pub mod layout;
pub mod login;
pub mod models;
pub mod sessions;

use axum::Router;
use axum::routing::{get, post};

use crate::App;

/// The pages that need a login when a token is configured.
pub fn routes() -> Router<App> {
    Router::new()
        .route("/", get(dashboard::show))
        .route("/agent", get(dashboard::agent_panel))
        .route("/campaigns", get(campaigns::list).post(campaigns::create))
        .route("/campaigns/new", get(campaigns::new_form))
        .route("/campaigns/{id}", get(campaigns::show))
        .route("/campaigns/{id}/events", get(campaigns::events))
        .route("/campaigns/{id}/start", post(campaigns::start))
        .route("/campaigns/{id}/stop", post(campaigns::stop))
        .route("/campaigns/{id}/export/{format}", get(campaigns::export))
        .route("/sessions", get(sessions::list))
        .route("/sessions/{id}", get(sessions::show))
        .route("/sessions/{id}/prediction", get(sessions::prediction))
        .route("/models", get(models::list).post(models::train))
        .route("/models/{id}", get(models::show))
        .route("/models/{id}/delete", post(models::delete))
        .route("/analytics", get(analytics::list))
        .route("/analytics/{gateway}/{analytic}", get(analytics::show))
}
