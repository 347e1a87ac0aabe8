//! Trained QoE models in the database (the `models` table), and the classifier's view of a
//! campaign: one [`Frame`] row per stored session, the same columns as the export.

use serde::Serialize;
use serde_json::Value;

use qoelab_classifier::{Cell, Frame, SavedModel};

use crate::db::{Db, next_ids, now_ms};
use crate::error::{Error, Result};
use crate::export;

/// A stored model without its fitted body: what lists and pages show.
#[derive(Debug, Clone, Serialize)]
pub struct ModelInfo {
    /// Id.
    pub id: i64,
    /// Unique name.
    pub name: String,
    /// Model kind, e.g. `rf`.
    pub algorithm: String,
    /// The label rule, e.g. `stall:label_stall_count>0`.
    pub label: String,
    /// SHA-256 of the training data.
    pub fingerprint: String,
    /// The headline evaluation's method and metrics (`null` if the model was not evaluated).
    pub metrics: Value,
    /// Storage time, Unix ms.
    pub created_ms: i64,
}

type InfoRow = (i64, String, String, String, String, String, i64);
type BodyRow = (i64, String, String, String, String, String, i64, String);

const INFO_COLUMNS: &str = "id, name, algorithm, label, fingerprint, metrics, created_ms";

fn info(row: InfoRow) -> Result<ModelInfo> {
    Ok(ModelInfo {
        id: row.0,
        name: row.1,
        algorithm: row.2,
        label: row.3,
        fingerprint: row.4,
        metrics: serde_json::from_str(&row.5)?,
        created_ms: row.6,
    })
}

/// Stores `model` under `name` (1 to 100 characters, unique) and returns its id.
pub async fn store(db: &Db, name: &str, model: &SavedModel) -> Result<i64> {
    let name = name.trim();
    if name.is_empty() || name.chars().count() > 100 {
        return Err(Error::invalid("name", name, "1 to 100 characters"));
    }
    let body = model
        .to_bytes()
        .map_err(|e| Error::Model(e.to_string()))
        .and_then(|b| String::from_utf8(b).map_err(|e| Error::Model(e.to_string())))?;
    let metrics = serde_json::to_string(&model.headline())?;
    let mut tx = db.begin().await?;
    let taken: Option<(i64,)> = sqlx::query_as("SELECT id FROM models WHERE name = $1")
        .bind(name)
        .fetch_optional(&mut *tx)
        .await?;
    if let Some((id,)) = taken {
        return Err(Error::Conflict(format!(
            "a model named '{name}' exists already (id {id}); choose another name or delete it"
        )));
    }
    let id = next_ids(&mut tx, "model", 1).await?;
    sqlx::query(
        "INSERT INTO models (id, name, algorithm, label, fingerprint, metrics, body, created_ms) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
    )
    .bind(id)
    .bind(name)
    .bind(model.params.kind.name())
    .bind(model.label.describe())
    .bind(&model.dataset.fingerprint)
    .bind(metrics)
    .bind(body)
    .bind(now_ms())
    .execute(&mut *tx)
    .await?;
    tx.commit().await?;
    Ok(id)
}

/// All stored models, newest first.
pub async fn list(db: &Db) -> Result<Vec<ModelInfo>> {
    let rows: Vec<InfoRow> = sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "SELECT {INFO_COLUMNS} FROM models ORDER BY id DESC"
    )))
    .fetch_all(db.pool())
    .await?;
    rows.into_iter().map(info).collect()
}

/// Model `id` with its fitted body.
pub async fn get(db: &Db, id: i64) -> Result<(ModelInfo, SavedModel)> {
    let row: Option<BodyRow> = sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "SELECT {INFO_COLUMNS}, body FROM models WHERE id = $1"
    )))
    .bind(id)
    .fetch_optional(db.pool())
    .await?;
    let Some((id, name, algorithm, label, fingerprint, metrics, created_ms, body)) = row else {
        return Err(Error::NotFound(format!("no model with id {id}")));
    };
    let model = SavedModel::from_bytes(body.as_bytes()).map_err(|e| Error::Model(e.to_string()))?;
    let info = info((id, name, algorithm, label, fingerprint, metrics, created_ms))?;
    Ok((info, model))
}

/// Deletes model `id`.
pub async fn delete(db: &Db, id: i64) -> Result<()> {
    let done = sqlx::query("DELETE FROM models WHERE id = $1")
        .bind(id)
        .execute(db.pool())
        .await?;
    if done.rows_affected() == 0 {
        return Err(Error::NotFound(format!("no model with id {id}")));
    }
    Ok(())
}

/// The stored sessions of the campaigns `campaign_ids` as one classifier frame (source
/// `campaign N` or `campaigns N, M`): the export's rows, under the union of the campaigns'
/// columns in export order (a column one campaign lacks is missing in its rows), text cells
/// where a column holds text.
pub async fn frame(db: &Db, campaign_ids: &[i64]) -> Result<Frame> {
    let mut names: Vec<String> = Vec::new();
    for id in campaign_ids {
        for name in export::columns(db, *id).await?.names {
            if !names.contains(&name) {
                names.push(name);
            }
        }
    }
    let listed: Vec<String> = campaign_ids.iter().map(i64::to_string).collect();
    let source = match listed.len() {
        1 => format!("campaign {}", listed[0]),
        _ => format!("campaigns {}", listed.join(", ")),
    };
    let mut frame = Frame::new(&source, names.clone()).map_err(unframed)?;
    for id in campaign_ids {
        let rows: Vec<(String,)> = sqlx::query_as(export::ROWS_SQL)
            .bind(id)
            .fetch_all(db.pool())
            .await?;
        for (json,) in rows {
            frame
                .push_row(cells(&names, &serde_json::from_str(&json)?))
                .map_err(unframed)?;
        }
    }
    Ok(frame)
}

/// Stored session `id`'s dataset row (the columns it has) as a one-row frame (source
/// `session N`), to predict its QoE.
pub async fn session_frame(db: &Db, id: i64) -> Result<Frame> {
    let stored: Option<(String,)> =
        sqlx::query_as("SELECT features FROM session_features WHERE session_id = $1")
            .bind(id)
            .fetch_optional(db.pool())
            .await?;
    let Some((json,)) = stored else {
        let session = crate::session::get(db, id).await?;
        return Err(Error::NotFound(format!(
            "session {id} has no dataset row: it is {}, and only done sessions have one",
            session.status.as_str()
        )));
    };
    let row: serde_json::Map<String, Value> = serde_json::from_str(&json)?;
    let names: Vec<String> = row.keys().cloned().collect();
    let mut frame = Frame::new(&format!("session {id}"), names.clone()).map_err(unframed)?;
    frame.push_row(cells(&names, &row)).map_err(unframed)?;
    Ok(frame)
}

fn unframed(e: qoelab_classifier::Error) -> Error {
    Error::Model(e.to_string())
}

/// The cells of the columns `names` of a dataset row.
fn cells(names: &[String], row: &serde_json::Map<String, Value>) -> Vec<Cell> {
    names
        .iter()
        .map(|name| match row.get(name) {
            Some(Value::Number(n)) => Cell::from(n.as_f64()),
            Some(Value::String(s)) => Cell::Text(s.clone()),
            Some(Value::Bool(b)) => Cell::Number(f64::from(u8::from(*b))),
            _ => Cell::Missing,
        })
        .collect()
}
