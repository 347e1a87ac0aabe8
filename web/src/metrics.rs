//! `GET /metrics` in the Prometheus text format: sessions by state, running campaigns, ingest
//! counts since start, and for each gateway (label `gateway`) whether its agent answers and —
//! when it does — each shaping class's limits, rate, counters and drops.

use std::fmt::Write;
use std::sync::atomic::{AtomicU64, Ordering};

use axum::extract::State;
use axum::http::header;
use axum::response::IntoResponse;

use qoelab_collector::campaign::{self, CampaignStatus, SessionStatus};
use qoelab_collector::session::SessionQuery;

use crate::App;
use crate::agent::interfaces;
use crate::error::Problem;

/// The kinds of ingest, in the order of [`IngestCounters`]' slots.
pub const INGEST_KINDS: [&str; 3] = ["qos", "placement", "allocation"];

/// What ingest has received since start, per kind.
#[derive(Default)]
pub struct IngestCounters {
    items: [AtomicU64; 3],
    batches: [AtomicU64; 3],
    duplicates: [AtomicU64; 3],
    rejected: [AtomicU64; 3],
}

/// How an ingest batch ended.
pub enum IngestOutcome {
    /// Stored with this many items.
    Stored(usize),
    /// Stored before (same idempotency key).
    Duplicate,
    /// Refused (bad input).
    Rejected,
}

impl IngestCounters {
    /// Counts a batch of `kind` (one of [`INGEST_KINDS`]).
    pub fn count(&self, kind: &str, outcome: IngestOutcome) {
        let k = INGEST_KINDS.iter().position(|x| *x == kind).unwrap_or(0);
        match outcome {
            IngestOutcome::Stored(n) => {
                self.batches[k].fetch_add(1, Ordering::Relaxed);
                self.items[k].fetch_add(n as u64, Ordering::Relaxed);
            }
            IngestOutcome::Duplicate => {
                self.duplicates[k].fetch_add(1, Ordering::Relaxed);
            }
            IngestOutcome::Rejected => {
                self.rejected[k].fetch_add(1, Ordering::Relaxed);
            }
        }
    }
}

/// Writes one metric family: help, type, and samples (labels, value).
fn family(out: &mut String, name: &str, kind: &str, help: &str, samples: &[(String, f64)]) {
    let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} {kind}");
    for (labels, value) in samples {
        if labels.is_empty() {
            let _ = writeln!(out, "{name} {value}");
        } else {
            let _ = writeln!(out, "{name}{{{labels}}} {value}");
        }
    }
}

/// A label value escaped for the text format.
fn label(value: &str) -> String {
    value
        .replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

/// `GET /metrics`.
pub async fn render(State(app): State<App>) -> Result<impl IntoResponse, Problem> {
    let mut out = String::new();
    let db = app.db();
    let mut by_status = Vec::new();
    for status in [
        SessionStatus::Pending,
        SessionStatus::Running,
        SessionStatus::Done,
        SessionStatus::Failed,
        SessionStatus::Discarded,
    ] {
        let q = SessionQuery {
            status: Some(status),
            ..Default::default()
        };
        let total = app.totals().total(db, &q).await?;
        by_status.push((format!("status=\"{status}\""), total as f64));
    }
    family(
        &mut out,
        "qoelab_sessions",
        "gauge",
        "Sessions by state.",
        &by_status,
    );
    let running = campaign::with_status(db, CampaignStatus::Running)
        .await?
        .len();
    family(
        &mut out,
        "qoelab_campaigns_running",
        "gauge",
        "Campaigns running now.",
        &[(String::new(), running as f64)],
    );
    let counters = app.ingest();
    for (name, help, slots) in [
        (
            "qoelab_ingest_items_total",
            "Ingested items stored since start.",
            &counters.items,
        ),
        (
            "qoelab_ingest_batches_total",
            "Ingest batches stored since start.",
            &counters.batches,
        ),
        (
            "qoelab_ingest_duplicate_batches_total",
            "Ingest batches sent again (same idempotency key) and not stored twice.",
            &counters.duplicates,
        ),
        (
            "qoelab_ingest_rejected_batches_total",
            "Ingest batches refused for bad input.",
            &counters.rejected,
        ),
    ] {
        let samples: Vec<(String, f64)> = INGEST_KINDS
            .iter()
            .zip(slots.iter())
            .map(|(k, v)| (format!("kind=\"{k}\""), v.load(Ordering::Relaxed) as f64))
            .collect();
        family(&mut out, name, "counter", help, &samples);
    }
    agent_metrics(&app, &mut out).await;
    Ok((
        [(
            header::CONTENT_TYPE,
            "text/plain; version=0.0.4; charset=utf-8",
        )],
        out,
    ))
}

type ClassField = fn(&crate::agent::ClassView) -> Option<f64>;

const CLASS_FAMILIES: [(&str, &str, &str, ClassField); 8] = [
    (
        "qoelab_class_rate_bps",
        "gauge",
        "Guaranteed rate of a shaping class, bit/s.",
        |c| Some(c.rate_bps as f64),
    ),
    (
        "qoelab_class_ceil_bps",
        "gauge",
        "Ceiling of a shaping class, bit/s.",
        |c| Some(c.ceil_bps as f64),
    ),
    (
        "qoelab_class_measured_bps",
        "gauge",
        "Rate a shaping class sends at, bit/s.",
        |c| c.measured_bps.map(|v| v as f64),
    ),
    (
        "qoelab_class_sent_bytes_total",
        "counter",
        "Bytes a shaping class sent.",
        |c| Some(c.bytes as f64),
    ),
    (
        "qoelab_class_sent_packets_total",
        "counter",
        "Packets a shaping class sent.",
        |c| Some(c.packets as f64),
    ),
    (
        "qoelab_class_drops_total",
        "counter",
        "Packets a shaping class dropped.",
        |c| Some(c.drops as f64),
    ),
    (
        "qoelab_class_overlimits_total",
        "counter",
        "Times a shaping class was over its rate.",
        |c| Some(c.overlimits as f64),
    ),
    (
        "qoelab_class_backlog_bytes",
        "gauge",
        "Bytes queued in a shaping class.",
        |c| Some(c.backlog_bytes as f64),
    ),
];

async fn agent_metrics(app: &App, out: &mut String) {
    let reads = app.gateways().iter().map(|gateway| async move {
        let stats = match app.agent(gateway) {
            Some(agent) => agent.stats().await.and_then(interfaces),
            None => Err("not connected".to_string()),
        };
        (gateway, stats)
    });
    let gateways = futures::future::join_all(reads).await;
    let up: Vec<(String, f64)> = gateways
        .iter()
        .map(|(gateway, stats)| {
            (
                format!("gateway=\"{}\"", label(gateway)),
                f64::from(u8::from(stats.is_ok())),
            )
        })
        .collect();
    family(
        out,
        "qoelab_agent_up",
        "gauge",
        "Whether the gateway's agent answered with its statistics.",
        &up,
    );
    for (name, kind, help, field) in CLASS_FAMILIES {
        let mut samples = Vec::new();
        for (gateway, stats) in &gateways {
            let Ok(ifaces) = stats else {
                continue;
            };
            for iface in ifaces {
                for direction in &iface.directions {
                    for class in &direction.classes {
                        let Some(value) = field(class) else {
                            continue;
                        };
                        let labels = format!(
                            "gateway=\"{}\",iface=\"{}\",netns=\"{}\",direction=\"{}\",class=\"{}\",classid=\"{}\"",
                            label(gateway),
                            label(&iface.iface.name),
                            label(iface.iface.netns.as_deref().unwrap_or("")),
                            label(&direction.direction),
                            label(&class.name),
                            label(&class.classid)
                        );
                        samples.push((labels, value));
                    }
                }
            }
        }
        family(out, name, kind, help, &samples);
    }
}
