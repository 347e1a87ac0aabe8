//! `qoelab up`: the whole appliance in one process, the embedded default. A lab (client ↔
//! router ↔ server), an agent shaping and capturing on the router, the built-in video and IoT
//! servers, the campaign runner and the web UI over SQLite; a demo campaign on first start.
//! Ctrl-C stops the running session, restores every qdisc and removes the lab.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, Result, anyhow, bail};
use clap::Args;
use qoelab_agent::client::AgentClient;
use qoelab_collector::Db;
use qoelab_collector::appliance::LabAppliance;
use qoelab_collector::campaign::{self, CampaignSpec, Workload};
use qoelab_collector::db::redact;
use qoelab_collector::events::Events;
use qoelab_lab::registry::LabRecord;
use qoelab_lab::{Lab, LabError, admin};
use qoelab_units::{parse_duration, parse_limits};
use qoelab_web::{App, ClientView};
use tokio_util::sync::CancellationToken;

use super::campaign::DatabaseArg;
use super::serve::{MqttArgs, open, serve_until_stopped, spawn_runner};

/// Options of `qoelab up`.
#[derive(Debug, Args)]
pub struct UpArgs {
    /// Address of the web UI and API. Anything but loopback needs --token.
    #[arg(long, env = "QOELAB_LISTEN", default_value = "127.0.0.1:8080")]
    listen: SocketAddr,
    #[command(flatten)]
    db: DatabaseArg,
    /// Name of the lab (1–6 lowercase letters or digits); its namespaces are ql<NAME>-*.
    #[arg(long, default_value = "up")]
    lab: String,
    /// Directory of the agent's socket and state.
    #[arg(long, default_value = "/run/qoelab")]
    run_dir: PathBuf,
    /// Sessions of the demo campaign queued when the database has no campaign (0: none).
    #[arg(long, default_value_t = 8)]
    demo_sessions: u32,
    /// Length of each demo session, e.g. 30s or 2min.
    #[arg(long, default_value = "30s", value_parser = parse_duration)]
    demo_duration: Duration,
    /// Token for the API (Authorization: Bearer TOKEN) and the pages' login.
    #[arg(long, env = "QOELAB_TOKEN", hide_env_values = true)]
    token: Option<String>,
    #[command(flatten)]
    mqtt: MqttArgs,
}

/// Bandwidth limits of the demo campaign: from stalling to smooth at the top bitrate.
const DEMO_LIMITS: &str = "0.75, 1.5, 3 mbit, unlimited";

/// Runs `qoelab up` until Ctrl-C or SIGTERM.
pub fn run(args: UpArgs) -> Result<()> {
    qoelab_web::check_exposure(args.listen, args.token.as_deref()).map_err(anyhow::Error::msg)?;
    qoelab_lab::check_privileges()
        .map_err(|e| anyhow!("qoelab up runs a network lab and shapes it: {e}"))?;
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    runtime.block_on(async move {
        let (db, listener) = open(&args.db.database, args.listen).await?;
        let lab = build_lab(&args.lab)?;
        let run_dir = args.run_dir.join(format!("up-{}", lab.name()));
        let appliance = LabAppliance::start(db.clone(), lab, &run_dir, Events::default())?;
        let outcome = serve(&args, db, listener, &appliance, &run_dir).await;
        eprintln!("qoelab up: stopping: restoring the link and removing the lab");
        let problems = appliance.stop().await;
        if !problems.is_empty() {
            bail!(
                "stopped, but some things could not be undone: {}; `qoelab lab clean` removes \
                 leftover labs",
                problems.join("; ")
            );
        }
        outcome
    })
}

/// Queues the demo campaign if needed, then serves until stopped.
async fn serve(
    args: &UpArgs,
    db: Db,
    listener: tokio::net::TcpListener,
    appliance: &LabAppliance,
    run_dir: &Path,
) -> Result<()> {
    let runner = appliance.runner().clone();
    let demo = match args.demo_sessions {
        0 => None,
        n => queue_demo(&db, n, args.demo_duration.as_secs_f64()).await?,
    };
    if let Some(id) = demo {
        runner.start(id).await?;
    }
    let shutdown = CancellationToken::new();
    let mqtt = args.mqtt.spawn(&db, &shutdown);
    let (control, task) = spawn_runner(runner, &shutdown);
    // The pages read the agent through a client of their own.
    let view = ClientView::new(AgentClient::new(run_dir.join("agent.sock")), 1000);
    let app = App::new(control, Some(Arc::new(view)), args.token.clone());
    let url = format!("http://{}/", listener.local_addr()?);
    println!("qoelab is up: {url}");
    println!(
        "  lab {} (ip netns: {}), database {}",
        appliance.lab().name(),
        appliance.lab().router()?.name(),
        redact(&args.db.database)
    );
    match demo {
        Some(id) => println!("  demo campaign #{id} runs now: {url}campaigns/{id}"),
        None => println!("  start a campaign at {url}campaigns/new"),
    }
    println!("  Ctrl-C stops it and removes the lab");
    serve_until_stopped(listener, app, shutdown, vec![task], mqtt).await
}

/// The standard lab named `name`; a lab of that name left by a process that died is removed
/// first, one in use by a live process is refused.
fn build_lab(name: &str) -> Result<Lab> {
    match Lab::standard(Some(name)) {
        Err(LabError::NameTaken { .. }) => {
            let record = LabRecord::load(name)
                .with_context(|| format!("reading the record of lab {name}"))?;
            if let Some(owner) = record
                .as_ref()
                .filter(|r| r.in_use())
                .and_then(|r| r.owner.as_ref())
            {
                bail!(
                    "lab '{name}' is in use by process {} (another qoelab up?); stop it, or pass \
                     --lab NAME to run a second appliance",
                    owner.pid
                );
            }
            admin::down(Some(name), false).with_context(|| {
                format!(
                    "removing the leftovers of lab {name} (`qoelab lab clean` removes them all)"
                )
            })?;
            eprintln!("qoelab up: removed lab {name} left by an earlier run");
            Ok(Lab::standard(Some(name))?)
        }
        lab => Ok(lab?),
    }
}

/// Creates the demo campaign if the database has no campaign yet; returns its id.
async fn queue_demo(db: &Db, sessions: u32, duration_s: f64) -> Result<Option<i64>> {
    if !campaign::list(db).await?.is_empty() {
        return Ok(None);
    }
    let spec = CampaignSpec {
        name: "demo: ABR video under four limits".into(),
        sessions,
        duration_s,
        warmup_s: (duration_s / 6.0).min(5.0),
        limits: parse_limits(DEMO_LIMITS)?,
        delays_ms: Vec::new(),
        losses: Vec::new(),
        workload: Workload::Video { abr: "mpc".into() },
        seed: 1,
        gateway: None,
    };
    Ok(Some(campaign::create(db, &spec).await?))
}
