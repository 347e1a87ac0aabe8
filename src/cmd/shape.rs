//! `qoelab shape apply|show|clear|trace`: shaping through the agent.

use std::path::PathBuf;

use anyhow::{Context, Result};
use clap::Subcommand;
use qoelab_agent::client::AgentClient;
use qoelab_agent::server::DEFAULT_SOCKET;
use qoelab_shaper::IfaceRef;
use qoelab_shaper::plan::PlanFile;
use qoelab_units::Rate;

use crate::table::Table;

/// Shape subcommands.
#[derive(Debug, Subcommand)]
pub enum ShapeCommand {
    /// Apply a plan file (TOML): only what differs from the kernel's state is changed.
    Apply {
        /// The plan file.
        plan: PathBuf,
        /// The agent's socket.
        #[arg(long, default_value = DEFAULT_SOCKET)]
        socket: PathBuf,
    },
    /// Show the shaped interfaces and their classes with counters and current rates.
    Show {
        /// The agent's socket.
        #[arg(long, default_value = DEFAULT_SOCKET)]
        socket: PathBuf,
        /// Milliseconds over which to measure current rates.
        #[arg(long, default_value_t = 1000)]
        interval_ms: u64,
    },
    /// Remove shaping and restore interfaces as they were (all, or one).
    Clear {
        /// The agent's socket.
        #[arg(long, default_value = DEFAULT_SOCKET)]
        socket: PathBuf,
        /// Only this interface.
        #[arg(long)]
        iface: Option<String>,
        /// Its network namespace.
        #[arg(long)]
        netns: Option<String>,
    },
    /// Play a bandwidth trace (`time_s rate_mbps` lines): the link rate changes in place at each
    /// step; the interface is put back as it was at the end.
    Trace(super::shape_trace::TraceArgs),
}

/// Runs a shape subcommand.
pub fn run(command: ShapeCommand) -> Result<()> {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    runtime.block_on(async {
        match command {
            ShapeCommand::Apply { plan, socket } => apply(&AgentClient::new(socket), &plan).await,
            ShapeCommand::Show {
                socket,
                interval_ms,
            } => show(&AgentClient::new(socket), interval_ms).await,
            ShapeCommand::Clear {
                socket,
                iface,
                netns,
            } => clear(&AgentClient::new(socket), iface, netns).await,
            ShapeCommand::Trace(args) => super::shape_trace::run(args).await,
        }
    })
}

async fn apply(client: &AgentClient, path: &PathBuf) -> Result<()> {
    let text = std::fs::read_to_string(path).with_context(|| format!("read {}", path.display()))?;
    let file: PlanFile = toml::from_str(&text)
        .with_context(|| format!("{} is not a valid plan file", path.display()))?;
    let mut table = Table::new(&["interface", "netns", "created", "changed", "deleted"]);
    for entry in file.interface {
        let (iface, plan) = entry.into_parts();
        let report = client
            .apply(&iface, &plan)
            .await
            .with_context(|| format!("apply the plan of {iface}"))?;
        table.row(vec![
            iface.name.clone(),
            iface.netns.clone().unwrap_or_else(|| "-".into()),
            report.created.to_string(),
            report.changed.to_string(),
            report.deleted.to_string(),
        ]);
    }
    print!("{}", table.render());
    Ok(())
}

async fn show(client: &AgentClient, interval_ms: u64) -> Result<()> {
    let interfaces = client.interfaces().await?;
    if interfaces.is_empty() {
        println!("no interface is shaped");
        return Ok(());
    }
    let mut table = Table::new(&[
        "interface",
        "netns",
        "dir",
        "class",
        "rate",
        "ceil",
        "now",
        "bytes",
        "packets",
        "drops",
        "overlimits",
        "backlog",
    ]);
    for shaped in interfaces {
        let stats = client.stats(&shaped.iface, interval_ms).await?;
        for direction in &stats.directions {
            for class in &direction.classes {
                table.row(vec![
                    shaped.iface.name.clone(),
                    shaped.iface.netns.clone().unwrap_or_else(|| "-".into()),
                    direction.direction.to_string(),
                    class.name.clone(),
                    Rate::from_bps(class.rate_bps).to_string(),
                    Rate::from_bps(class.ceil_bps).to_string(),
                    class
                        .measured_bps
                        .map(|b| Rate::from_bps(b).to_string())
                        .unwrap_or_default(),
                    class.counters.bytes.to_string(),
                    class.counters.packets.to_string(),
                    class.counters.drops.to_string(),
                    class.counters.overlimits.to_string(),
                    format!("{}b", class.counters.backlog_bytes),
                ]);
            }
        }
    }
    print!("{}", table.render());
    Ok(())
}

async fn clear(client: &AgentClient, iface: Option<String>, netns: Option<String>) -> Result<()> {
    let targets: Vec<IfaceRef> = match iface {
        Some(name) => vec![IfaceRef { netns, name }],
        None => client
            .interfaces()
            .await?
            .into_iter()
            .map(|s| s.iface)
            .collect(),
    };
    for iface in targets {
        client
            .clear(&iface)
            .await
            .with_context(|| format!("clear {iface}"))?;
        println!("{iface}: restored");
    }
    Ok(())
}
