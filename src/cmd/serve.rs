//! `qoelab serve`: the web UI, the JSON API and the campaign runner over one database.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, Result};
use clap::Args;
use qoelab_collector::Db;
use qoelab_collector::campaign::{Profile, Workload};
use qoelab_collector::db::redact;
use qoelab_collector::events::Events;
use qoelab_collector::runner::{Driver, Network, Runner};
use qoelab_collector::session::Results;
use qoelab_web::{AgentView, App};
use serde_json::Value;
use tokio_util::sync::CancellationToken;

use super::campaign::DatabaseArg;

/// Options of `qoelab serve`.
#[derive(Debug, Args)]
pub struct ServeArgs {
    /// Address to listen on. Anything but loopback needs --token.
    #[arg(long, default_value = "127.0.0.1:8080")]
    listen: SocketAddr,
    #[command(flatten)]
    db: DatabaseArg,
    /// The agent's Unix socket.
    #[arg(long, default_value = "/run/qoelab/agent.sock")]
    agent: PathBuf,
    /// Token for the API (Authorization: Bearer TOKEN) and the pages' login.
    #[arg(long, env = "QOELAB_TOKEN", hide_env_values = true)]
    token: Option<String>,
}

/// Runs `qoelab serve` until Ctrl-C or SIGTERM.
pub fn run(args: ServeArgs) -> Result<()> {
    qoelab_web::check_exposure(args.listen, args.token.as_deref()).map_err(anyhow::Error::msg)?;
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    runtime.block_on(async move {
        let db = Db::connect(&args.db.database).await?;
        let listener = tokio::net::TcpListener::bind(args.listen)
            .await
            .with_context(|| format!("cannot listen on {}", args.listen))?;
        let (runner, agent) = wire(db, Events::default(), &args.agent);
        let shutdown = CancellationToken::new();
        let runner_task = tokio::spawn(runner.clone().run(shutdown.clone()));
        let app = App::new(runner, agent, args.token);
        eprintln!(
            "qoelab serve: http://{}/ (database {})",
            listener.local_addr()?,
            redact(&args.db.database)
        );
        qoelab_web::serve(listener, app, stop_signal()).await?;
        shutdown.cancel();
        match tokio::time::timeout(Duration::from_secs(10), runner_task).await {
            Ok(joined) => joined??,
            Err(_) => tracing::warn!("the runner did not stop within 10 s"),
        }
        Ok(())
    })
}

/// The runner and the agent view: the one place where the agent client plugs in. Until it
/// does, sessions fail with "agent not connected" and the dashboard says so.
fn wire(
    db: Db,
    events: Events,
    socket: &Path,
) -> (
    Arc<Runner<impl Network, impl Driver>>,
    Option<Arc<dyn AgentView>>,
) {
    let agent = NoAgent(socket.to_path_buf());
    (Runner::new(db, agent.clone(), agent, events), None)
}

/// Completes on Ctrl-C or SIGTERM.
async fn stop_signal() {
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending().await,
        }
    };
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {}
        _ = terminate => {}
    }
}

/// Shaping, capture and workloads without an agent: every session fails with the reason.
#[derive(Debug, Clone)]
struct NoAgent(PathBuf);

impl NoAgent {
    fn reason(&self) -> String {
        format!(
            "agent not connected: no qoelab agent answers at {} (start `qoelab agent` or pass --agent SOCKET)",
            self.0.display()
        )
    }
}

impl Network for NoAgent {
    async fn apply(&self, _: &Profile) -> Result<(), String> {
        Err(self.reason())
    }
    async fn clear(&self) -> Result<(), String> {
        Err(self.reason())
    }
    async fn start_capture(&self) -> Result<String, String> {
        Err(self.reason())
    }
    async fn stop_capture(&self, _: &str) -> Result<Results, String> {
        Err(self.reason())
    }
}

impl Driver for NoAgent {
    async fn run(
        &self,
        _: &Workload,
        _: Duration,
        _: CancellationToken,
    ) -> Result<Option<Value>, String> {
        Err(self.reason())
    }
}
