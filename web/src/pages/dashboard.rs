//! The dashboard: every gateway's agent (status, interfaces with their shaping and live
//! per-class rates), sessions by state, running and recent campaigns.

use axum::extract::State;
use futures::future::join_all;
use maud::{Markup, html};

use qoelab_collector::campaign::{self, Campaign, CampaignStatus};

use super::format::{self, badge, progress_bar};
use super::layout::{Nav, Page};
use crate::App;
use crate::agent::{InterfaceView, flatten, interfaces};
use crate::api::analytics::{GatewayQuery, agent_state};
use crate::error::Problem;
use crate::extract::Query;

/// `GET /`.
pub async fn show(State(app): State<App>, page: Page) -> Result<Markup, Problem> {
    let campaigns = campaign::list(app.db()).await?;
    let running: Vec<&Campaign> = campaigns
        .iter()
        .filter(|c| c.status == CampaignStatus::Running)
        .collect();
    let mut totals = campaign::Progress::default();
    for c in &campaigns {
        for (slot, n) in [
            (&mut totals.pending, c.progress.pending),
            (&mut totals.running, c.progress.running),
            (&mut totals.done, c.progress.done),
            (&mut totals.failed, c.progress.failed),
            (&mut totals.discarded, c.progress.discarded),
        ] {
            *slot += n;
        }
    }
    let panels = join_all(app.gateways().iter().map(|g| agent_panel_markup(&app, g))).await;
    let body = html! {
        h1 { "Dashboard" }
        div.grid {
            div.card { div.muted { "Campaigns" } div.stat { (campaigns.len()) } div { (running.len()) " running" } }
            div.card { div.muted { "Sessions stored" } div.stat { (totals.done) } div { (totals.pending) " pending, " (totals.running) " running" } }
            div.card { div.muted { "Sessions failed / discarded" } div.stat { (totals.failed) " / " (totals.discarded) } }
        }
        @for (gateway, panel) in app.gateways().iter().zip(panels) {
            h2 { "Gateway " (gateway) }
            div data-refresh={ "/agent?gateway=" (gateway) } data-every="2000" { (panel) }
        }
        h2 { "Running campaigns" }
        @if running.is_empty() {
            p.muted { "None. " a href="/campaigns/new" { "Start a new campaign" } "." }
        } @else {
            (campaign_table(&app, &running))
        }
        h2 { "Recent campaigns" }
        @let recent: Vec<&Campaign> = campaigns.iter().take(5).collect();
        @if recent.is_empty() {
            p.muted { "No campaigns yet. " a href="/campaigns/new" { "Create the first one" } "." }
        } @else {
            (campaign_table(&app, &recent))
        }
    };
    Ok(page.render("Dashboard", Nav::Dashboard, body))
}

/// A table of campaigns with their progress (and their gateway, on a server with several).
pub fn campaign_table(app: &App, campaigns: &[&Campaign]) -> Markup {
    let several = app.gateways().len() > 1;
    html! {
        table {
            thead { tr { th { "Campaign" } @if several { th { "Gateway" } } th { "Workload" } th { "State" } th { "Progress" }
                th.num { "Done" } th.num { "Failed" } th.num { "Sessions" } th { "Created" } } }
            tbody {
                @for c in campaigns {
                    tr {
                        td { a href={ "/campaigns/" (c.id) } { "#" (c.id) " " (c.spec.name) } }
                        @if several { td { (gateway_label(app, c.spec.gateway.as_deref())) } }
                        td { (c.spec.workload.label()) }
                        td { (badge(c.status)) }
                        td style="min-width: 8rem" { (progress_bar(&c.progress)) }
                        td.num { (c.progress.done) }
                        td.num { (c.progress.failed) }
                        td.num { (c.progress.total()) }
                        td { (format::when(c.created_ms)) }
                    }
                }
            }
        }
    }
}

/// The gateway a campaign asking for `gateway` runs on, or the name it asks for followed by
/// why it cannot run (a gateway this server does not have).
pub fn gateway_label(app: &App, gateway: Option<&str>) -> String {
    match app.gateway(gateway) {
        Ok(name) => name.to_string(),
        Err(_) => format!(
            "{} (not a gateway of this server)",
            gateway.unwrap_or_default()
        ),
    }
}

/// `GET /agent?gateway=NAME`: a gateway's agent panel alone (the dashboard refreshes it).
pub async fn agent_panel(
    State(app): State<App>,
    Query(q): Query<GatewayQuery>,
) -> Result<Markup, Problem> {
    let gateway = app.gateway(q.gateway.as_deref())?;
    Ok(agent_panel_markup(&app, gateway).await)
}

async fn agent_panel_markup(app: &App, gateway: &str) -> Markup {
    let (status, stats) = agent_state(app, gateway).await;
    let status = match status {
        Ok(status) => status,
        Err(why) => {
            return html! {
                div.card {
                    span.badge.failed { "agent not connected" }
                    " " span.muted { (why) ". Sessions of gateway " (gateway) " cannot be shaped or captured until "
                        code { "qoelab agent" } " runs there and " code { "qoelab serve" } " reaches it ("
                        code { "--agent" } ", or the gateway's " code { "agent" } " in " code { "--gateways FILE" } ")." }
                }
            };
        }
    };
    html! {
        div.card {
            span.badge.done { "agent connected" }
            dl.kv style="margin-top: .6rem" {
                @for (key, value) in flatten(&status) { dt { (key) } dd { (value) } }
            }
        }
        @match stats.and_then(interfaces) {
            Err(why) => div.banner.bad { "Interface statistics unavailable: " (why) },
            Ok(ifaces) if ifaces.is_empty() => p.muted { "No interface is shaped now." },
            Ok(ifaces) => @for iface in &ifaces { (interface_card(iface)) },
        }
    }
}

fn interface_card(iface: &InterfaceView) -> Markup {
    html! {
        div.card {
            strong { "Interface " (iface.iface) }
            @if iface.interval_ms > 0 { span.muted { " · rates over the last " (iface.interval_ms) " ms" } }
            @for d in &iface.directions {
                h2 { (d.direction) span.muted { " on " (d.device) } }
                table {
                    thead { tr { th { "Class" } th { "Handle" } th.num { "Rate" } th.num { "Ceiling" }
                        th.num { "Sending now" } th.num { "Sent" } th.num { "Drops" } th.num { "Queued" } } }
                    tbody {
                        @for c in &d.classes {
                            tr {
                                td { (c.name) } td { code { (c.classid) } }
                                td.num { (format::rate(c.rate_bps as f64)) }
                                td.num { (format::rate(c.ceil_bps as f64)) }
                                td.num { (c.measured_bps.map_or("–".to_string(), |r| format::rate(r as f64))) }
                                td.num { (format::bytes(c.bytes as f64)) }
                                td.num { (c.drops) }
                                td.num { (format::bytes(c.backlog_bytes as f64)) }
                            }
                        }
                    }
                }
            }
            @if let Some(plan) = &iface.plan {
                details { summary { "Shaping plan in force" } pre { (serde_json::to_string_pretty(plan).unwrap_or_default()) } }
            }
        }
    }
}
