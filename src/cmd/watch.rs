//! `qoelab allocate --watch`: the live allocation service (`qoelab-gateway`) on the command
//! line, printing each decision as it is carried out.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};
use clap::Args;
use qoelab_agent::client::AgentClient;
use qoelab_agent::server::DEFAULT_SOCKET;
use qoelab_collector::Db;
use qoelab_gateway::knob::{Publisher, now_ms};
use qoelab_gateway::record::DecisionStore;
use qoelab_gateway::{Applied, Config, Registration, Service};
use qoelab_planner::allocate::{Algorithm, Options};
use qoelab_planner::analytic::parse_specs;
use qoelab_planner::live::Action;
use qoelab_planner::shaping::PlanOptions;
use qoelab_shaper::IfaceRef;
use qoelab_units::Rate;
use qoelab_workload::model::ModelSet;

use super::plan::{allocation_table, parse};

/// Options of `qoelab allocate` that only `--watch` uses.
#[derive(Debug, Args)]
pub struct WatchArgs {
    /// Keep running: analytics register over the API (`--listen`) or come from `--analytics`;
    /// every change is enforced on the uplink through the agent, knobs are published and
    /// decisions stored. Stops on Ctrl-C or SIGTERM and puts the uplink back as found.
    #[arg(long)]
    pub watch: bool,
    /// The agent's socket.
    #[arg(long, default_value = DEFAULT_SOCKET)]
    agent: PathBuf,
    /// Network namespace of the uplink (iproute2 name); default: the agent's own.
    #[arg(long, requires = "watch")]
    netns: Option<String>,
    /// The uplink interface whose egress is shaped, e.g. wwan0.
    #[arg(long, requires = "watch", required_if_eq("watch", "true"))]
    iface: Option<String>,
    /// Store decisions in this database: postgres://USER:PASSWORD@HOST/DB or sqlite://PATH.
    #[arg(long, env = "DATABASE_URL")]
    database: Option<String>,
    /// Also publish knobs to this MQTT broker (topic qoelab/<gateway>/<analytic>/knob, retained),
    /// e.g. mqtt://127.0.0.1:1883.
    #[arg(long, requires = "watch")]
    mqtt: Option<String>,
    /// Serve the registration API on this address, e.g. 127.0.0.1:7070.
    #[arg(long, requires = "watch")]
    listen: Option<SocketAddr>,
    /// The gateway's name in knob messages, MQTT topics and stored decisions.
    #[arg(long, default_value = "gateway")]
    gateway: String,
    /// Rate guaranteed to traffic of no analytic, taken from the budget (default: 1% of it, at
    /// least 1kbit).
    #[arg(long, value_parser = parse::<Rate>)]
    reserve: Option<Rate>,
}

/// What `--watch` takes from the rest of `qoelab allocate`'s options.
pub struct Allocator<'a> {
    /// The uplink's rate.
    pub budget: Rate,
    /// Analytics registered at start.
    pub analytics: Option<&'a Path>,
    /// The allocation algorithm.
    pub algorithm: Algorithm,
    /// Its tuning.
    pub options: Options,
    /// What classes match and whether they borrow.
    pub plan_options: PlanOptions,
    /// Analytic models.
    pub models: ModelSet,
}

/// Runs the service until Ctrl-C or SIGTERM.
pub fn run(args: &WatchArgs, allocator: Allocator<'_>) -> Result<()> {
    if args.listen.is_none() && allocator.analytics.is_none() {
        bail!(
            "--watch needs --listen ADDR (analytics register over the API) and/or --analytics \
             FILE (analytics registered at start)"
        );
    }
    let initial: Vec<Registration> = match allocator.analytics {
        None => Vec::new(),
        Some(path) => read_registrations(path)?,
    };
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()?;
    runtime.block_on(async {
        let store = match &args.database {
            None => None,
            Some(url) => {
                let db = Db::connect(url).await?;
                Some(DecisionStore::new(db, &args.gateway, now_ms()))
            }
        };
        let publisher = Publisher::connect(args.mqtt.as_deref()).await?;
        let uplink = IfaceRef::new(args.netns.as_deref(), args.iface.as_deref().unwrap_or(""));
        let config = Config {
            gateway: args.gateway.clone(),
            uplink: uplink.clone(),
            budget_bps: allocator.budget.bps(),
            reserve_bps: args.reserve.map(Rate::bps),
            algorithm: allocator.algorithm,
            options: allocator.options,
            plan_options: allocator.plan_options,
            models: allocator.models,
        };
        let service = Service::start(config, AgentClient::new(&args.agent), publisher, store)
            .await
            .with_context(|| format!("cannot take the uplink {uplink}"))?;
        let view = service.view().await;
        println!(
            "{uplink}: shaped to {} ({} kept for unclassified traffic), {} allocation",
            allocator.budget,
            Rate::from_bps(view.link.reserve_bps),
            view.algorithm
        );
        let outcome = serve(args, &service, initial).await;
        let stopped = service.stop().await;
        outcome?;
        stopped?;
        println!("{uplink}: restored");
        Ok(())
    })
}

/// Registers the analytics of `--analytics`, then prints every decision until interrupted.
async fn serve(args: &WatchArgs, service: &Service, initial: Vec<Registration>) -> Result<()> {
    for registration in initial {
        let id = registration.id.clone();
        let (_, applied) = service
            .register(registration)
            .await
            .with_context(|| format!("cannot register analytic '{id}' of --analytics"))?;
        print!("{}", describe(&applied));
    }
    let mut decisions = service.decisions();
    let printer = tokio::spawn(async move {
        while let Ok(applied) = decisions.recv().await {
            print!("{}", describe(&applied));
        }
    });
    let served = listen(args, service).await;
    printer.abort();
    served
}

async fn listen(args: &WatchArgs, service: &Service) -> Result<()> {
    match args.listen {
        None => interrupted().await,
        Some(addr) => {
            let listener = tokio::net::TcpListener::bind(addr)
                .await
                .with_context(|| format!("cannot listen on {addr}: use a free HOST:PORT"))?;
            println!(
                "registration API on http://{}/v1/analytics",
                listener.local_addr()?
            );
            qoelab_gateway::api::serve(listener, service.clone(), interrupted()).await?;
        }
    }
    Ok(())
}

/// Completes on SIGINT or SIGTERM.
pub(crate) async fn interrupted() {
    use tokio::signal::unix::{SignalKind, signal};
    match signal(SignalKind::terminate()) {
        Ok(mut term) => {
            tokio::select! {
                _ = tokio::signal::ctrl_c() => {}
                _ = term.recv() => {}
            }
        }
        Err(_) => {
            let _ = tokio::signal::ctrl_c().await;
        }
    }
}

fn read_registrations(path: &Path) -> Result<Vec<Registration>> {
    let text = std::fs::read_to_string(path)
        .with_context(|| format!("reading the analytics file {}", path.display()))?;
    let specs = parse_specs(&text, &path.display().to_string())?;
    Ok(specs.into_iter().map(Registration::from).collect())
}

/// A decision as printed: what caused it, the allocation, what was changed.
fn describe(applied: &Applied) -> String {
    let mut out = format!("\n#{} {}\n", applied.sequence, applied.event);
    match &applied.allocation {
        Some(allocation) => out.push_str(&allocation_table(allocation)),
        None => out.push_str("no analytic registered\n"),
    }
    let (mut created, mut changed, mut deleted, mut knobs, mut undelivered) = (0, 0, 0, 0, 0);
    for step in &applied.steps {
        if let Some(report) = step.shaping {
            created += report.created;
            changed += report.changed;
            deleted += report.deleted;
        }
        if matches!(
            step.what,
            qoelab_gateway::service::StepKind::Action(
                Action::PublishKnob { .. } | Action::Pause { .. }
            )
        ) {
            knobs += 1;
            undelivered += usize::from(!step.undelivered.is_empty());
        }
    }
    out.push_str(&format!(
        "shaping: {changed} changed in place, {created} created, {deleted} deleted; knobs: {knobs} \
         sent, {undelivered} undelivered"
    ));
    if let Some(stored) = &applied.stored {
        out.push_str(&format!(
            "; stored {} decisions{}",
            stored.items,
            match stored.pending_batches {
                0 => String::new(),
                n => format!(" ({n} batches waiting for the database)"),
            }
        ));
    }
    out.push('\n');
    out
}
