//! `qoelab agent`: the privileged daemon.

use std::path::PathBuf;

use anyhow::Result;
use clap::Args;
use qoelab_agent::server::{self, Config};

/// Options of `qoelab agent`.
#[derive(Debug, Args)]
pub struct AgentArgs {
    /// The Unix socket to serve the API on (mode 0660).
    #[arg(long, default_value = server::DEFAULT_SOCKET)]
    socket: PathBuf,
    /// A group whose members may use the socket besides root.
    #[arg(long)]
    group: Option<String>,
    /// Where to keep state files (what is shaped, to restore and adopt it).
    #[arg(long, default_value = server::DEFAULT_STATE_DIR)]
    state_dir: PathBuf,
}

/// Runs the agent until SIGTERM or SIGINT.
pub fn run(args: AgentArgs) -> Result<()> {
    server::run(Config {
        socket: args.socket,
        group: args.group,
        state_dir: args.state_dir,
        drop_capabilities: true,
    })?;
    Ok(())
}
