//! [`App`]: what every handler shares — the runner's control, the database behind it, the
//! agent view, authentication, ingest counters and training jobs.

use std::sync::Arc;

use tokio_util::sync::CancellationToken;

use qoelab_collector::Db;
use qoelab_collector::events::Events;
use qoelab_collector::runner::Control;

use crate::agent::AgentView;
use crate::auth::Auth;
use crate::metrics::IngestCounters;
use crate::totals::Totals;
use crate::training::Jobs;

/// The application state; cheap to clone.
#[derive(Clone)]
pub struct App(Arc<Inner>);

struct Inner {
    control: Arc<dyn Control>,
    agent: Option<Arc<dyn AgentView>>,
    auth: Auth,
    ingest: IngestCounters,
    training: Jobs,
    totals: Totals,
    shutdown: CancellationToken,
}

impl App {
    /// The app over a runner (any [`Control`]), an optional agent view, and an optional API
    /// token (`None`: no login; only for servers bound to loopback, see
    /// [`crate::check_exposure`]).
    pub fn new(
        control: Arc<dyn Control>,
        agent: Option<Arc<dyn AgentView>>,
        token: Option<String>,
    ) -> App {
        App(Arc::new(Inner {
            totals: Totals::new(control.events()),
            control,
            agent,
            auth: Auth::new(token),
            ingest: IngestCounters::default(),
            training: Jobs::default(),
            shutdown: CancellationToken::new(),
        }))
    }

    /// The runner.
    pub fn control(&self) -> &dyn Control {
        self.0.control.as_ref()
    }

    /// The database.
    pub fn db(&self) -> &Db {
        self.0.control.db()
    }

    /// Campaign events.
    pub fn events(&self) -> &Events {
        self.0.control.events()
    }

    /// The agent, if one is connected.
    pub fn agent(&self) -> Option<&dyn AgentView> {
        self.0.agent.as_deref()
    }

    /// Authentication.
    pub fn auth(&self) -> &Auth {
        &self.0.auth
    }

    /// Ingest counters for `/metrics`.
    pub fn ingest(&self) -> &IngestCounters {
        &self.0.ingest
    }

    /// Training jobs.
    pub fn training(&self) -> &Jobs {
        &self.0.training
    }

    /// Session-list totals.
    pub fn totals(&self) -> &Totals {
        &self.0.totals
    }

    /// Cancelled when the server shuts down (ends live streams).
    pub fn shutdown(&self) -> &CancellationToken {
        &self.0.shutdown
    }
}
