//! Session pages: the table (filter by campaign, state, limit and label; sort; pages) and one
//! session in detail (throughput chart with the limit and stalls, QoE, flows, predictions).

use std::collections::BTreeMap;

use axum::extract::State;
use maud::{Markup, html};
use serde::Deserialize;
use serde_json::Value;

use qoelab_collector::campaign::{self, SessionStatus};
use qoelab_collector::session::{self, Bin, SessionDetail, SessionQuery};
use qoelab_units::{Limit, Rate};

use super::dashboard::gateway_label;
use super::form::{self, Errors};
use super::format::{self, badge};
use super::layout::{Nav, Page};
use crate::App;
use crate::agent::scalar_text;
use crate::api::sessions::{Predictions, no_cache, predictions};
use crate::chart::{Line, TimeChart};
use crate::error::Problem;
use crate::extract::{Path, Query};

/// The table's query string as typed (bad values are shown next to their field).
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default)]
pub struct Filter {
    campaign_id: String,
    status: String,
    limit: String,
    label: String,
    sort: String,
    desc: String,
    page: String,
    per_page: String,
}

const SORTABLE: [(&str, &str); 5] = [
    ("id", "Session"),
    ("seq", "Seq"),
    ("rate_bps", "Limit"),
    ("status", "State"),
    ("started_ms", "Started"),
];

impl Filter {
    /// The collector's query, or the problems of the fields.
    fn query(&self) -> (SessionQuery, Errors) {
        let mut errors = Errors::default();
        let mut q = SessionQuery {
            sort: Some(if self.sort.is_empty() {
                "id".into()
            } else {
                self.sort.clone()
            }),
            desc: self.desc == "1" || self.desc == "true",
            ..Default::default()
        };
        let number = |field: &str, text: &str, errors: &mut Errors| -> Option<u64> {
            if text.trim().is_empty() {
                return None;
            }
            let parsed = text.trim().parse().ok();
            if parsed.is_none() {
                errors.add(&Problem::invalid(field, text, "a whole number"));
            }
            parsed
        };
        q.campaign_id = number("campaign_id", &self.campaign_id, &mut errors).map(|c| c as i64);
        q.page = number("page", &self.page, &mut errors).map_or(0, |p| p.saturating_sub(1) as u32);
        q.per_page = Some(number("per_page", &self.per_page, &mut errors).map_or(50, |p| p as u32));
        if !self.status.is_empty() {
            match self.status.parse::<SessionStatus>() {
                Ok(s) => q.status = Some(s),
                Err(e) => errors.add(&Problem::from(e)),
            }
        }
        let limit = self.limit.trim();
        if limit.eq_ignore_ascii_case("unlimited") {
            q.rate_bps = Some(0);
        } else if !limit.is_empty() {
            match limit.parse::<Rate>() {
                Ok(r) => q.rate_bps = Some(r.bps()),
                Err(e) => errors.add(&Problem::invalid("limit", limit, e.hint)),
            }
        }
        if !self.label.trim().is_empty() {
            q.label = Some(self.label.trim().to_string());
        }
        (q, errors)
    }

    /// This filter's URL with some parameters changed.
    fn link(&self, changes: &[(&str, &str)]) -> String {
        let mut url = form_urlencoded::Serializer::new(String::new());
        for (k, v) in [
            ("campaign_id", &self.campaign_id),
            ("status", &self.status),
            ("limit", &self.limit),
            ("label", &self.label),
            ("sort", &self.sort),
            ("desc", &self.desc),
            ("page", &self.page),
            ("per_page", &self.per_page),
        ] {
            let value = changes
                .iter()
                .find(|c| c.0 == k)
                .map_or(v.as_str(), |c| c.1);
            if !value.is_empty() {
                url.append_pair(k, value);
            }
        }
        format!("/sessions?{}", url.finish())
    }
}

/// `GET /sessions`.
pub async fn list(
    State(app): State<App>,
    page: Page,
    headers: axum::http::HeaderMap,
    Query(f): Query<Filter>,
) -> Result<Markup, Problem> {
    let (q, mut errors) = f.query();
    let result = if errors.is_empty() {
        match app.totals().list(app.db(), &q, no_cache(&headers)).await {
            Ok(r) => Some(r),
            Err(e) => {
                errors.add(&Problem::from(e));
                None
            }
        }
    } else {
        None
    };
    let ids: Vec<i64> = result
        .iter()
        .flat_map(|r| r.sessions.iter().map(|s| s.id))
        .collect();
    let labels = session::labels(app.db(), &ids).await?;
    let per_page = q.per_page.unwrap_or(50);
    let pages = result
        .as_ref()
        .map_or(1, |r| r.total.div_ceil(u64::from(per_page)).max(1));
    let current_page = u64::from(q.page) + 1;
    let sort = q.sort.clone().unwrap_or_default();
    let body = html! {
        h1 { "Sessions" }
        form.filters method="get" action="/sessions" {
            (form::text(&errors, "campaign_id", "Campaign", &f.campaign_id, ""))
            (form::select(&errors, "status", "State", &f.status, &[("", "any"), ("pending", "pending"),
                ("running", "running"), ("done", "done"), ("failed", "failed"), ("discarded", "discarded")]))
            (form::text(&errors, "limit", "Limit", &f.limit, ""))
            (form::text(&errors, "label", "Label", &f.label, ""))
            (form::select(&errors, "per_page", "Per page", &f.per_page, &[("", "50"), ("100", "100"), ("500", "500")]))
            input type="hidden" name="sort" value=(f.sort);
            input type="hidden" name="desc" value=(f.desc);
            button type="submit" { "Filter" }
            a href="/sessions" { "Clear" }
        }
        p.muted { "Limit: e.g. 2mbit or unlimited. Label: NAME=VALUE, e.g. qoe_class=low or stall=1." }
        (form::banner(&errors, &["campaign_id", "status", "limit", "label", "per_page"]))
        @if let Some(r) = &result {
            p { (r.total) " sessions" @if r.total > 0 { ", page " (current_page) " of " (pages) } }
            table data-total=(r.total) {
                thead { tr {
                    @for (column, title) in SORTABLE.iter().take(2) { th { (sort_link(&f, &sort, q.desc, column, title)) } }
                    th { "Campaign" }
                    th { (sort_link(&f, &sort, q.desc, SORTABLE[2].0, SORTABLE[2].1)) }
                    th { "Delay" } th { "Loss" } th { "Workload" }
                    th { (sort_link(&f, &sort, q.desc, SORTABLE[3].0, SORTABLE[3].1)) }
                    th.num { "Attempts" }
                    th { (sort_link(&f, &sort, q.desc, SORTABLE[4].0, SORTABLE[4].1)) }
                    th { "Labels" } th { "Failure" }
                } }
                tbody {
                    @for s in &r.sessions {
                        tr {
                            td { a href={ "/sessions/" (s.id) } { "#" (s.id) } }
                            td.num { (s.seq) }
                            td { a href={ "/campaigns/" (s.campaign_id) } { "#" (s.campaign_id) } }
                            td { (format::limit(s.profile.rate_bps)) }
                            td { (s.profile.delay_ms.map_or("–".into(), |d| format!("{d} ms"))) }
                            td { (s.profile.loss.map_or("–".into(), format::percent)) }
                            td { (s.workload) }
                            td { (badge(s.status)) }
                            td.num { (s.attempts) }
                            td { (s.started_ms.map_or("–".into(), format::when)) }
                            td { (label_summary(labels.get(&s.id))) }
                            td.muted { (s.failure.clone().unwrap_or_default()) }
                        }
                    }
                }
            }
            div.pager {
                @if current_page > 1 { a href=(f.link(&[("page", &(current_page - 1).to_string())])) { "← Previous" } }
                span.muted { "Page " (current_page) " of " (pages) }
                @if current_page < pages { a href=(f.link(&[("page", &(current_page + 1).to_string())])) { "Next →" } }
            }
        }
    };
    Ok(page.render("Sessions", Nav::Sessions, body))
}

fn sort_link(f: &Filter, sort: &str, desc: bool, column: &str, title: &str) -> Markup {
    let active = sort == column;
    let next_desc = if active && !desc { "1" } else { "" };
    let arrow = match (active, desc) {
        (true, false) => " ▲",
        (true, true) => " ▼",
        _ => "",
    };
    html! { a href=(f.link(&[("sort", column), ("desc", next_desc), ("page", "")])) { (title) (arrow) } }
}

/// The first few scalar labels, `qoe_class=high stall=0`.
fn label_summary(labels: Option<&BTreeMap<String, Value>>) -> String {
    let Some(labels) = labels else {
        return "–".into();
    };
    let preferred = ["qoe_class", "stall", "stall_count"];
    let mut shown: Vec<String> = preferred
        .iter()
        .filter_map(|k| labels.get(*k).map(|v| format!("{k}={}", scalar_text(v))))
        .collect();
    if shown.is_empty() {
        shown = labels
            .iter()
            .take(3)
            .map(|(k, v)| format!("{k}={}", scalar_text(v)))
            .collect();
    }
    shown.join(" ")
}

/// Stall intervals `(from_s, to_s)` of a QoE record, read generically: a `stalls` (or
/// `stall_intervals`) array of `{start_s, duration_s | end_s}` objects or `[start, end]`
/// pairs, in seconds since `started_unix_ms` when the record has it. Returned in seconds
/// since `origin_ms`. Absent or unreadable: none.
pub fn stalls(application: Option<&Value>, origin_ms: i64) -> Vec<(f64, f64)> {
    let Some(record) = application.and_then(Value::as_object) else {
        return Vec::new();
    };
    let offset_s = record
        .get("started_unix_ms")
        .and_then(Value::as_f64)
        .map_or(0.0, |start| (start - origin_ms as f64) / 1000.0);
    let items = ["stalls", "stall_intervals"]
        .iter()
        .find_map(|k| record.get(*k).and_then(Value::as_array));
    items
        .into_iter()
        .flatten()
        .filter_map(|item| {
            let (start, end) = match item {
                Value::Array(pair) => (pair.first()?.as_f64()?, pair.get(1)?.as_f64()?),
                Value::Object(o) => {
                    let start = o.get("start_s")?.as_f64()?;
                    let end = match o.get("end_s").and_then(Value::as_f64) {
                        Some(end) => end,
                        None => start + o.get("duration_s")?.as_f64()?,
                    };
                    (start, end)
                }
                _ => return None,
            };
            (end >= start).then_some((start + offset_s, end + offset_s))
        })
        .collect()
}

/// The throughput chart of a session: both directions, the shaping limit, stalls shaded.
pub fn throughput_chart(detail: &SessionDetail) -> Markup {
    let bins: &[Bin] = &detail.series;
    let Some(first) = bins.first() else {
        return html! { p.muted { "No traffic series stored for this session." } };
    };
    let width_ms = bins
        .windows(2)
        .map(|w| w[1].start_ms - w[0].start_ms)
        .filter(|d| *d > 0)
        .min()
        .unwrap_or(1000);
    let seconds = width_ms as f64 / 1000.0;
    let x = |b: &Bin| (b.start_ms - first.start_ms) as f64 / 1000.0;
    let line = |name: &str, bytes: fn(&Bin) -> u64| Line {
        name: name.into(),
        points: bins
            .iter()
            .map(|b| (x(b), bytes(b) as f64 * 8.0 / seconds))
            .collect(),
    };
    TimeChart {
        id: "throughput",
        x_label: "seconds since the capture started",
        y_label: "throughput, bit/s",
        y_format: format::rate,
        lines: vec![
            line("server → client", |b| b.s2c_bytes),
            line("client → server", |b| b.c2s_bytes),
        ],
        limit: detail.session.profile.rate_bps.map(|r| {
            (
                r as f64,
                format!("limit {}", Limit::Rate(Rate::from_bps(r))),
            )
        }),
        spans: (stalls(detail.application.as_ref(), first.start_ms), "stall"),
        y_floor: Some(0.0),
    }
    .render()
}

const FLOW_COLUMNS: [(&str, &str); 8] = [
    ("c2s_ip_bytes", "Bytes ↑"),
    ("s2c_ip_bytes", "Bytes ↓"),
    ("c2s_pkts", "Packets ↑"),
    ("s2c_pkts", "Packets ↓"),
    ("c2s_retx_pkts", "Retx ↑"),
    ("s2c_retx_pkts", "Retx ↓"),
    ("c2s_rtt_avg_ms", "RTT avg ↑ ms"),
    ("s2c_rtt_avg_ms", "RTT avg ↓ ms"),
];

/// `GET /sessions/{id}`.
pub async fn show(
    State(app): State<App>,
    page: Page,
    Path(id): Path<i64>,
) -> Result<Markup, Problem> {
    let d = session::detail(app.db(), id).await?;
    let s = &d.session;
    let gateway = campaign::get(app.db(), s.campaign_id).await?.spec.gateway;
    let predicted = predictions(&app, id).await?;
    let flow_columns: Vec<(&str, &str)> = FLOW_COLUMNS
        .iter()
        .copied()
        .filter(|(k, _)| d.flows.iter().any(|f| f.contains_key(*k)))
        .collect();
    let qoe: Vec<(String, String)> = d
        .application
        .as_ref()
        .and_then(Value::as_object)
        .map(|o| {
            o.iter()
                .filter(|(_, v)| !v.is_object() && !v.is_array())
                .map(|(k, v)| (k.clone(), scalar_text(v)))
                .collect()
        })
        .unwrap_or_default();
    let body = html! {
        h1 { "Session #" (s.id) " " (badge(s.status)) }
        div.card {
            dl.kv {
                dt { "Campaign" } dd { a href={ "/campaigns/" (s.campaign_id) } { "#" (s.campaign_id) } ", session " (s.seq + 1) }
                dt { "Gateway" } dd { (gateway_label(&app, gateway.as_deref())) }
                dt { "Limit" } dd { (format::limit(s.profile.rate_bps)) }
                dt { "Delay / loss" } dd { (s.profile.delay_ms.map_or("–".into(), |d| format!("{d} ms"))) " / " (s.profile.loss.map_or("–".into(), format::percent)) }
                dt { "Workload" } dd { (s.workload) }
                dt { "Attempts" } dd { (s.attempts) }
                dt { "Started" } dd { (s.started_ms.map_or("–".into(), format::when)) }
                @if let (Some(a), Some(b)) = (s.started_ms, s.finished_ms) {
                    dt { "Length" } dd { (format::seconds((b - a) as f64 / 1000.0)) }
                }
                @if let Some(c) = &s.capture_id { dt { "Capture" } dd { code { (c) } } }
                @if let Some(f) = &s.failure { dt { "Failure" } dd.error { (f) } }
            }
        }
        h2 { "Throughput" }
        div.card { (throughput_chart(&d)) }
        h2 { "Predicted QoE" }
        @if s.status == SessionStatus::Running {
            div.card.live data-refresh={ "/sessions/" (id) "/prediction" } data-every="3000" { (prediction_markup(&predicted)) }
        } @else {
            div.card { (prediction_markup(&predicted)) }
        }
        h2 { "QoE" }
        @if qoe.is_empty() {
            p.muted { "The application reported no QoE record for this session." }
        } @else {
            div.card { dl.kv { @for (k, v) in &qoe { dt { (k) } dd { (v) } } } }
        }
        h2 { "Flows (" (d.flows.len()) ")" }
        @if !d.flows.is_empty() {
            table {
                thead { tr { th { "Protocol" } th { "Client" } th { "Server" } @for (_, t) in &flow_columns { th.num { (t) } } } }
                tbody { @for f in &d.flows { tr {
                    td { (f.get("protocol").map(scalar_text).unwrap_or_default()) }
                    td { (endpoint(f, "client")) }
                    td { (endpoint(f, "server")) }
                    @for (k, _) in &flow_columns { td.num { (f.get(*k).and_then(Value::as_f64).map_or("–".into(), format::number)) } }
                } } }
            }
            details { summary { "All flow statistics" }
                table {
                    @let keys: std::collections::BTreeSet<&String> = d.flows.iter().flat_map(|f| f.keys()).collect();
                    @for k in keys { tr { th { (k) } @for f in &d.flows { td { (f.get(k).map(scalar_text).unwrap_or_default()) } } } }
                }
            }
        }
        @if !d.features.is_empty() {
            h2 { "Features" }
            details { summary { (d.features.len()) " columns of the dataset row" }
                table { @for (k, v) in &d.features { tr { th { (k) } td { (scalar_text(v)) } } } }
            }
        }
    };
    Ok(page.render(&format!("Session {id}"), Nav::Sessions, body))
}

fn endpoint(flow: &serde_json::Map<String, Value>, side: &str) -> String {
    let addr = flow
        .get(&format!("{side}_ip"))
        .map(scalar_text)
        .unwrap_or_default();
    let port = flow
        .get(&format!("{side}_port"))
        .map(scalar_text)
        .unwrap_or_default();
    format!("{addr}:{port}")
}

fn prediction_markup(p: &Predictions) -> Markup {
    html! {
        @if let Some(note) = &p.note { p.muted { (note) } }
        @if !p.predictions.is_empty() {
            p.muted { @if p.source == "live" { "From the capture so far (refreshes)." } @else { "From the stored features." } }
            table {
                thead { tr { th { "Model" } th { "Label" } th { "Predicted" } th { "Probabilities" } th { "Actual" } } }
                tbody { @for m in &p.predictions { tr {
                    td { a href={ "/models/" (m.model.id) } { (m.model.name) } }
                    td { code { (m.model.label) } }
                    @match (&m.prediction, &m.error) {
                        (Some(pred), _) => {
                            td { strong data-predicted=(pred.class) { (pred.class) } }
                            td { (m.classes.iter().zip(&pred.probabilities).map(|(c, p)| format!("{c} {}", format::percent(*p))).collect::<Vec<_>>().join(", ")) }
                        }
                        (None, error) => { td colspan="2" .muted { (error.clone().unwrap_or_default()) } }
                    }
                    td { (m.actual.as_ref().map(scalar_text).unwrap_or_else(|| "–".into())) }
                } } }
            }
        }
    }
}

/// `GET /sessions/{id}/prediction`: the predictions panel alone (refreshed while running).
pub async fn prediction(State(app): State<App>, Path(id): Path<i64>) -> Result<Markup, Problem> {
    Ok(prediction_markup(&predictions(&app, id).await?))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn stalls_are_read_from_any_usual_shape() {
        let record = json!({"started_unix_ms": 10_000, "stalls": [
            {"start_s": 4.0, "duration_s": 1.5}, {"start_s": 9.0, "end_s": 10.0}, {"bogus": 1}]});
        assert_eq!(stalls(Some(&record), 12_000), vec![(2.0, 3.5), (7.0, 8.0)]);
        let pairs = json!({"stall_intervals": [[1, 2]]});
        assert_eq!(stalls(Some(&pairs), 0), vec![(1.0, 2.0)]);
        assert!(stalls(Some(&json!({"stall_count": 3})), 0).is_empty());
        assert!(stalls(None, 0).is_empty());
        assert!(stalls(Some(&json!([1, 2])), 0).is_empty());
    }

    #[test]
    fn bad_filters_are_reported_per_field() {
        let f = Filter {
            campaign_id: "x".into(),
            limit: "5 furlongs".into(),
            status: "done".into(),
            ..Filter::default()
        };
        let (q, errors) = f.query();
        assert_eq!(errors.others(&[]).len(), 2);
        assert_eq!(q.status, Some(SessionStatus::Done));
        let f = Filter {
            limit: "unlimited".into(),
            page: "3".into(),
            ..Filter::default()
        };
        let (q, errors) = f.query();
        assert!(errors.is_empty());
        assert_eq!((q.rate_bps, q.page), (Some(0), 2));
        assert_eq!(f.link(&[("page", "4")]), "/sessions?limit=unlimited&page=4");
    }
}
