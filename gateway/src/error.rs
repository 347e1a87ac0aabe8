//! The service's one error type and how it becomes an HTTP answer (the agent's error body:
//! `error`, `field`, `value`, `accepted`).

use axum::Json;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use qoelab_agent::api::ErrorBody;
use qoelab_agent::client::ClientError;
use qoelab_planner::PlanError;
use qoelab_workload::model::ModelError;

/// What went wrong, for the API and the command line.
#[derive(Debug, thiserror::Error)]
pub enum ServiceError {
    /// An input has a value outside what is accepted.
    #[error("{field} = {value} is not accepted: {accepted}")]
    Invalid {
        /// The field, e.g. `weight` or `items[0].port`.
        field: String,
        /// The value given.
        value: String,
        /// What would be accepted.
        accepted: String,
    },
    /// A request body that is not JSON.
    #[error("the body is not JSON: {0}")]
    NotJson(String),
    /// No analytic of this id is registered.
    #[error("no analytic '{id}' is registered: see GET /v1/analytics")]
    Unknown {
        /// The id asked for.
        id: String,
    },
    /// The uplink is shaped by someone else already.
    #[error("{0}")]
    Conflict(String),
    /// The agent could not carry out a decision; the previous one stays in force.
    #[error("the agent could not {what}: {source}; the previous allocation stays in force")]
    Agent {
        /// What was being done, e.g. `add the class of cam-1`.
        what: String,
        /// The agent's error.
        source: Box<ClientError>,
    },
    /// A resource the service needs at start (database, MQTT broker) is unusable.
    #[error("{what}: {reason}")]
    Setup {
        /// What was being set up.
        what: String,
        /// Why it failed.
        reason: String,
    },
}

impl ServiceError {
    /// A refused value of `field`.
    pub fn invalid(
        field: impl Into<String>,
        value: impl ToString,
        accepted: impl Into<String>,
    ) -> ServiceError {
        ServiceError::Invalid {
            field: field.into(),
            value: value.to_string(),
            accepted: accepted.into(),
        }
    }

    /// The agent failed to `what`.
    pub fn agent(what: impl Into<String>, source: ClientError) -> ServiceError {
        ServiceError::Agent {
            what: what.into(),
            source: Box::new(source),
        }
    }

    fn status(&self) -> StatusCode {
        match self {
            ServiceError::Invalid { .. } => StatusCode::UNPROCESSABLE_ENTITY,
            ServiceError::NotJson(_) => StatusCode::BAD_REQUEST,
            ServiceError::Unknown { .. } => StatusCode::NOT_FOUND,
            ServiceError::Conflict(_) => StatusCode::CONFLICT,
            ServiceError::Agent { .. } => StatusCode::BAD_GATEWAY,
            ServiceError::Setup { .. } => StatusCode::SERVICE_UNAVAILABLE,
        }
    }
}

impl From<PlanError> for ServiceError {
    fn from(err: PlanError) -> ServiceError {
        match err {
            // The planner names fields as `analytic 'cam-1' weight`; the API's field is `weight`.
            PlanError::Invalid {
                field,
                value,
                accepted,
            } => {
                let field = match field.strip_prefix("analytic '") {
                    Some(rest) => rest
                        .split_once("' ")
                        .map_or(field.clone(), |(_, f)| f.into()),
                    None => field,
                };
                ServiceError::Invalid {
                    field,
                    value,
                    accepted,
                }
            }
            PlanError::Syntax {
                source_name,
                message,
            } => ServiceError::invalid(source_name, "(as given)", message),
            PlanError::Model(model) => model.into(),
        }
    }
}

impl From<ModelError> for ServiceError {
    fn from(err: ModelError) -> ServiceError {
        match err {
            ModelError::UnknownKind { kind, known } => {
                ServiceError::invalid("kind", format!("'{kind}'"), format!("one of {known}"))
            }
            ModelError::KnobOutOfRange { knob, k_min, .. } => {
                ServiceError::invalid("k_min", knob, format!("a knob in [{k_min}, 1]"))
            }
            ModelError::Invalid {
                field,
                value,
                accepted,
                ..
            } => ServiceError::invalid(field, value, accepted),
            ModelError::Syntax(message) => ServiceError::invalid("models", "(file)", message),
        }
    }
}

impl IntoResponse for ServiceError {
    fn into_response(self) -> Response {
        let status = self.status();
        let error = self.to_string();
        let body = match self {
            ServiceError::Invalid {
                field,
                value,
                accepted,
            } => ErrorBody {
                error,
                field: Some(field),
                value: Some(value),
                accepted: Some(accepted),
            },
            ServiceError::Unknown { id } => ErrorBody {
                error,
                field: Some("id".into()),
                value: Some(id),
                accepted: Some("the id of a registered analytic".into()),
            },
            ServiceError::NotJson(_) => ErrorBody {
                error,
                field: Some("body".into()),
                value: None,
                accepted: Some("a JSON object".into()),
            },
            _ => ErrorBody {
                error,
                field: None,
                value: None,
                accepted: None,
            },
        };
        (status, Json(body)).into_response()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn planner_fields_become_api_fields() {
        let err: ServiceError =
            PlanError::invalid("analytic 'cam-1' weight", -1, "a positive finite number").into();
        assert_eq!(
            err.to_string(),
            "weight = -1 is not accepted: a positive finite number"
        );
        assert_eq!(err.status(), StatusCode::UNPROCESSABLE_ENTITY);
        let err: ServiceError = PlanError::invalid("budget", "0bit", "a positive rate").into();
        assert!(matches!(err, ServiceError::Invalid { field, .. } if field == "budget"));
        let err: ServiceError = ModelError::UnknownKind {
            kind: "lidar".into(),
            known: "object-detection, audio-classification".into(),
        }
        .into();
        assert_eq!(
            err.to_string(),
            "kind = 'lidar' is not accepted: one of object-detection, audio-classification"
        );
    }
}
