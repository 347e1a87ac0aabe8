//! Log in with the server's token (only when one is configured) and log out.

use axum::Router;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use maud::{Markup, html};
use serde::Deserialize;

use super::form::{self, Errors};
use super::layout::{Nav, Page};
use crate::App;
use crate::error::Problem;
use crate::extract::{Form, Query};

/// The login routes (open to everyone).
pub fn routes() -> Router<App> {
    Router::new()
        .route("/login", get(show).post(submit))
        .route("/logout", post(logout))
}

/// `?next=` after logging in.
#[derive(Debug, Default, Deserialize)]
pub struct Next {
    #[serde(default)]
    next: String,
}

/// Only paths on this server: no `//host` or `https://…` redirects.
fn safe_next(next: &str) -> &str {
    if next.starts_with('/') && !next.starts_with("//") && !next.contains('\\') {
        next
    } else {
        "/"
    }
}

fn login_page(page: &Page, next: &str, errors: &Errors) -> Markup {
    let body = html! {
        h1 { "Log in" }
        form.stacked.card method="post" action="/login" {
            (page.csrf())
            input type="hidden" name="next" value=(safe_next(next));
            div class=[(!errors.is_empty()).then_some("field-error")] {
                label for="token" { "Token " span.hint { "the token this server was started with (--token or QOELAB_TOKEN)" } }
                input type="password" id="token" name="token" autofocus;
            }
            (form::banner(errors, &[]))
            div.actions { button type="submit" { "Log in" } }
        }
    };
    page.render("Log in", Nav::None, body)
}

/// `GET /login`.
pub async fn show(page: Page, Query(n): Query<Next>) -> Markup {
    login_page(&page, &n.next, &Errors::default())
}

/// The login form.
#[derive(Debug, Deserialize)]
pub struct LoginForm {
    token: String,
    #[serde(default)]
    next: String,
}

/// `POST /login`: a session cookie and back to where the user was going, or 401 with the
/// form again.
pub async fn submit(State(app): State<App>, page: Page, Form(f): Form<LoginForm>) -> Response {
    if !app.auth().enabled() {
        return Redirect::to(safe_next(&f.next)).into_response();
    }
    match app.auth().login(&f.token) {
        Some(cookie) => {
            let mut response = Redirect::to(safe_next(&f.next)).into_response();
            response.headers_mut().append(header::SET_COOKIE, cookie);
            response
        }
        None => {
            let mut errors = Errors::default();
            errors.add(&Problem::new(
                StatusCode::UNAUTHORIZED,
                "that is not this server's token",
            ));
            (
                StatusCode::UNAUTHORIZED,
                login_page(&page, &f.next, &errors),
            )
                .into_response()
        }
    }
}

/// `POST /logout`.
pub async fn logout(
    State(app): State<App>,
    headers: HeaderMap,
    Form(_): Form<std::collections::HashMap<String, String>>,
) -> Response {
    let cookie = app.auth().logout(&headers);
    let mut response = Redirect::to("/login").into_response();
    response.headers_mut().append(header::SET_COOKIE, cookie);
    response
}
