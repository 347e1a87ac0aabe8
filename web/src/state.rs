//! [`App`]: what every handler shares — the runners' control, the database behind it, the
//! view of each gateway's agent, authentication, ingest counters and training jobs.

use std::sync::Arc;

use tokio_util::sync::CancellationToken;

use qoelab_collector::Db;
use qoelab_collector::events::Events;
use qoelab_collector::gateways;
use qoelab_collector::runner::Control;

use crate::agent::AgentView;
use crate::auth::Auth;
use crate::error::Problem;
use crate::metrics::IngestCounters;
use crate::totals::Totals;
use crate::training::Jobs;

/// The application state; cheap to clone.
#[derive(Clone)]
pub struct App(Arc<Inner>);

struct Inner {
    control: Arc<dyn Control>,
    /// The agent of each gateway that has a view, by gateway name.
    agents: Vec<(String, Arc<dyn AgentView>)>,
    auth: Auth,
    ingest: IngestCounters,
    training: Jobs,
    totals: Totals,
    shutdown: CancellationToken,
}

impl App {
    /// The app over a runner (any [`Control`]), an optional view of the agent of its (first)
    /// gateway, and an optional API token (`None`: no login; only for servers bound to
    /// loopback, see [`crate::check_exposure`]).
    pub fn new(
        control: Arc<dyn Control>,
        agent: Option<Arc<dyn AgentView>>,
        token: Option<String>,
    ) -> App {
        let agents = agent
            .map(|view| (control.gateways()[0].clone(), view))
            .into_iter()
            .collect();
        App::with_agents(control, agents, token)
    }

    /// The app over the runners of several gateways (a [`Control`] such as the collector's
    /// `Multiplexer`), the view of each gateway's agent by gateway name (a gateway without one
    /// shows "agent not connected"), and an optional API token.
    pub fn with_agents(
        control: Arc<dyn Control>,
        agents: Vec<(String, Arc<dyn AgentView>)>,
        token: Option<String>,
    ) -> App {
        App(Arc::new(Inner {
            totals: Totals::new(control.events()),
            control,
            agents,
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

    /// The gateways' names; campaigns naming none run on the first.
    pub fn gateways(&self) -> &[String] {
        self.0.control.gateways()
    }

    /// The agent of gateway `gateway`, if this server has a view of it.
    pub fn agent(&self, gateway: &str) -> Option<&dyn AgentView> {
        self.0
            .agents
            .iter()
            .find(|(name, _)| name == gateway)
            .map(|(_, view)| view.as_ref())
    }

    /// The gateway `name` (a campaign's or a request's) stands for: that one, or the first
    /// when `None`; a problem naming `gateway` (422) for a gateway this server does not have.
    pub fn gateway(&self, name: Option<&str>) -> Result<&str, Problem> {
        let at = gateways::resolve(self.gateways(), name)?;
        Ok(&self.gateways()[at])
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
