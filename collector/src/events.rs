//! Progress events of campaigns, published to any number of listeners (the web's SSE).

use serde::Serialize;
use tokio::sync::broadcast;

use crate::campaign::{CampaignStatus, Progress, SessionStatus};

/// Something that happened in a campaign.
#[derive(Debug, Clone, Serialize, PartialEq)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum Event {
    /// A session started.
    SessionStarted {
        /// Campaign.
        campaign_id: i64,
        /// Session.
        session_id: i64,
        /// Its position, from 0.
        seq: i64,
        /// Sessions in the campaign.
        total: u64,
        /// Its limit in bit/s; `None` for unlimited.
        rate_bps: Option<u64>,
        /// Estimated seconds until the campaign ends.
        eta_s: Option<f64>,
    },
    /// A session ended.
    SessionEnded {
        /// Campaign.
        campaign_id: i64,
        /// Session.
        session_id: i64,
        /// How it ended.
        status: SessionStatus,
        /// Why, if it failed.
        failure: Option<String>,
        /// Sessions per state now.
        progress: Progress,
    },
    /// The campaign changed state.
    CampaignStatus {
        /// Campaign.
        campaign_id: i64,
        /// New state.
        status: CampaignStatus,
    },
    /// Results are waiting for the database to come back.
    StoreRetrying {
        /// Campaign.
        campaign_id: i64,
        /// Session whose results wait.
        session_id: i64,
        /// The error.
        error: String,
    },
}

impl Event {
    /// The campaign the event belongs to.
    pub fn campaign_id(&self) -> i64 {
        match self {
            Event::SessionStarted { campaign_id, .. }
            | Event::SessionEnded { campaign_id, .. }
            | Event::CampaignStatus { campaign_id, .. }
            | Event::StoreRetrying { campaign_id, .. } => *campaign_id,
        }
    }
}

/// A broadcaster of [`Event`]s; slow listeners miss old events rather than block the runner.
#[derive(Debug, Clone)]
pub struct Events(broadcast::Sender<Event>);

impl Default for Events {
    fn default() -> Self {
        Events(broadcast::channel(1024).0)
    }
}

impl Events {
    /// Publishes an event (dropped when nobody listens).
    pub fn publish(&self, event: Event) {
        tracing::debug!(?event, "campaign event");
        let _ = self.0.send(event);
    }

    /// A new listener, receiving events from now on.
    pub fn subscribe(&self) -> broadcast::Receiver<Event> {
        self.0.subscribe()
    }
}
