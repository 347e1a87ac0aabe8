//! The real appliance under the app: a lab, the agent shaping and capturing on its router, the
//! built-in workload servers, and the runner, with the agent's view on the dashboard.

use std::net::SocketAddr;
use std::sync::Arc;

use qoelab_agent::client::AgentClient;
use qoelab_collector::Db;
use qoelab_collector::appliance::LabAppliance;
use qoelab_collector::events::Events;
use qoelab_lab::Lab;
use qoelab_web::{App, ClientView};
use tokio_util::sync::CancellationToken;

/// A running appliance, stopped (link restored, lab removed) by [`Appliance::stop`] or, if
/// the test fails, on drop.
pub struct Appliance {
    pub appliance: LabAppliance,
    pub app: App,
    shutdown: CancellationToken,
    _dir: tempfile::TempDir,
}

impl Appliance {
    /// Starts the appliance over `db`, its runner running.
    pub fn start(db: &Db) -> Appliance {
        let dir = tempfile::tempdir().unwrap();
        let lab = Lab::standard(None).unwrap();
        let appliance =
            LabAppliance::start(db.clone(), lab, dir.path(), Events::default()).unwrap();
        let shutdown = CancellationToken::new();
        tokio::spawn(appliance.runner().clone().run(shutdown.clone()));
        let view = ClientView::new(AgentClient::new(dir.path().join("agent.sock")), 1000);
        let app = App::new(appliance.runner().clone(), Some(Arc::new(view)), None);
        Appliance {
            appliance,
            app,
            shutdown,
            _dir: dir,
        }
    }

    /// Serves the app on a loopback port until the appliance stops; its address.
    pub async fn listen(&self) -> SocketAddr {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let stop = self.shutdown.clone();
        tokio::spawn(qoelab_web::serve(
            listener,
            self.app.clone(),
            stop.cancelled_owned(),
        ));
        addr
    }

    /// Stops the runner and the server, restores the link and removes the lab, asserting that
    /// nothing was left behind.
    pub async fn stop(self) {
        self.shutdown.cancel();
        assert_eq!(self.appliance.stop().await, Vec::<String>::new());
    }
}
