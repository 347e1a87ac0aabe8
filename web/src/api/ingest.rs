//! Ingest of gateway reports: QoS reports, placement and allocation decisions, in batches with
//! an optional idempotency key (a batch sent again is stored once).

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::IntoResponse;
use serde::de::DeserializeOwned;

use qoelab_collector::Db;
use qoelab_collector::ingest::{self, Batch, Outcome};

use crate::App;
use crate::error::Problem;
use crate::extract::JsonBody;
use crate::metrics::IngestOutcome;

/// Parses and stores one batch of `kind`, counting the outcome for `/metrics`: 201 when
/// stored, 200 when it was a duplicate.
async fn ingest<T, F>(
    app: &App,
    kind: &str,
    body: &[u8],
    store: F,
) -> Result<(StatusCode, axum::Json<Outcome>), Problem>
where
    T: DeserializeOwned,
    F: AsyncFnOnce(&Db, &Batch<T>) -> qoelab_collector::Result<Outcome>,
{
    let stored = match ingest::parse_batch::<T>(body) {
        Ok(batch) => store(app.db(), &batch).await,
        Err(e) => Err(e),
    };
    let counters = app.ingest();
    match stored {
        Ok(outcome) if outcome.duplicate => {
            counters.count(kind, IngestOutcome::Duplicate);
            Ok((StatusCode::OK, axum::Json(outcome)))
        }
        Ok(outcome) => {
            counters.count(kind, IngestOutcome::Stored(outcome.stored));
            Ok((StatusCode::CREATED, axum::Json(outcome)))
        }
        Err(e) => {
            let problem = Problem::from(e);
            if problem.status.is_client_error() {
                counters.count(kind, IngestOutcome::Rejected);
            }
            Err(problem)
        }
    }
}

/// `POST /api/v1/ingest/qos`: QoS reports of gateway analytics.
pub async fn qos(
    State(app): State<App>,
    JsonBody(body): JsonBody,
) -> Result<impl IntoResponse, Problem> {
    ingest(&app, "qos", &body, ingest::qos_reports).await
}

/// `POST /api/v1/ingest/placements`: placement decisions.
pub async fn placements(
    State(app): State<App>,
    JsonBody(body): JsonBody,
) -> Result<impl IntoResponse, Problem> {
    ingest(&app, "placement", &body, ingest::placement_decisions).await
}

/// `POST /api/v1/ingest/allocations`: allocation decisions.
pub async fn allocations(
    State(app): State<App>,
    JsonBody(body): JsonBody,
) -> Result<impl IntoResponse, Problem> {
    ingest(&app, "allocation", &body, ingest::allocation_decisions).await
}
