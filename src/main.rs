//! `qoelab`: the one binary. Parses the command line and hands over to the library crates.

mod cmd;
mod gateways;
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
    /// The whole appliance in one process: a lab, the agent, the runner and the web UI over
    /// SQLite, with a demo campaign (http://127.0.0.1:8080). Needs root.
    Up(Box<cmd::up::UpArgs>),
    /// Labeling campaigns in the database: create, list, show, stop, resume.
    #[command(subcommand)]
    Campaign(cmd::campaign::CampaignCommand),
    /// Write a campaign's dataset as CSV, JSON Lines or Parquet.
    Export(cmd::campaign::ExportArgs),
    /// Train a QoE classifier on a CSV of sessions and evaluate it honestly.
    Train(Box<cmd::train::TrainArgs>),
    /// Predict the QoE class of each session in a CSV with a saved model.
    Predict(cmd::predict::PredictArgs),
    /// Saved models: list a directory, show one.
    #[command(subcommand)]
    Models(cmd::models::ModelsCommand),
    /// Allocate an upload budget among analytics: knobs, rates, expected QoS (one shot), or
    /// live on a gateway uplink with --watch.
    Allocate(cmd::plan::AllocateArgs),
    /// Simulate a gateway over a request trace: placement, replacement, allocation per minute.
    Simulate(cmd::plan::SimulateArgs),
    /// Write a seeded request trace (`app, arrival_min, lifetime_min` lines).
    Requests(cmd::plan::RequestsArgs),
    /// Reference workloads: ABR video with QoE, IoT analytics with QoS, bandwidth traces.
    #[command(subcommand)]
    Workload(cmd::workload::WorkloadCommand),
    /// Flow statistics (tstat-class) of pcap/pcapng files, as CSV or JSONL.
    Flows(cmd::flows::FlowsArgs),
    /// Live flow statistics from an interface, also inside a lab's namespace.
    Capture(cmd::capture::CaptureArgs),
    /// The privileged agent: shaping behind an HTTP/JSON API on a Unix socket.
    Agent(cmd::agent::AgentArgs),
    /// Shape interfaces through the agent: apply a plan file, show, clear.
    #[command(subcommand)]
    Shape(cmd::shape::ShapeCommand),
    /// Web UI, JSON API and campaign runners over a database, driving the agents of one or
    /// more gateways (http://127.0.0.1:8080).
    Serve(cmd::serve::ServeArgs),
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
        Command::Up(args) => cmd::up::run(*args),
        Command::Campaign(command) => cmd::campaign::run(command),
        Command::Export(args) => cmd::campaign::export(args),
        Command::Train(args) => cmd::train::run(*args),
        Command::Predict(args) => cmd::predict::run(args),
        Command::Models(command) => cmd::models::run(command),
        Command::Allocate(args) => cmd::plan::allocate(args),
        Command::Simulate(args) => cmd::plan::simulate(args),
        Command::Requests(args) => cmd::plan::requests(args),
        Command::Workload(command) => cmd::workload::run(command),
        Command::Flows(args) => cmd::flows::run(args),
        Command::Capture(args) => cmd::capture::run(args),
        Command::Agent(args) => cmd::agent::run(args),
        Command::Shape(command) => cmd::shape::run(command),
        Command::Serve(args) => cmd::serve::run(args),
    };
    match outcome {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("qoelab: {err:#}");
            std::process::ExitCode::FAILURE
        }
    }
}
