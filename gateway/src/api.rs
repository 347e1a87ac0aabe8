//! The service's JSON API, for analytics and operators.
//!
//! | method | path | what |
//! |---|---|---|
//! | POST | `/v1/analytics` | register (or re-register) an analytic ([`Registration`]); 201 (200 when replaced) with the decision |
//! | GET | `/v1/analytics` | the registered analytics |
//! | GET | `/v1/analytics/{id}` | one analytic: its registration and its share |
//! | DELETE | `/v1/analytics/{id}` | deregister; the decision |
//! | GET | `/v1/allocation` | link, allocation, classes and analytics in force |
//! | PUT | `/v1/budget` | `{"budget_bps": "2mbit", "reserve_bps": "20kbit"}` (reserve optional); the decision |
//!
//! Errors have the agent's error body (`error`, `field`, `value`, `accepted`): 400 for a body
//! that is not JSON, 422 for a field with a wrong value, 404 for an unknown analytic, 502 when
//! the agent cannot carry out a decision (nothing changed then).

use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::routing::{get, put};
use axum::{Json, Router};
use qoelab_units::Rate;
use serde::Deserialize;
use serde::de::DeserializeOwned;
use serde_json::{Value, json};
use tokio::net::TcpListener;

use crate::ServiceError;
use crate::registration::Registration;
use crate::service::{Applied, Service, View};

/// The routes.
pub fn router(service: Service) -> Router {
    Router::new()
        .route("/v1/analytics", get(list).post(register))
        .route("/v1/analytics/{id}", get(one).delete(deregister))
        .route("/v1/allocation", get(allocation))
        .route("/v1/budget", put(budget))
        .with_state(service)
}

/// Serves the API on `listener` until `shutdown` completes.
pub async fn serve(
    listener: TcpListener,
    service: Service,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    axum::serve(listener, router(service))
        .with_graceful_shutdown(shutdown)
        .await
}

/// A budget change.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Budget {
    budget_bps: Rate,
    #[serde(default)]
    reserve_bps: Option<Rate>,
}

/// Reads a JSON body; errors name the field (`weight`, `budget_bps`), the value found there and
/// what is accepted.
fn parse<T: DeserializeOwned>(body: &[u8]) -> Result<T, ServiceError> {
    let value: Value =
        serde_json::from_slice(body).map_err(|e| ServiceError::NotJson(e.to_string()))?;
    serde_path_to_error::deserialize(&value).map_err(|err| {
        let field = err.path().to_string();
        let found = field
            .split('.')
            .filter(|part| !part.is_empty())
            .try_fold(&value, |at, part| at.get(part))
            .filter(|_| field != ".");
        ServiceError::invalid(
            if field == "." { "body" } else { &field },
            found.map_or_else(|| "(missing)".to_string(), Value::to_string),
            err.inner().to_string(),
        )
    })
}

async fn register(
    State(service): State<Service>,
    body: Bytes,
) -> Result<(StatusCode, Json<Applied>), ServiceError> {
    let registration: Registration = parse(&body)?;
    let (new, applied) = service.register(registration).await?;
    let status = if new {
        StatusCode::CREATED
    } else {
        StatusCode::OK
    };
    Ok((status, Json(applied)))
}

async fn list(State(service): State<Service>) -> Json<Vec<Registration>> {
    Json(service.view().await.analytics)
}

async fn one(
    State(service): State<Service>,
    Path(id): Path<String>,
) -> Result<Json<Value>, ServiceError> {
    let view = service.view().await;
    let registration = view
        .analytics
        .iter()
        .find(|r| r.id == id)
        .ok_or_else(|| ServiceError::Unknown { id: id.clone() })?;
    let share = view
        .allocation
        .as_ref()
        .and_then(|a| a.shares.iter().find(|s| s.id == id));
    Ok(Json(
        json!({ "registration": registration, "share": share }),
    ))
}

async fn deregister(
    State(service): State<Service>,
    Path(id): Path<String>,
) -> Result<Json<Applied>, ServiceError> {
    Ok(Json(service.deregister(&id).await?))
}

async fn allocation(State(service): State<Service>) -> Json<View> {
    Json(service.view().await)
}

async fn budget(
    State(service): State<Service>,
    body: Bytes,
) -> Result<Json<Applied>, ServiceError> {
    let budget: Budget = parse(&body)?;
    let applied = service
        .set_budget(budget.budget_bps.bps(), budget.reserve_bps.map(Rate::bps))
        .await?;
    Ok(Json(applied))
}
