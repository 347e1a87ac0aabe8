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
    /// Flow statistics (tstat-class) of pcap/pcapng files, as CSV or JSONL.
    Flows(cmd::flows::FlowsArgs),
    /// Live flow statistics from an interface, also inside a lab's namespace.
    Capture(cmd::capture::CaptureArgs),
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
        Command::Flows(args) => cmd::flows::run(args),
        Command::Capture(args) => cmd::capture::run(args),
    };
    match outcome {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("qoelab: {err:#}");
            std::process::ExitCode::FAILURE
        }
    }
}
