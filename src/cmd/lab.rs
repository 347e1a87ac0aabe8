//! `qoelab lab up|status|down|clean`.

use anyhow::{Context, Result, bail};
use clap::Subcommand;
use qoelab_lab::admin::{self, LabStatus};
use qoelab_lab::{Lab, standard};

use crate::table::Table;

/// Lab subcommands.
#[derive(Debug, Subcommand)]
pub enum LabCommand {
    /// Build the standard lab (client ↔ router ↔ server) and leave it running.
    Up {
        /// Lab name: 1–6 lowercase letters or digits (default: random).
        #[arg(long)]
        name: Option<String>,
    },
    /// Show the labs on this machine, their namespaces and interfaces.
    Status {
        /// Print JSON instead of a table.
        #[arg(long)]
        json: bool,
    },
    /// Remove a lab: its processes, namespaces and links.
    Down {
        /// The lab to remove (default: the only one).
        #[arg(long)]
        name: Option<String>,
        /// Remove it even if a running process owns it.
        #[arg(long)]
        force: bool,
    },
    /// Remove every leftover with our prefix (`ql`): labs, namespaces, links.
    Clean {
        /// Also remove labs owned by running processes (e.g. running tests).
        #[arg(long)]
        force: bool,
        /// Only list the leftovers; exit with an error if there are any.
        #[arg(long)]
        check: bool,
    },
}

/// Runs a lab subcommand.
pub fn run(command: LabCommand) -> Result<()> {
    match command {
        LabCommand::Up { name } => up(name.as_deref()),
        LabCommand::Status { json } => status(json),
        LabCommand::Down { name, force } => {
            let removed = admin::down(name.as_deref(), force)?;
            println!("lab {removed} removed");
            Ok(())
        }
        LabCommand::Clean { force, check } => clean(force, check),
    }
}

fn up(name: Option<&str>) -> Result<()> {
    let lab = Lab::standard(name)?;
    let name = lab.name().to_string();
    let mut table = Table::new(&["node", "namespace", "interface", "address"]);
    for link in &lab.topology().links {
        for end in [&link.a, &link.b] {
            table.row(vec![
                end.node.clone(),
                lab.ns(&end.node)?.name().to_string(),
                lab.iface(&end.iface),
                end.addr.to_string(),
            ]);
        }
    }
    let client_ns = lab.client()?.name().to_string();
    let uplink = lab.uplink();
    lab.persist()?;
    print!("lab {name} is up\n\n{}", table.render());
    println!(
        "\nshaping and capture happen on the router's uplink {uplink}\ntry:    ip netns exec \
         {client_ns} ping -c 3 {}\nremove: qoelab lab down --name {name}",
        standard::SERVER_ADDR
    );
    Ok(())
}

fn status(json: bool) -> Result<()> {
    let labs = admin::status()?;
    if json {
        println!("{}", serde_json::to_string_pretty(&labs)?);
        return Ok(());
    }
    if labs.is_empty() {
        println!("no lab is up");
        return Ok(());
    }
    for lab in &labs {
        print!("{}", render_status(lab));
    }
    Ok(())
}

fn render_status(lab: &LabStatus) -> String {
    let owner = match (&lab.record.owner, lab.in_use) {
        (None, _) => "persistent".to_string(),
        (Some(o), true) => format!("owned by running process {}", o.pid),
        (Some(o), false) => format!("leftover of ended process {} (qoelab lab clean)", o.pid),
    };
    let mut table = Table::new(&[
        "node",
        "namespace",
        "interface",
        "address",
        "mtu",
        "state",
        "offloads",
        "processes",
    ]);
    for node in &lab.nodes {
        if !node.present {
            table.row(vec![
                node.node.clone(),
                node.netns.clone(),
                "(namespace missing)".into(),
            ]);
            continue;
        }
        for iface in &node.ifaces {
            table.row(vec![
                node.node.clone(),
                node.netns.clone(),
                iface.name.clone(),
                iface
                    .addr
                    .map(|a| a.to_string())
                    .unwrap_or_else(|| "-".into()),
                iface.mtu.to_string(),
                if iface.up { "up" } else { "down" }.into(),
                if iface.offloads_off { "off" } else { "ON" }.into(),
                node.processes.to_string(),
            ]);
        }
    }
    format!("lab {} ({owner})\n{}\n", lab.record.name, table.render())
}

fn clean(force: bool, check: bool) -> Result<()> {
    if check {
        let found = admin::leftovers()?;
        if found.is_empty() {
            println!("no leftovers");
            return Ok(());
        }
        bail!("leftovers found: {}", found.join(", "));
    }
    let report = admin::clean(force).context("cleaning up lab leftovers")?;
    for (what, names) in [
        ("removed lab", &report.labs),
        ("removed stray namespace", &report.stray_netns),
        ("removed stray link", &report.stray_links),
        ("left lab in use (use --force)", &report.in_use),
    ] {
        for name in names {
            println!("{what} {name}");
        }
    }
    if report.labs.is_empty() && report.stray_netns.is_empty() && report.stray_links.is_empty() {
        println!("nothing to clean");
    }
    Ok(())
}
