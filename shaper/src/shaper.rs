//! The shaping service: applies plans to interfaces, changes rates, reads statistics, restores
//! interfaces, and adopts its own leftovers at start-up.
//!
//! Every call is blocking (netlink round trips); one interface is worked on by one call at a
//! time, different interfaces in parallel.
//!
//! A plan is applied by reading the kernel's state and sending the difference. A rate change
//! takes a fast path when the interface was shaped by this shaper since it started: it sends
//! only in-place changes of the named classes and their queues (the kernel refuses each one if
//! its object is gone) without reading anything first, and falls back to the full read-and-diff
//! when the kernel refuses one. The named classes therefore always end up at the requested
//! rates, even if someone changed them behind the shaper's back.

use std::collections::BTreeMap;
use std::io;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};

use crate::error::ShapeError;
use crate::features::Features;
use crate::netlink::Rtnl;
use crate::plan::{DEFAULT_CLASS_NAME, Direction, DirectionPlan, InterfacePlan, RateChanges};
use crate::reconcile::{self, Actual, Effect, Step, Tree};
use crate::state::{self, IfaceRef, IngressRecord, OriginalRoot, Record};
use crate::stats::{ClassStats, DirectionStats, InterfaceStats};
use crate::tc::{self, Link, Mode};
use crate::wire::HtbClass;

/// What a kernel refusal of a request says about whose fault it is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Fault {
    /// A value the kernel does not accept.
    Value,
    /// Perhaps a kind (qdisc, classifier, action, link) the kernel does not know.
    Kind,
    /// An object that appeared or vanished meanwhile (or, for creations, an unknown kind).
    State,
    /// Anything else: missing privileges, memory, a bug.
    Internal,
}

fn fault_of(errno: i32) -> Fault {
    match errno {
        libc::EINVAL | libc::ERANGE | libc::EOVERFLOW | libc::E2BIG | libc::EMSGSIZE => {
            Fault::Value
        }
        libc::EOPNOTSUPP => Fault::Kind,
        libc::ENOENT | libc::EEXIST | libc::EBUSY | libc::ENODEV => Fault::State,
        _ => Fault::Internal,
    }
}

/// The value at `field` of `plan` (or the interface name for `iface`), shortened for messages.
fn value_at(iface: &IfaceRef, plan: &InterfacePlan, field: &str) -> String {
    const MAX: usize = 200;
    let value = match field {
        "iface" => iface.name.clone(),
        field => plan.value_at(field).unwrap_or_default(),
    };
    match value.char_indices().nth(MAX) {
        Some((at, _)) => format!("{}…", &value[..at]),
        None => value,
    }
}

/// `ETH_P_ALL`, the protocol of the ingress redirect.
const ETH_P_ALL: u16 = 0x0003;
/// Prefix of the IFB devices we create (no `-`, so lab leak sweeps never take them for lab
/// leftovers).
pub const IFB_PREFIX: &str = "qlifb";

/// What applying a plan did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ApplyReport {
    /// Objects created (qdiscs, classes, filters, links).
    pub created: u32,
    /// Objects changed in place.
    pub changed: u32,
    /// Objects deleted.
    pub deleted: u32,
}

impl ApplyReport {
    /// Netlink requests sent.
    pub fn requests(&self) -> u32 {
        self.created + self.changed + self.deleted
    }

    fn plus(self, other: &ApplyReport) -> ApplyReport {
        ApplyReport {
            created: self.created + other.created,
            changed: self.changed + other.changed,
            deleted: self.deleted + other.deleted,
        }
    }

    fn count(&mut self, effect: Effect) {
        match effect {
            Effect::Create => self.created += 1,
            Effect::Change => self.changed += 1,
            Effect::Delete => self.deleted += 1,
        }
    }
}

#[derive(Debug, Default)]
struct Slot {
    record: Option<Record>,
    rtnl: Option<Rtnl>,
    /// The devices of the last successful transition, for the rate-change fast path.
    devices: Option<Devices>,
    /// The fingerprint of the state file last written, which journal lines follow, and the
    /// journal's length.
    journal: Option<(String, u64)>,
}

/// The journal length above which a rate change rewrites the state file instead.
const MAX_JOURNAL_BYTES: u64 = 1 << 20;

/// Interface indexes and MTU of a shaped interface and its IFB device.
#[derive(Debug, Clone, Copy)]
struct Devices {
    egress: u32,
    ingress: Option<u32>,
    mtu: u32,
}

impl Devices {
    fn of(&self, direction: Direction) -> Option<u32> {
        match direction {
            Direction::Egress => Some(self.egress),
            Direction::Ingress => self.ingress,
        }
    }
}

/// Shapes interfaces as plans say, owning only what it creates.
#[derive(Debug)]
pub struct Shaper {
    state_dir: PathBuf,
    features: Mutex<Features>,
    slots: Mutex<BTreeMap<IfaceRef, Arc<Mutex<Slot>>>>,
}

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(|p| p.into_inner())
}

impl Shaper {
    /// Probes the kernel's features, then adopts the interfaces recorded in `state_dir` (left
    /// by an earlier run that did not restore them) and brings each back to its recorded plan.
    pub fn open(state_dir: &Path) -> Result<Shaper, ShapeError> {
        let features = match Features::probe() {
            Ok(features) => features,
            Err(e) if e.kind() == io::ErrorKind::PermissionDenied => {
                tracing::warn!(
                    "no CAP_SYS_ADMIN for a scratch network namespace: the tc features are not probed but taken as present; a missing one shows as the kernel's refusal of the plan that needs it"
                );
                Features::assumed()
            }
            Err(e) => {
                return Err(ShapeError::io(
                    "probe tc features in a scratch namespace",
                    e,
                ));
            }
        };
        let shaper = Shaper {
            state_dir: state_dir.to_path_buf(),
            features: Mutex::new(features),
            slots: Mutex::new(BTreeMap::new()),
        };
        let records = state::load_all(state_dir).map_err(|e| {
            ShapeError::io(format!("read state files in {}", state_dir.display()), e)
        })?;
        for record in records {
            let iface = record.iface.clone();
            let slot = shaper.slot(&iface);
            let mut slot = lock(&slot);
            match shaper.transition(&mut slot, record.clone()) {
                Ok(report) => {
                    tracing::info!(%iface, ?report, "adopted shaping left by an earlier run");
                    slot.record = Some(record);
                }
                Err(ShapeError::UnknownNetns { .. } | ShapeError::UnknownInterface { .. }) => {
                    tracing::info!(%iface, "interface of an earlier run is gone; forgetting it");
                    shaper.remove_ifb_of(&mut slot, &record);
                    state::forget(state_dir, &iface)
                        .map_err(|e| ShapeError::io("remove a state file", e))?;
                }
                Err(err) => {
                    tracing::error!(%iface, "could not bring adopted shaping back to its plan: {err}");
                    slot.record = Some(record);
                }
            }
        }
        Ok(shaper)
    }

    /// The kernel's tc features.
    pub fn features(&self) -> Features {
        *lock(&self.features)
    }

    /// Replaces the probed features, as if the probe had found `features`; for tests of what
    /// happens when the kernel lacks a feature the shaper believes it has (a module removed
    /// after start). The next refusal of an unknown kind probes again.
    pub fn assume_features(&self, features: Features) {
        *lock(&self.features) = features;
    }

    /// Where state files are kept.
    pub fn state_dir(&self) -> &Path {
        &self.state_dir
    }

    fn slot(&self, iface: &IfaceRef) -> Arc<Mutex<Slot>> {
        lock(&self.slots).entry(iface.clone()).or_default().clone()
    }

    /// The interfaces shaped now.
    pub fn shaped(&self) -> Vec<IfaceRef> {
        let slots: Vec<_> = lock(&self.slots)
            .iter()
            .map(|(i, s)| (i.clone(), s.clone()))
            .collect();
        slots
            .into_iter()
            .filter(|(_, s)| lock(s).record.is_some())
            .map(|(i, _)| i)
            .collect()
    }

    /// The plan in force on `iface`.
    pub fn plan(&self, iface: &IfaceRef) -> Option<InterfacePlan> {
        let slot = lock(&self.slots).get(iface).cloned()?;
        let slot = lock(&slot);
        slot.record.as_ref().map(|r| r.plan.clone())
    }

    /// Makes `iface` shaped as `plan` says, sending only what differs from the kernel's state.
    /// On any error the previous plan stays in force (or the interface stays unshaped).
    pub fn apply(&self, iface: &IfaceRef, plan: InterfacePlan) -> Result<ApplyReport, ShapeError> {
        self.check(iface, &plan)?;
        let slot = self.slot(iface);
        let mut slot = lock(&slot);
        self.apply_locked(&mut slot, iface, plan)
    }

    /// Checks names, plan and kernel features before anything is sent.
    fn check(&self, iface: &IfaceRef, plan: &InterfacePlan) -> Result<(), ShapeError> {
        iface.validate()?;
        let features = self.features();
        plan.validate(&features)?;
        if let Some(feature) = features.missing_for_shaping() {
            let field = if plan.egress.is_some() {
                "egress"
            } else {
                "ingress"
            };
            return Err(ShapeError::MissingFeature {
                field: field.into(),
                feature: feature.into(),
            });
        }
        if plan.ingress.is_some()
            && let Some(feature) = features.missing_for_ingress()
        {
            return Err(ShapeError::MissingFeature {
                field: "ingress".into(),
                feature: feature.into(),
            });
        }
        Ok(())
    }

    fn apply_locked(
        &self,
        slot: &mut Slot,
        iface: &IfaceRef,
        plan: InterfacePlan,
    ) -> Result<ApplyReport, ShapeError> {
        let previous = slot.record.clone();
        let mut record = previous
            .clone()
            .unwrap_or_else(|| Record::new(iface.clone()));
        record.plan = plan;
        record.assign_minors();
        self.take_ownership(slot, &mut record)?;
        self.store(slot, &record)?;
        match self.transition(slot, record.clone()) {
            Ok(report) => {
                slot.record = Some(record);
                Ok(report)
            }
            Err(err) => {
                let err = self.judge(iface, &record.plan, err);
                self.roll_back(slot, iface, previous);
                Err(err)
            }
        }
    }

    /// Changes the rates of some classes, keeping everything else of the plan in force. The
    /// named classes are always written, even at their current rates, so that they end up as
    /// asked whatever happened to them meanwhile.
    pub fn set_rates(
        &self,
        iface: &IfaceRef,
        changes: &RateChanges,
    ) -> Result<ApplyReport, ShapeError> {
        let slot = self.slot(iface);
        let mut slot = lock(&slot);
        let Some(mut next) = slot.record.clone() else {
            return Err(ShapeError::NotShaped {
                iface: iface.to_string(),
            });
        };
        next.plan.set_rates(changes)?;
        iface.validate()?;
        next.plan.validate_rates(&self.features())?;
        // What the fast path got done before a refusal counts too.
        let mut sent = ApplyReport::default();
        if let Some(devices) = slot.devices
            && let Some(steps) = in_place_steps(&next, changes, devices)
        {
            self.log_rates(&mut slot, &next, changes)?;
            let rtnl = connect(&mut slot, iface)?;
            match send(rtnl, steps, &mut sent, &format!("the rates of {iface}")) {
                Ok(()) => {
                    slot.record = Some(next);
                    return Ok(sent);
                }
                Err(err) => tracing::info!(
                    %iface,
                    "an in-place rate change was refused ({err}); reading the kernel's state"
                ),
            }
        }
        self.apply_locked(&mut slot, iface, next.plan)
            .map(|report| report.plus(&sent))
    }

    /// Removes our shaping from `iface` and puts back what it had before.
    pub fn restore(&self, iface: &IfaceRef) -> Result<(), ShapeError> {
        let slot = self.slot(iface);
        let mut slot = lock(&slot);
        let Some(record) = slot.record.clone() else {
            return Err(ShapeError::NotShaped {
                iface: iface.to_string(),
            });
        };
        let mut empty = record.clone();
        empty.plan = InterfacePlan::default();
        match self.transition(&mut slot, empty) {
            Ok(_) => {}
            Err(ShapeError::UnknownNetns { .. } | ShapeError::UnknownInterface { .. }) => {
                self.remove_ifb_of(&mut slot, &record)
            }
            Err(err) => return Err(err),
        }
        state::forget(&self.state_dir, iface)
            .map_err(|e| ShapeError::io("remove a state file", e))?;
        *slot = Slot::default();
        Ok(())
    }

    /// Restores every shaped interface; returns the failures.
    pub fn restore_all(&self) -> Vec<(IfaceRef, ShapeError)> {
        self.shaped()
            .into_iter()
            .filter_map(|iface| self.restore(&iface).err().map(|e| (iface, e)))
            .collect()
    }

    /// The counters of every class of `iface`.
    pub fn stats(&self, iface: &IfaceRef) -> Result<InterfaceStats, ShapeError> {
        let slot = self.slot(iface);
        let mut slot = lock(&slot);
        let record = slot.record.clone().ok_or_else(|| ShapeError::NotShaped {
            iface: iface.to_string(),
        })?;
        let rtnl = connect(&mut slot, iface)?;
        let links = links(rtnl)?;
        let mut directions = Vec::new();
        for direction in Direction::ALL {
            let Some(plan) = record.plan.direction(direction) else {
                continue;
            };
            let device = match direction {
                Direction::Egress => iface.name.clone(),
                Direction::Ingress => record
                    .ingress
                    .as_ref()
                    .map(|i| i.ifb.clone())
                    .unwrap_or_default(),
            };
            let link = find_link(&links, iface, &device)?;
            let actual = reconcile::read(rtnl, link.index)
                .map_err(|e| ShapeError::io(format!("read the classes of {device}"), e))?;
            let minors = record.minors.get(&direction).cloned().unwrap_or_default();
            let names = std::iter::once((DEFAULT_CLASS_NAME.to_string(), tc::DEFAULT_CLASS)).chain(
                plan.classes
                    .iter()
                    .filter_map(|c| minors.get(&c.name).map(|m| (c.name.clone(), *m))),
            );
            let classes = names
                .filter_map(|(name, minor)| {
                    let object = actual.classes.get(&tc::class_handle(minor))?;
                    let htb = HtbClass::decode(&object.options)?;
                    Some(ClassStats {
                        name,
                        classid: format!("{:x}:{minor:x}", tc::ROOT_MAJOR),
                        rate_bps: htb.rate_bytes * 8,
                        ceil_bps: htb.ceil_bytes * 8,
                        counters: object.counters,
                        measured_bps: None,
                        measured_pps: None,
                    })
                })
                .collect();
            directions.push(DirectionStats {
                direction,
                device,
                classes,
            });
        }
        Ok(InterfaceStats {
            iface: iface.clone(),
            interval_ms: 0,
            directions,
        })
    }

    /// Two reads `interval` apart, with the rates between them.
    pub fn stats_over(
        &self,
        iface: &IfaceRef,
        interval: Duration,
    ) -> Result<InterfaceStats, ShapeError> {
        let start = Instant::now();
        let first = self.stats(iface)?;
        std::thread::sleep(interval.saturating_sub(start.elapsed()));
        let elapsed = start.elapsed();
        Ok(self.stats(iface)?.with_rates_since(&first, elapsed))
    }

    /// Writes the state file of `record`.
    fn store(&self, slot: &mut Slot, record: &Record) -> Result<(), ShapeError> {
        let base = state::store(&self.state_dir, record).map_err(|e| {
            ShapeError::io(
                format!(
                    "write the state file of {} under {}",
                    record.iface,
                    self.state_dir.display()
                ),
                e,
            )
        })?;
        slot.journal = Some((base, 0));
        Ok(())
    }

    /// Records the rate changes that made `record`: appended to the journal, or, when the
    /// journal has grown long, by writing the state file anew.
    fn log_rates(
        &self,
        slot: &mut Slot,
        record: &Record,
        changes: &RateChanges,
    ) -> Result<(), ShapeError> {
        match &mut slot.journal {
            Some((base, bytes)) if *bytes < MAX_JOURNAL_BYTES => {
                *bytes = state::append_rates(&self.state_dir, &record.iface, base, changes)
                    .map_err(|e| ShapeError::io("append to the rate journal", e))?;
                Ok(())
            }
            _ => self.store(slot, record),
        }
    }

    /// Records what the interface had before we first shape a direction, refusing interfaces
    /// whose tc state we could not restore.
    fn take_ownership(&self, slot: &mut Slot, record: &mut Record) -> Result<(), ShapeError> {
        let need_root = record.plan.egress.is_some() && record.original_root.is_none();
        let need_ingress = record.plan.ingress.is_some() && record.ingress.is_none();
        if !need_root && !need_ingress {
            return Ok(());
        }
        let iface = record.iface.clone();
        let rtnl = connect(slot, &iface)?;
        let links = links(rtnl)?;
        let link = find_link(&links, &iface, &iface.name)?;
        let actual = reconcile::read(rtnl, link.index)
            .map_err(|e| ShapeError::io(format!("read the qdiscs of {iface}"), e))?;
        if need_root {
            record.original_root = Some(original_root(&iface, &actual)?);
        }
        if need_ingress {
            if actual
                .ingress_filters
                .iter()
                .any(|f| f.prio() == tc::INGRESS_PRIO)
            {
                return Err(ShapeError::Conflict(format!(
                    "{iface} already has an ingress filter at priority {:#x}, qoelab's: another qoelab agent (with another state dir) shapes it; stop that agent or clear the interface there",
                    tc::INGRESS_PRIO
                )));
            }
            let ifb = (0..)
                .map(|n| format!("{IFB_PREFIX}{n}"))
                .find(|name| !links.iter().any(|l| &l.name == name))
                .expect("a free name");
            record.ingress = Some(IngressRecord {
                ifb,
                created_qdisc: actual.ingress.is_none(),
            });
        }
        Ok(())
    }

    /// Says whose fault a failed apply of `plan` was: a kernel refusal of a plan value is the
    /// request's (reported against its field), as is a kind the kernel turns out not to have
    /// (probed again); a refusal because an object appeared or vanished meanwhile is a conflict
    /// with someone else's change; anything else stays an internal error.
    fn judge(&self, iface: &IfaceRef, plan: &InterfacePlan, err: ShapeError) -> ShapeError {
        let ShapeError::Kernel {
            what,
            field: Some(field),
            source,
        } = err
        else {
            return err;
        };
        match fault_of(source.errno) {
            Fault::Value => ShapeError::Rejected {
                value: value_at(iface, plan, &field),
                field,
                source,
            },
            Fault::Kind | Fault::State if let Some(feature) = self.lost_feature() => {
                ShapeError::MissingFeature {
                    field,
                    feature: feature.into(),
                }
            }
            // Unprobed, the kernel's own words tell an unknown kind from a race.
            Fault::Kind | Fault::State
                if !self.features().probed
                    && source
                        .message
                        .as_deref()
                        .is_some_and(|m| m.contains("unknown") || m.contains("load")) =>
            {
                ShapeError::MissingFeature {
                    field,
                    feature: format!("the tc kind it needs (the kernel answered: {source})"),
                }
            }
            Fault::State => ShapeError::Conflict(format!(
                "the tc state of {iface} changed while {field} was applied (the kernel \
                 answered: {source}); the previous plan is back in force; apply again"
            )),
            Fault::Kind | Fault::Internal => ShapeError::Kernel {
                what,
                field: Some(field),
                source,
            },
        }
    }

    /// Probes the kernel again; returns a feature that was there and is gone, and keeps the new
    /// findings.
    fn lost_feature(&self) -> Option<&'static str> {
        if !self.features().probed {
            return None;
        }
        let now = match Features::probe() {
            Ok(now) => now,
            Err(err) => {
                tracing::warn!("could not probe the kernel's tc features again: {err}");
                return None;
            }
        };
        let before = std::mem::replace(&mut *lock(&self.features), now);
        now.lost_since(&before)
    }

    /// Puts back the state before a failed apply.
    fn roll_back(&self, slot: &mut Slot, iface: &IfaceRef, previous: Option<Record>) {
        let outcome = match &previous {
            Some(previous) => self
                .transition(slot, previous.clone())
                .and_then(|_| self.store(slot, previous)),
            None => {
                let Some(mut attempted) = state::load_all(&self.state_dir)
                    .ok()
                    .and_then(|all| all.into_iter().find(|r| &r.iface == iface))
                else {
                    return;
                };
                attempted.plan = InterfacePlan::default();
                self.transition(slot, attempted).and_then(|_| {
                    state::forget(&self.state_dir, iface)
                        .map_err(|e| ShapeError::io("remove a state file", e))
                })
            }
        };
        if let Err(err) = outcome {
            tracing::error!(%iface, "could not put back the previous state after a failed apply: {err}");
        }
        slot.record = previous;
    }

    /// Sends what turns the kernel's state of the record's interface into its plan: shaping
    /// for planned directions, restoration for unplanned ones we still own.
    fn transition(&self, slot: &mut Slot, mut record: Record) -> Result<ApplyReport, ShapeError> {
        slot.devices = None;
        let iface = record.iface.clone();
        let rtnl = connect(slot, &iface)?;
        let mut links = links(rtnl)?;
        let link = find_link(&links, &iface, &iface.name)?.clone();
        let mut report = ApplyReport::default();
        if record.plan.ingress.is_some()
            && let Some(ingress) = &record.ingress
            && !links.iter().any(|l| l.name == ingress.ifb)
        {
            send(
                rtnl,
                vec![Step::new(
                    Effect::Create,
                    "ingress",
                    tc::create_ifb(&ingress.ifb, link.mtu),
                )],
                &mut report,
                "create an IFB device",
            )?;
            links = self::links(rtnl)?;
        }
        let actual = reconcile::read(rtnl, link.index)
            .map_err(|e| ShapeError::io(format!("read the tc state of {iface}"), e))?;
        let mut steps = Vec::new();
        let mut ifb_index = None;
        match (&record.plan.egress, &record.original_root) {
            (Some(plan), _) => {
                steps.extend(reconcile::diff(
                    &tree_of(&record, Direction::Egress, plan, link.mtu),
                    &actual,
                    link.index,
                    "egress",
                ));
            }
            (None, Some(original)) => {
                steps.extend(restore_root(original, &actual, link.index));
                record.original_root = None;
            }
            (None, None) => {}
        }
        match (&record.plan.ingress, &record.ingress) {
            (Some(plan), Some(ingress)) => {
                let ifb = find_link(&links, &iface, &ingress.ifb)?;
                let on_ifb = reconcile::read(rtnl, ifb.index).map_err(|e| {
                    ShapeError::io(format!("read the tc state of {}", ingress.ifb), e)
                })?;
                steps.extend(reconcile::diff(
                    &tree_of(&record, Direction::Ingress, plan, link.mtu),
                    &on_ifb,
                    ifb.index,
                    "ingress",
                ));
                steps.extend(redirect(&actual, link.index, ifb.index));
                ifb_index = Some(ifb.index);
            }
            (None, Some(ingress)) => {
                steps.extend(remove_ingress(ingress, &actual, &links, link.index));
                record.ingress = None;
            }
            _ => {}
        }
        send(rtnl, steps, &mut report, &format!("the shaping of {iface}"))?;
        if record.original_root.is_some() || record.ingress.is_some() {
            self.store(slot, &record)?;
            slot.devices = Some(Devices {
                egress: link.index,
                ingress: ifb_index,
                mtu: link.mtu,
            });
        }
        Ok(report)
    }

    /// Deletes the IFB device of a record whose interface is gone (the namespace may remain).
    fn remove_ifb_of(&self, slot: &mut Slot, record: &Record) {
        let Some(ingress) = &record.ingress else {
            return;
        };
        let Ok(rtnl) = connect(slot, &record.iface) else {
            return;
        };
        if let Ok(links) = links(rtnl)
            && let Some(ifb) = links.iter().find(|l| l.name == ingress.ifb)
        {
            let _ = rtnl.execute(vec![tc::delete_link(ifb.index)]);
        }
    }
}

/// The socket of the slot, opened in the interface's namespace on first use.
fn connect<'a>(slot: &'a mut Slot, iface: &IfaceRef) -> Result<&'a mut Rtnl, ShapeError> {
    if slot.rtnl.is_none() {
        let rtnl =
            Rtnl::open(iface.netns.as_deref()).map_err(|e| match (&iface.netns, e.kind()) {
                (Some(netns), io::ErrorKind::NotFound) => ShapeError::UnknownNetns {
                    netns: netns.clone(),
                },
                (Some(netns), io::ErrorKind::PermissionDenied) => ShapeError::NetnsNotPermitted {
                    netns: netns.clone(),
                },
                _ => ShapeError::io(format!("open a netlink socket for {iface}"), e),
            })?;
        slot.rtnl = Some(rtnl);
    }
    Ok(slot.rtnl.as_mut().expect("opened above"))
}

fn links(rtnl: &mut Rtnl) -> Result<Vec<Link>, ShapeError> {
    Ok(rtnl
        .dump(tc::dump_links())
        .map_err(|e| ShapeError::io("list interfaces", e))?
        .iter()
        .filter_map(|m| Link::parse(m))
        .collect())
}

fn find_link<'a>(links: &'a [Link], iface: &IfaceRef, name: &str) -> Result<&'a Link, ShapeError> {
    links
        .iter()
        .find(|l| l.name == name)
        .ok_or_else(|| ShapeError::UnknownInterface {
            netns: iface.netns.clone(),
            name: name.to_string(),
        })
}

/// Sends `steps` in one batch and counts what succeeded; the first refusal is the error, with
/// the plan field its step carries out.
fn send(
    rtnl: &mut Rtnl,
    steps: Vec<Step>,
    report: &mut ApplyReport,
    what: &str,
) -> Result<(), ShapeError> {
    if steps.is_empty() {
        return Ok(());
    }
    let (requests, steps): (Vec<_>, Vec<_>) = steps
        .into_iter()
        .map(|s| (s.request, (s.effect, s.field)))
        .unzip();
    let results = rtnl
        .execute(requests)
        .map_err(|e| ShapeError::io(format!("send {what}"), e))?;
    let mut first_error = None;
    for ((effect, field), result) in steps.into_iter().zip(results) {
        match result {
            Ok(()) => report.count(effect),
            Err(source) => {
                first_error.get_or_insert(ShapeError::Kernel {
                    what: what.to_string(),
                    field,
                    source,
                });
            }
        }
    }
    first_error.map_or(Ok(()), Err)
}

/// The desired tree of one direction of `record`.
fn tree_of(record: &Record, direction: Direction, plan: &DirectionPlan, mtu: u32) -> Tree {
    let minors = record.minors.get(&direction).cloned().unwrap_or_default();
    reconcile::desired(direction, plan, &minors, mtu)
}

/// The in-place changes that give the classes named in `changes` their new rates on `devices`,
/// from the plan of `record`; `None` if a direction has no known device.
fn in_place_steps(record: &Record, changes: &RateChanges, devices: Devices) -> Option<Vec<Step>> {
    let mut steps = Vec::new();
    for (direction, rates) in changes.directions() {
        let plan = record.plan.direction(direction)?;
        let ifindex = devices.of(direction)?;
        let minors = record.minors.get(&direction)?;
        let named: Vec<u16> = rates
            .keys()
            .filter_map(|name| match name.as_str() {
                DEFAULT_CLASS_NAME => Some(tc::DEFAULT_CLASS),
                name => minors.get(name).copied(),
            })
            .collect();
        let classes = reconcile::classes(direction, plan, minors, devices.mtu);
        steps.extend(reconcile::change_in_place(&classes, &named, ifindex));
    }
    Some(steps)
}

/// What to record about the root qdisc before replacing it.
fn original_root(iface: &IfaceRef, actual: &Actual) -> Result<OriginalRoot, ShapeError> {
    let Some(root) = &actual.root else {
        return Ok(OriginalRoot::Default {
            kind: "none".into(),
        });
    };
    if tc::is_ours(root.handle) {
        return Err(ShapeError::Conflict(format!(
            "{iface} has a root qdisc {:x}: in qoelab's handle range that this agent has no record of: another qoelab agent (with another state dir) shapes it, or one whose state was lost; clear it with that agent, or remove it with `tc qdisc del dev {} root`",
            tc::major(root.handle),
            iface.name
        )));
    }
    if root.handle == 0 {
        return Ok(OriginalRoot::Default {
            kind: root.kind.clone(),
        });
    }
    if !actual.leaves.is_empty() {
        return Err(ShapeError::Conflict(format!(
            "{iface} has a classful root qdisc {} {:x}: with children; qoelab would have to delete them and could not restore them; remove it yourself first (`tc qdisc del dev {} root`)",
            root.kind,
            tc::major(root.handle),
            iface.name
        )));
    }
    Ok(OriginalRoot::Configured {
        kind: root.kind.clone(),
        handle: root.handle,
        options_hex: state::to_hex(&root.options),
    })
}

/// The step that puts the original root qdisc back, if the root is still ours.
fn restore_root(original: &OriginalRoot, actual: &Actual, ifindex: u32) -> Vec<Step> {
    if !actual.root_is_ours() {
        return Vec::new();
    }
    let root = tc::handle(tc::ROOT_MAJOR, 0);
    vec![match original {
        OriginalRoot::Default { .. } => Step::undo(
            Effect::Delete,
            tc::delete_qdisc(ifindex, root, tc::TC_H_ROOT),
        ),
        OriginalRoot::Configured {
            kind,
            handle,
            options_hex,
        } => Step::undo(
            Effect::Change,
            tc::qdisc(
                Mode::Replace,
                ifindex,
                *handle,
                tc::TC_H_ROOT,
                kind,
                state::from_hex(options_hex).filter(|o| !o.is_empty()),
            ),
        ),
    }]
}

/// The ingress qdisc and redirect to `ifb`, where missing.
fn redirect(actual: &Actual, ifindex: u32, ifb: u32) -> Vec<Step> {
    let mut steps = Vec::new();
    if actual.ingress.is_none() {
        steps.push(Step::new(
            Effect::Create,
            "ingress",
            tc::qdisc(
                Mode::Create,
                ifindex,
                tc::INGRESS_HANDLE,
                tc::TC_H_INGRESS,
                "ingress",
                None,
            ),
        ));
    }
    let ours: Vec<_> = actual
        .ingress_filters
        .iter()
        .filter(|f| f.prio() == tc::INGRESS_PRIO)
        .collect();
    let right = ours.iter().any(|f| {
        f.u32_entry()
            .is_some_and(|e| e.redirect_ifindex == Some(ifb))
    });
    if !right {
        if !ours.is_empty() {
            steps.push(Step::undo(
                Effect::Delete,
                tc::delete_filters(ifindex, tc::INGRESS_HANDLE, tc::INGRESS_PRIO, ETH_P_ALL),
            ));
        }
        steps.push(Step::new(
            Effect::Create,
            "ingress",
            tc::redirect_filter(ifindex, ifb),
        ));
    }
    steps
}

/// The steps that undo our ingress setup: our filter (or the ingress qdisc we created), then
/// the IFB device.
fn remove_ingress(
    ingress: &IngressRecord,
    actual: &Actual,
    links: &[Link],
    ifindex: u32,
) -> Vec<Step> {
    let mut steps = Vec::new();
    if ingress.created_qdisc && actual.ingress.as_ref().is_some_and(|q| q.kind == "ingress") {
        steps.push(Step::undo(
            Effect::Delete,
            tc::delete_qdisc(ifindex, tc::INGRESS_HANDLE, tc::TC_H_INGRESS),
        ));
    } else if actual
        .ingress_filters
        .iter()
        .any(|f| f.prio() == tc::INGRESS_PRIO)
    {
        steps.push(Step::undo(
            Effect::Delete,
            tc::delete_filters(ifindex, tc::INGRESS_HANDLE, tc::INGRESS_PRIO, ETH_P_ALL),
        ));
    }
    if let Some(ifb) = links.iter().find(|l| l.name == ingress.ifb) {
        steps.push(Step::undo(Effect::Delete, tc::delete_link(ifb.index)));
    }
    steps
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn refusals_are_blamed_on_the_value_the_kind_the_state_or_the_agent() {
        assert_eq!(fault_of(libc::EINVAL), Fault::Value);
        assert_eq!(fault_of(libc::ERANGE), Fault::Value);
        assert_eq!(fault_of(libc::EOPNOTSUPP), Fault::Kind);
        assert_eq!(fault_of(libc::ENOENT), Fault::State);
        assert_eq!(fault_of(libc::EEXIST), Fault::State);
        assert_eq!(fault_of(libc::EPERM), Fault::Internal);
        assert_eq!(fault_of(libc::ENOMEM), Fault::Internal);
    }

    #[test]
    fn values_for_messages_are_short() {
        let iface = IfaceRef::new(Some("ns"), "eth0");
        let plan: InterfacePlan = serde_json::from_str(
            r#"{"egress": {"rate_bps": "1gbit", "default": {"rate_bps": "1mbit"}}}"#,
        )
        .unwrap();
        assert_eq!(value_at(&iface, &plan, "iface"), "eth0");
        assert_eq!(value_at(&iface, &plan, "egress.rate_bps"), "1000000000");
        let long = value_at(&iface, &plan, "egress");
        assert!(
            long.starts_with('{') && long.chars().count() <= 201,
            "{long}"
        );
    }
}
