//! A built lab: its namespaces, processes started in them, and guaranteed teardown.

use std::io;
use std::process::{Child, Command};
use std::sync::Mutex;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use nix::unistd::Pid;

use crate::configure;
use crate::error::{LabError, Result};
use crate::names;
use crate::netns::{self, NetNs};
use crate::privilege;
use crate::registry::{LabRecord, Owner};
use crate::topology::{Topology, standard};

/// How long processes get between SIGTERM and SIGKILL at teardown.
const GRACE: Duration = Duration::from_secs(2);

/// A running lab. Dropping it tears it down unless it was made [persistent](Lab::persist).
#[derive(Debug)]
pub struct Lab {
    name: String,
    topology: Topology,
    nodes: Vec<(String, NetNs)>,
    spawned: Mutex<Vec<Pid>>,
    active: bool,
}

impl Lab {
    /// Builds `topology` under the given lab name, or a fresh random one.
    ///
    /// On any failure everything created so far is removed before the error is returned.
    pub fn build(topology: Topology, name: Option<&str>) -> Result<Lab> {
        topology.validate()?;
        privilege::check()?;
        let lab_name = match name {
            Some(name) => {
                names::check_lab_name(name)?;
                claim(name, &topology)?;
                name.to_string()
            }
            None => claim_random(&topology)?,
        };
        let mut lab = Lab {
            name: lab_name,
            topology,
            nodes: Vec::new(),
            spawned: Mutex::new(Vec::new()),
            active: true,
        };
        // From here on, an early return drops `lab`, which removes what was created.
        lab.create()?;
        tracing::info!(lab = %lab.name, "lab is up");
        Ok(lab)
    }

    /// Builds the standard `client` ↔ `router` ↔ `server` topology.
    pub fn standard(name: Option<&str>) -> Result<Lab> {
        Lab::build(Topology::standard(), name)
    }

    fn create(&mut self) -> Result<()> {
        for node in &self.topology.nodes {
            let ns_name = names::netns_name(&self.name, &node.name);
            let ns = NetNs::create(&ns_name).map_err(|err| match err.kind() {
                io::ErrorKind::AlreadyExists => LabError::NameTaken {
                    name: self.name.clone(),
                },
                _ if matches!(err.raw_os_error(), Some(libc::EINVAL | libc::ENOSYS)) => {
                    LabError::NoNetns { source: err }
                }
                _ => LabError::os(format!("create namespace {ns_name}"), err),
            })?;
            self.nodes.push((node.name.clone(), ns));
        }
        for link in &self.topology.links {
            configure::create_veth(
                self.ns(&link.a.node)?,
                &self.iface(&link.a.iface),
                self.ns(&link.b.node)?,
                &self.iface(&link.b.iface),
                link.mtu,
            )?;
        }
        for node in &self.topology.nodes {
            let ends: Vec<_> = self
                .topology
                .endpoints_of(&node.name)
                .map(|end| (self.iface(&end.iface), end))
                .collect();
            configure::configure_node(self.ns(&node.name)?, node, &ends)?;
        }
        Ok(())
    }

    /// The lab's name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// What the lab was built from.
    pub fn topology(&self) -> &Topology {
        &self.topology
    }

    /// The namespace of `node`.
    pub fn ns(&self, node: &str) -> Result<&NetNs> {
        self.nodes
            .iter()
            .find(|(name, _)| name == node)
            .map(|(_, ns)| ns)
            .ok_or_else(|| LabError::NotFound(format!("lab '{}' has no node '{node}'", self.name)))
    }

    /// The full interface name for a suffix of the topology, e.g. `wan` → `qlab12c-wan`.
    pub fn iface(&self, suffix: &str) -> String {
        names::iface_name(&self.name, suffix)
    }

    /// The standard topology's client namespace.
    pub fn client(&self) -> Result<&NetNs> {
        self.ns(standard::CLIENT)
    }

    /// The standard topology's router namespace.
    pub fn router(&self) -> Result<&NetNs> {
        self.ns(standard::ROUTER)
    }

    /// The standard topology's server namespace.
    pub fn server(&self) -> Result<&NetNs> {
        self.ns(standard::SERVER)
    }

    /// The router's uplink interface (towards the server), where upload shaping happens.
    pub fn uplink(&self) -> String {
        self.iface(standard::ROUTER_WAN)
    }

    /// The router's LAN interface (towards the client).
    pub fn downlink(&self) -> String {
        self.iface(standard::ROUTER_LAN)
    }

    /// Starts `command` inside `node`; the process is ended at teardown.
    pub fn spawn(&self, node: &str, command: &mut Command) -> Result<Child> {
        let ns = self.ns(node)?;
        ns.prepare(command);
        let child = command.spawn().map_err(|e| {
            LabError::os(
                format!("start {:?} in {}", command.get_program(), ns.name()),
                e,
            )
        })?;
        self.spawned
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .push(Pid::from_raw(child.id() as i32));
        Ok(child)
    }

    /// Keeps the lab after this handle is dropped (what `qoelab lab up` does); it is then
    /// removed by `qoelab lab down` or `qoelab lab clean`.
    pub fn persist(mut self) -> Result<()> {
        let record = self.record(None);
        record
            .store()
            .map_err(|e| LabError::os(format!("update the record of lab {}", self.name), e))?;
        self.active = false;
        Ok(())
    }

    fn record(&self, owner: Option<Owner>) -> LabRecord {
        new_record(&self.name, &self.topology, owner)
    }

    /// Ends the lab's processes and removes its namespaces (and with them its links) and its
    /// record. Errors are reported after every step has been tried.
    pub fn teardown(mut self) -> Result<()> {
        self.active = false;
        self.remove()
    }

    fn remove(&self) -> Result<()> {
        let spawned = std::mem::take(&mut *self.spawned.lock().unwrap_or_else(|p| p.into_inner()));
        netns::end_processes(&spawned, GRACE);
        remove_lab(&self.record(None))
    }
}

impl Drop for Lab {
    fn drop(&mut self) {
        if self.active
            && let Err(err) = self.remove()
        {
            tracing::error!("removing lab {} failed: {err}", self.name);
        }
    }
}

fn new_record(name: &str, topology: &Topology, owner: Option<Owner>) -> LabRecord {
    LabRecord {
        name: name.to_string(),
        owner,
        created_unix_s: SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_secs())
            .unwrap_or_default(),
        topology: topology.clone(),
    }
}

fn claim(name: &str, topology: &Topology) -> Result<()> {
    let taken = || LabError::NameTaken {
        name: name.to_string(),
    };
    if topology
        .nodes
        .iter()
        .any(|n| NetNs::exists(&names::netns_name(name, &n.name)))
    {
        return Err(taken());
    }
    new_record(name, topology, Some(Owner::current()))
        .claim()
        .map_err(|err| match err.kind() {
            io::ErrorKind::AlreadyExists => taken(),
            _ => LabError::os(
                format!("record lab {name} under {}", crate::registry::STATE_DIR),
                err,
            ),
        })
}

fn claim_random(topology: &Topology) -> Result<String> {
    let mut last = None;
    for _ in 0..16 {
        let name = names::random_lab_name();
        match claim(&name, topology) {
            Ok(()) => return Ok(name),
            Err(err @ LabError::NameTaken { .. }) => last = Some(err),
            Err(err) => return Err(err),
        }
    }
    Err(last.expect("at least one attempt"))
}

/// Removes what `record` describes: processes in its namespaces, the namespaces, the record.
pub(crate) fn remove_lab(record: &LabRecord) -> Result<()> {
    let mut first_error = None;
    for node in &record.topology.nodes {
        let ns_name = names::netns_name(&record.name, &node.name);
        if let Err(err) = remove_netns(&ns_name) {
            first_error.get_or_insert(err);
        }
    }
    if let Err(err) = LabRecord::forget(&record.name) {
        first_error.get_or_insert(LabError::os(format!("forget lab {}", record.name), err));
    }
    first_error.map_or(Ok(()), Err)
}

/// Ends the processes in namespace `name` and removes it; a missing namespace is fine.
pub(crate) fn remove_netns(name: &str) -> Result<()> {
    match NetNs::open(name) {
        Ok(ns) => ns
            .kill_all(GRACE)
            .map_err(|e| LabError::os(format!("end processes in {name}"), e))?,
        Err(err) if err.kind() == io::ErrorKind::NotFound => return Ok(()),
        Err(err) => return Err(LabError::os(format!("open namespace {name}"), err)),
    }
    netns::delete(name).map_err(|e| LabError::os(format!("delete namespace {name}"), e))
}
