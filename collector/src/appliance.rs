//! The whole appliance on one machine, as `qoelab up` runs it and as end-to-end tests build it:
//! a lab, an agent inside this process shaping and capturing on the lab's router, the workload
//! servers in the lab's server namespace, and a runner whose sessions cross the router.

use std::path::Path;
use std::sync::Arc;

use qoelab_agent::client::AgentClient;
use qoelab_agent::local::LocalAgent;
use qoelab_lab::{Lab, standard};

use crate::db::Db;
use crate::error::{Error, Result};
use crate::events::Events;
use crate::gateways::Gateways;
use crate::network::{AgentNetwork, Link};
use crate::runner::Runner;
use crate::workloads::{LabServers, WorkloadDriver};

/// The runner type of an appliance.
pub type LabRunner = Runner<AgentNetwork, WorkloadDriver>;

/// A lab with its agent, workload servers and runner. Stop it with [`LabAppliance::stop`]
/// (dropping it also restores the link and removes the lab).
pub struct LabAppliance {
    runner: Arc<LabRunner>,
    agent: Option<LocalAgent>,
    _servers: LabServers,
    lab: Lab,
}

/// Where the lab's sessions are shaped and captured: both directions are shaped on the
/// router's egress (upload on the uplink, download on the LAN side) and captured on the LAN
/// side, where the client's traffic is seen as the client experiences it.
pub fn lab_link(lab: &Lab) -> Link {
    Link {
        netns: lab.router().ok().map(|ns| ns.name().to_string()),
        upload_iface: lab.uplink(),
        download_iface: lab.downlink(),
        capture_iface: lab.downlink(),
        bin_ms: 1000,
        max_capture_s: 4 * 3600,
    }
}

fn setup(e: impl std::fmt::Display) -> Error {
    Error::Setup(e.to_string())
}

impl LabAppliance {
    /// Starts the agent (socket and state under `run_dir`) and the workload servers for `lab`,
    /// and a runner over `db`, the server's one gateway. The runner does not run until
    /// [`Runner::run`] is spawned.
    pub fn start(db: Db, lab: Lab, run_dir: &Path, events: Events) -> Result<LabAppliance> {
        LabAppliance::on_gateway(&Gateways::single(db, events), 0, lab, run_dir)
    }

    /// Like [`LabAppliance::start`], the lab being gateway `gateway` (its position) of
    /// `gateways`.
    pub fn on_gateway(
        gateways: &Gateways,
        gateway: usize,
        lab: Lab,
        run_dir: &Path,
    ) -> Result<LabAppliance> {
        let agent = LocalAgent::start(&run_dir.join("agent.sock"), &run_dir.join("state"))
            .map_err(|e| Error::Setup(format!("starting the agent: {e}")))?;
        let servers = LabServers::start(lab.server().map_err(setup)?, standard::SERVER_ADDR)
            .map_err(|e| Error::Setup(format!("starting the workload servers in the lab: {e}")))?;
        let client_ns = lab.client().map_err(setup)?.try_clone().map_err(setup)?;
        let driver = WorkloadDriver::for_lab(client_ns, standard::SERVER_ADDR);
        let network = AgentNetwork::new(agent.client().clone(), lab_link(&lab));
        let runner = Runner::on_gateway(gateways, gateway, network, driver);
        Ok(LabAppliance {
            runner,
            agent: Some(agent),
            _servers: servers,
            lab,
        })
    }

    /// The runner.
    pub fn runner(&self) -> &Arc<LabRunner> {
        &self.runner
    }

    /// A client of the appliance's agent.
    pub fn agent(&self) -> &AgentClient {
        self.agent
            .as_ref()
            .expect("the agent runs until stop")
            .client()
    }

    /// The lab.
    pub fn lab(&self) -> &Lab {
        &self.lab
    }

    /// Restores every interface the agent shaped, stops the servers and removes the lab.
    /// Returns what could not be restored or removed.
    pub async fn stop(mut self) -> Vec<String> {
        let mut problems: Vec<String> = match self.agent.take() {
            Some(agent) => agent
                .stop()
                .await
                .into_iter()
                .map(|(iface, e)| format!("restore {iface}: {e}"))
                .collect(),
            None => Vec::new(),
        };
        let LabAppliance {
            lab,
            _servers: servers,
            ..
        } = self;
        drop(servers);
        if let Err(e) = lab.teardown() {
            problems.push(format!("remove the lab: {e}"));
        }
        problems
    }
}
