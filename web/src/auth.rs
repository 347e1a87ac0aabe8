//! Who may use the server, and forms only this browser can send.
//!
//! - Without a token (the default, bound to 127.0.0.1) everyone who can reach the port may use
//!   it. [`check_exposure`] refuses to listen beyond loopback without one.
//! - With a token the API wants `Authorization: Bearer TOKEN`, and pages want a login: the token
//!   typed once into `/login` opens a session kept in an HttpOnly, SameSite=Strict cookie.
//! - Every form post carries a CSRF token that must equal a SameSite=Strict cookie (double
//!   submit), checked by [`crate::extract::Form`].

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use axum::extract::{FromRequestParts, Request, State};
use axum::http::request::Parts;
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Redirect, Response};

use crate::App;
use crate::error::Problem;

/// The session cookie.
pub const SESSION_COOKIE: &str = "qoelab_session";
/// The CSRF cookie.
pub const CSRF_COOKIE: &str = "qoelab_csrf";
/// How long a login lasts.
const SESSION_TTL: Duration = Duration::from_secs(7 * 24 * 3600);

/// Refuses to listen on `addr` beyond loopback without a token: the API would be open to the
/// network.
pub fn check_exposure(addr: SocketAddr, token: Option<&str>) -> Result<(), String> {
    if addr.ip().is_loopback() || token.is_some_and(|t| !t.is_empty()) {
        return Ok(());
    }
    Err(format!(
        "listening on {addr} would open the API and the pages to the network without a login; \
         set a token (--token or QOELAB_TOKEN, e.g. from `openssl rand -hex 32`) or listen on \
         127.0.0.1"
    ))
}

/// 32 random bytes as hex.
pub fn random_token() -> String {
    let mut bytes = [0u8; 32];
    getrandom::fill(&mut bytes).expect("the operating system gives random bytes");
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// Compares secrets in time independent of where they differ.
fn same_secret(a: &str, b: &str) -> bool {
    a.len() == b.len() && a.bytes().zip(b.bytes()).fold(0u8, |d, (x, y)| d | (x ^ y)) == 0
}

/// The value of cookie `name`.
pub fn cookie<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(k, _)| *k == name)
        .map(|(_, v)| v)
}

fn set_cookie(name: &str, value: &str, max_age_s: u64) -> HeaderValue {
    let text = format!("{name}={value}; Path=/; HttpOnly; SameSite=Strict; Max-Age={max_age_s}");
    HeaderValue::from_str(&text).expect("cookie text is ASCII")
}

/// The token and the logged-in sessions.
pub struct Auth {
    token: Option<String>,
    sessions: Mutex<HashMap<String, Instant>>,
}

impl Auth {
    /// Authentication with `token`; `None` (or empty) leaves the server open.
    pub fn new(token: Option<String>) -> Auth {
        Auth {
            token: token.filter(|t| !t.is_empty()),
            sessions: Mutex::new(HashMap::new()),
        }
    }

    /// Whether a token is required.
    pub fn enabled(&self) -> bool {
        self.token.is_some()
    }

    fn bearer_ok(&self, headers: &HeaderMap) -> bool {
        let Some(token) = &self.token else {
            return true;
        };
        headers
            .get(header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.strip_prefix("Bearer "))
            .is_some_and(|given| same_secret(given.trim(), token))
    }

    fn session_ok(&self, headers: &HeaderMap) -> bool {
        if self.token.is_none() {
            return true;
        }
        let Some(id) = cookie(headers, SESSION_COOKIE) else {
            return false;
        };
        let sessions = self.sessions.lock().unwrap_or_else(|p| p.into_inner());
        sessions
            .get(id)
            .is_some_and(|started| started.elapsed() < SESSION_TTL)
    }

    /// Opens a session if `token` is right; returns the session cookie to set.
    pub fn login(&self, token: &str) -> Option<HeaderValue> {
        if !self
            .token
            .as_deref()
            .is_some_and(|t| same_secret(token.trim(), t))
        {
            return None;
        }
        let id = random_token();
        let mut sessions = self.sessions.lock().unwrap_or_else(|p| p.into_inner());
        sessions.retain(|_, started| started.elapsed() < SESSION_TTL);
        sessions.insert(id.clone(), Instant::now());
        Some(set_cookie(SESSION_COOKIE, &id, SESSION_TTL.as_secs()))
    }

    /// Ends the session of these headers; returns the cookie that clears it.
    pub fn logout(&self, headers: &HeaderMap) -> HeaderValue {
        if let Some(id) = cookie(headers, SESSION_COOKIE) {
            let mut sessions = self.sessions.lock().unwrap_or_else(|p| p.into_inner());
            sessions.remove(id);
        }
        set_cookie(SESSION_COOKIE, "", 0)
    }
}

/// API middleware: 401 without the right bearer token (when one is configured).
pub async fn api_guard(State(app): State<App>, request: Request, next: Next) -> Response {
    if app.auth().bearer_ok(request.headers()) {
        return next.run(request).await;
    }
    Problem::new(
        StatusCode::UNAUTHORIZED,
        "this server wants its API token: send Authorization: Bearer TOKEN",
    )
    .into_response()
}

/// Page middleware: without a login (when a token is configured) a GET goes to the login page
/// and anything else gets 401.
pub async fn page_guard(State(app): State<App>, request: Request, next: Next) -> Response {
    if app.auth().session_ok(request.headers()) {
        return next.run(request).await;
    }
    if request.method() == Method::GET {
        let here = request
            .uri()
            .path_and_query()
            .map_or("/", |p| p.as_str())
            .to_string();
        let next_param: String = form_urlencoded::byte_serialize(here.as_bytes()).collect();
        return Redirect::to(&format!("/login?next={next_param}")).into_response();
    }
    Problem::new(StatusCode::UNAUTHORIZED, "log in first at /login").into_response()
}

/// This browser's CSRF token, from its cookie (or just issued by [`csrf_cookie`]).
#[derive(Debug, Clone)]
pub struct CsrfToken(String);

impl CsrfToken {
    /// The token, for a form's hidden `csrf` field.
    pub fn value(&self) -> &str {
        &self.0
    }

    /// Whether a form's token is this one.
    pub fn matches(&self, given: &str) -> bool {
        same_secret(given, &self.0)
    }
}

impl<S: Send + Sync> FromRequestParts<S> for CsrfToken {
    type Rejection = Problem;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, Problem> {
        if let Some(token) = parts.extensions.get::<CsrfToken>() {
            return Ok(token.clone());
        }
        cookie(&parts.headers, CSRF_COOKIE)
            .filter(|t| t.len() == 64)
            .map(|t| CsrfToken(t.to_string()))
            .ok_or_else(|| {
                Problem::new(
                    StatusCode::FORBIDDEN,
                    "this browser has no security cookie for forms (cookies off?); reload the \
                     page and send the form again",
                )
            })
    }
}

/// Page middleware: gives a browser without a CSRF cookie a fresh one (and the request the
/// token, so the page it gets already carries it in its forms).
pub async fn csrf_cookie(mut request: Request, next: Next) -> Response {
    let has = cookie(request.headers(), CSRF_COOKIE).is_some_and(|t| t.len() == 64);
    if has {
        return next.run(request).await;
    }
    let token = random_token();
    request.extensions_mut().insert(CsrfToken(token.clone()));
    let mut response = next.run(request).await;
    response.headers_mut().append(
        header::SET_COOKIE,
        set_cookie(CSRF_COOKIE, &token, 365 * 24 * 3600),
    );
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_loopback_may_go_without_a_token() {
        let local: SocketAddr = "127.0.0.1:8080".parse().unwrap();
        let open: SocketAddr = "0.0.0.0:8080".parse().unwrap();
        assert!(check_exposure(local, None).is_ok());
        assert!(check_exposure("[::1]:80".parse().unwrap(), None).is_ok());
        let err = check_exposure(open, None).unwrap_err();
        assert!(
            err.contains("0.0.0.0:8080") && err.contains("--token"),
            "{err}"
        );
        assert!(check_exposure(open, Some("")).is_err());
        assert!(check_exposure(open, Some("s3cret")).is_ok());
    }

    #[test]
    fn cookies_are_found_by_name() {
        let mut h = HeaderMap::new();
        h.insert(
            header::COOKIE,
            HeaderValue::from_static("a=1; qoelab_csrf=xyz; b=2"),
        );
        assert_eq!(cookie(&h, "qoelab_csrf"), Some("xyz"));
        assert_eq!(cookie(&h, "qoelab"), None);
    }

    #[test]
    fn secrets_compare_whole() {
        assert!(same_secret("abc", "abc"));
        assert!(!same_secret("abc", "abd"));
        assert!(!same_secret("abc", "abcd"));
        assert_eq!(random_token().len(), 64);
        assert_ne!(random_token(), random_token());
    }
}
