//! `qoelab`: the one binary. Parses the command line and hands over to the library crates.

mod cmd;
mod table;

use clap::{Parser, Subcommand};

/// Traffic shaping and QoE measurement appliance.
#[derive(Debug, Parser)]
#[command(name = "qoelab", version, about, propagate_version = true)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Network-namespace testbeds: client ↔ router ↔ server.
    #[command(subcommand)]
    Lab(cmd::lab::LabCommand),
    /// The privileged agent: shaping behind an HTTP/JSON API on a Unix socket.
    Agent(cmd::agent::AgentArgs),
    /// Shape interfaces through the agent: apply a plan file, show, clear.
    #[command(subcommand)]
    Shape(cmd::shape::ShapeCommand),
}

fn main() -> std::process::ExitCode {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn")),
        )
        .with_writer(std::io::stderr)
        .init();
    let cli = Cli::parse();
    let outcome = match cli.command {
        Command::Lab(command) => cmd::lab::run(command),
        Command::Agent(args) => cmd::agent::run(args),
        Command::Shape(command) => cmd::shape::run(command),
    };
    match outcome {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("qoelab: {err:#}");
            std::process::ExitCode::FAILURE
        }
    }
}
