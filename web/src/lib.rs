//! The web face of qoelab: server-rendered pages, a JSON API under `/api/v1` for everything
//! the pages do plus ingest and the external-client protocol, live campaign progress over
//! server-sent events, streamed dataset exports, an OpenAPI document, `/healthz` and Prometheus
//! `/metrics`.
//!
//! It runs over any runner through the collector's object-safe
//! [`Control`](qoelab_collector::runner::Control) and reads the agent through [`AgentView`], so
//! it does not care whether the lab, a real agent or a test script is behind them. Pages work
//! offline: no CDN, no external fonts, CSS and a little JavaScript served by the app, charts
//! rendered as SVG on the server.
//!
//! Not here: running sessions (the collector's runner), shaping and capture (the agent),
//! training algorithms (the classifier).

#![recursion_limit = "512"]

pub mod agent;
mod api;
mod assets;
mod auth;
mod chart;
mod client_view;
mod error;
mod events;
mod extract;
mod metrics;
mod openapi;
mod pages;
mod state;
mod totals;
mod training;

use std::future::Future;

use axum::Router;
use axum::extract::DefaultBodyLimit;
use axum::http::Uri;
use axum::middleware::{from_fn, from_fn_with_state};
use axum::response::{IntoResponse, Response};
use axum::routing::get;

pub use agent::AgentView;
pub use auth::check_exposure;
pub use client_view::ClientView;
pub use error::Problem;
pub use state::App;

/// Largest request body outside ingest: forms and API calls.
pub const BODY_LIMIT_BYTES: usize = 1 << 20;

/// Every route: pages, API, documents.
pub fn router(app: App) -> Router {
    let pages = pages::routes()
        .route_layer(from_fn_with_state(app.clone(), auth::page_guard))
        .merge(pages::login::routes())
        .layer(from_fn(error::html_problems))
        .layer(from_fn(auth::csrf_cookie));
    let api = api::routes()
        .route("/metrics", get(metrics::render))
        .route_layer(from_fn_with_state(app.clone(), auth::api_guard));
    Router::new()
        .merge(pages)
        .merge(api)
        .route("/api/openapi.json", get(openapi::document))
        .route("/healthz", get(healthz))
        .route("/static/{file}", get(assets::serve))
        .fallback(not_found)
        .layer(from_fn_with_state(app.clone(), forget_totals_after_changes))
        .layer(DefaultBodyLimit::max(BODY_LIMIT_BYTES))
        .with_state(app)
}

/// Serves `app` on `listener` until `shutdown` completes; live streams end then too.
pub async fn serve(
    listener: tokio::net::TcpListener,
    app: App,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let token = app.shutdown().clone();
    let stop = async move {
        shutdown.await;
        token.cancel();
    };
    axum::serve(listener, router(app))
        .with_graceful_shutdown(stop)
        .await
}

/// Any request but GET or HEAD may change sessions: cached totals are forgotten after it.
async fn forget_totals_after_changes(
    axum::extract::State(app): axum::extract::State<App>,
    request: axum::extract::Request,
    next: axum::middleware::Next,
) -> Response {
    let reads = matches!(
        *request.method(),
        axum::http::Method::GET | axum::http::Method::HEAD
    );
    let response = next.run(request).await;
    if !reads {
        app.totals().forget();
    }
    response
}

/// `GET /healthz`: 200 when the database answers, 503 otherwise.
async fn healthz(axum::extract::State(app): axum::extract::State<App>) -> Response {
    match qoelab_collector::campaign::progress(app.db(), -1).await {
        Ok(_) => "ok\n".into_response(),
        Err(e) => Problem::from(e)
            .with_status(axum::http::StatusCode::SERVICE_UNAVAILABLE)
            .into_response(),
    }
}

/// 404 for any other path: JSON under `/api`, a page elsewhere.
async fn not_found(uri: Uri) -> Response {
    let problem = Problem::not_found(format!("nothing at {}", uri.path()));
    if uri.path().starts_with("/api") || uri.path() == "/metrics" {
        problem.into_response()
    } else {
        (problem.status, pages::layout::problem_page(&problem)).into_response()
    }
}
