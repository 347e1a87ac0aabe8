//! `qoelab serve`: the web UI, the JSON API and the campaign runners over one database: one
//! runner per gateway, each with the agent that shapes and captures its link.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, Result};
use clap::Args;
use qoelab_collector::Db;
use qoelab_collector::campaign::Profile;
use qoelab_collector::db::redact;
use qoelab_collector::events::Events;
use qoelab_collector::gateways::{Gateways, Multiplexer};
use qoelab_collector::mqtt;
use qoelab_collector::network::AgentNetwork;
use qoelab_collector::runner::{Control, Network, Runner};
use qoelab_collector::session::Results;
use qoelab_collector::workloads::WorkloadDriver;
use qoelab_web::{AgentView, App, ClientView};
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use super::campaign::DatabaseArg;
use crate::gateways::{self, BIN_MS, GatewayArgs};

/// Options of `qoelab serve`.
#[derive(Debug, Args)]
pub struct ServeArgs {
    /// Address to listen on. Anything but loopback needs --token.
    #[arg(long, env = "QOELAB_LISTEN", default_value = "127.0.0.1:8080")]
    listen: SocketAddr,
    #[command(flatten)]
    db: DatabaseArg,
    /// The gateways this server drives: a TOML file of [[gateway]] entries (name, agent,
    /// agent_token_file, uplink, downlink, netns, capture_iface, video_server, iot_sink).
    /// Instead of the options below, which define one gateway.
    #[arg(long, env = "QOELAB_GATEWAYS")]
    gateways: Option<PathBuf>,
    #[command(flatten)]
    gateway: GatewayArgs,
    #[command(flatten)]
    mqtt: MqttArgs,
    /// Token for the API (Authorization: Bearer TOKEN) and the pages' login.
    #[arg(long, env = "QOELAB_TOKEN", hide_env_values = true)]
    token: Option<String>,
}

/// The MQTT ingest, off unless --mqtt names a broker.
#[derive(Debug, Args)]
pub struct MqttArgs {
    /// MQTT broker to take gateway data from, mqtt://HOST[:PORT]: QoS reports on
    /// qoelab/+/+/qos, decision batches on qoelab/+/placements and qoelab/+/allocations.
    #[arg(long, env = "QOELAB_MQTT", value_name = "URL", value_parser = mqtt_url)]
    mqtt: Option<String>,
    /// Client id at the broker, which keeps the messages not stored yet under it while the
    /// collector is stopped; give each collector on one broker its own.
    #[arg(long, env = "QOELAB_MQTT_CLIENT_ID", default_value = mqtt::DEFAULT_CLIENT_ID,
          value_name = "ID", value_parser = mqtt_client_id)]
    mqtt_client_id: String,
}

fn mqtt_url(url: &str) -> std::result::Result<String, String> {
    mqtt::parse_url(url)
        .map(|_| url.to_string())
        .map_err(|_| format!("accepted: {}", mqtt::URL_FORM))
}

fn mqtt_client_id(id: &str) -> std::result::Result<String, String> {
    mqtt::check_client_id(id)
        .map(|()| id.to_string())
        .map_err(|_| format!("accepted: {}", mqtt::CLIENT_ID_FORM))
}

/// The MQTT subscriber's task.
pub type MqttTask = JoinHandle<qoelab_collector::Result<()>>;

impl MqttArgs {
    /// Subscribes to the broker until `shutdown`, if one was given.
    pub fn spawn(&self, db: &Db, shutdown: &CancellationToken) -> Option<MqttTask> {
        let url = self.mqtt.clone()?;
        eprintln!("qoelab: MQTT ingest from {url} as {}", self.mqtt_client_id);
        Some(tokio::spawn(mqtt::run(
            db.clone(),
            url,
            self.mqtt_client_id.clone(),
            shutdown.clone(),
        )))
    }
}

/// Runs `qoelab serve` until Ctrl-C or SIGTERM.
pub fn run(args: ServeArgs) -> Result<()> {
    qoelab_web::check_exposure(args.listen, args.token.as_deref()).map_err(anyhow::Error::msg)?;
    let gateways = gateways::load(args.gateways.as_deref(), args.gateway)?;
    // One client for the runner, one for the pages: a slow statistics read must not hold up
    // a session's shaping.
    let clients = gateways
        .iter()
        .map(|g| Ok((g.connect()?, g.connect()?)))
        .collect::<Result<Vec<_>>>()?;
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    runtime.block_on(async move {
        let (db, listener) = open(&args.db.database, args.listen).await?;
        let names = gateways.iter().map(|g| g.name.clone()).collect();
        let shared = Gateways::new(db, Events::default(), names);
        let shutdown = CancellationToken::new();
        let mqtt = args.mqtt.spawn(shared.db(), &shutdown);
        let (mut runners, mut tasks, mut views) = (Vec::new(), Vec::new(), Vec::new());
        for (at, (gateway, (client, view_client))) in gateways.iter().zip(clients).enumerate() {
            let link = &gateway.link;
            let driver = WorkloadDriver::new(None, link.video_server(), link.iot_sink());
            let (control, task) = match link.link() {
                Some(link) => {
                    let network = AgentNetwork::new(client, link);
                    spawn_runner(Runner::on_gateway(&shared, at, network, driver), &shutdown)
                }
                None => {
                    let network = NoLink(gateway.no_link());
                    spawn_runner(Runner::on_gateway(&shared, at, network, driver), &shutdown)
                }
            };
            runners.push(control);
            tasks.push(task);
            let view: Arc<dyn AgentView> = Arc::new(ClientView::new(view_client, BIN_MS));
            views.push((gateway.name.clone(), view));
        }
        let control = Arc::new(Multiplexer::new(shared, runners));
        let app = App::with_agents(control, views, args.token);
        let described: Vec<String> = gateways
            .iter()
            .map(|g| format!("gateway {} (agent {})", g.name, g.agent))
            .collect();
        eprintln!(
            "qoelab serve: http://{}/ (database {}, {})",
            listener.local_addr()?,
            redact(&args.db.database),
            described.join(", ")
        );
        serve_until_stopped(listener, app, shutdown, tasks, mqtt).await
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

/// Serves `app` on `listener` until Ctrl-C or SIGTERM, then stops the runners (their running
/// sessions go back to pending and their links are unshaped) and the MQTT ingest (what it has
/// not stored stays with the broker).
pub async fn serve_until_stopped(
    listener: tokio::net::TcpListener,
    app: App,
    shutdown: CancellationToken,
    runners: Vec<RunnerTask>,
    mqtt: Option<MqttTask>,
) -> Result<()> {
    let stopped = shutdown.clone();
    let stop = async move {
        tokio::select! {
            _ = stop_signal() => {}
            // A runner ended by itself (its database is gone for good): stop serving too.
            _ = stopped.cancelled() => {}
        }
    };
    let watch = {
        let shutdown = shutdown.clone();
        async move {
            let ended = runners
                .into_iter()
                .map(|runner| async move { runner.await?.context("the campaign runner failed") });
            let outcome = futures::future::try_join_all(ended).await;
            shutdown.cancel();
            outcome.map(drop)
        }
    };
    let watch = tokio::spawn(watch);
    qoelab_web::serve(listener, app, stop).await?;
    shutdown.cancel();
    if let Some(mqtt) = mqtt {
        match tokio::time::timeout(Duration::from_secs(10), mqtt).await {
            Ok(joined) => joined?.context("the MQTT ingest failed")?,
            Err(_) => tracing::warn!("the MQTT ingest did not stop within 10 s"),
        }
    }
    match tokio::time::timeout(Duration::from_secs(30), watch).await {
        Ok(joined) => joined?,
        Err(_) => {
            tracing::warn!("the runners did not stop within 30 s");
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

/// The link of a gateway given without uplink and downlink: sessions fail saying what to give.
#[derive(Debug, Clone)]
struct NoLink(String);

impl Network for NoLink {
    async fn apply(&self, _: &Profile) -> Result<(), String> {
        Err(self.0.clone())
    }
    async fn clear(&self) -> Result<(), String> {
        // Nothing was shaped.
        Ok(())
    }
    async fn start_capture(&self) -> Result<String, String> {
        Err(self.0.clone())
    }
    async fn stop_capture(&self, _: &str) -> Result<Results, String> {
        Err(self.0.clone())
    }
}
