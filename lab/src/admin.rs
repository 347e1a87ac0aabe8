//! Operations on labs by name, for the CLI: status, removal of one lab, and the leak sweep.

use std::collections::HashSet;

use ipnet::Ipv4Net;
use serde::Serialize;

use crate::configure::{LinkInfo, list_links, with_netlink};
use crate::error::{LabError, Result, netlink_io};
use crate::lab::{remove_lab, remove_netns};
use crate::names;
use crate::netns::{self, NetNs};
use crate::offload::{self, Offload};
use crate::registry::LabRecord;

/// A lab as it is now on this machine.
#[derive(Debug, Clone, Serialize)]
pub struct LabStatus {
    /// The lab's record.
    pub record: LabRecord,
    /// Whether a live process owns (and will remove) it.
    pub in_use: bool,
    /// Each node as found.
    pub nodes: Vec<NodeStatus>,
}

/// One node of a lab as found.
#[derive(Debug, Clone, Serialize)]
pub struct NodeStatus {
    /// Node name.
    pub node: String,
    /// Namespace name.
    pub netns: String,
    /// Whether the namespace exists.
    pub present: bool,
    /// Processes running in it.
    pub processes: usize,
    /// Its interfaces other than loopback.
    pub ifaces: Vec<IfaceStatus>,
}

/// One interface as found.
#[derive(Debug, Clone, Serialize)]
pub struct IfaceStatus {
    /// Interface name.
    pub name: String,
    /// The address the topology gives it.
    pub addr: Option<Ipv4Net>,
    /// MTU in bytes.
    pub mtu: u32,
    /// Whether it is administratively up.
    pub up: bool,
    /// Whether TSO, GSO and GRO are all off.
    pub offloads_off: bool,
}

/// The status of every recorded lab.
pub fn status() -> Result<Vec<LabStatus>> {
    let records = LabRecord::all().map_err(|e| LabError::os("read lab records", e))?;
    records.into_iter().map(status_of).collect()
}

fn status_of(record: LabRecord) -> Result<LabStatus> {
    let mut nodes = Vec::new();
    for node in &record.topology.nodes {
        let netns = names::netns_name(&record.name, &node.name);
        let mut status = NodeStatus {
            node: node.name.clone(),
            netns: netns.clone(),
            present: false,
            processes: 0,
            ifaces: Vec::new(),
        };
        if let Ok(ns) = NetNs::open(&netns) {
            status.present = true;
            status.processes = ns.pids().map(|p| p.len()).unwrap_or_default();
            let links = ns
                .run_async(|| {
                    with_netlink(|h| async move {
                        list_links(&h)
                            .await
                            .map_err(|e| LabError::os("list links", e))
                    })
                })
                .map_err(|e| LabError::os(format!("enter {netns}"), e))??;
            for LinkInfo { name, mtu, up, .. } in links.into_iter().filter(|l| l.name != "lo") {
                let offloads_off = ns
                    .run(|| {
                        Offload::ALL
                            .iter()
                            .all(|o| matches!(offload::get(&name, *o), Ok(false)))
                    })
                    .unwrap_or(false);
                let addr = record
                    .topology
                    .links
                    .iter()
                    .flat_map(|l| [&l.a, &l.b])
                    .find(|e| names::iface_name(&record.name, &e.iface) == name)
                    .map(|e| e.addr);
                status.ifaces.push(IfaceStatus {
                    name,
                    addr,
                    mtu,
                    up,
                    offloads_off,
                });
            }
        }
        nodes.push(status);
    }
    Ok(LabStatus {
        in_use: record.in_use(),
        record,
        nodes,
    })
}

/// Removes lab `name`, or the only lab if `name` is `None`. A lab in use by a live process is
/// left alone unless `force`.
pub fn down(name: Option<&str>, force: bool) -> Result<String> {
    let record = match name {
        Some(name) => LabRecord::load(name)
            .map_err(|e| LabError::os(format!("read the record of lab {name}"), e))?
            .ok_or_else(|| {
                LabError::NotFound(format!(
                    "no lab named '{name}' is up; `qoelab lab status` lists the labs"
                ))
            })?,
        None => {
            let mut records = LabRecord::all().map_err(|e| LabError::os("read lab records", e))?;
            match records.len() {
                0 => return Err(LabError::NotFound("no lab is up".into())),
                1 => records.remove(0),
                _ => {
                    let names: Vec<_> = records.iter().map(|r| r.name.as_str()).collect();
                    return Err(LabError::NotFound(format!(
                        "several labs are up ({}); name one with --name",
                        names.join(", ")
                    )));
                }
            }
        }
    };
    if record.in_use() && !force {
        let pid = record.owner.map(|o| o.pid).unwrap_or_default();
        return Err(LabError::NotFound(format!(
            "lab '{}' is in use by process {pid}, which removes it when it ends; stop that \
             process, or pass --force",
            record.name
        )));
    }
    remove_lab(&record)?;
    Ok(record.name)
}

/// What [`clean`] removed and what it left alone.
#[derive(Debug, Default, Clone, Serialize)]
pub struct CleanReport {
    /// Labs removed (their records, namespaces and processes).
    pub labs: Vec<String>,
    /// Namespaces with our prefix that no record described, removed.
    pub stray_netns: Vec<String>,
    /// Links with our prefix in this namespace, removed.
    pub stray_links: Vec<String>,
    /// Labs left alone because a live process uses them.
    pub in_use: Vec<String>,
}

/// Removes every lab leftover: labs not owned by a live process (all of them with `force`),
/// namespaces named like ours without a live lab, and links named like ours in the calling
/// namespace. Nothing without our prefix is touched.
pub fn clean(force: bool) -> Result<CleanReport> {
    let mut report = CleanReport::default();
    let records = LabRecord::all().map_err(|e| LabError::os("read lab records", e))?;
    let mut kept = HashSet::new();
    for record in records {
        if record.in_use() && !force {
            kept.insert(record.name.clone());
            report.in_use.push(record.name);
        } else {
            remove_lab(&record)?;
            report.labs.push(record.name);
        }
    }
    let is_stray = |name: &str| names::lab_of(name).is_some_and(|lab| !kept.contains(lab));
    for ns in netns::list().map_err(|e| LabError::os("list namespaces", e))? {
        if is_stray(&ns) {
            remove_netns(&ns)?;
            report.stray_netns.push(ns);
        }
    }
    report.stray_links = remove_stray_links(&is_stray)?;
    Ok(report)
}

/// Names of all our leftovers (namespaces and links in the calling namespace) not belonging to
/// a lab in use; what [`clean`] would remove, without removing it.
pub fn leftovers() -> Result<Vec<String>> {
    let in_use: HashSet<String> = LabRecord::all()
        .map_err(|e| LabError::os("read lab records", e))?
        .into_iter()
        .filter(LabRecord::in_use)
        .map(|r| r.name)
        .collect();
    let is_stray = |name: &str| names::lab_of(name).is_some_and(|lab| !in_use.contains(lab));
    let mut found: Vec<String> = netns::list()
        .map_err(|e| LabError::os("list namespaces", e))?
        .into_iter()
        .filter(|n| is_stray(n))
        .collect();
    found.extend(
        host_links()?
            .into_iter()
            .map(|l| l.name)
            .filter(|n| is_stray(n)),
    );
    Ok(found)
}

fn host_links() -> Result<Vec<LinkInfo>> {
    current_thread_runtime()?.block_on(with_netlink(|handle| async move {
        list_links(&handle)
            .await
            .map_err(|e| LabError::os("list links", e))
    }))
}

fn current_thread_runtime() -> Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| LabError::os("start a runtime", e))
}

fn remove_stray_links(is_stray: &dyn Fn(&str) -> bool) -> Result<Vec<String>> {
    let strays: Vec<_> = host_links()?
        .into_iter()
        .filter(|l| is_stray(&l.name))
        .collect();
    if strays.is_empty() {
        return Ok(Vec::new());
    }
    current_thread_runtime()?.block_on(with_netlink(|handle| async move {
        let mut removed = Vec::new();
        for LinkInfo { name, index, .. } in strays {
            match handle.link().del(index).execute().await.map_err(netlink_io) {
                Ok(()) => removed.push(name),
                // Deleting one end of a veth pair removes the other: it may be gone already.
                Err(err) if err.raw_os_error() == Some(libc::ENODEV) => {}
                Err(err) => return Err(LabError::os(format!("delete link {name}"), err)),
            }
        }
        Ok(removed)
    }))
}
