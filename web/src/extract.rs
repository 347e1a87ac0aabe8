//! Extractors whose rejections are [`Problem`]s naming the field at fault: JSON bodies,
//! query strings, path segments and CSRF-checked form posts.

use axum::extract::{FromRequest, FromRequestParts, Request};
use axum::http::request::Parts;
use axum::http::{StatusCode, header};
use bytes::Bytes;
use serde::de::DeserializeOwned;

use crate::auth::CsrfToken;
use crate::error::Problem;

/// The body as bytes, within the route's body limit (413 beyond it).
async fn body<S: Send + Sync>(request: Request, state: &S) -> Result<Bytes, Problem> {
    Bytes::from_request(request, state).await.map_err(|e| {
        let status = e.status();
        let error = if status == StatusCode::PAYLOAD_TOO_LARGE {
            "the request body is too large; send smaller batches (see the API's limits)".into()
        } else {
            e.body_text()
        };
        Problem::new(status, error)
    })
}

/// A problem at `path` (serde's path of the field, `.` for the whole input).
fn field_problem(status: StatusCode, path: String, error: String) -> Problem {
    let field = if path == "." { "body".into() } else { path };
    Problem {
        field: Some(field.clone()),
        ..Problem::new(status, format!("{field}: {error}"))
    }
}

/// A JSON body as bytes, not yet parsed: 415 without a JSON content type.
pub struct JsonBody(pub Bytes);

impl<S: Send + Sync> FromRequest<S> for JsonBody {
    type Rejection = Problem;

    async fn from_request(request: Request, state: &S) -> Result<Self, Problem> {
        let json = request
            .headers()
            .get(header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .is_some_and(|v| v.starts_with("application/json"));
        if !json {
            return Err(Problem::new(
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                "send the body as JSON with Content-Type: application/json",
            ));
        }
        body(request, state).await.map(JsonBody)
    }
}

/// A JSON body: 415 without a JSON content type, 400 naming the field for bad JSON.
pub struct Json<T>(pub T);

impl<T: DeserializeOwned, S: Send + Sync> FromRequest<S> for Json<T> {
    type Rejection = Problem;

    async fn from_request(request: Request, state: &S) -> Result<Self, Problem> {
        let JsonBody(bytes) = JsonBody::from_request(request, state).await?;
        parse_json(&bytes).map(Json)
    }
}

/// Reads a JSON value as `T`; errors name the path of the offending field.
pub fn from_value<T: DeserializeOwned>(value: serde_json::Value) -> Result<T, Problem> {
    serde_path_to_error::deserialize(value).map_err(|e| {
        let path = e.path().to_string();
        field_problem(StatusCode::BAD_REQUEST, path, e.into_inner().to_string())
    })
}

/// Parses JSON; errors name the path of the offending field.
pub fn parse_json<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, Problem> {
    let de = &mut serde_json::Deserializer::from_slice(bytes);
    serde_path_to_error::deserialize(de).map_err(|e| {
        let path = e.path().to_string();
        field_problem(StatusCode::BAD_REQUEST, path, e.into_inner().to_string())
    })
}

/// A query string: 400 naming the parameter.
pub struct Query<T>(pub T);

impl<T: DeserializeOwned, S: Send + Sync> FromRequestParts<S> for Query<T> {
    type Rejection = Problem;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, Problem> {
        parse_query(parts.uri.query().unwrap_or_default()).map(Query)
    }
}

/// Parses a query string or form body; errors name the parameter.
pub fn parse_query<T: DeserializeOwned>(text: &str) -> Result<T, Problem> {
    let de = serde_urlencoded::Deserializer::new(form_urlencoded::parse(text.as_bytes()));
    serde_path_to_error::deserialize(de).map_err(|e| {
        let path = e.path().to_string();
        field_problem(StatusCode::BAD_REQUEST, path, e.into_inner().to_string())
    })
}

/// Path segments: 400 when one does not parse (e.g. `/campaigns/abc`).
pub struct Path<T>(pub T);

impl<T: DeserializeOwned + Send, S: Send + Sync> FromRequestParts<S> for Path<T> {
    type Rejection = Problem;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Problem> {
        axum::extract::Path::<T>::from_request_parts(parts, state)
            .await
            .map(|p| Path(p.0))
            .map_err(|e| Problem::new(StatusCode::BAD_REQUEST, e.body_text()))
    }
}

/// A form post checked against cross-site request forgery: its `csrf` field must equal the
/// browser's CSRF cookie (which another site can neither read nor make the browser send).
pub struct Form<T>(pub T);

impl<T: DeserializeOwned, S: Send + Sync> FromRequest<S> for Form<T> {
    type Rejection = Problem;

    async fn from_request(request: Request, state: &S) -> Result<Self, Problem> {
        let (mut parts, body_stream) = request.into_parts();
        let expected = CsrfToken::from_request_parts(&mut parts, state).await?;
        let bytes = body(Request::from_parts(parts, body_stream), state).await?;
        let text = std::str::from_utf8(&bytes)
            .map_err(|_| Problem::new(StatusCode::BAD_REQUEST, "the form is not UTF-8"))?;
        let given = form_urlencoded::parse(text.as_bytes())
            .find(|(k, _)| k == "csrf")
            .map(|(_, v)| v);
        if !given.is_some_and(|g| expected.matches(&g)) {
            return Err(Problem::new(
                StatusCode::FORBIDDEN,
                "the form's security token does not match this browser's (the form is old, or \
                 was sent from another site); reload the page and send it again",
            ));
        }
        parse_query(text).map(Form)
    }
}
