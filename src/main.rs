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
    /// Allocate an upload budget among analytics (one shot): knobs, rates, expected QoS.
    Allocate(cmd::plan::AllocateArgs),
    /// Simulate a gateway over a request trace: placement, replacement, allocation per minute.
    Simulate(cmd::plan::SimulateArgs),
    /// Write a seeded request trace (`app, arrival_min, lifetime_min` lines).
    Requests(cmd::plan::RequestsArgs),
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
        Command::Allocate(args) => cmd::plan::allocate(args),
        Command::Simulate(args) => cmd::plan::simulate(args),
        Command::Requests(args) => cmd::plan::requests(args),
    };
    match outcome {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("qoelab: {err:#}");
            std::process::ExitCode::FAILURE
        }
    }
}
