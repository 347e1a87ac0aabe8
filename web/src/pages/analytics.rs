//! Analytics pages: every gateway analytic seen in ingest, and one analytic over time — its
//! knob, the rate it was allocated, the rate it measured and its QoS.

use axum::extract::State;
use maud::{Markup, html};

use qoelab_collector::ingest;

use super::format;
use super::layout::{Nav, Page};
use crate::App;
use crate::api::analytics::{Window, series};
use crate::chart::{Line, TimeChart};
use crate::error::Problem;
use crate::extract::{Path, Query};

/// `GET /analytics`.
pub async fn list(State(app): State<App>, page: Page) -> Result<Markup, Problem> {
    let seen = ingest::analytics(app.db()).await?;
    let body = html! {
        h1 { "Analytics" }
        @if seen.is_empty() {
            p.muted { "No QoS reports or allocation decisions yet. Gateways send them to "
                code { "POST /api/v1/ingest/qos" } " and " code { "POST /api/v1/ingest/allocations" } "." }
        } @else {
            table {
                thead { tr { th { "Gateway" } th { "Analytic" } th { "Kind" } th.num { "QoS reports" } th.num { "Allocations" } th { "First" } th { "Latest" } } }
                tbody { @for a in &seen { tr {
                    td { (a.gateway) }
                    td { a href=(link(&a.gateway, &a.analytic)) { (a.analytic) } }
                    td { (a.kind.clone().unwrap_or_else(|| "–".into())) }
                    td.num { (a.reports) } td.num { (a.allocations) }
                    td { (format::when(a.first_ms)) } td { (format::when(a.last_ms)) }
                } } }
            }
        }
    };
    Ok(page.render("Analytics", Nav::Analytics, body))
}

fn link(gateway: &str, analytic: &str) -> String {
    let enc = |s: &str| -> String { form_urlencoded::byte_serialize(s.as_bytes()).collect() };
    format!("/analytics/{}/{}", enc(gateway), enc(analytic))
}

/// `GET /analytics/{gateway}/{analytic}?from_ms&to_ms`.
pub async fn show(
    State(app): State<App>,
    page: Page,
    Path((gateway, analytic)): Path<(String, String)>,
    Query(window): Query<Window>,
) -> Result<Markup, Problem> {
    let s = series(&app, &gateway, &analytic, &window).await?;
    let x = |ts_ms: i64| (ts_ms - s.from_ms) as f64 / 60_000.0;
    let chart = |id, y_label, y_format: fn(f64) -> String, lines: Vec<Line>, y_floor| {
        TimeChart {
            id,
            x_label: "minutes into the window",
            y_label,
            y_format,
            lines,
            limit: None,
            spans: (Vec::new(), ""),
            y_floor,
        }
        .render()
    };
    let knob = chart(
        "knob",
        "knob",
        format::number,
        vec![
            Line {
                name: "allocated knob".into(),
                points: s.allocations.iter().map(|a| (x(a.ts_ms), a.knob)).collect(),
            },
            Line {
                name: "knob in force (reported)".into(),
                points: s.qos.iter().map(|q| (x(q.ts_ms), q.knob)).collect(),
            },
        ],
        Some(0.0),
    );
    let rates = chart(
        "rates",
        "rate, bit/s",
        format::rate,
        vec![
            Line {
                name: "allocated".into(),
                points: s
                    .allocations
                    .iter()
                    .map(|a| (x(a.ts_ms), a.rate_bps as f64))
                    .collect(),
            },
            Line {
                name: "measured".into(),
                points: s
                    .qos
                    .iter()
                    .filter_map(|q| q.throughput_bps.map(|t| (x(q.ts_ms), t)))
                    .collect(),
            },
        ],
        Some(0.0),
    );
    let qos = chart(
        "qos",
        "QoS",
        format::number,
        vec![
            Line {
                name: "expected".into(),
                points: s.qos.iter().map(|q| (x(q.ts_ms), q.expected_qos)).collect(),
            },
            Line {
                name: "achieved".into(),
                points: s.qos.iter().map(|q| (x(q.ts_ms), q.achieved_qos)).collect(),
            },
        ],
        Some(0.0),
    );
    let last_alloc = s.allocations.last();
    let last_qos = s.qos.last();
    let body = html! {
        h1 { (analytic) span.muted { " on " (gateway) } }
        div.grid {
            div.card { div.muted { "Knob now" } div.stat { (last_alloc.map(|a| a.knob).or(last_qos.map(|q| q.knob)).map_or("–".into(), format::number)) } }
            div.card { div.muted { "Allocated" } div.stat { (last_alloc.map_or("–".into(), |a| format::rate(a.rate_bps as f64))) }
                div.muted { (last_alloc.map(|a| a.algorithm.clone()).unwrap_or_default()) } }
            div.card { div.muted { "Measured" } div.stat { (last_qos.and_then(|q| q.throughput_bps).map_or("–".into(), format::rate)) } }
            div.card { div.muted { "QoS achieved / expected" } div.stat {
                (last_qos.map_or("–".into(), |q| format!("{} / {}", format::number(q.achieved_qos), format::number(q.expected_qos)))) } }
        }
        p.muted { (format::when(s.from_ms)) " to " (format::when(s.to_ms)) ": " (s.qos.len()) " QoS reports, "
            (s.allocations.len()) " allocation decisions. "
            a href={ (link(&gateway, &analytic)) "?from_ms=" (s.analytic.first_ms) "&to_ms=" (s.analytic.last_ms) } { "Whole history" } }
        h2 { "Knob" } div.card { (knob) }
        h2 { "Rate" } div.card { (rates) }
        h2 { "QoS" } div.card { (qos) }
    };
    Ok(page.render(&format!("Analytic {analytic}"), Nav::Analytics, body))
}
