//! The frame around every page, and the page a [`Problem`] becomes.

use axum::extract::FromRequestParts;
use axum::http::request::Parts;
use maud::{DOCTYPE, Markup, html};

use crate::App;
use crate::auth::CsrfToken;
use crate::error::Problem;

/// The section of the navigation a page belongs to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Nav {
    /// The dashboard.
    Dashboard,
    /// Campaigns.
    Campaigns,
    /// Sessions.
    Sessions,
    /// Models.
    Models,
    /// Analytics.
    Analytics,
    /// None of them (login, errors).
    None,
}

const SECTIONS: [(Nav, &str, &str); 5] = [
    (Nav::Dashboard, "/", "Dashboard"),
    (Nav::Campaigns, "/campaigns", "Campaigns"),
    (Nav::Sessions, "/sessions", "Sessions"),
    (Nav::Models, "/models", "Models"),
    (Nav::Analytics, "/analytics", "Analytics"),
];

/// What every page needs from the request: the CSRF token for its forms, and whether a login
/// is in use (for the log-out button).
pub struct Page {
    csrf: CsrfToken,
    login: bool,
}

impl FromRequestParts<App> for Page {
    type Rejection = Problem;

    async fn from_request_parts(parts: &mut Parts, app: &App) -> Result<Page, Problem> {
        Ok(Page {
            csrf: CsrfToken::from_request_parts(parts, app).await?,
            login: app.auth().enabled(),
        })
    }
}

impl Page {
    /// The hidden CSRF field every form carries.
    pub fn csrf(&self) -> Markup {
        html! { input type="hidden" name="csrf" value=(self.csrf.value()); }
    }

    /// A form that posts to `action` with one button.
    pub fn button(&self, action: &str, label: &str, class: &str) -> Markup {
        html! {
            form method="post" action=(action) {
                (self.csrf())
                button class=(class) { (label) }
            }
        }
    }

    /// The whole page around `body`.
    pub fn render(&self, title: &str, nav: Nav, body: Markup) -> Markup {
        frame(
            title,
            nav,
            body,
            self.login
                .then(|| self.button("/logout", "Log out", "secondary")),
        )
    }
}

fn frame(title: &str, nav: Nav, body: Markup, logout: Option<Markup>) -> Markup {
    html! {
        (DOCTYPE)
        html lang="en" {
            head {
                meta charset="utf-8";
                meta name="viewport" content="width=device-width, initial-scale=1";
                title { (title) " · qoelab" }
                link rel="stylesheet" href="/static/app.css";
                script src="/static/app.js" defer {}
            }
            body {
                header.top {
                    a.brand href="/" { "qoelab" }
                    nav {
                        @for (section, href, label) in SECTIONS {
                            a href=(href) class=[(section == nav).then_some("active")] { (label) }
                        }
                        a href="/api/openapi.json" { "API" }
                    }
                    @if let Some(logout) = logout { (logout) }
                }
                main { (body) }
            }
        }
    }
}

/// The page of a problem: status, message and the field at fault.
pub fn problem_page(problem: &Problem) -> Markup {
    let title = problem
        .status
        .canonical_reason()
        .unwrap_or("Error")
        .to_string();
    let body = html! {
        h1 { (problem.status.as_u16()) " " (title) }
        div.banner.bad { (problem.error) }
        @if let (Some(field), Some(accepted)) = (&problem.field, &problem.accepted) {
            p { "Field " code { (field) } ": accepted is " (accepted) "." }
        }
        p { a href="javascript:history.back()" { "Back" } " · " a href="/" { "Dashboard" } }
    };
    frame(&title, Nav::None, body, None)
}
