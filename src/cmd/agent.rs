//! `qoelab agent`: the privileged daemon.

use std::net::SocketAddr;
use std::path::PathBuf;

use anyhow::Result;
use clap::Args;
use qoelab_agent::server::{self, Config};
use qoelab_agent::tcp::TcpConfig;

/// Options of `qoelab agent`.
#[derive(Debug, Args)]
pub struct AgentArgs {
    /// The Unix socket to serve the API on (mode 0660).
    #[arg(long, default_value = server::DEFAULT_SOCKET)]
    socket: PathBuf,
    /// Serve only over TCP (--listen-tcp), without the Unix socket.
    #[arg(long, requires = "listen_tcp", conflicts_with = "socket")]
    no_socket: bool,
    /// A group whose members may use the socket besides root.
    #[arg(long)]
    group: Option<String>,
    /// Where to keep state files (what is shaped, to restore and adopt it).
    #[arg(long, default_value = server::DEFAULT_STATE_DIR)]
    state_dir: PathBuf,
    /// Also serve the API over TCP on this address (e.g. 0.0.0.0:7070), for a server on
    /// another host; every request must carry the token of --token-file.
    #[arg(long, value_name = "ADDR", requires = "token_file")]
    listen_tcp: Option<SocketAddr>,
    /// The file holding the bearer token TCP clients must send (not accessible to other
    /// users: chmod 600).
    #[arg(long, value_name = "PATH", requires = "listen_tcp")]
    token_file: Option<PathBuf>,
}

/// Runs the agent until SIGTERM or SIGINT.
pub fn run(args: AgentArgs) -> Result<()> {
    server::run(Config {
        socket: (!args.no_socket).then_some(args.socket),
        tcp: args
            .listen_tcp
            .zip(args.token_file)
            .map(|(listen, token_file)| TcpConfig { listen, token_file }),
        group: args.group,
        state_dir: args.state_dir,
        drop_capabilities: true,
    })?;
    Ok(())
}
