//! Ingest of gateway reports in batches: QoS reports, placement decisions, allocation
//! decisions. Each batch is validated as a whole (the error names the item and field), then
//! stored in one transaction with its idempotency key and a digest of its kind and items, so a
//! retried batch is stored once and a key reused for another batch is refused, not dropped.

use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use sha2::{Digest, Sha256};
use sqlx::AssertSqlSafe;

use crate::db::{Db, now_ms};
use crate::error::{Error, Result};
use crate::session::push_placeholders;

/// Largest batch accepted, in items.
pub const MAX_BATCH: usize = 10_000;

/// A batch of items of one kind.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Batch<T> {
    /// Unique per batch; the same batch sent again with its key is stored once, another batch
    /// sent with a key already used is refused (a conflict). Optional.
    pub idempotency_key: Option<String>,
    /// The items.
    pub items: Vec<T>,
}

/// One QoS report of a gateway analytic.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct QosReport {
    /// Gateway name.
    pub gateway: String,
    /// Analytic id on that gateway.
    pub analytic: String,
    /// Analytic kind, e.g. `object-detection`.
    pub kind: String,
    /// Time of the measurement, Unix ms.
    pub ts_ms: i64,
    /// QoS knob in force, in (0, 1].
    pub knob: f64,
    /// QoS expected at that knob, in [0, 1].
    pub expected_qos: f64,
    /// QoS achieved, in [0, 1].
    pub achieved_qos: f64,
    /// Measured delivery throughput, bit/s.
    #[serde(default)]
    pub throughput_bps: Option<f64>,
    /// Measured delivery latency, ms.
    #[serde(default)]
    pub latency_ms: Option<f64>,
    /// Anything else the analytic reports, stored as given.
    #[serde(default)]
    pub extra: Option<Value>,
}

impl From<&qoelab_workload::iot::QosReport> for QosReport {
    /// A workload analytic's `qoelab.iot-qos.v1` report: the key figures in columns, the whole
    /// report kept in `extra`.
    fn from(r: &qoelab_workload::iot::QosReport) -> QosReport {
        QosReport {
            gateway: r.spec.gateway.clone(),
            analytic: r.spec.analytic.clone(),
            kind: r.spec.kind.clone(),
            ts_ms: r.report_unix_ms as i64,
            knob: r.spec.knob,
            expected_qos: r.expected_qos,
            achieved_qos: r.achieved_qos,
            throughput_bps: Some(r.throughput_bps as f64),
            latency_ms: r.latency_ms_mean,
            extra: serde_json::to_value(r).ok(),
        }
    }
}

/// Where an analytic was placed, and what was downloaded for it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PlacementDecision {
    /// Gateway name.
    pub gateway: String,
    /// Analytic id.
    pub analytic: String,
    /// `edge` or `cloud`.
    pub location: String,
    /// Image name.
    pub image: String,
    /// Layer ids downloaded for this placement.
    #[serde(default)]
    pub layers_fetched: Vec<String>,
    /// Bytes downloaded for this placement.
    #[serde(default)]
    pub bytes_fetched: u64,
    /// Decision time, Unix ms.
    pub ts_ms: i64,
}

/// The knob and rate an allocator gave an analytic.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AllocationDecision {
    /// Gateway name.
    pub gateway: String,
    /// Analytic id.
    pub analytic: String,
    /// Knob in (0, 1].
    pub knob: f64,
    /// Allocated upload rate, bit/s.
    pub rate_bps: u64,
    /// Allocation algorithm, e.g. `raa`.
    pub algorithm: String,
    /// Decision time, Unix ms.
    pub ts_ms: i64,
}

/// What happened to a batch.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct Outcome {
    /// Items stored now.
    pub stored: usize,
    /// Whether the batch had been stored before (same idempotency key, same kind and items):
    /// nothing was stored now.
    pub duplicate: bool,
}

/// Parses a batch from JSON; errors name the path of the offending field, e.g.
/// `items[3].knob`.
pub fn parse_batch<T: DeserializeOwned>(json: &[u8]) -> Result<Batch<T>> {
    let de = &mut serde_json::Deserializer::from_slice(json);
    serde_path_to_error::deserialize(de).map_err(|e| {
        let path = e.path().to_string();
        let inner = e.into_inner();
        Error::invalid(
            if path == "." {
                "body".to_string()
            } else {
                path
            },
            "",
            inner.to_string(),
        )
    })
}

/// Item checks beyond types.
trait Check {
    fn check(&self, at: &str) -> Result<()>;
}

fn name_ok(at: &str, field: &str, value: &str) -> Result<()> {
    if value.trim().is_empty() || value.len() > 200 {
        return Err(Error::invalid(
            format!("{at}.{field}"),
            value,
            "1 to 200 characters",
        ));
    }
    Ok(())
}

/// Checks that `field` holds a Unix time in milliseconds.
pub(crate) fn unix_ms_ok(field: String, ts_ms: i64) -> Result<()> {
    // 2000-01-01 to 2100-01-01: catches seconds sent as milliseconds and the reverse.
    if !(946_684_800_000..=4_102_444_800_000).contains(&ts_ms) {
        return Err(Error::invalid(
            field,
            ts_ms,
            "Unix time in milliseconds (13 digits)",
        ));
    }
    Ok(())
}

fn time_ok(at: &str, ts_ms: i64) -> Result<()> {
    unix_ms_ok(format!("{at}.ts_ms"), ts_ms)
}

fn unit_ok(at: &str, field: &str, v: f64, low_open: bool) -> Result<()> {
    let ok = v.is_finite() && v <= 1.0 && if low_open { v > 0.0 } else { v >= 0.0 };
    if !ok {
        let range = if low_open {
            "a number in (0, 1]"
        } else {
            "a number in [0, 1]"
        };
        return Err(Error::invalid(format!("{at}.{field}"), v, range));
    }
    Ok(())
}

/// Checks an integer the database stores as a signed 64-bit number, up to `max`.
fn at_most(at: &str, field: &str, v: u64, max: u64, accepted: &str) -> Result<()> {
    if v > max {
        return Err(Error::invalid(format!("{at}.{field}"), v, accepted));
    }
    Ok(())
}

fn non_negative(at: &str, field: &str, v: Option<f64>) -> Result<()> {
    match v {
        Some(v) if !(v.is_finite() && v >= 0.0) => {
            Err(Error::invalid(format!("{at}.{field}"), v, "a number ≥ 0"))
        }
        _ => Ok(()),
    }
}

impl Check for QosReport {
    fn check(&self, at: &str) -> Result<()> {
        name_ok(at, "gateway", &self.gateway)?;
        name_ok(at, "analytic", &self.analytic)?;
        name_ok(at, "kind", &self.kind)?;
        time_ok(at, self.ts_ms)?;
        unit_ok(at, "knob", self.knob, true)?;
        unit_ok(at, "expected_qos", self.expected_qos, false)?;
        unit_ok(at, "achieved_qos", self.achieved_qos, false)?;
        non_negative(at, "throughput_bps", self.throughput_bps)?;
        non_negative(at, "latency_ms", self.latency_ms)
    }
}

impl Check for PlacementDecision {
    fn check(&self, at: &str) -> Result<()> {
        name_ok(at, "gateway", &self.gateway)?;
        name_ok(at, "analytic", &self.analytic)?;
        name_ok(at, "image", &self.image)?;
        if self.location != "edge" && self.location != "cloud" {
            return Err(Error::invalid(
                format!("{at}.location"),
                &self.location,
                "edge or cloud",
            ));
        }
        at_most(
            at,
            "bytes_fetched",
            self.bytes_fetched,
            i64::MAX as u64,
            "a byte count below 2^63",
        )?;
        time_ok(at, self.ts_ms)
    }
}

impl Check for AllocationDecision {
    fn check(&self, at: &str) -> Result<()> {
        name_ok(at, "gateway", &self.gateway)?;
        name_ok(at, "analytic", &self.analytic)?;
        name_ok(at, "algorithm", &self.algorithm)?;
        unit_ok(at, "knob", self.knob, true)?;
        at_most(
            at,
            "rate_bps",
            self.rate_bps,
            qoelab_shaper::plan::MAX_RATE_BPS,
            "bits per second up to 100 Gbit/s",
        )?;
        time_ok(at, self.ts_ms)
    }
}

fn check_batch<T: Check>(batch: &Batch<T>) -> Result<()> {
    if batch.items.is_empty() || batch.items.len() > MAX_BATCH {
        return Err(Error::invalid(
            "items",
            format!("{} items", batch.items.len()),
            format!("1 to {MAX_BATCH} items per batch"),
        ));
    }
    if let Some(key) = &batch.idempotency_key
        && (key.is_empty() || key.len() > 200)
    {
        return Err(Error::invalid(
            "idempotency_key",
            key,
            "1 to 200 characters",
        ));
    }
    batch
        .items
        .iter()
        .enumerate()
        .try_for_each(|(i, item)| item.check(&format!("items[{i}]")))
}

/// How one kind of item is stored.
trait Stored: Check + Serialize {
    const KIND: &'static str;
    const INSERT: &'static str;
    const COLUMNS: usize;
    fn bind<'q>(&'q self, q: AnyQuery<'q>) -> AnyQuery<'q>;
}

type AnyQuery<'q> = sqlx::query::Query<'q, sqlx::Any, sqlx::any::AnyArguments>;

impl Stored for QosReport {
    const KIND: &'static str = "qos";
    const INSERT: &'static str = "INSERT INTO qos_reports (gateway, analytic, kind, ts_ms, knob, expected_qos, \
        achieved_qos, throughput_bps, latency_ms, extra) VALUES ";
    const COLUMNS: usize = 10;
    fn bind<'q>(&'q self, q: AnyQuery<'q>) -> AnyQuery<'q> {
        q.bind(&self.gateway)
            .bind(&self.analytic)
            .bind(&self.kind)
            .bind(self.ts_ms)
            .bind(self.knob)
            .bind(self.expected_qos)
            .bind(self.achieved_qos)
            .bind(self.throughput_bps)
            .bind(self.latency_ms)
            .bind(self.extra.as_ref().map(Value::to_string))
    }
}

impl Stored for PlacementDecision {
    const KIND: &'static str = "placement";
    const INSERT: &'static str = "INSERT INTO placement_decisions (gateway, analytic, location, image, \
        layers_fetched, bytes_fetched, ts_ms) VALUES ";
    const COLUMNS: usize = 7;
    fn bind<'q>(&'q self, q: AnyQuery<'q>) -> AnyQuery<'q> {
        q.bind(&self.gateway)
            .bind(&self.analytic)
            .bind(&self.location)
            .bind(&self.image)
            .bind(serde_json::to_string(&self.layers_fetched).unwrap_or_default())
            .bind(self.bytes_fetched as i64)
            .bind(self.ts_ms)
    }
}

impl Stored for AllocationDecision {
    const KIND: &'static str = "allocation";
    const INSERT: &'static str = "INSERT INTO allocation_decisions (gateway, analytic, knob, rate_bps, algorithm, ts_ms) VALUES ";
    const COLUMNS: usize = 6;
    fn bind<'q>(&'q self, q: AnyQuery<'q>) -> AnyQuery<'q> {
        q.bind(&self.gateway)
            .bind(&self.analytic)
            .bind(self.knob)
            .bind(self.rate_bps as i64)
            .bind(&self.algorithm)
            .bind(self.ts_ms)
    }
}

/// The SHA-256 of `parts` in lowercase hex; each part is preceded by its length, so that
/// parts cannot run into each other.
pub(crate) fn sha256_hex(parts: &[&[u8]]) -> String {
    let mut hash = Sha256::new();
    for part in parts {
        hash.update((part.len() as u64).to_le_bytes());
        hash.update(part);
    }
    hash.finalize().iter().map(|b| format!("{b:02x}")).collect()
}

/// What a batch of `kind` holds, in words.
fn noun(kind: &str) -> &str {
    match kind {
        "qos" => "QoS reports",
        "placement" => "placement decisions",
        "allocation" => "allocation decisions",
        other => other,
    }
}

/// The refusal of a batch of `kind` whose `key` was used for a batch of `used_for` with other
/// content.
fn key_reused(key: &str, used_for: &str, kind: &str) -> Error {
    let before = if used_for == kind {
        format!("a different batch of {} (other items)", noun(used_for))
    } else {
        format!("a batch of {}, not of {}", noun(used_for), noun(kind))
    };
    Error::Conflict(format!(
        "idempotency_key = '{key}' was already used for {before}; nothing was stored: \
         give every new batch a new idempotency_key (only a retry of the same batch reuses its key)"
    ))
}

async fn store<T: Stored>(db: &Db, batch: &Batch<T>) -> Result<Outcome> {
    check_batch(batch)?;
    let mut tx = db.begin().await?;
    if let Some(key) = &batch.idempotency_key {
        // Typed items serialize canonically: fields in declaration order, maps sorted by key.
        let digest = sha256_hex(&[T::KIND.as_bytes(), &serde_json::to_vec(&batch.items)?]);
        let claimed = sqlx::query(
            "INSERT INTO ingest_batches (idempotency_key, kind, items, received_ms, digest) \
             VALUES ($1, $2, $3, $4, $5) ON CONFLICT (idempotency_key) DO NOTHING",
        )
        .bind(key)
        .bind(T::KIND)
        .bind(batch.items.len() as i64)
        .bind(now_ms())
        .bind(&digest)
        .execute(&mut *tx)
        .await?;
        if claimed.rows_affected() == 0 {
            let (used_for, stored_digest): (String, Option<String>) = sqlx::query_as(
                "SELECT kind, digest FROM ingest_batches WHERE idempotency_key = $1",
            )
            .bind(key)
            .fetch_one(&mut *tx)
            .await?;
            // Batches stored before digests were kept have none: the kind alone decides.
            if used_for == T::KIND && stored_digest.is_none_or(|d| d == digest) {
                return Ok(Outcome {
                    stored: 0,
                    duplicate: true,
                });
            }
            return Err(key_reused(key, &used_for, T::KIND));
        }
    }
    // Rows per statement: PostgreSQL allows 65535 parameters; fewer, larger statements are faster.
    let rows = 1000.min(60_000 / T::COLUMNS);
    for chunk in batch.items.chunks(rows) {
        let mut sql = String::from(T::INSERT);
        push_placeholders(&mut sql, db.backend(), chunk.len(), T::COLUMNS);
        let mut query = sqlx::query(AssertSqlSafe(sql));
        for item in chunk {
            query = item.bind(query);
        }
        query.execute(&mut *tx).await?;
    }
    tx.commit().await?;
    Ok(Outcome {
        stored: batch.items.len(),
        duplicate: false,
    })
}

/// Validates and stores a batch of QoS reports.
pub async fn qos_reports(db: &Db, batch: &Batch<QosReport>) -> Result<Outcome> {
    store(db, batch).await
}

/// Validates and stores a batch of placement decisions.
pub async fn placement_decisions(db: &Db, batch: &Batch<PlacementDecision>) -> Result<Outcome> {
    store(db, batch).await
}

/// Validates and stores a batch of allocation decisions.
pub async fn allocation_decisions(db: &Db, batch: &Batch<AllocationDecision>) -> Result<Outcome> {
    store(db, batch).await
}

type QosRow = (
    String,
    String,
    String,
    i64,
    f64,
    f64,
    f64,
    Option<f64>,
    Option<f64>,
    Option<String>,
);

/// QoS reports of one gateway analytic between two times (Unix ms), oldest first.
pub async fn qos_between(
    db: &Db,
    gateway: &str,
    analytic: &str,
    from_ms: i64,
    to_ms: i64,
) -> Result<Vec<QosReport>> {
    let rows: Vec<QosRow> = sqlx::query_as(
        "SELECT gateway, analytic, kind, ts_ms, knob, expected_qos, achieved_qos, throughput_bps, latency_ms, extra \
         FROM qos_reports WHERE gateway = $1 AND analytic = $2 AND ts_ms >= $3 AND ts_ms <= $4 ORDER BY ts_ms",
    )
    .bind(gateway)
    .bind(analytic)
    .bind(from_ms)
    .bind(to_ms)
    .fetch_all(db.pool())
    .await?;
    rows.into_iter()
        .map(|r| {
            Ok(QosReport {
                gateway: r.0,
                analytic: r.1,
                kind: r.2,
                ts_ms: r.3,
                knob: r.4,
                expected_qos: r.5,
                achieved_qos: r.6,
                throughput_bps: r.7,
                latency_ms: r.8,
                extra: r.9.map(|s| serde_json::from_str(&s)).transpose()?,
            })
        })
        .collect()
}

/// A gateway analytic seen in ingested QoS reports or allocation decisions.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct AnalyticSeen {
    /// Gateway name.
    pub gateway: String,
    /// Analytic id on that gateway.
    pub analytic: String,
    /// Analytic kind, from its QoS reports (`None` if it has none).
    pub kind: Option<String>,
    /// QoS reports stored.
    pub reports: u64,
    /// Allocation decisions stored.
    pub allocations: u64,
    /// Earliest report or decision, Unix ms.
    pub first_ms: i64,
    /// Latest report or decision, Unix ms.
    pub last_ms: i64,
}

/// Every gateway analytic with QoS reports or allocation decisions, by gateway and analytic.
pub async fn analytics(db: &Db) -> Result<Vec<AnalyticSeen>> {
    let qos: Vec<(String, String, String, i64, i64, i64)> = sqlx::query_as(
        "SELECT gateway, analytic, MAX(kind), COUNT(*), MIN(ts_ms), MAX(ts_ms) FROM qos_reports \
         GROUP BY gateway, analytic",
    )
    .fetch_all(db.pool())
    .await?;
    let allocations: Vec<(String, String, i64, i64, i64)> = sqlx::query_as(
        "SELECT gateway, analytic, COUNT(*), MIN(ts_ms), MAX(ts_ms) FROM allocation_decisions \
         GROUP BY gateway, analytic",
    )
    .fetch_all(db.pool())
    .await?;
    let mut out: std::collections::BTreeMap<(String, String), AnalyticSeen> = qos
        .into_iter()
        .map(|(gateway, analytic, kind, n, first_ms, last_ms)| {
            let seen = AnalyticSeen {
                gateway: gateway.clone(),
                analytic: analytic.clone(),
                kind: Some(kind),
                reports: n as u64,
                allocations: 0,
                first_ms,
                last_ms,
            };
            ((gateway, analytic), seen)
        })
        .collect();
    for (gateway, analytic, n, first_ms, last_ms) in allocations {
        let seen = out
            .entry((gateway.clone(), analytic.clone()))
            .or_insert(AnalyticSeen {
                gateway,
                analytic,
                kind: None,
                reports: 0,
                allocations: 0,
                first_ms,
                last_ms,
            });
        seen.allocations = n as u64;
        seen.first_ms = seen.first_ms.min(first_ms);
        seen.last_ms = seen.last_ms.max(last_ms);
    }
    Ok(out.into_values().collect())
}

/// Allocation decisions of one gateway analytic between two times (Unix ms), oldest first.
pub async fn allocations_between(
    db: &Db,
    gateway: &str,
    analytic: &str,
    from_ms: i64,
    to_ms: i64,
) -> Result<Vec<AllocationDecision>> {
    let rows: Vec<(String, String, f64, i64, String, i64)> = sqlx::query_as(
        "SELECT gateway, analytic, knob, rate_bps, algorithm, ts_ms FROM allocation_decisions \
         WHERE gateway = $1 AND analytic = $2 AND ts_ms >= $3 AND ts_ms <= $4 ORDER BY ts_ms",
    )
    .bind(gateway)
    .bind(analytic)
    .bind(from_ms)
    .bind(to_ms)
    .fetch_all(db.pool())
    .await?;
    Ok(rows
        .into_iter()
        .map(|r| AllocationDecision {
            gateway: r.0,
            analytic: r.1,
            knob: r.2,
            rate_bps: r.3 as u64,
            algorithm: r.4,
            ts_ms: r.5,
        })
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn type_errors_name_the_item_and_field() {
        let json = br#"{"items": [{"gateway":"g","analytic":"a","kind":"k","ts_ms":1700000000000,
            "knob":0.5,"expected_qos":0.9,"achieved_qos":0.8},
            {"gateway":"g","analytic":"a","kind":"k","ts_ms":1700000000000,"knob":"high",
            "expected_qos":0.9,"achieved_qos":0.8}]}"#;
        let err = parse_batch::<QosReport>(json).unwrap_err().to_string();
        assert!(err.contains("items[1].knob"), "{err}");
        let err = parse_batch::<QosReport>(br#"{"items": [], "bogus": 1}"#)
            .unwrap_err()
            .to_string();
        assert!(err.contains("bogus"), "{err}");
        assert!(parse_batch::<QosReport>(b"not json").is_err());
    }

    #[test]
    fn value_errors_name_the_item_field_and_value() {
        let good = QosReport {
            gateway: "gw1".into(),
            analytic: "cam1".into(),
            kind: "object-detection".into(),
            ts_ms: 1_700_000_000_000,
            knob: 0.5,
            expected_qos: 0.9,
            achieved_qos: 0.8,
            throughput_bps: None,
            latency_ms: None,
            extra: None,
        };
        let batch = |r: QosReport| Batch {
            idempotency_key: None,
            items: vec![good.clone(), r],
        };
        check_batch(&batch(good.clone())).unwrap();
        let err = check_batch(&batch(QosReport {
            knob: 1.5,
            ..good.clone()
        }))
        .unwrap_err()
        .to_string();
        assert!(err.contains("items[1].knob = '1.5'"), "{err}");
        let err = check_batch(&batch(QosReport {
            ts_ms: 1_700_000_000,
            ..good.clone()
        }))
        .unwrap_err()
        .to_string();
        assert!(
            err.contains("items[1].ts_ms") && err.contains("milliseconds"),
            "{err}"
        );
        let err = check_batch(&batch(QosReport {
            gateway: "".into(),
            ..good.clone()
        }))
        .unwrap_err()
        .to_string();
        assert!(err.contains("items[1].gateway"), "{err}");
        let err = check_batch(&Batch::<QosReport> {
            idempotency_key: None,
            items: vec![],
        })
        .unwrap_err()
        .to_string();
        assert!(err.contains("items"), "{err}");
    }
}
