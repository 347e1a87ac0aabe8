//! The `/v1/interfaces` resource: plans, rate changes, statistics and restoration.

use std::time::Duration;

use axum::body::Bytes;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::routing::{delete, get, patch};
use axum::{Json, Router};
use qoelab_shaper::plan::json_at;
use qoelab_shaper::{
    ApplyReport, IfaceRef, InterfacePlan, InterfaceStats, RateChanges, ShapeError,
};
use serde::Deserialize;
use serde::de::DeserializeOwned;

use crate::api::{ErrorBody, HOST_NETNS, ShapedInterface};
use crate::server::{AgentState, ApiError};

/// The longest stats interval accepted.
const MAX_INTERVAL_MS: u64 = 10_000;

/// The routes of this resource.
pub fn routes() -> Router<AgentState> {
    Router::new()
        .route("/v1/interfaces", get(list))
        .route("/v1/interfaces/{netns}/{iface}/plan", get(plan).put(apply))
        .route("/v1/interfaces/{netns}/{iface}/rates", patch(set_rates))
        .route("/v1/interfaces/{netns}/{iface}/stats", get(stats))
        .route("/v1/interfaces/{netns}/{iface}", delete(restore))
}

fn iface((netns, name): (String, String)) -> IfaceRef {
    IfaceRef::new((netns != HOST_NETNS).then_some(netns.as_str()), &name)
}

/// Runs blocking shaper work (netlink round trips) off the async tasks. On a multi-thread
/// runtime (`server::run` builds one) it runs on this worker thread after the worker's other
/// tasks are handed to another (`block_in_place`): for a sub-millisecond rate change that is
/// much cheaper than a hop to the blocking pool and back. Elsewhere it goes to the pool.
async fn blocking<T: Send + 'static>(
    work: impl FnOnce() -> Result<T, ShapeError> + Send + 'static,
) -> Result<T, ApiError> {
    use tokio::runtime::{Handle, RuntimeFlavor};
    let result = if Handle::current().runtime_flavor() == RuntimeFlavor::MultiThread {
        tokio::task::block_in_place(work)
    } else {
        tokio::task::spawn_blocking(work).await.map_err(|e| {
            ApiError::message(
                StatusCode::INTERNAL_SERVER_ERROR,
                format!("the shaper task failed: {e}"),
            )
        })?
    };
    result.map_err(ApiError::from)
}

/// Reads a JSON body into `T`; errors name the field (a path like `egress.classes[0].rate_bps`),
/// the value found there and the accepted form.
pub fn parse_body<T: DeserializeOwned>(body: &[u8]) -> Result<T, ApiError> {
    // Good bodies straight from the bytes; only a bad one is read again to find its field.
    if let Ok(parsed) = serde_json::from_slice(body) {
        return Ok(parsed);
    }
    let value: serde_json::Value = serde_json::from_slice(body).map_err(|e| ApiError {
        status: StatusCode::BAD_REQUEST,
        body: ErrorBody {
            error: format!("the body is not JSON: {e}"),
            field: None,
            value: None,
            accepted: Some("a JSON object".into()),
        },
    })?;
    serde_path_to_error::deserialize(&value).map_err(|err| {
        let field = err.path().to_string();
        let found = json_at(&value, &field).map(|v| match v {
            serde_json::Value::String(s) => s.clone(),
            other => other.to_string(),
        });
        ApiError {
            status: StatusCode::UNPROCESSABLE_ENTITY,
            body: ErrorBody {
                error: format!("{field}: {}", err.inner()),
                accepted: Some(accepted_form(&field).into()),
                field: Some(field),
                value: found,
            },
        }
    })
}

/// The accepted form of a field, from its name's unit suffix.
fn accepted_form(field: &str) -> &'static str {
    let last = field.rsplit('.').next().unwrap_or(field);
    match last {
        l if l.ends_with("_bps") => qoelab_units::RATE_FORMS,
        l if l.ends_with("_bytes") => qoelab_units::SIZE_FORMS,
        l if l.ends_with("_ms") => {
            "a number of milliseconds, or a duration string such as 100ms or 1.5s"
        }
        l if l.ends_with("_percent") => "a number of percent from 0 to 100, or a string such as 1%",
        "protocol" => "tcp, udp, sctp, icmp, icmpv6, or a protocol number",
        "src_port" | "dst_port" => "a port 1-65535 or a range \"first-last\"",
        "src" | "dst" => "an IPv4 or IPv6 address with an optional /length",
        _ => {
            "the fields of a plan: egress/ingress with rate_bps, default and classes (see the README)"
        }
    }
}

async fn list(State(state): State<AgentState>) -> Json<Vec<ShapedInterface>> {
    let shaper = state.shaper;
    Json(
        shaper
            .shaped()
            .into_iter()
            .filter_map(|iface| {
                shaper
                    .plan(&iface)
                    .map(|plan| ShapedInterface { iface, plan })
            })
            .collect(),
    )
}

async fn plan(
    State(state): State<AgentState>,
    Path(path): Path<(String, String)>,
) -> Result<Json<InterfacePlan>, ApiError> {
    let iface = iface(path);
    state.shaper.plan(&iface).map(Json).ok_or_else(|| {
        ShapeError::NotShaped {
            iface: iface.to_string(),
        }
        .into()
    })
}

async fn apply(
    State(state): State<AgentState>,
    Path(path): Path<(String, String)>,
    body: Bytes,
) -> Result<Json<ApplyReport>, ApiError> {
    let plan: InterfacePlan = parse_body(&body)?;
    let iface = iface(path);
    blocking(move || state.shaper.apply(&iface, plan))
        .await
        .map(Json)
}

async fn set_rates(
    State(state): State<AgentState>,
    Path(path): Path<(String, String)>,
    body: Bytes,
) -> Result<Json<ApplyReport>, ApiError> {
    let changes: RateChanges = parse_body(&body)?;
    let iface = iface(path);
    blocking(move || state.shaper.set_rates(&iface, &changes))
        .await
        .map(Json)
}

/// Query of the stats route.
#[derive(Debug, Deserialize)]
struct StatsQuery {
    /// Milliseconds between the two reads rates come from; 0 for one read without rates.
    #[serde(default)]
    interval_ms: u64,
}

async fn stats(
    State(state): State<AgentState>,
    Path(path): Path<(String, String)>,
    Query(query): Query<StatsQuery>,
) -> Result<Json<InterfaceStats>, ApiError> {
    if query.interval_ms > MAX_INTERVAL_MS {
        return Err(ApiError {
            status: StatusCode::UNPROCESSABLE_ENTITY,
            body: ErrorBody {
                error: "interval_ms is too long".into(),
                field: Some("interval_ms".into()),
                value: Some(query.interval_ms.to_string()),
                accepted: Some(format!("0 to {MAX_INTERVAL_MS}")),
            },
        });
    }
    let iface = iface(path);
    let interval = Duration::from_millis(query.interval_ms);
    blocking(move || {
        if interval.is_zero() {
            state.shaper.stats(&iface)
        } else {
            state.shaper.stats_over(&iface, interval)
        }
    })
    .await
    .map(Json)
}

async fn restore(
    State(state): State<AgentState>,
    Path(path): Path<(String, String)>,
) -> Result<StatusCode, ApiError> {
    let iface = iface(path);
    blocking(move || state.shaper.restore(&iface))
        .await
        .map(|()| StatusCode::NO_CONTENT)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn body_errors_name_the_field_the_value_and_the_form() {
        let err = parse_body::<InterfacePlan>(
            br#"{"egress": {"rate_bps": "100mbit", "default": {"rate_bps": "1mbit"},
            "classes": [{"name": "a", "rate_bps": "5Mbps"}]}}"#,
        )
        .unwrap_err();
        assert_eq!(err.status, StatusCode::UNPROCESSABLE_ENTITY);
        assert_eq!(
            err.body.field.as_deref(),
            Some("egress.classes[0].rate_bps")
        );
        assert_eq!(err.body.value.as_deref(), Some("5Mbps"));
        assert!(err.body.accepted.unwrap().contains("750kbit"));
        let err = parse_body::<InterfacePlan>(b"{").unwrap_err();
        assert_eq!(err.status, StatusCode::BAD_REQUEST);
        let err = parse_body::<InterfacePlan>(
            br#"{"egress": {"rate_bps": 1, "default": {"rate_bps": 1}, "bogus": 1}}"#,
        )
        .unwrap_err();
        assert_eq!(err.body.field.as_deref(), Some("egress.bogus"));
    }
}
