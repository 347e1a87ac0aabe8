//! [`Problem`]: the one error type of every handler. It becomes a response in one place: JSON
//! (`{"error", "field", "value", "accepted"}`) for the API; pages turn the same problem into an
//! HTML page ([`html_problems`]), so no handler formats errors itself.

use axum::extract::Request;
use axum::http::{StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use serde::Serialize;

/// What went wrong, for whom, and what would be accepted.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Problem {
    /// The HTTP status.
    #[serde(skip)]
    pub status: StatusCode,
    /// One line: what was wrong and what to do.
    pub error: String,
    /// The field at fault, e.g. `limits` or `items[3].knob`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub field: Option<String>,
    /// The value given.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub value: Option<String>,
    /// What would be accepted.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub accepted: Option<String>,
}

impl Problem {
    /// A problem without a field.
    pub fn new(status: StatusCode, error: impl Into<String>) -> Problem {
        Problem {
            status,
            error: error.into(),
            field: None,
            value: None,
            accepted: None,
        }
    }

    /// 422: `field` has `value`; `accepted` says what would do.
    pub fn invalid(field: &str, value: impl ToString, accepted: impl Into<String>) -> Problem {
        let (value, accepted) = (value.to_string(), accepted.into());
        Problem {
            status: StatusCode::UNPROCESSABLE_ENTITY,
            error: format!("{field} = '{value}' is not accepted: {accepted}"),
            field: Some(field.to_string()),
            value: Some(value),
            accepted: Some(accepted),
        }
    }

    /// 404.
    pub fn not_found(what: impl Into<String>) -> Problem {
        Problem::new(StatusCode::NOT_FOUND, what)
    }

    /// The same problem with another status.
    pub fn with_status(mut self, status: StatusCode) -> Problem {
        self.status = status;
        self
    }
}

impl From<qoelab_collector::Error> for Problem {
    fn from(e: qoelab_collector::Error) -> Problem {
        use qoelab_collector::Error as E;
        let status = match &e {
            E::Invalid {
                field,
                value,
                accepted,
            } => return Problem::invalid(field, value, accepted.clone()),
            E::NotFound(_) => StatusCode::NOT_FOUND,
            E::Conflict(_) => StatusCode::CONFLICT,
            _ if e.is_transient() => StatusCode::SERVICE_UNAVAILABLE,
            _ => {
                tracing::error!("request failed: {e}");
                StatusCode::INTERNAL_SERVER_ERROR
            }
        };
        Problem::new(status, e.to_string())
    }
}

impl From<qoelab_classifier::Error> for Problem {
    fn from(e: qoelab_classifier::Error) -> Problem {
        use qoelab_classifier::Error as E;
        let field = match &e {
            E::InvalidParameter {
                name,
                value,
                expected,
            } => {
                let field = name.trim_start_matches("--").replace('-', "_");
                return Problem::invalid(&field, value, expected.clone());
            }
            E::UnknownColumn { .. } | E::OneClass { .. } | E::Leakage { .. } => Some("label"),
            E::MissingValues { .. } => Some("missing"),
            E::Io { .. } | E::ModelFormat(_) => {
                tracing::error!("model failed: {e}");
                return Problem::new(StatusCode::INTERNAL_SERVER_ERROR, e.to_string());
            }
            _ => None,
        };
        Problem {
            field: field.map(str::to_string),
            ..Problem::new(StatusCode::UNPROCESSABLE_ENTITY, e.to_string())
        }
    }
}

impl IntoResponse for Problem {
    fn into_response(self) -> Response {
        let mut response = (self.status, axum::Json(&self)).into_response();
        if self.status == StatusCode::UNAUTHORIZED {
            response.headers_mut().insert(
                header::WWW_AUTHENTICATE,
                header::HeaderValue::from_static("Bearer"),
            );
        }
        response.extensions_mut().insert(self);
        response
    }
}

/// Page middleware: a response made from a [`Problem`] becomes an HTML page with the same
/// status.
pub async fn html_problems(request: Request, next: Next) -> Response {
    let response = next.run(request).await;
    match response.extensions().get::<Problem>() {
        Some(problem) => {
            let problem = problem.clone();
            (problem.status, crate::pages::layout::problem_page(&problem)).into_response()
        }
        None => response,
    }
}
