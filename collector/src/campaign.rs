//! Campaigns: what a user asks for (a [`CampaignSpec`]), its validation, and its sessions,
//! each with a network profile spread evenly over the sessions in a seeded shuffled order.

use serde::{Deserialize, Serialize};
use sqlx::{AssertSqlSafe, Row};

use qoelab_units::Limit;

use crate::db::{Db, next_ids, now_ms};
use crate::error::{Error, Result};
use crate::gateways;
use crate::session::push_placeholders;
use crate::shuffle::shuffled;

/// The ABR algorithms the built-in video player knows.
pub const ABR_ALGORITHMS: [&str; 3] = ["buffer", "rate", "mpc"];

/// What runs during each session.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Workload {
    /// The built-in ABR video player against the built-in server.
    Video {
        /// ABR algorithm: `buffer`, `rate` or `mpc`.
        abr: String,
    },
    /// Built-in IoT analytics uploading at the given knobs.
    Iot {
        /// The analytics: kind and knob.
        analytics: Vec<IotAnalytic>,
    },
    /// A client elsewhere takes the sessions through the external-client API.
    External,
}

/// One IoT analytic of an IoT workload.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct IotAnalytic {
    /// Analytic kind, e.g. `object-detection`.
    pub kind: String,
    /// QoS knob in [k_min, 1].
    pub knob: f64,
}

impl Workload {
    /// A short name for tables: `video/buffer`, `iot`, `external`.
    pub fn label(&self) -> String {
        match self {
            Workload::Video { abr } => format!("video/{abr}"),
            Workload::Iot { .. } => "iot".into(),
            Workload::External => "external".into(),
        }
    }
}

/// A labeling campaign as requested.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CampaignSpec {
    /// Human name.
    pub name: String,
    /// Number of sessions.
    pub sessions: u32,
    /// Measured length of each session, seconds.
    pub duration_s: f64,
    /// First seconds of each session, left out of the time-series features (the link and the
    /// player settle); flow statistics and the QoE record cover the whole session.
    #[serde(default)]
    pub warmup_s: f64,
    /// Bandwidth limits spread over the sessions.
    pub limits: Vec<Limit>,
    /// Added one-way delays in ms (needs netem); empty for none.
    #[serde(default)]
    pub delays_ms: Vec<f64>,
    /// Packet loss fractions in [0, 1] (needs netem); empty for none.
    #[serde(default)]
    pub losses: Vec<f64>,
    /// What runs in each session.
    pub workload: Workload,
    /// Seed of the session order.
    #[serde(default)]
    pub seed: u64,
    /// The gateway whose link the sessions run on; `None`: the server's first.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub gateway: Option<String>,
}

/// Largest number of sessions in one campaign.
pub const MAX_SESSIONS: u32 = 100_000;

/// Most analytics of an IoT workload: analytic i uploads to the sink's port + i, so that its
/// flows are told apart by port, and the sink listens on this many ports.
pub const MAX_ANALYTICS: usize = 16;

impl CampaignSpec {
    /// Checks every field; the error names the field, the value and the accepted form (the
    /// first of [`CampaignSpec::problems`]).
    pub fn validate(&self) -> Result<()> {
        match self.problems().into_iter().next() {
            Some(problem) => Err(problem),
            None => Ok(()),
        }
    }

    /// Every field that is not acceptable, each error naming the field, the value and the
    /// accepted form; empty if the spec is valid.
    pub fn problems(&self) -> Vec<Error> {
        let mut out = Vec::new();
        let name = self.name.trim();
        if name.is_empty() || name.chars().count() > 100 {
            out.push(Error::invalid("name", &self.name, "1 to 100 characters"));
        }
        if !(1..=MAX_SESSIONS).contains(&self.sessions) {
            out.push(Error::invalid(
                "sessions",
                self.sessions,
                format!("a whole number from 1 to {MAX_SESSIONS}"),
            ));
        }
        if !(self.duration_s.is_finite() && self.duration_s > 0.0 && self.duration_s <= 86_400.0) {
            out.push(Error::invalid(
                "duration_s",
                self.duration_s,
                "seconds, more than 0 and at most 86400",
            ));
        }
        if !(self.warmup_s.is_finite() && (0.0..=3_600.0).contains(&self.warmup_s)) {
            out.push(Error::invalid(
                "warmup_s",
                self.warmup_s,
                "seconds from 0 to 3600",
            ));
        }
        if self.limits.is_empty() {
            out.push(Error::invalid(
                "limits",
                "",
                "at least one limit, e.g. '0.75, 1.25, 2, 5 mbit, unlimited'",
            ));
        }
        if let Some(Limit::Rate(r)) = self
            .limits
            .iter()
            .find(|l| matches!(l, Limit::Rate(r) if r.bps() < 8_000))
        {
            out.push(Error::invalid(
                "limits",
                r,
                "rates of at least 8kbit, or 'unlimited'",
            ));
        }
        if let Some(d) = self
            .delays_ms
            .iter()
            .find(|d| !(d.is_finite() && (0.0..=10_000.0).contains(*d)))
        {
            out.push(Error::invalid(
                "delays_ms",
                d,
                "milliseconds from 0 to 10000",
            ));
        }
        if let Some(l) = self
            .losses
            .iter()
            .find(|l| !(l.is_finite() && (0.0..=1.0).contains(*l)))
        {
            out.push(Error::invalid(
                "losses",
                l,
                "fractions from 0 to 1 (0.01 is 1%)",
            ));
        }
        match &self.workload {
            Workload::Video { abr } if !ABR_ALGORITHMS.contains(&abr.as_str()) => out.push(
                Error::invalid("workload.abr", abr, ABR_ALGORITHMS.join(", ")),
            ),
            Workload::Iot { analytics } if analytics.is_empty() => out.push(Error::invalid(
                "workload.analytics",
                "[]",
                "at least one analytic",
            )),
            Workload::Iot { analytics } if analytics.len() > MAX_ANALYTICS => {
                out.push(Error::invalid(
                    "workload.analytics",
                    format!("{} analytics", analytics.len()),
                    format!("at most {MAX_ANALYTICS} analytics"),
                ))
            }
            Workload::Iot { analytics } => {
                if let Some(i) = analytics
                    .iter()
                    .position(|a| !(a.knob > 0.0 && a.knob <= 1.0))
                {
                    out.push(Error::invalid(
                        format!("workload.analytics[{i}].knob"),
                        analytics[i].knob,
                        "a knob in (0, 1]",
                    ));
                }
            }
            _ => {}
        }
        if let Some(gateway) = self.gateway.as_deref().filter(|g| !gateways::is_name(g)) {
            out.push(Error::invalid("gateway", gateway, gateways::NAME_FORM));
        }
        out
    }

    /// Every combination of limit, delay and loss.
    pub fn profiles(&self) -> Vec<Profile> {
        let delays: Vec<Option<f64>> = option_list(&self.delays_ms);
        let losses: Vec<Option<f64>> = option_list(&self.losses);
        let mut out = Vec::new();
        for limit in &self.limits {
            for delay_ms in &delays {
                for loss in &losses {
                    out.push(Profile {
                        rate_bps: match limit {
                            Limit::Rate(r) => Some(r.bps()),
                            Limit::Unlimited => None,
                        },
                        delay_ms: *delay_ms,
                        loss: *loss,
                    });
                }
            }
        }
        out
    }

    /// The profile of each session in order: every profile `sessions / profiles` times (the
    /// first `sessions % profiles` once more), in an order shuffled with `seed`.
    pub fn assignment(&self) -> Vec<Profile> {
        let profiles = self.profiles();
        let spread: Vec<Profile> = (0..self.sessions as usize)
            .map(|i| profiles[i % profiles.len()])
            .collect();
        shuffled(spread, self.seed)
    }
}

fn option_list(values: &[f64]) -> Vec<Option<f64>> {
    if values.is_empty() {
        vec![None]
    } else {
        values.iter().copied().map(Some).collect()
    }
}

/// The network conditions of one session.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Profile {
    /// Bandwidth limit in bit/s; `None` for unlimited.
    pub rate_bps: Option<u64>,
    /// Added delay in ms, if any.
    pub delay_ms: Option<f64>,
    /// Loss fraction, if any.
    pub loss: Option<f64>,
}

/// Campaign states.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum CampaignStatus {
    /// Created, waiting for the runner.
    Pending,
    /// Sessions are being run.
    Running,
    /// Stopped by the user; can be resumed.
    Stopped,
    /// Every session has ended.
    Done,
}

/// Session states.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SessionStatus {
    /// Waiting to run.
    Pending,
    /// Running now.
    Running,
    /// Ran and stored.
    Done,
    /// Ran and failed; the reason is stored.
    Failed,
    /// Ran but carried no traffic; kept out of datasets.
    Discarded,
}

macro_rules! status_text {
    ($ty:ty { $($variant:ident => $text:literal),+ $(,)? }) => {
        impl $ty {
            /// The status as stored.
            pub fn as_str(self) -> &'static str {
                match self { $(Self::$variant => $text),+ }
            }
        }
        impl std::str::FromStr for $ty {
            type Err = Error;
            fn from_str(s: &str) -> Result<Self> {
                match s {
                    $($text => Ok(Self::$variant),)+
                    _ => Err(Error::invalid("status", s, [$($text),+].join(", "))),
                }
            }
        }
        impl std::fmt::Display for $ty {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str(self.as_str())
            }
        }
    };
}

status_text!(CampaignStatus { Pending => "pending", Running => "running", Stopped => "stopped", Done => "done" });
status_text!(SessionStatus {
    Pending => "pending",
    Running => "running",
    Done => "done",
    Failed => "failed",
    Discarded => "discarded",
});

/// A stored campaign with its progress.
#[derive(Debug, Clone, Serialize)]
pub struct Campaign {
    /// Id.
    pub id: i64,
    /// The spec it was created from.
    pub spec: CampaignSpec,
    /// Current state.
    pub status: CampaignStatus,
    /// Creation time, Unix ms.
    pub created_ms: i64,
    /// Last state change, Unix ms.
    pub updated_ms: i64,
    /// Sessions per state.
    pub progress: Progress,
}

/// Number of sessions in each state.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct Progress {
    /// Waiting.
    pub pending: u64,
    /// Running.
    pub running: u64,
    /// Stored.
    pub done: u64,
    /// Failed.
    pub failed: u64,
    /// Discarded.
    pub discarded: u64,
}

impl Progress {
    /// Sessions that have ended one way or another.
    pub fn ended(&self) -> u64 {
        self.done + self.failed + self.discarded
    }

    /// All sessions.
    pub fn total(&self) -> u64 {
        self.ended() + self.pending + self.running
    }

    /// The counter of sessions in `status`.
    pub fn slot(&mut self, status: SessionStatus) -> &mut u64 {
        match status {
            SessionStatus::Pending => &mut self.pending,
            SessionStatus::Running => &mut self.running,
            SessionStatus::Done => &mut self.done,
            SessionStatus::Failed => &mut self.failed,
            SessionStatus::Discarded => &mut self.discarded,
        }
    }
}

/// Stores a validated campaign with its sessions (one transaction) and returns its id.
pub async fn create(db: &Db, spec: &CampaignSpec) -> Result<i64> {
    spec.validate()?;
    let mut tx = db.begin().await?;
    let id = next_ids(&mut tx, "campaign", 1).await?;
    let now = now_ms();
    sqlx::query("INSERT INTO campaigns (id, name, spec, status, created_ms, updated_ms) VALUES ($1, $2, $3, $4, $5, $5)")
        .bind(id)
        .bind(spec.name.trim())
        .bind(serde_json::to_string(spec)?)
        .bind(CampaignStatus::Pending.as_str())
        .bind(now)
        .execute(&mut *tx)
        .await?;
    let assignment = spec.assignment();
    let first = next_ids(&mut tx, "session", assignment.len() as i64).await?;
    let workload = spec.workload.label();
    // Multi-row inserts keep a 10,000-session campaign to a few statements.
    for (chunk_no, chunk) in assignment.chunks(500).enumerate() {
        let mut sql = String::from(
            "INSERT INTO sessions (id, campaign_id, seq, rate_bps, delay_ms, loss, workload, status) VALUES ",
        );
        push_placeholders(&mut sql, db.backend(), chunk.len(), 8);
        let mut query = sqlx::query(AssertSqlSafe(sql));
        for (i, profile) in chunk.iter().enumerate() {
            let seq = (chunk_no * 500 + i) as i64;
            query = query
                .bind(first + seq)
                .bind(id)
                .bind(seq)
                .bind(profile.rate_bps.map(|r| r as i64))
                .bind(profile.delay_ms)
                .bind(profile.loss)
                .bind(workload.clone())
                .bind(SessionStatus::Pending.as_str());
        }
        query.execute(&mut *tx).await?;
    }
    tx.commit().await?;
    Ok(id)
}

/// The campaign with this id.
pub async fn get(db: &Db, id: i64) -> Result<Campaign> {
    let row =
        sqlx::query("SELECT id, spec, status, created_ms, updated_ms FROM campaigns WHERE id = $1")
            .bind(id)
            .fetch_optional(db.pool())
            .await?
            .ok_or_else(|| Error::NotFound(format!("no campaign with id {id}")))?;
    let mut campaign = campaign_from_row(&row)?;
    campaign.progress = progress(db, id).await?;
    Ok(campaign)
}

/// All campaigns, newest first.
pub async fn list(db: &Db) -> Result<Vec<Campaign>> {
    list_where(db, None).await
}

/// Campaigns in state `status`, oldest first.
pub async fn with_status(db: &Db, status: CampaignStatus) -> Result<Vec<Campaign>> {
    let mut out = list_where(db, Some(status)).await?;
    out.reverse();
    Ok(out)
}

async fn list_where(db: &Db, status: Option<CampaignStatus>) -> Result<Vec<Campaign>> {
    let rows = sqlx::query(
        "SELECT id, spec, status, created_ms, updated_ms FROM campaigns WHERE $1 IS NULL OR status = $1 ORDER BY id DESC",
    )
    .bind(status.map(CampaignStatus::as_str))
    .fetch_all(db.pool())
    .await?;
    let mut out = Vec::with_capacity(rows.len());
    for row in rows {
        let mut campaign = campaign_from_row(&row)?;
        campaign.progress = progress(db, campaign.id).await?;
        out.push(campaign);
    }
    Ok(out)
}

fn campaign_from_row(row: &sqlx::any::AnyRow) -> Result<Campaign> {
    let spec: String = row.try_get("spec")?;
    let status: String = row.try_get("status")?;
    Ok(Campaign {
        id: row.try_get("id")?,
        spec: serde_json::from_str(&spec)?,
        status: status.parse()?,
        created_ms: row.try_get("created_ms")?,
        updated_ms: row.try_get("updated_ms")?,
        progress: Progress::default(),
    })
}

/// Sessions per state of campaign `id`.
pub async fn progress(db: &Db, id: i64) -> Result<Progress> {
    let rows: Vec<(String, i64)> = sqlx::query_as(
        "SELECT status, COUNT(*) FROM sessions WHERE campaign_id = $1 GROUP BY status",
    )
    .bind(id)
    .fetch_all(db.pool())
    .await?;
    let mut p = Progress::default();
    for (status, count) in rows {
        *p.slot(status.parse()?) = count as u64;
    }
    Ok(p)
}

/// Sessions per state of campaign `id` for each of its limits (bit/s; `None` = unlimited),
/// lowest limit first, unlimited last.
pub async fn progress_by_limit(db: &Db, id: i64) -> Result<Vec<(Option<u64>, Progress)>> {
    let rows: Vec<(Option<i64>, String, i64)> = sqlx::query_as(
        "SELECT rate_bps, status, COUNT(*) FROM sessions WHERE campaign_id = $1 GROUP BY rate_bps, status",
    )
    .bind(id)
    .fetch_all(db.pool())
    .await?;
    let mut out: Vec<(Option<u64>, Progress)> = Vec::new();
    for (rate, status, count) in rows {
        let rate = rate.map(|r| r as u64);
        let at = match out.iter().position(|(r, _)| *r == rate) {
            Some(at) => at,
            None => {
                out.push((rate, Progress::default()));
                out.len() - 1
            }
        };
        *out[at].1.slot(status.parse()?) = count as u64;
    }
    out.sort_by_key(|(rate, _)| rate.unwrap_or(u64::MAX));
    Ok(out)
}

/// Sets the state of campaign `id`; `from` lists the states it may be in, else
/// [`Error::Conflict`].
pub async fn set_status(
    db: &Db,
    id: i64,
    from: &[CampaignStatus],
    to: CampaignStatus,
) -> Result<()> {
    let current = get(db, id).await?.status;
    if !from.contains(&current) {
        return Err(Error::Conflict(format!(
            "campaign {id} is {current}; it cannot become {to}"
        )));
    }
    sqlx::query("UPDATE campaigns SET status = $1, updated_ms = $2 WHERE id = $3 AND status = $4")
        .bind(to.as_str())
        .bind(now_ms())
        .bind(id)
        .bind(current.as_str())
        .execute(db.pool())
        .await?;
    Ok(())
}

/// After a crash or restart: sessions left running go back to pending (their partial results
/// were never stored). Returns how many were reset.
pub async fn recover(db: &Db) -> Result<u64> {
    let done = sqlx::query("UPDATE sessions SET status = 'pending', started_ms = NULL, capture_id = NULL WHERE status = 'running'")
        .execute(db.pool())
        .await?;
    Ok(done.rows_affected())
}

#[cfg(test)]
mod tests {
    use super::*;
    use qoelab_units::parse_limits;

    pub(crate) fn spec(sessions: u32, limits: &str) -> CampaignSpec {
        CampaignSpec {
            name: "test".into(),
            sessions,
            duration_s: 10.0,
            warmup_s: 0.0,
            limits: parse_limits(limits).unwrap(),
            delays_ms: vec![],
            losses: vec![],
            workload: Workload::Video {
                abr: "buffer".into(),
            },
            seed: 7,
            gateway: None,
        }
    }

    #[test]
    fn limits_are_spread_evenly_in_a_seeded_shuffled_order() {
        let s = spec(100, "0.75, 1.25, 2, 3, 5 mbit");
        let a = s.assignment();
        for rate in [750_000, 1_250_000, 2_000_000, 3_000_000, 5_000_000] {
            assert_eq!(a.iter().filter(|p| p.rate_bps == Some(rate)).count(), 20);
        }
        assert_eq!(a, s.assignment(), "same seed, same order");
        let round_robin: Vec<_> = (0..100).map(|i| s.profiles()[i % 5]).collect();
        assert_ne!(a, round_robin, "the order is shuffled, not round-robin");
        let other = CampaignSpec {
            seed: 8,
            ..s.clone()
        };
        assert_ne!(a, other.assignment());
    }

    #[test]
    fn uneven_counts_differ_by_at_most_one() {
        let a = spec(7, "1, 2, 3 mbit, unlimited").assignment();
        let counts: Vec<usize> = [Some(1_000_000), Some(2_000_000), Some(3_000_000), None]
            .iter()
            .map(|r| a.iter().filter(|p| p.rate_bps == *r).count())
            .collect();
        assert_eq!(counts.iter().sum::<usize>(), 7);
        assert!(
            counts.iter().max().unwrap() - counts.iter().min().unwrap() <= 1,
            "{counts:?}"
        );
    }

    #[test]
    fn profiles_combine_limits_delays_and_losses() {
        let mut s = spec(12, "1, 2 mbit");
        s.delays_ms = vec![0.0, 50.0];
        s.losses = vec![0.0, 0.01, 0.02];
        assert_eq!(s.profiles().len(), 12);
        assert_eq!(
            s.assignment()
                .iter()
                .filter(|p| p.delay_ms == Some(50.0) && p.loss == Some(0.02))
                .count(),
            2
        );
    }

    #[test]
    fn bad_specs_name_the_field_and_value() {
        type Mutation = Box<dyn Fn(&mut CampaignSpec)>;
        let cases: Vec<(Mutation, &str)> = vec![
            (Box::new(|s| s.sessions = 0), "sessions = '0'"),
            (Box::new(|s| s.name = "  ".into()), "name"),
            (Box::new(|s| s.duration_s = -1.0), "duration_s = '-1'"),
            (Box::new(|s| s.limits.clear()), "limits"),
            (Box::new(|s| s.losses = vec![5.0]), "losses = '5'"),
            (
                Box::new(|s| s.workload = Workload::Video { abr: "bola".into() }),
                "workload.abr = 'bola'",
            ),
            (
                Box::new(|s| {
                    s.workload = Workload::Iot {
                        analytics: vec![IotAnalytic {
                            kind: "x".into(),
                            knob: 2.0,
                        }],
                    }
                }),
                "workload.analytics[0].knob = '2'",
            ),
            (
                Box::new(|s| s.gateway = Some("GW 1".into())),
                "gateway = 'GW 1' is not accepted: 1 to 32 lowercase letters",
            ),
            (
                Box::new(|s| {
                    let one = IotAnalytic {
                        kind: "object-detection".into(),
                        knob: 1.0,
                    };
                    s.workload = Workload::Iot {
                        analytics: vec![one; MAX_ANALYTICS + 1],
                    }
                }),
                "workload.analytics = '17 analytics'",
            ),
        ];
        for (mutate, expected) in cases {
            let mut s = spec(3, "1 mbit");
            mutate(&mut s);
            let err = s.validate().unwrap_err().to_string();
            assert!(err.contains(expected), "{err} lacks {expected}");
        }
    }
}
