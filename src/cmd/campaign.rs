//! `qoelab campaign create|list|show|stop|resume` and `qoelab export`: campaigns in the
//! database. Sessions are run by `qoelab serve` / `qoelab up`, which pick up running campaigns.

use std::path::PathBuf;

use anyhow::{Context, Result};
use clap::{Args, Subcommand};
use qoelab_collector::campaign::{self, CampaignSpec, CampaignStatus};
use qoelab_collector::export::{self, Format};
use qoelab_collector::form::SpecText;
use qoelab_collector::session::{self, SessionQuery};
use qoelab_collector::{Db, Error};
use qoelab_units::{Limit, Rate};

use crate::table::Table;

/// The database every collector command uses.
#[derive(Debug, Args)]
pub struct DatabaseArg {
    /// Database URL: `sqlite://PATH` (the embedded default) or `postgres://USER:PASS@HOST/DB`.
    #[arg(long, env = "DATABASE_URL", default_value = "sqlite://./qoelab.db")]
    pub database: String,
}

/// Campaign subcommands.
#[derive(Debug, Subcommand)]
pub enum CampaignCommand {
    /// Create a campaign (and start it with --start).
    Create(Box<CreateArgs>),
    /// List the campaigns with their progress.
    List {
        #[command(flatten)]
        db: DatabaseArg,
    },
    /// Show one campaign: its spec, progress, and sessions per limit.
    Show {
        /// Campaign id.
        id: i64,
        #[command(flatten)]
        db: DatabaseArg,
    },
    /// Stop a campaign; its running session goes back to pending.
    Stop {
        /// Campaign id.
        id: i64,
        #[command(flatten)]
        db: DatabaseArg,
    },
    /// Start a pending campaign or resume a stopped one.
    Resume {
        /// Campaign id.
        id: i64,
        #[command(flatten)]
        db: DatabaseArg,
    },
}

/// Options of `qoelab campaign create`.
#[derive(Debug, Args)]
pub struct CreateArgs {
    /// Campaign name.
    #[arg(long)]
    name: String,
    /// Number of sessions.
    #[arg(long)]
    sessions: u32,
    /// Measured length of each session, e.g. 60s or 2min.
    #[arg(long, default_value = "60s")]
    duration: String,
    /// Time the workload runs before measurement starts, e.g. 5s.
    #[arg(long, default_value = "0s")]
    warmup: String,
    /// Bandwidth limits spread over the sessions, e.g. "0.75, 1.25, 2, 3, 5 mbit, unlimited".
    #[arg(long)]
    limits: String,
    /// Added delays, e.g. "0ms, 50ms" (needs netem in the kernel).
    #[arg(long)]
    delays: Option<String>,
    /// Packet losses, e.g. "0%, 1%" (needs netem in the kernel).
    #[arg(long)]
    losses: Option<String>,
    /// Workload: video, iot or external.
    #[arg(long, default_value = "video")]
    workload: String,
    /// ABR algorithm of the video workload: buffer, rate or mpc.
    #[arg(long, default_value = "buffer")]
    abr: String,
    /// Analytics of the IoT workload as KIND:KNOB, comma separated, e.g.
    /// "object-detection:1, audio-classification:0.5".
    #[arg(long)]
    analytics: Option<String>,
    /// Seed of the session order.
    #[arg(long, default_value_t = 1)]
    seed: u64,
    /// The gateway whose link runs the sessions (a name from the server's --gateways file);
    /// default: the server's first.
    #[arg(long)]
    gateway: Option<String>,
    /// Start the campaign right away.
    #[arg(long)]
    start: bool,
    #[command(flatten)]
    db: DatabaseArg,
}

/// Options of `qoelab export`.
#[derive(Debug, Args)]
pub struct ExportArgs {
    /// Campaign id.
    #[arg(long)]
    campaign: i64,
    /// csv, jsonl or parquet.
    #[arg(long, default_value = "csv")]
    format: String,
    /// Output file.
    #[arg(short, long)]
    output: PathBuf,
    #[command(flatten)]
    db: DatabaseArg,
}

fn runtime() -> Result<tokio::runtime::Runtime> {
    Ok(tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?)
}

async fn open(db: &DatabaseArg) -> Result<Db> {
    Ok(Db::connect(&db.database).await?)
}

/// Runs a campaign subcommand.
pub fn run(command: CampaignCommand) -> Result<()> {
    runtime()?.block_on(async move {
        match command {
            CampaignCommand::Create(args) => create(*args).await,
            CampaignCommand::List { db } => list(&open(&db).await?).await,
            CampaignCommand::Show { id, db } => show(&open(&db).await?, id).await,
            CampaignCommand::Stop { id, db } => {
                let db = open(&db).await?;
                campaign::set_status(
                    &db,
                    id,
                    &[CampaignStatus::Pending, CampaignStatus::Running],
                    CampaignStatus::Stopped,
                )
                .await?;
                println!("campaign {id} stopped; its running session returns to pending");
                Ok(())
            }
            CampaignCommand::Resume { id, db } => {
                let db = open(&db).await?;
                campaign::set_status(
                    &db,
                    id,
                    &[CampaignStatus::Pending, CampaignStatus::Stopped],
                    CampaignStatus::Running,
                )
                .await?;
                println!("campaign {id} running; `qoelab serve` or `qoelab up` runs its sessions");
                Ok(())
            }
        }
    })
}

/// Parses the CLI's options into a spec; errors name the option.
pub fn spec_from(args: &CreateArgs) -> Result<CampaignSpec, Error> {
    SpecText {
        name: args.name.clone(),
        sessions: args.sessions.to_string(),
        duration: args.duration.clone(),
        warmup: args.warmup.clone(),
        limits: args.limits.clone(),
        delays: args.delays.clone().unwrap_or_default(),
        losses: args.losses.clone().unwrap_or_default(),
        workload: args.workload.clone(),
        abr: args.abr.clone(),
        analytics: args.analytics.clone().unwrap_or_default(),
        seed: args.seed.to_string(),
        gateway: args.gateway.clone().unwrap_or_default(),
    }
    .parse()
    .map_err(|mut problems| problems.remove(0))
}

async fn create(args: CreateArgs) -> Result<()> {
    let spec = spec_from(&args)?;
    let db = open(&args.db).await?;
    let id = campaign::create(&db, &spec).await?;
    if args.start {
        campaign::set_status(&db, id, &[CampaignStatus::Pending], CampaignStatus::Running).await?;
    }
    let state = if args.start {
        "running"
    } else {
        "pending (start it with `qoelab campaign resume`)"
    };
    println!(
        "campaign {id} created with {} sessions over {} profiles; {state}",
        spec.sessions,
        spec.profiles().len()
    );
    Ok(())
}

fn limit_text(rate_bps: Option<u64>) -> String {
    rate_bps
        .map_or(Limit::Unlimited, |r| Limit::Rate(Rate::from_bps(r)))
        .to_string()
}

async fn list(db: &Db) -> Result<()> {
    let campaigns = campaign::list(db).await?;
    if campaigns.is_empty() {
        println!("no campaigns yet: create one with `qoelab campaign create`");
        return Ok(());
    }
    let mut t = Table::new(&[
        "id",
        "name",
        "workload",
        "status",
        "sessions",
        "done",
        "failed",
        "discarded",
        "pending",
    ]);
    for c in campaigns {
        let p = c.progress;
        t.row(vec![
            c.id.to_string(),
            c.spec.name.clone(),
            c.spec.workload.label(),
            c.status.to_string(),
            p.total().to_string(),
            p.done.to_string(),
            p.failed.to_string(),
            p.discarded.to_string(),
            (p.pending + p.running).to_string(),
        ]);
    }
    print!("{}", t.render());
    Ok(())
}

async fn show(db: &Db, id: i64) -> Result<()> {
    let c = campaign::get(db, id).await?;
    let s = &c.spec;
    println!(
        "campaign {} '{}': {} ({}, gateway {})",
        c.id,
        s.name,
        c.status,
        s.workload.label(),
        s.gateway.as_deref().unwrap_or("of the server, its first")
    );
    println!(
        "{} sessions of {} s after {} s warm-up, seed {}; limits {}",
        s.sessions,
        s.duration_s,
        s.warmup_s,
        s.seed,
        s.limits
            .iter()
            .map(ToString::to_string)
            .collect::<Vec<_>>()
            .join(", ")
    );
    let p = c.progress;
    println!(
        "done {}, failed {}, discarded {}, running {}, pending {}\n",
        p.done, p.failed, p.discarded, p.running, p.pending
    );
    let sessions = session::list(
        db,
        &SessionQuery {
            campaign_id: Some(id),
            per_page: Some(1000),
            ..Default::default()
        },
    )
    .await?;
    let mut t = Table::new(&["seq", "session", "limit", "status", "attempts", "failure"]);
    for s in sessions.sessions.iter().take(50) {
        t.row(vec![
            s.seq.to_string(),
            s.id.to_string(),
            limit_text(s.profile.rate_bps),
            s.status.to_string(),
            s.attempts.to_string(),
            s.failure.clone().unwrap_or_default(),
        ]);
    }
    print!("{}", t.render());
    if sessions.total > 50 {
        println!("… {} more sessions", sessions.total - 50);
    }
    Ok(())
}

/// Runs `qoelab export`.
pub fn export(args: ExportArgs) -> Result<()> {
    let format: Format = args.format.parse()?;
    runtime()?.block_on(async move {
        let db = open(&args.db).await?;
        let rows = export::to_file(&db, args.campaign, format, &args.output)
            .await
            .with_context(|| {
                format!(
                    "exporting campaign {} to {}",
                    args.campaign,
                    args.output.display()
                )
            })?;
        println!("{rows} sessions written to {}", args.output.display());
        Ok(())
    })
}
