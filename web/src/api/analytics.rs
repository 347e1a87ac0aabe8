//! Gateway analytics from ingested QoS reports and allocation decisions, and the agent's view.

use axum::extract::State;
use axum::response::IntoResponse;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use qoelab_collector::ingest::{self, AllocationDecision, AnalyticSeen, QosReport};

use crate::App;
use crate::agent::interfaces;
use crate::error::Problem;
use crate::extract::{Path, Query};

/// `GET /api/v1/analytics`: every analytic with reports or decisions.
pub async fn list(State(app): State<App>) -> Result<impl IntoResponse, Problem> {
    Ok(axum::Json(ingest::analytics(app.db()).await?))
}

/// The time window of an analytic's series.
#[derive(Debug, Default, Deserialize)]
pub struct Window {
    /// From, Unix ms (default: an hour before `to_ms`).
    pub from_ms: Option<i64>,
    /// To, Unix ms (default: the analytic's latest report or decision).
    pub to_ms: Option<i64>,
}

/// One analytic's QoS reports and allocation decisions in a window.
#[derive(Debug, Serialize)]
pub struct AnalyticSeries {
    /// The analytic.
    pub analytic: AnalyticSeen,
    /// Window start, Unix ms.
    pub from_ms: i64,
    /// Window end, Unix ms.
    pub to_ms: i64,
    /// QoS reports, oldest first.
    pub qos: Vec<QosReport>,
    /// Allocation decisions, oldest first.
    pub allocations: Vec<AllocationDecision>,
}

/// Default window length.
const HOUR_MS: i64 = 3_600_000;

/// The series of `gateway`/`analytic` in `window` (404 if it has no data at all).
pub async fn series(
    app: &App,
    gateway: &str,
    analytic: &str,
    window: &Window,
) -> Result<AnalyticSeries, Problem> {
    let seen = ingest::analytics(app.db())
        .await?
        .into_iter()
        .find(|a| a.gateway == gateway && a.analytic == analytic)
        .ok_or_else(|| {
            Problem::not_found(format!(
                "no QoS reports or allocation decisions from analytic '{analytic}' on gateway '{gateway}'"
            ))
        })?;
    let to_ms = window.to_ms.unwrap_or(seen.last_ms);
    let from_ms = window.from_ms.unwrap_or(to_ms - HOUR_MS);
    if from_ms > to_ms {
        return Err(Problem::invalid(
            "from_ms",
            from_ms,
            format!("a time before to_ms ({to_ms})"),
        ));
    }
    Ok(AnalyticSeries {
        qos: ingest::qos_between(app.db(), gateway, analytic, from_ms, to_ms).await?,
        allocations: ingest::allocations_between(app.db(), gateway, analytic, from_ms, to_ms)
            .await?,
        analytic: seen,
        from_ms,
        to_ms,
    })
}

/// `GET /api/v1/analytics/{gateway}/{analytic}?from_ms&to_ms`.
pub async fn get(
    State(app): State<App>,
    Path((gateway, analytic)): Path<(String, String)>,
    Query(window): Query<Window>,
) -> Result<impl IntoResponse, Problem> {
    Ok(axum::Json(
        series(&app, &gateway, &analytic, &window).await?,
    ))
}

/// The status and statistics of gateway `gateway`'s agent, or why they are not available.
pub async fn agent_state(
    app: &App,
    gateway: &str,
) -> (Result<Value, String>, Result<Value, String>) {
    match app.agent(gateway) {
        None => {
            let absent = Err("agent not connected".to_string());
            (absent.clone(), absent)
        }
        Some(agent) => futures::join!(agent.status(), agent.stats()),
    }
}

/// `?gateway=` of a request about one gateway (default: the first).
#[derive(Debug, Default, Deserialize)]
pub struct GatewayQuery {
    /// The gateway's name.
    pub gateway: Option<String>,
}

/// `GET /api/v1/agent?gateway=NAME`: `{gateway, connected, status, interfaces, error}` of the
/// agent of that gateway (default: the first).
pub async fn agent(
    State(app): State<App>,
    Query(q): Query<GatewayQuery>,
) -> Result<impl IntoResponse, Problem> {
    let gateway = app.gateway(q.gateway.as_deref())?;
    let (status, stats) = agent_state(&app, gateway).await;
    let stats = stats.and_then(|s| interfaces(s.clone()).map(|_| s));
    let error = status.as_ref().err().or(stats.as_ref().err()).cloned();
    Ok(axum::Json(json!({
        "gateway": gateway,
        "connected": status.is_ok() && stats.is_ok(),
        "status": status.ok(),
        "interfaces": stats.ok(),
        "error": error,
    })))
}
