//! Gateways: the links one server measures side by side, each with its own agent and runner.
//!
//! A campaign names its gateway ([`CampaignSpec::gateway`]); one naming none runs on the
//! server's first gateway. [`Gateways`] is what the runners of one server share: the database,
//! the events, the gateways' names, and the recovery after a crash, done once per database
//! before any of them hands out a session. [`Multiplexer`] is the web's [`Control`] over
//! several runners: each call goes to the runner of the campaign's gateway.
//!
//! A campaign naming a gateway the server does not have is refused when it is started through
//! the server; one started behind its back (`qoelab campaign create --start`) is taken by the
//! first gateway's runner, which fails its sessions saying why, so nothing waits silently.

use std::sync::Arc;

use serde_json::Value;
use tokio::sync::OnceCell;

use crate::campaign::{self, CampaignSpec};
use crate::db::Db;
use crate::error::{Error, Result};
use crate::events::Events;
use crate::runner::{BoxFuture, Control};
use crate::session::{self, Session};

/// The gateway of a server given no gateway list (`qoelab up`, `qoelab serve` with flags).
pub const DEFAULT_GATEWAY: &str = "default";

/// The accepted form of a gateway name, for messages.
pub const NAME_FORM: &str = "1 to 32 lowercase letters, digits or '-', e.g. gw-1";

/// Whether `name` is a gateway name ([`NAME_FORM`]).
pub fn is_name(name: &str) -> bool {
    (1..=32).contains(&name.len())
        && name
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
}

/// The position in `names` of the gateway a campaign asking for `gateway` runs on: that
/// gateway, or the first when it names none. Otherwise an error naming the field `gateway`,
/// the value and the names accepted.
pub fn resolve(names: &[String], gateway: Option<&str>) -> Result<usize> {
    let Some(name) = gateway else {
        return Ok(0);
    };
    names.iter().position(|n| n == name).ok_or_else(|| {
        Error::invalid(
            "gateway",
            name,
            format!("one of this server's gateways: {}", names.join(", ")),
        )
    })
}

/// What the runners of one server share; cheap to clone.
#[derive(Clone)]
pub struct Gateways {
    db: Db,
    events: Events,
    names: Arc<[String]>,
    /// Set once sessions left running by a previous process are back to pending.
    recovered: Arc<OnceCell<()>>,
}

impl Gateways {
    /// The gateways `names` (at least one; the first takes campaigns naming none) over `db`.
    pub fn new(db: Db, events: Events, names: Vec<String>) -> Gateways {
        assert!(!names.is_empty(), "a server has at least one gateway");
        Gateways {
            db,
            events,
            names: names.into(),
            recovered: Arc::default(),
        }
    }

    /// One gateway, [`DEFAULT_GATEWAY`].
    pub fn single(db: Db, events: Events) -> Gateways {
        Gateways::new(db, events, vec![DEFAULT_GATEWAY.to_string()])
    }

    /// The database.
    pub fn db(&self) -> &Db {
        &self.db
    }

    /// The event publisher.
    pub fn events(&self) -> &Events {
        &self.events
    }

    /// The gateways' names, the first taking campaigns that name none.
    pub fn names(&self) -> &[String] {
        &self.names
    }

    /// The position of the gateway `spec` runs on, or why it cannot run here (see
    /// [`resolve`]).
    pub fn of(&self, spec: &CampaignSpec) -> Result<usize> {
        resolve(&self.names, spec.gateway.as_deref())
    }

    /// The position of the runner that takes campaigns of `spec`: its gateway's, or the first
    /// for a gateway this server does not have (which fails them, saying so).
    pub fn runner_of(&self, spec: &CampaignSpec) -> usize {
        self.of(spec).unwrap_or(0)
    }

    /// Puts sessions left running by a previous process back to pending, once per database
    /// however many runners share it, and before any of them claims or uses a session, so a
    /// recovery running late never takes back a session just handed out.
    pub(crate) async fn recover(&self) -> Result<()> {
        self.recovered
            .get_or_try_init(|| async {
                let reset = campaign::recover(&self.db).await?;
                if reset > 0 {
                    tracing::warn!(
                        "{reset} sessions were running at the last stop; they will run again"
                    );
                }
                Ok::<_, Error>(())
            })
            .await?;
        Ok(())
    }
}

/// The [`Control`] of several runners, one per gateway: each call goes to the runner of the
/// campaign's gateway.
pub struct Multiplexer {
    gateways: Gateways,
    runners: Vec<Arc<dyn Control>>,
}

impl Multiplexer {
    /// Routes to `runners`, one per gateway of `gateways`, in the same order.
    pub fn new(gateways: Gateways, runners: Vec<Arc<dyn Control>>) -> Multiplexer {
        assert_eq!(
            gateways.names().len(),
            runners.len(),
            "one runner per gateway"
        );
        Multiplexer { gateways, runners }
    }

    async fn of_campaign(&self, id: i64) -> Result<&dyn Control> {
        let campaign = campaign::get(&self.gateways.db, id).await?;
        Ok(self.runners[self.gateways.runner_of(&campaign.spec)].as_ref())
    }

    async fn of_session(&self, id: i64) -> Result<&dyn Control> {
        let session = session::get(&self.gateways.db, id).await?;
        self.of_campaign(session.campaign_id).await
    }
}

impl Control for Multiplexer {
    fn db(&self) -> &Db {
        self.gateways.db()
    }
    fn events(&self) -> &Events {
        self.gateways.events()
    }
    fn gateways(&self) -> &[String] {
        self.gateways.names()
    }
    fn start(&self, id: i64) -> BoxFuture<'_, Result<()>> {
        Box::pin(async move { self.of_campaign(id).await?.start(id).await })
    }
    fn stop(&self, id: i64) -> BoxFuture<'_, Result<()>> {
        Box::pin(async move { self.of_campaign(id).await?.stop(id).await })
    }
    fn external_next(&self, campaign_id: i64) -> BoxFuture<'_, Result<Option<Session>>> {
        Box::pin(async move {
            self.of_campaign(campaign_id)
                .await?
                .external_next(campaign_id)
                .await
        })
    }
    fn external_start(&self, id: i64) -> BoxFuture<'_, Result<Session>> {
        Box::pin(async move { self.of_session(id).await?.external_start(id).await })
    }
    fn external_finish(&self, id: i64, application: Value) -> BoxFuture<'_, Result<()>> {
        Box::pin(async move {
            self.of_session(id)
                .await?
                .external_finish(id, application)
                .await
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_short_lowercase_words() {
        for good in ["default", "gw-1", "a", &"x".repeat(32)] {
            assert!(is_name(good), "{good}");
        }
        for bad in ["", "GW", "gw_1", "gw 1", "gw.1", "é", &"x".repeat(33)] {
            assert!(!is_name(bad), "{bad}");
        }
    }

    #[test]
    fn a_campaign_runs_on_its_gateway_or_the_first() {
        let names = vec!["gw-a".to_string(), "gw-b".to_string()];
        assert_eq!(resolve(&names, None).unwrap(), 0);
        assert_eq!(resolve(&names, Some("gw-b")).unwrap(), 1);
        let err = resolve(&names, Some("gw-c")).unwrap_err().to_string();
        assert_eq!(
            err,
            "gateway = 'gw-c' is not accepted: one of this server's gateways: gw-a, gw-b"
        );
    }
}
