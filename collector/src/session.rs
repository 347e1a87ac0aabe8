//! Sessions: claiming the next one, storing a finished one's results in one transaction,
//! and reading them back (lists with filters, sorting and pages; one session in detail).

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use sqlx::any::AnyRow;
use sqlx::{Any, AssertSqlSafe, Row, Transaction};

use crate::campaign::{Profile, SessionStatus};
use crate::db::{Backend, Db, now_ms};
use crate::error::{Error, Result};
use crate::features;

/// One session as stored.
#[derive(Debug, Clone, Serialize)]
pub struct Session {
    /// Id.
    pub id: i64,
    /// Its campaign.
    pub campaign_id: i64,
    /// Position in the campaign, from 0.
    pub seq: i64,
    /// Network conditions.
    pub profile: Profile,
    /// Workload label, e.g. `video/buffer`.
    pub workload: String,
    /// State.
    pub status: SessionStatus,
    /// How many times it was started.
    pub attempts: i64,
    /// Start, Unix ms.
    pub started_ms: Option<i64>,
    /// End, Unix ms.
    pub finished_ms: Option<i64>,
    /// Why it failed.
    pub failure: Option<String>,
    /// The capture that measured it.
    pub capture_id: Option<String>,
}

const SESSION_COLUMNS: &str = "id, campaign_id, seq, rate_bps, delay_ms, loss, workload, status, attempts, started_ms, finished_ms, failure, capture_id";

fn session_from_row(row: &AnyRow) -> Result<Session> {
    <SessionRow as sqlx::FromRow<_>>::from_row(row)?.try_into()
}

/// Marks the next pending session of `campaign_id` running and returns it; `None` when no
/// session is pending.
pub async fn claim_next(db: &Db, campaign_id: i64) -> Result<Option<Session>> {
    let mut tx = db.begin().await?;
    let next: Option<(i64,)> = sqlx::query_as(
        "SELECT id FROM sessions WHERE campaign_id = $1 AND status = 'pending' ORDER BY seq LIMIT 1",
    )
    .bind(campaign_id)
    .fetch_optional(&mut *tx)
    .await?;
    let Some((id,)) = next else {
        return Ok(None);
    };
    let row = sqlx::query(AssertSqlSafe(format!(
        "UPDATE sessions SET status = 'running', attempts = attempts + 1, started_ms = $1, finished_ms = NULL, \
         failure = NULL WHERE id = $2 AND status = 'pending' RETURNING {SESSION_COLUMNS}"
    )))
    .bind(now_ms())
    .bind(id)
    .fetch_one(&mut *tx)
    .await?;
    tx.commit().await?;
    Ok(Some(session_from_row(&row)?))
}

/// The session with this id.
pub async fn get(db: &Db, id: i64) -> Result<Session> {
    let row = sqlx::query(AssertSqlSafe(format!(
        "SELECT {SESSION_COLUMNS} FROM sessions WHERE id = $1"
    )))
    .bind(id)
    .fetch_optional(db.pool())
    .await?
    .ok_or_else(|| Error::NotFound(format!("no session with id {id}")))?;
    session_from_row(&row)
}

/// Records the capture measuring a running session.
pub async fn set_capture(db: &Db, id: i64, capture_id: &str) -> Result<()> {
    sqlx::query("UPDATE sessions SET capture_id = $1 WHERE id = $2")
        .bind(capture_id)
        .bind(id)
        .execute(db.pool())
        .await?;
    Ok(())
}

/// Ends a running session without results: `failed` with `reason`, or `discarded`.
pub async fn end_without_results(
    db: &Db,
    id: i64,
    status: SessionStatus,
    reason: &str,
) -> Result<()> {
    sqlx::query("UPDATE sessions SET status = $1, failure = $2, finished_ms = $3 WHERE id = $4 AND status = 'running'")
        .bind(status.as_str())
        .bind(reason)
        .bind(now_ms())
        .bind(id)
        .execute(db.pool())
        .await?;
    Ok(())
}

/// Fails every pending session of campaign `campaign_id` with `reason` (it cannot run);
/// returns how many.
pub async fn fail_pending(db: &Db, campaign_id: i64, reason: &str) -> Result<u64> {
    let done = sqlx::query("UPDATE sessions SET status = 'failed', failure = $1, finished_ms = $2 WHERE campaign_id = $3 AND status = 'pending'")
        .bind(reason)
        .bind(now_ms())
        .bind(campaign_id)
        .execute(db.pool())
        .await?;
    Ok(done.rows_affected())
}

/// Puts a session back to pending (a stopped campaign's running session).
pub async fn requeue(db: &Db, id: i64) -> Result<()> {
    sqlx::query("UPDATE sessions SET status = 'pending', started_ms = NULL, capture_id = NULL WHERE id = $1 AND status = 'running'")
        .bind(id)
        .execute(db.pool())
        .await?;
    Ok(())
}

/// One time bin of traffic, of one flow or (with `flow_idx` `None`) of the whole capture.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Bin {
    /// The flow's index in [`Results::flows`], or `None` for the whole capture.
    pub flow_idx: Option<u32>,
    /// Bin number from the start of the capture.
    pub bin: u32,
    /// Bin start, Unix ms.
    pub start_ms: i64,
    /// Client → server bytes (IP).
    pub c2s_bytes: u64,
    /// Server → client bytes (IP).
    pub s2c_bytes: u64,
    /// Client → server packets.
    pub c2s_pkts: u64,
    /// Server → client packets.
    pub s2c_pkts: u64,
    /// Client → server retransmitted packets.
    pub c2s_retx: u64,
    /// Server → client retransmitted packets.
    pub s2c_retx: u64,
}

/// What a session produced: flow statistics, time series, and the application's report.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct Results {
    /// The capture's id.
    pub capture_id: Option<String>,
    /// Bin width of `series`, ms.
    pub bin_ms: u64,
    /// The session's warm-up, ms: its bins are left out of the series features.
    #[serde(default)]
    pub warmup_ms: u64,
    /// One statistics record per flow (the capture's columns).
    pub flows: Vec<Map<String, Value>>,
    /// Time bins per flow and for the whole capture.
    pub series: Vec<Bin>,
    /// The application's QoE/QoS record, if it reported one.
    pub application: Option<Value>,
}

impl Results {
    /// Whether the session carried any traffic at all.
    pub fn has_traffic(&self) -> bool {
        self.flows.iter().any(|f| {
            features::number(f, "c2s_ip_bytes").unwrap_or(0.0)
                + features::number(f, "s2c_ip_bytes").unwrap_or(0.0)
                > 0.0
        })
    }
}

fn text(flow: &Map<String, Value>, key: &str) -> String {
    match flow.get(key) {
        Some(Value::String(s)) => s.clone(),
        Some(other) => other.to_string(),
        None => String::new(),
    }
}

/// Flow rows per INSERT: 10 parameters each, within PostgreSQL's 65535.
const FLOWS_PER_STATEMENT: usize = 1000;

/// A flow record as stored: its JSON without the columns that are null (absent means null).
fn compact_json(flow: &Map<String, Value>) -> Result<String> {
    struct NonNull<'a>(&'a Map<String, Value>);
    impl Serialize for NonNull<'_> {
        fn serialize<S: serde::Serializer>(&self, s: S) -> std::result::Result<S::Ok, S::Error> {
            s.collect_map(self.0.iter().filter(|(_, v)| !v.is_null()))
        }
    }
    Ok(serde_json::to_string(&NonNull(flow))?)
}

/// Inserts a session's flow records inside `tx`.
async fn insert_flows(
    tx: &mut Transaction<'static, Any>,
    backend: Backend,
    session_id: i64,
    flows: &[Map<String, Value>],
) -> Result<()> {
    for (chunk_no, chunk) in flows.chunks(FLOWS_PER_STATEMENT).enumerate() {
        let mut sql = String::from(
            "INSERT INTO flows (session_id, idx, protocol, client_addr, client_port, server_addr, server_port, \
             c2s_bytes, s2c_bytes, stats) VALUES ",
        );
        push_placeholders(&mut sql, backend, chunk.len(), 10);
        let mut query = sqlx::query(AssertSqlSafe(sql));
        for (i, flow) in chunk.iter().enumerate() {
            query = query
                .bind(session_id)
                .bind((chunk_no * FLOWS_PER_STATEMENT + i) as i64)
                .bind(text(flow, "protocol"))
                .bind(text(flow, "client_ip"))
                .bind(features::number(flow, "client_port").unwrap_or(0.0) as i64)
                .bind(text(flow, "server_ip"))
                .bind(features::number(flow, "server_port").unwrap_or(0.0) as i64)
                .bind(features::number(flow, "c2s_ip_bytes").unwrap_or(0.0) as i64)
                .bind(features::number(flow, "s2c_ip_bytes").unwrap_or(0.0) as i64)
                .bind(compact_json(flow)?);
        }
        query.execute(&mut **tx).await?;
    }
    Ok(())
}

/// Stores a session's results and marks it done, all in one transaction: either everything
/// is stored or nothing is.
pub async fn store_results(db: &Db, session: &Session, results: &Results) -> Result<()> {
    let mut tx = db.begin().await?;
    if db.backend() == Backend::Postgres {
        // The flow INSERT binds thousands of parameters: planned once per connection (a
        // generic plan) rather than at every execution.
        sqlx::query("SELECT set_config('plan_cache_mode', 'force_generic_plan', true)")
            .execute(&mut *tx)
            .await?;
    }
    // The feature row is computed while the database stores the flows.
    let (stored, row) = futures::join!(
        insert_flows(&mut tx, db.backend(), session.id, &results.flows),
        async { features::feature_row(session, results) }
    );
    stored?;
    for chunk in results.series.chunks(500) {
        let mut sql = String::from(
            "INSERT INTO series_bins (session_id, flow_idx, bin, start_ms, c2s_bytes, s2c_bytes, c2s_pkts, \
             s2c_pkts, c2s_retx, s2c_retx) VALUES ",
        );
        push_placeholders(&mut sql, db.backend(), chunk.len(), 10);
        let mut query = sqlx::query(AssertSqlSafe(sql));
        for b in chunk {
            query = query
                .bind(session.id)
                .bind(b.flow_idx.map_or(-1, i64::from))
                .bind(i64::from(b.bin))
                .bind(b.start_ms)
                .bind(b.c2s_bytes as i64)
                .bind(b.s2c_bytes as i64)
                .bind(b.c2s_pkts as i64)
                .bind(b.s2c_pkts as i64)
                .bind(b.c2s_retx as i64)
                .bind(b.s2c_retx as i64);
        }
        query.execute(&mut *tx).await?;
    }
    if let Some(application) = &results.application {
        sqlx::query("INSERT INTO session_qoe (session_id, record) VALUES ($1, $2)")
            .bind(session.id)
            .bind(serde_json::to_string(application)?)
            .execute(&mut *tx)
            .await?;
    }
    let mut sql = String::from("INSERT INTO campaign_columns (campaign_id, name, is_text) VALUES ");
    push_placeholders(&mut sql, db.backend(), row.len(), 3);
    // A column is text if any session stored text in it.
    sql.push_str(
        " ON CONFLICT (campaign_id, name) DO UPDATE SET is_text = 1 \
         WHERE excluded.is_text = 1 AND campaign_columns.is_text = 0",
    );
    let mut query = sqlx::query(AssertSqlSafe(sql));
    for (name, value) in &row {
        query = query
            .bind(session.campaign_id)
            .bind(name.as_str())
            .bind(i64::from(value.is_string()));
    }
    query.execute(&mut *tx).await?;
    sqlx::query("INSERT INTO session_features (session_id, features) VALUES ($1, $2)")
        .bind(session.id)
        .bind(serde_json::to_string(&row)?)
        .execute(&mut *tx)
        .await?;
    let updated = sqlx::query(
        "UPDATE sessions SET status = 'done', finished_ms = $1, capture_id = $2 WHERE id = $3 AND status = 'running'",
    )
    .bind(now_ms())
    .bind(results.capture_id.clone())
    .bind(session.id)
    .execute(&mut *tx)
    .await?;
    if updated.rows_affected() != 1 {
        return Err(Error::Conflict(format!(
            "session {} is not running; its results were not stored",
            session.id
        )));
    }
    tx.commit().await?;
    Ok(())
}

/// Appends `rows` groups of `width` placeholders: `($1,…,$w),($w+1,…)` for PostgreSQL,
/// `(?,…,?),(…)` for SQLite. (SQLite looks named parameters up one by one in a list, which
/// makes binding thousands of `$N` quadratic; anonymous `?` bind in order at no cost.)
pub(crate) fn push_placeholders(sql: &mut String, backend: Backend, rows: usize, width: usize) {
    for r in 0..rows {
        sql.push_str(if r == 0 { "(" } else { ",(" });
        for c in 0..width {
            if c > 0 {
                sql.push(',');
            }
            match backend {
                Backend::Postgres => {
                    sql.push('$');
                    sql.push_str(&(r * width + c + 1).to_string());
                }
                Backend::Sqlite => sql.push('?'),
            }
        }
        sql.push(')');
    }
}

/// Filters, sorting and page of a session list.
#[derive(Debug, Clone, Default, Deserialize)]
pub struct SessionQuery {
    /// Only this campaign.
    pub campaign_id: Option<i64>,
    /// Only this state.
    pub status: Option<SessionStatus>,
    /// Only this limit, bit/s; 0 means unlimited.
    pub rate_bps: Option<u64>,
    /// Only sessions whose application label `NAME` has this value, as `NAME=VALUE`, e.g.
    /// `qoe_class=low` or `stall=1` (the feature row's `label_NAME` column).
    pub label: Option<String>,
    /// Sort column: `seq` (default), `id`, `rate_bps`, `status`, `started_ms`.
    pub sort: Option<String>,
    /// Sort descending.
    #[serde(default)]
    pub desc: bool,
    /// Page number from 0.
    #[serde(default)]
    pub page: u32,
    /// Rows per page (default 50, at most 1000).
    pub per_page: Option<u32>,
}

/// A page of sessions and the number of all that match.
#[derive(Debug, Clone, Serialize)]
pub struct SessionPage {
    /// The sessions on this page.
    pub sessions: Vec<Session>,
    /// Sessions matching the filters, over all pages.
    pub total: u64,
}

/// Sessions matching `q`, one page of them, and how many match in all, read in one query.
pub async fn list(db: &Db, q: &SessionQuery) -> Result<SessionPage> {
    let (sessions, total) = read_page(db, q, true).await?;
    let total = match total {
        Some(total) => total,
        None => count(db, q).await?,
    };
    Ok(SessionPage { sessions, total })
}

/// The WHERE clause of `q`'s filters and its bound values.
fn filter(q: &SessionQuery) -> Result<(String, Vec<Bind>)> {
    let mut filters = Vec::new();
    let mut binds: Vec<Bind> = Vec::new();
    if let Some(label) = &q.label {
        // Feature rows are compact JSON with sorted keys: a label is the text `"label_N":V`
        // followed by `,` or `}` (a number) or quoted (text).
        let (name, value) = parse_label_filter(label)?;
        let key = format!("%\"label_{}\":", like_escape(name));
        let value = like_escape(value);
        let first = binds.len() + 1;
        for pattern in [
            format!("{key}\"{value}\"%"),
            format!("{key}{value},%"),
            format!("{key}{value}}}%"),
        ] {
            binds.push(Bind::Text(pattern));
        }
        filters.push(format!(
            "id IN (SELECT session_id FROM session_features WHERE features LIKE ${first} ESCAPE '\\' \
             OR features LIKE ${} ESCAPE '\\' OR features LIKE ${} ESCAPE '\\')",
            first + 1,
            first + 2
        ));
    }
    if let Some(c) = q.campaign_id {
        binds.push(Bind::Int(c));
        filters.push(format!("campaign_id = ${}", binds.len()));
    }
    if let Some(s) = q.status {
        binds.push(Bind::Text(s.as_str().to_string()));
        filters.push(format!("status = ${}", binds.len()));
    }
    match q.rate_bps {
        Some(0) => filters.push("rate_bps IS NULL".into()),
        Some(r) => {
            binds.push(Bind::Int(r as i64));
            filters.push(format!("rate_bps = ${}", binds.len()));
        }
        None => {}
    }
    let filter = if filters.is_empty() {
        String::new()
    } else {
        format!(" WHERE {}", filters.join(" AND "))
    };
    Ok((filter, binds))
}

/// Whether `q` filters by campaign and nothing else.
fn only_campaign(q: &SessionQuery) -> bool {
    q.campaign_id.is_some() && q.status.is_none() && q.rate_bps.is_none() && q.label.is_none()
}

/// How many sessions match `q`'s filters (its sort and page do not matter).
///
/// A whole campaign is not counted row by row: its `seq`s run from 0 without gaps (sessions
/// are created with their campaign and never deleted), so its size is its largest `seq` + 1,
/// read from the `(campaign_id, seq)` index.
pub async fn count(db: &Db, q: &SessionQuery) -> Result<u64> {
    let (filter, binds) = filter(q)?;
    let mut count = sqlx::query_as::<_, (i64,)>(AssertSqlSafe(count_sql(q, &filter)));
    for b in &binds {
        count = b.bind_as(count);
    }
    let (total,) = count.fetch_one(db.reads()).await?;
    Ok(total as u64)
}

/// The query counting the sessions of `q` that `filter` (its WHERE clause) selects.
fn count_sql(q: &SessionQuery, filter: &str) -> String {
    if only_campaign(q) {
        format!("SELECT COALESCE(MAX(seq) + 1, 0) FROM sessions{filter}")
    } else {
        format!("SELECT COUNT(*) FROM sessions{filter}")
    }
}

/// The page of sessions `q` asks for.
///
/// A campaign's sessions in `seq` order (the default) are found by seeking to the page's
/// first `seq` rather than skipping rows (a campaign's `seq`s run from 0 without gaps), so
/// the last page of 10,000 costs what the first does.
pub async fn page(db: &Db, q: &SessionQuery) -> Result<Vec<Session>> {
    Ok(read_page(db, q, false).await?.0)
}

/// The page of sessions `q` asks for and, if `with_total`, the number of all that match,
/// counted by the same query (one round trip instead of two). PostgreSQL's count rides on
/// the page's rows, so an empty page has none.
async fn read_page(
    db: &Db,
    q: &SessionQuery,
    with_total: bool,
) -> Result<(Vec<Session>, Option<u64>)> {
    let sort = match q.sort.as_deref().unwrap_or("seq") {
        column @ ("seq" | "id" | "rate_bps" | "status" | "started_ms") => column,
        other => {
            return Err(Error::invalid(
                "sort",
                other,
                "seq, id, rate_bps, status, started_ms",
            ));
        }
    };
    let per_page = q.per_page.unwrap_or(50);
    if !(1..=1000).contains(&per_page) {
        return Err(Error::invalid("per_page", per_page, "1 to 1000"));
    }
    let (filter, binds) = filter(q)?;
    let offset = i64::from(q.page) * i64::from(per_page);
    // The page's position is bound, not written into the SQL, so that each filter's statement
    // is prepared once and reused for every page.
    let (first, next) = (binds.len() + 1, binds.len() + 2);
    let total = if with_total {
        format!("({})", count_sql(q, &filter))
    } else {
        "CAST(NULL AS BIGINT)".to_string()
    };
    let postgres = db.postgres_reads();
    // PostgreSQL returns the total beside each row; SQLite beside the page's JSON (below).
    let columns = if postgres.is_some() {
        format!("{SESSION_COLUMNS}, {total} AS total")
    } else {
        SESSION_COLUMNS.to_string()
    };
    let (rows_sql, order) = if sort == "seq" && !q.desc && only_campaign(q) {
        (
            format!(
                "SELECT {columns} FROM sessions{filter} AND seq >= ${first} ORDER BY seq LIMIT ${next}"
            ),
            "seq".to_string(),
        )
    } else {
        let direction = if q.desc { "DESC" } else { "ASC" };
        let order = format!("{sort} {direction}, id {direction}");
        (
            format!(
                "SELECT {columns} FROM sessions{filter} ORDER BY {order} LIMIT ${next} OFFSET ${first}"
            ),
            order,
        )
    };
    if let Some(pool) = postgres {
        let mut page = sqlx::query_as::<_, PageRow>(AssertSqlSafe(rows_sql));
        for b in &binds {
            page = b.bind_as(page);
        }
        page = page.bind(offset).bind(i64::from(per_page));
        let rows = page.fetch_all(pool).await?;
        let total = rows.first().and_then(|row| row.total);
        let sessions = rows
            .into_iter()
            .map(|row| Session::try_from(row.session))
            .collect::<Result<_>>()?;
        return Ok((sessions, total.map(|t| t as u64)));
    }
    // SQLite hands the page over as one JSON array: one result row to move instead of one per
    // session (each row is a hand-over between the driver's thread and ours; on PostgreSQL,
    // building the JSON costs more than it saves).
    let fields: Vec<String> = SESSION_COLUMNS
        .split(", ")
        .map(|c| format!("'{c}', {c}"))
        .collect();
    let page_sql = format!(
        "SELECT {total}, COALESCE(json_group_array(json_object({}) ORDER BY {order}), '[]') FROM ({rows_sql}) AS page",
        fields.join(", ")
    );
    let mut page = sqlx::query_as::<_, (Option<i64>, String)>(AssertSqlSafe(page_sql));
    for b in &binds {
        page = b.bind_as(page);
    }
    page = page.bind(offset).bind(i64::from(per_page));
    let (total, json) = page.fetch_one(db.reads()).await?;
    let sessions = serde_json::from_str::<Vec<SessionRow>>(&json)?
        .into_iter()
        .map(Session::try_from)
        .collect::<Result<_>>()?;
    Ok((sessions, total.map(|t| t as u64)))
}

/// A session's columns, as a result row or as the JSON object the database writes.
#[derive(Deserialize, sqlx::FromRow)]
struct SessionRow {
    id: i64,
    campaign_id: i64,
    seq: i64,
    rate_bps: Option<i64>,
    delay_ms: Option<f64>,
    loss: Option<f64>,
    workload: String,
    status: String,
    attempts: i64,
    started_ms: Option<i64>,
    finished_ms: Option<i64>,
    failure: Option<String>,
    capture_id: Option<String>,
}

/// A row of a PostgreSQL page: the session and the count of all that match.
#[derive(sqlx::FromRow)]
struct PageRow {
    #[sqlx(flatten)]
    session: SessionRow,
    total: Option<i64>,
}

impl TryFrom<SessionRow> for Session {
    type Error = Error;
    fn try_from(row: SessionRow) -> Result<Session> {
        Ok(Session {
            id: row.id,
            campaign_id: row.campaign_id,
            seq: row.seq,
            profile: Profile {
                rate_bps: row.rate_bps.map(|r| r as u64),
                delay_ms: row.delay_ms,
                loss: row.loss,
            },
            workload: row.workload,
            status: row.status.parse()?,
            attempts: row.attempts,
            started_ms: row.started_ms,
            finished_ms: row.finished_ms,
            failure: row.failure,
            capture_id: row.capture_id,
        })
    }
}

/// Splits a label filter `NAME=VALUE`; names are letters, digits and `_`.
fn parse_label_filter(text: &str) -> Result<(&str, &str)> {
    let accepted = "NAME=VALUE with a label name of letters, digits and _, e.g. qoe_class=low";
    let (name, value) = text
        .split_once('=')
        .map(|(n, v)| (n.trim(), v.trim()))
        .ok_or_else(|| Error::invalid("label", text, accepted))?;
    let name = name.strip_prefix("label_").unwrap_or(name);
    if name.is_empty()
        || !name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
        || value.is_empty()
        || value.contains('"')
    {
        return Err(Error::invalid("label", text, accepted));
    }
    Ok((name, value))
}

fn like_escape(text: &str) -> String {
    text.replace('\\', "\\\\")
        .replace('%', "\\%")
        .replace('_', "\\_")
}

enum Bind {
    Int(i64),
    Text(String),
}

impl Bind {
    fn bind_as<'q, DB: sqlx::Database, T>(
        &self,
        q: sqlx::query::QueryAs<'q, DB, T, DB::Arguments>,
    ) -> sqlx::query::QueryAs<'q, DB, T, DB::Arguments>
    where
        i64: sqlx::Encode<'q, DB> + sqlx::Type<DB>,
        String: sqlx::Encode<'q, DB> + sqlx::Type<DB>,
    {
        match self {
            Bind::Int(v) => q.bind(*v),
            Bind::Text(v) => q.bind(v.clone()),
        }
    }
}

/// The application labels (`label_…` columns of the feature rows, without the prefix) of
/// the stored sessions among `ids`; sessions without results are absent.
pub async fn labels(db: &Db, ids: &[i64]) -> Result<BTreeMap<i64, BTreeMap<String, Value>>> {
    let mut out = BTreeMap::new();
    if ids.is_empty() {
        return Ok(out);
    }
    let mut sql =
        String::from("SELECT session_id, features FROM session_features WHERE session_id IN ");
    push_placeholders(&mut sql, db.backend(), 1, ids.len());
    let mut query = sqlx::query_as::<_, (i64, String)>(AssertSqlSafe(sql));
    for id in ids {
        query = query.bind(*id);
    }
    for (id, json) in query.fetch_all(db.pool()).await? {
        let row: BTreeMap<String, Value> = serde_json::from_str(&json)?;
        let labels = row
            .into_iter()
            .filter_map(|(k, v)| k.strip_prefix("label_").map(|n| (n.to_string(), v)))
            .collect();
        out.insert(id, labels);
    }
    Ok(out)
}

/// A session with everything stored about it.
#[derive(Debug, Clone, Serialize)]
pub struct SessionDetail {
    /// The session.
    pub session: Session,
    /// Flow statistics, in capture order.
    pub flows: Vec<Map<String, Value>>,
    /// Whole-capture time bins.
    pub series: Vec<Bin>,
    /// The application's record.
    pub application: Option<Value>,
    /// The correlated feature row.
    pub features: BTreeMap<String, Value>,
}

/// Everything stored about session `id`.
pub async fn detail(db: &Db, id: i64) -> Result<SessionDetail> {
    let session = get(db, id).await?;
    let flows: Vec<(String,)> =
        sqlx::query_as("SELECT stats FROM flows WHERE session_id = $1 ORDER BY idx")
            .bind(id)
            .fetch_all(db.pool())
            .await?;
    let bins = sqlx::query(
        "SELECT bin, start_ms, c2s_bytes, s2c_bytes, c2s_pkts, s2c_pkts, c2s_retx, s2c_retx FROM series_bins \
         WHERE session_id = $1 AND flow_idx = -1 ORDER BY bin",
    )
    .bind(id)
    .fetch_all(db.pool())
    .await?;
    let application: Option<(String,)> =
        sqlx::query_as("SELECT record FROM session_qoe WHERE session_id = $1")
            .bind(id)
            .fetch_optional(db.pool())
            .await?;
    let features: Option<(String,)> =
        sqlx::query_as("SELECT features FROM session_features WHERE session_id = $1")
            .bind(id)
            .fetch_optional(db.pool())
            .await?;
    let get_u = |r: &AnyRow, c: &str| -> Result<u64> { Ok(r.try_get::<i64, _>(c)? as u64) };
    let series = bins
        .iter()
        .map(|r| {
            Ok(Bin {
                flow_idx: None,
                bin: r.try_get::<i64, _>("bin")? as u32,
                start_ms: r.try_get("start_ms")?,
                c2s_bytes: get_u(r, "c2s_bytes")?,
                s2c_bytes: get_u(r, "s2c_bytes")?,
                c2s_pkts: get_u(r, "c2s_pkts")?,
                s2c_pkts: get_u(r, "s2c_pkts")?,
                c2s_retx: get_u(r, "c2s_retx")?,
                s2c_retx: get_u(r, "s2c_retx")?,
            })
        })
        .collect::<Result<_>>()?;
    Ok(SessionDetail {
        session,
        flows: flows
            .into_iter()
            .map(|(s,)| serde_json::from_str(&s))
            .collect::<std::result::Result<_, _>>()?,
        series,
        application: application
            .map(|(s,)| serde_json::from_str(&s))
            .transpose()?,
        features: features
            .map(|(s,)| serde_json::from_str(&s))
            .transpose()?
            .unwrap_or_default(),
    })
}

#[cfg(test)]
mod placeholder_tests {
    use super::*;

    #[test]
    fn placeholders_are_numbered_for_postgres_and_anonymous_for_sqlite() {
        let mut pg = String::new();
        push_placeholders(&mut pg, Backend::Postgres, 2, 3);
        assert_eq!(pg, "($1,$2,$3),($4,$5,$6)");
        let mut lite = String::new();
        push_placeholders(&mut lite, Backend::Sqlite, 2, 2);
        assert_eq!(lite, "(?,?),(?,?)");
    }
}
