//! Campaign pages: the list, the new-campaign form, a campaign with live progress, stop and
//! resume, and its dataset downloads.

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect, Response};
use maud::{Markup, html};
use serde::Deserialize;

use qoelab_collector::campaign::{self, Campaign, CampaignStatus, SessionStatus};
use qoelab_collector::form::SpecText;
use qoelab_collector::session::{self, SessionQuery};

use super::dashboard::{campaign_table, gateway_label};
use super::form::{self, Errors};
use super::format::{self, badge, progress_bar};
use super::layout::{Nav, Page};
use crate::App;
use crate::api::campaigns::{create_campaign, detail, download};
use crate::error::Problem;
use crate::extract::{Form, Path};

/// `GET /campaigns`.
pub async fn list(State(app): State<App>, page: Page) -> Result<Markup, Problem> {
    let campaigns = campaign::list(app.db()).await?;
    let all: Vec<&Campaign> = campaigns.iter().collect();
    let body = html! {
        h1 { "Campaigns" }
        div.actions { a.button href="/campaigns/new" { "New campaign" } }
        @if all.is_empty() { p.muted { "No campaigns yet." } } @else { (campaign_table(&app, &all)) }
    };
    Ok(page.render("Campaigns", Nav::Campaigns, body))
}

/// The new-campaign form's fields.
#[derive(Debug, Default, Deserialize)]
pub struct NewCampaignForm {
    /// The spec as typed.
    #[serde(flatten)]
    pub text: SpecText,
    /// `on` to start right away.
    #[serde(default)]
    pub start: Option<String>,
}

const FIELDS: [&str; 11] = [
    "name",
    "sessions",
    "duration",
    "warmup",
    "limits",
    "delays",
    "losses",
    "workload",
    "abr",
    "analytics",
    "seed",
];

/// The form; the gateway is chosen only on a server with several (one gateway: its own).
fn new_form_page(
    page: &Page,
    gateways: &[String],
    t: &SpecText,
    start: bool,
    errors: &Errors,
) -> Markup {
    let choose_gateway = gateways.len() > 1;
    let gateway_options: Vec<(&str, &str)> =
        gateways.iter().map(|g| (g.as_str(), g.as_str())).collect();
    let mut shown = FIELDS.to_vec();
    if choose_gateway {
        shown.push("gateway");
    }
    let body = html! {
        h1 { "New campaign" }
        @if !errors.is_empty() {
            div.banner.bad role="alert" { "Some fields need a change; see the messages below." }
        }
        (form::banner(errors, &shown))
        form.stacked.card method="post" action="/campaigns" novalidate {
            (page.csrf())
            (form::text(errors, "name", "Name", &t.name, ""))
            @if choose_gateway {
                (form::select(errors, "gateway", "Gateway (its link and agent run the sessions)", &t.gateway, &gateway_options))
            }
            (form::text(errors, "sessions", "Sessions", &t.sessions, "how many, e.g. 100"))
            (form::text(errors, "duration", "Duration", &t.duration, "measured length of each session, e.g. 60s or 2min"))
            (form::text(errors, "warmup", "Warm-up", &t.warmup, "before measurement starts, e.g. 5s"))
            (form::text(errors, "limits", "Bandwidth limits", &t.limits,
                "spread evenly over the sessions, e.g. 0.75, 1.25, 2, 3, 5 mbit, unlimited"))
            (form::text(errors, "delays", "Delays (optional)", &t.delays, "e.g. 0ms, 50ms (needs netem)"))
            (form::text(errors, "losses", "Losses (optional)", &t.losses, "e.g. 0%, 1% (needs netem)"))
            (form::select(errors, "workload", "Workload", &t.workload, &[
                ("video", "video (built-in ABR player)"), ("iot", "IoT analytics uploads"),
                ("external", "external client (API)")]))
            (form::select(errors, "abr", "ABR algorithm (video)", &t.abr, &[
                ("buffer", "buffer-based"), ("rate", "rate-based"), ("mpc", "robust MPC")]))
            (form::text(errors, "analytics", "Analytics (IoT)", &t.analytics, "KIND:KNOB, e.g. object-detection:1, audio-classification:0.5"))
            (form::text(errors, "seed", "Seed", &t.seed, "of the session order"))
            label { input type="checkbox" name="start" checked[start]; " Start right away" }
            div.actions { button type="submit" { "Create campaign" } a.button.secondary href="/campaigns" { "Cancel" } }
        }
    };
    page.render("New campaign", Nav::Campaigns, body)
}

/// `GET /campaigns/new`.
pub async fn new_form(State(app): State<App>, page: Page) -> Markup {
    new_form_page(
        &page,
        app.gateways(),
        &SpecText::default(),
        true,
        &Errors::default(),
    )
}

/// `POST /campaigns`: creates (and starts) the campaign, or shows the form again with a
/// message next to each field at fault and everything typed kept (422).
pub async fn create(
    State(app): State<App>,
    page: Page,
    Form(f): Form<NewCampaignForm>,
) -> Response {
    let start = f.start.is_some();
    let mut errors = Errors::default();
    match f.text.parse() {
        Ok(spec) => match create_campaign(&app, &spec, start).await {
            Ok(c) => return Redirect::to(&format!("/campaigns/{}", c.id)).into_response(),
            Err(problem) => errors.add(&problem),
        },
        Err(problems) => {
            for p in problems {
                errors.add(&Problem::from(p));
            }
        }
    }
    (
        StatusCode::UNPROCESSABLE_ENTITY,
        new_form_page(&page, app.gateways(), &f.text, start, &errors),
    )
        .into_response()
}

/// `GET /campaigns/{id}`: spec, live progress, sessions per limit, failures, downloads.
pub async fn show(
    State(app): State<App>,
    page: Page,
    Path(id): Path<i64>,
) -> Result<Markup, Problem> {
    let d = detail(&app, id).await?;
    let c = &d.campaign;
    let s = &c.spec;
    let p = c.progress;
    let sessions_of = |status: SessionStatus, per_page: u32| SessionQuery {
        campaign_id: Some(id),
        status: Some(status),
        per_page: Some(per_page),
        sort: Some("started_ms".into()),
        desc: true,
        ..Default::default()
    };
    let running = session::list(app.db(), &sessions_of(SessionStatus::Running, 1)).await?;
    let failed = session::list(app.db(), &sessions_of(SessionStatus::Failed, 5)).await?;
    let current = running.sessions.first().map_or("–".to_string(), |r| {
        format!(
            "session {} of {} at {}",
            r.seq + 1,
            p.total(),
            format::limit(r.profile.rate_bps)
        )
    });
    let per_session = s.warmup_s + s.duration_s;
    let eta = if c.status == CampaignStatus::Running {
        format::seconds((p.pending + p.running) as f64 * per_session)
    } else {
        "–".into()
    };
    let list = |v: &[f64], f: fn(f64) -> String| -> String {
        if v.is_empty() {
            "none".into()
        } else {
            v.iter().map(|x| f(*x)).collect::<Vec<_>>().join(", ")
        }
    };
    let body = html! {
        h1 { "Campaign #" (c.id) " " (s.name) }
        section.card.live data-campaign-events={ "/campaigns/" (id) "/events" } data-status=(c.status) {
            (progress_bar(&p))
            dl.kv style="margin-top: .8rem" {
                dt { "State" } dd { (badge(c.status)) }
                dt { "Sessions ended" } dd { span data-field="ended" { (p.ended()) } " of " span data-field="total" { (p.total()) } }
                dt { "Now" } dd data-field="current" { (current) }
                dt { "Time left (estimate)" } dd data-field="eta" { (eta) }
                dt { "Done" } dd data-field="done" { (p.done) }
                dt { "Failed" } dd data-field="failed" { (p.failed) }
                dt { "Discarded" } dd data-field="discarded" { (p.discarded) }
                dt { "Running" } dd data-field="running" { (p.running) }
                dt { "Pending" } dd data-field="pending" { (p.pending) }
                dt { "Last problem" } dd data-field="last-failure" {
                    (failed.sessions.first().and_then(|f| f.failure.clone()).unwrap_or_else(|| "–".into())) }
            }
            div.actions {
                @if matches!(c.status, CampaignStatus::Pending | CampaignStatus::Running) {
                    (page.button(&format!("/campaigns/{id}/stop"), "Stop", "danger"))
                }
                @if matches!(c.status, CampaignStatus::Pending | CampaignStatus::Stopped) {
                    (page.button(&format!("/campaigns/{id}/start"),
                        if c.status == CampaignStatus::Stopped { "Resume" } else { "Start" }, ""))
                }
                a.button.secondary href={ "/sessions?campaign_id=" (id) } { "Sessions" }
                @for (format, label) in [("csv", "CSV"), ("parquet", "Parquet"), ("jsonl", "JSON Lines")] {
                    a.button.secondary href={ "/campaigns/" (id) "/export/" (format) } download { "Download " (label) }
                }
            }
        }
        h2 { "Settings" }
        div.card {
            dl.kv {
                dt { "Gateway" } dd { (gateway_label(&app, s.gateway.as_deref())) }
                dt { "Workload" } dd { (s.workload.label()) }
                dt { "Sessions" } dd { (s.sessions) }
                dt { "Duration" } dd { (format::seconds(s.duration_s)) " after " (format::seconds(s.warmup_s)) " warm-up" }
                dt { "Limits" } dd { (s.limits.iter().map(ToString::to_string).collect::<Vec<_>>().join(", ")) }
                dt { "Delays" } dd { (list(&s.delays_ms, |d| format!("{d}ms"))) }
                dt { "Losses" } dd { (list(&s.losses, format::percent)) }
                dt { "Seed" } dd { (s.seed) }
                dt { "Created" } dd { (format::when(c.created_ms)) }
            }
        }
        h2 { "Sessions per limit" }
        table {
            thead { tr { th { "Limit" } th { "Progress" } th.num { "Done" } th.num { "Failed" } th.num { "Discarded" } th.num { "Pending" } } }
            tbody {
                @for l in &d.by_limit {
                    tr {
                        td { a href={ "/sessions?campaign_id=" (id) "&limit=" (format::limit(l.rate_bps)) } { (format::limit(l.rate_bps)) } }
                        td style="min-width: 8rem" { (progress_bar(&l.progress)) }
                        td.num { (l.progress.done) } td.num { (l.progress.failed) }
                        td.num { (l.progress.discarded) } td.num { (l.progress.pending + l.progress.running) }
                    }
                }
            }
        }
        @if !failed.sessions.is_empty() {
            h2 { "Latest failures" }
            table {
                thead { tr { th { "Session" } th { "Limit" } th { "Why" } } }
                tbody { @for f in &failed.sessions {
                    tr { td { a href={ "/sessions/" (f.id) } { "#" (f.id) } } td { (format::limit(f.profile.rate_bps)) }
                        td { (f.failure.clone().unwrap_or_default()) } }
                } }
            }
        }
    };
    Ok(page.render(&format!("Campaign {}", s.name), Nav::Campaigns, body))
}

/// `GET /campaigns/{id}/events`: live progress for the page (server-sent events).
pub async fn events(
    State(app): State<App>,
    Path(id): Path<i64>,
) -> Result<impl IntoResponse, Problem> {
    crate::events::stream(app, id).await
}

/// `POST /campaigns/{id}/start`: start or resume, back to the campaign.
pub async fn start(
    State(app): State<App>,
    Path(id): Path<i64>,
    Form(_): Form<std::collections::HashMap<String, String>>,
) -> Result<Redirect, Problem> {
    app.control().start(id).await?;
    Ok(Redirect::to(&format!("/campaigns/{id}")))
}

/// `POST /campaigns/{id}/stop`: stop, back to the campaign.
pub async fn stop(
    State(app): State<App>,
    Path(id): Path<i64>,
    Form(_): Form<std::collections::HashMap<String, String>>,
) -> Result<Redirect, Problem> {
    app.control().stop(id).await?;
    Ok(Redirect::to(&format!("/campaigns/{id}")))
}

/// `GET /campaigns/{id}/export/{format}`: the dataset as a download.
pub async fn export(
    State(app): State<App>,
    Path((id, format)): Path<(i64, String)>,
) -> Result<Response, Problem> {
    download(&app, id, &format).await
}
