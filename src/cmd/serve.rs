//! `qoelab serve`: the web UI, the JSON API and the campaign runner over one database, with the
//! agent that shapes and captures the measured link.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, Result};
use clap::Args;
use qoelab_agent::client::AgentClient;
use qoelab_collector::Db;
use qoelab_collector::campaign::Profile;
use qoelab_collector::db::redact;
use qoelab_collector::events::Events;
use qoelab_collector::network::{AgentNetwork, Link};
use qoelab_collector::runner::{Control, Network, Runner};
use qoelab_collector::session::Results;
use qoelab_collector::workloads::WorkloadDriver;
use qoelab_web::{App, ClientView};
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use super::campaign::DatabaseArg;

/// Options of `qoelab serve`.
#[derive(Debug, Args)]
pub struct ServeArgs {
    /// Address to listen on. Anything but loopback needs --token.
    #[arg(long, env = "QOELAB_LISTEN", default_value = "127.0.0.1:8080")]
    listen: SocketAddr,
    #[command(flatten)]
    db: DatabaseArg,
    /// The agent: its Unix socket, or tcp://HOST:PORT for an agent on another host.
    #[arg(long, env = "QOELAB_AGENT", default_value = "/run/qoelab/agent.sock")]
    agent: String,
    /// File holding the token of an agent reached over TCP (its --token-file).
    #[arg(long, env = "QOELAB_AGENT_TOKEN_FILE")]
    agent_token_file: Option<PathBuf>,
    #[command(flatten)]
    link: LinkArgs,
    /// Token for the API (Authorization: Bearer TOKEN) and the pages' login.
    #[arg(long, env = "QOELAB_TOKEN", hide_env_values = true)]
    token: Option<String>,
}

/// Where the built-in workloads' sessions are shaped and captured, and their servers.
#[derive(Debug, Args)]
struct LinkArgs {
    /// Interface shaped for uploads (client → server leave through it), e.g. the gateway's
    /// uplink. Sessions fail, saying so, until --uplink and --downlink are given.
    #[arg(long, env = "QOELAB_UPLINK", requires = "downlink")]
    uplink: Option<String>,
    /// Interface shaped for downloads (server → client leave through it), e.g. the LAN side.
    #[arg(long, env = "QOELAB_DOWNLINK", requires = "uplink")]
    downlink: Option<String>,
    /// Network namespace of the interfaces (default: the agent's own).
    #[arg(long, env = "QOELAB_NETNS")]
    netns: Option<String>,
    /// Interface the sessions are captured on (default: the downlink).
    #[arg(long, env = "QOELAB_CAPTURE_IFACE")]
    capture_iface: Option<String>,
    /// Video server the built-in player plays from (`qoelab workload video serve`), e.g.
    /// http://198.18.2.2:8080; its traffic must cross the shaped link.
    #[arg(long, env = "QOELAB_VIDEO_SERVER")]
    video_server: Option<String>,
    /// IoT sink the built-in uploaders send to, HOST:PORT: analytic i of a session sends to
    /// PORT+i, so the sink listens on PORT..PORT+15 (`qoelab workload iot sink --ports 16`).
    #[arg(long, env = "QOELAB_IOT_SINK")]
    iot_sink: Option<String>,
}

impl LinkArgs {
    fn link(&self) -> Option<Link> {
        let (upload, download) = (self.uplink.clone()?, self.downlink.clone()?);
        Some(Link {
            netns: self.netns.clone(),
            capture_iface: self.capture_iface.clone().unwrap_or(download.clone()),
            upload_iface: upload,
            download_iface: download,
            bin_ms: BIN_MS,
            max_capture_s: 4 * 3600,
        })
    }
}

/// Series bin of the sessions' captures, ms.
const BIN_MS: u64 = 1000;

/// Runs `qoelab serve` until Ctrl-C or SIGTERM.
pub fn run(args: ServeArgs) -> Result<()> {
    qoelab_web::check_exposure(args.listen, args.token.as_deref()).map_err(anyhow::Error::msg)?;
    let agent_token = args
        .agent_token_file
        .as_ref()
        .map(|path| {
            std::fs::read_to_string(path)
                .map(|t| t.trim().to_string())
                .with_context(|| format!("cannot read the agent's token from {}", path.display()))
        })
        .transpose()?;
    let connect = || AgentClient::connect(&args.agent, agent_token.as_deref());
    // One client for the runner, one for the pages: a slow statistics read must not hold up
    // a session's shaping.
    let (client, view_client) = (connect()?, connect()?);
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    runtime.block_on(async move {
        let (db, listener) = open(&args.db.database, args.listen).await?;
        let driver = WorkloadDriver::new(
            None,
            args.link.video_server.as_deref(),
            args.link.iot_sink.as_deref(),
        );
        let shutdown = CancellationToken::new();
        let events = Events::default();
        let (control, runner) = match args.link.link() {
            Some(link) => {
                let network = AgentNetwork::new(client, link);
                spawn_runner(Runner::new(db, network, driver, events), &shutdown)
            }
            None => spawn_runner(Runner::new(db, NoLink, driver, events), &shutdown),
        };
        let view = Arc::new(ClientView::new(view_client, BIN_MS));
        let app = App::new(control, Some(view), args.token);
        eprintln!(
            "qoelab serve: http://{}/ (database {}, agent {})",
            listener.local_addr()?,
            redact(&args.db.database),
            args.agent
        );
        serve_until_stopped(listener, app, shutdown, runner).await
    })
}

/// Opens the database at `url` (migrating it) and listens on `addr`.
pub async fn open(url: &str, addr: SocketAddr) -> Result<(Db, tokio::net::TcpListener)> {
    let db = Db::connect(url).await?;
    let listener = tokio::net::TcpListener::bind(addr)
        .await
        .with_context(|| format!("cannot listen on {addr}"))?;
    Ok((db, listener))
}

/// Starts `runner` until `shutdown`; returns it as the web's control and its task.
pub fn spawn_runner<N: Network, D: qoelab_collector::runner::Driver>(
    runner: Arc<Runner<N, D>>,
    shutdown: &CancellationToken,
) -> (Arc<dyn Control>, RunnerTask) {
    let task = tokio::spawn(runner.clone().run(shutdown.clone()));
    (runner, task)
}

/// The runner's task.
pub type RunnerTask = JoinHandle<qoelab_collector::Result<()>>;

/// Serves `app` on `listener` until Ctrl-C or SIGTERM, then stops the runner: its running
/// session goes back to pending and the link is unshaped.
pub async fn serve_until_stopped(
    listener: tokio::net::TcpListener,
    app: App,
    shutdown: CancellationToken,
    runner: RunnerTask,
) -> Result<()> {
    let stopped = shutdown.clone();
    let stop = async move {
        tokio::select! {
            _ = stop_signal() => {}
            // The runner ended by itself (its database is gone for good): stop serving too.
            _ = stopped.cancelled() => {}
        }
    };
    let watch = {
        let shutdown = shutdown.clone();
        async move {
            let outcome = runner.await;
            shutdown.cancel();
            outcome
        }
    };
    let watch = tokio::spawn(watch);
    qoelab_web::serve(listener, app, stop).await?;
    shutdown.cancel();
    match tokio::time::timeout(Duration::from_secs(30), watch).await {
        Ok(joined) => joined??.context("the campaign runner failed"),
        Err(_) => {
            tracing::warn!("the runner did not stop within 30 s");
            Ok(())
        }
    }
}

/// Completes on Ctrl-C or SIGTERM.
pub async fn stop_signal() {
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

/// The link of a server started without --uplink/--downlink: sessions fail with what to pass.
#[derive(Debug, Clone)]
struct NoLink;

const NO_LINK: &str = "no link to shape and capture: start qoelab serve with --uplink IFACE \
                       --downlink IFACE (or QOELAB_UPLINK and QOELAB_DOWNLINK)";

impl Network for NoLink {
    async fn apply(&self, _: &Profile) -> Result<(), String> {
        Err(NO_LINK.into())
    }
    async fn clear(&self) -> Result<(), String> {
        // Nothing was shaped.
        Ok(())
    }
    async fn start_capture(&self) -> Result<String, String> {
        Err(NO_LINK.into())
    }
    async fn stop_capture(&self, _: &str) -> Result<Results, String> {
        Err(NO_LINK.into())
    }
}
