//! Desired state of one device (from a direction's plan) against what the kernel has, and the
//! fewest requests that turn one into the other.
//!
//! Rules: a class whose parameters differ is changed in place (`tc class change`), never
//! deleted and re-added, so its traffic is shaped throughout; a leaf queue of the same kind is
//! changed in place too; filters of a class are replaced only when its match changes; what is
//! already right is left alone, so applying the same plan twice sends nothing the second time.
//! Requests are ordered so each one's prerequisites come first: root qdisc, classes (parents
//! first), leaf queues, filter removals, filter additions, class removals. Each request names
//! the plan field it carries out, so a kernel refusal can be reported against that field.
//!
//! [`change_in_place`] is the fast path of a rate change: it trusts that the kernel still has
//! the tree and sends only in-place changes, each of which the kernel refuses if its object is
//! gone (the caller then falls back to reading the kernel's state and diffing).

use std::collections::BTreeMap;
use std::io;

use qoelab_units::Rate;

use crate::netlink::{Request, Rtnl};
use crate::plan::{ClassPlan, Direction, DirectionPlan};
use crate::tc::{self, DumpKind, Mode, Object};
use crate::wire::{self, HtbClass};

/// HTB's rate-to-quantum divisor.
const R2Q: u32 = 10;
/// Quantum bounds the kernel accepts without warnings.
const QUANTUM_MIN: u64 = 1600;
const QUANTUM_MAX: u64 = 200_000;

/// The queue of a class.
#[derive(Debug, Clone, PartialEq)]
pub enum Leaf {
    /// A byte fifo of this many bytes.
    Bfifo(u32),
    /// netem, for an impaired class.
    Netem(wire::Netem),
}

impl Leaf {
    fn kind(&self) -> &'static str {
        match self {
            Leaf::Bfifo(_) => "bfifo",
            Leaf::Netem(_) => "netem",
        }
    }

    fn options(&self) -> Vec<u8> {
        match self {
            Leaf::Bfifo(limit) => wire::bfifo(*limit),
            Leaf::Netem(netem) => netem.encode(),
        }
    }

    fn matches(&self, object: &Object) -> bool {
        match self {
            Leaf::Bfifo(limit) => {
                object.kind == "bfifo" && wire::fifo_limit(&object.options) == Some(*limit)
            }
            Leaf::Netem(netem) => {
                object.kind == "netem"
                    && wire::Netem::decode(&object.options).is_some_and(|n| n.same_as(netem))
            }
        }
    }
}

/// One class of the desired tree.
#[derive(Debug, Clone, PartialEq)]
pub struct Class {
    /// Minor number (class `7100:minor`).
    pub minor: u16,
    /// Parent handle.
    pub parent: u32,
    /// HTB parameters.
    pub htb: HtbClass,
    /// Its queue; `None` for the root class.
    pub leaf: Option<Leaf>,
    /// The plan field it comes from, e.g. `egress.classes[2]` (`egress.rate_bps` for the root
    /// class).
    pub field: String,
}

impl Class {
    /// The plan field its queue comes from.
    fn leaf_field(&self) -> String {
        match self.leaf {
            Some(Leaf::Netem(_)) => format!("{}.impairment", self.field),
            _ => format!("{}.queue_ms", self.field),
        }
    }

    fn change(&self, mode: Mode, ifindex: u32) -> Request {
        tc::htb_class(
            mode,
            ifindex,
            tc::class_handle(self.minor),
            self.parent,
            &self.htb,
        )
    }

    fn leaf_request(&self, leaf: &Leaf, mode: Mode, ifindex: u32) -> Request {
        tc::qdisc(
            mode,
            ifindex,
            tc::leaf_handle(self.minor),
            tc::class_handle(self.minor),
            leaf.kind(),
            Some(leaf.options()),
        )
    }
}

/// The u32 entries of one priority and protocol: (keys, target class).
type FilterSet = Vec<(Vec<(u32, u32, i32)>, u32)>;

/// The desired HTB tree of one device.
#[derive(Debug, Clone, PartialEq)]
pub struct Tree {
    /// Root class first, then the default class, then the analytics by minor.
    pub classes: Vec<Class>,
    /// Filters by (priority, EtherType).
    pub filters: BTreeMap<(u16, u16), FilterSet>,
}

/// HTB parameters of a class at `rate`/`ceil` with the plan's bursts.
fn htb_params(class: &ClassPlan, rate: Rate, ceil: Rate) -> HtbClass {
    let rate_bytes = rate.bytes_per_sec().max(1);
    let ceil_bytes = ceil.bytes_per_sec().max(1);
    let burst_ticks = |r: Rate, bytes| wire::ticks(class.burst_at(r), bytes).unwrap_or(u32::MAX);
    HtbClass {
        rate_bytes,
        ceil_bytes,
        buffer_ticks: burst_ticks(rate, rate_bytes),
        cbuffer_ticks: burst_ticks(ceil, ceil_bytes),
        quantum: (rate_bytes / u64::from(R2Q)).clamp(QUANTUM_MIN, QUANTUM_MAX) as u32,
        prio: 0,
        level: 0,
    }
}

/// The queue of a class: a byte fifo of `queue_ms` at its rate (at least two full frames), or
/// netem holding the delay's worth plus that queue at the ceiling.
fn leaf(class: &ClassPlan, mtu: u32) -> Leaf {
    let frame = u64::from(mtu) + 14;
    let queue = class.queue().duration();
    let bytes_in = |rate: Rate, secs: f64| (rate.bytes_per_sec() as f64 * secs) as u64;
    match class.impairment.filter(|i| *i != Default::default()) {
        None => Leaf::Bfifo(
            bytes_in(class.rate_bps, queue.as_secs_f64()).clamp(2 * frame, u64::from(u32::MAX))
                as u32,
        ),
        Some(imp) => {
            let delay = imp.delay_ms.unwrap_or_default().duration();
            let jitter = imp.jitter_ms.unwrap_or_default().duration();
            let held = bytes_in(class.ceil(), (delay + jitter + queue).as_secs_f64());
            Leaf::Netem(wire::Netem {
                delay,
                jitter,
                loss: imp.loss_percent.map(|p| p.fraction()).unwrap_or(0.0),
                limit_packets: (held / frame + 1).clamp(64, u64::from(u32::MAX)) as u32,
            })
        }
    }
}

/// The desired tree for the plan of `direction`, with class minors from `minors` and queues
/// sized for `mtu`.
pub fn desired(
    direction: Direction,
    plan: &DirectionPlan,
    minors: &BTreeMap<String, u16>,
    mtu: u32,
) -> Tree {
    let mut filters: BTreeMap<(u16, u16), FilterSet> = BTreeMap::new();
    for class in &plan.classes {
        let Some(&minor) = minors.get(&class.name) else {
            continue;
        };
        for entry in class.matches.iter().flat_map(|m| m.entries()) {
            filters
                .entry((tc::filter_prio(minor, entry.ethertype), entry.ethertype))
                .or_default()
                .push((entry.keys, tc::class_handle(minor)));
        }
    }
    Tree {
        classes: classes(direction, plan, minors, mtu),
        filters,
    }
}

/// The desired classes of the plan of `direction`: root class, default class, then the
/// analytics by minor.
pub fn classes(
    direction: Direction,
    plan: &DirectionPlan,
    minors: &BTreeMap<String, u16>,
    mtu: u32,
) -> Vec<Class> {
    let root_class = ClassPlan {
        name: String::new(),
        rate_bps: plan.rate_bps,
        ceil_bps: None,
        burst_bytes: None,
        queue_ms: None,
        matches: None,
        impairment: None,
    };
    let root = tc::class_handle(tc::ROOT_CLASS);
    let mut classes = vec![
        Class {
            minor: tc::ROOT_CLASS,
            parent: tc::handle(tc::ROOT_MAJOR, 0),
            htb: htb_params(&root_class, plan.rate_bps, plan.rate_bps),
            leaf: None,
            field: format!("{direction}.rate_bps"),
        },
        Class {
            minor: tc::DEFAULT_CLASS,
            parent: root,
            htb: htb_params(&plan.default, plan.default.rate_bps, plan.default.ceil()),
            leaf: Some(leaf(&plan.default, mtu)),
            field: format!("{direction}.default"),
        },
    ];
    let mut analytics: Vec<(u16, usize, &ClassPlan)> = plan
        .classes
        .iter()
        .enumerate()
        .filter_map(|(i, c)| minors.get(&c.name).map(|m| (*m, i, c)))
        .collect();
    analytics.sort_by_key(|(minor, _, _)| *minor);
    classes.extend(analytics.into_iter().map(|(minor, index, class)| Class {
        minor,
        parent: root,
        htb: htb_params(class, class.rate_bps, class.ceil()),
        leaf: Some(leaf(class, mtu)),
        field: format!("{direction}.classes[{index}]"),
    }));
    classes
}

/// What the kernel has on one device, as far as the shaper cares.
#[derive(Debug, Clone, Default)]
pub struct Actual {
    /// The root qdisc.
    pub root: Option<Object>,
    /// Every class, by handle.
    pub classes: BTreeMap<u32, Object>,
    /// Qdiscs other than the root and ingress, by parent.
    pub leaves: BTreeMap<u32, Object>,
    /// Filters of our root qdisc.
    pub filters: Vec<Object>,
    /// Whether the device has an ingress (or clsact) qdisc.
    pub ingress: Option<Object>,
    /// Filters of the ingress qdisc.
    pub ingress_filters: Vec<Object>,
}

impl Actual {
    /// Whether the root qdisc is our HTB.
    pub fn root_is_ours(&self) -> bool {
        self.root
            .as_ref()
            .is_some_and(|r| r.handle == tc::handle(tc::ROOT_MAJOR, 0) && r.kind == "htb")
    }

    /// Our classes' counters and kernel parameters by minor.
    pub fn our_classes(&self) -> impl Iterator<Item = (u16, &Object)> {
        self.classes
            .iter()
            .filter(|(h, _)| tc::major(**h) == tc::ROOT_MAJOR)
            .map(|(h, o)| (*h as u16, o))
    }
}

/// Reads the qdiscs, classes and filters of device `ifindex`.
pub fn read(rtnl: &mut Rtnl, ifindex: u32) -> io::Result<Actual> {
    let mut actual = Actual::default();
    let objects = |rtnl: &mut Rtnl, kind, parent| -> io::Result<Vec<Object>> {
        Ok(rtnl
            .dump(tc::dump_request(kind, ifindex, parent))?
            .iter()
            .filter_map(|m| Object::parse(m))
            .filter(|o| o.ifindex == ifindex)
            .collect())
    };
    for qdisc in objects(rtnl, DumpKind::Qdiscs, 0)? {
        match qdisc.parent {
            tc::TC_H_ROOT => actual.root = Some(qdisc),
            tc::TC_H_INGRESS => actual.ingress = Some(qdisc),
            parent => {
                actual.leaves.insert(parent, qdisc);
            }
        }
    }
    if actual.root_is_ours() {
        for class in objects(rtnl, DumpKind::Classes, 0)? {
            actual.classes.insert(class.handle, class);
        }
        actual.filters = objects(rtnl, DumpKind::Filters, tc::handle(tc::ROOT_MAJOR, 0))?;
    }
    if actual.ingress.is_some() {
        actual.ingress_filters = objects(rtnl, DumpKind::Filters, tc::INGRESS_HANDLE)?;
    }
    Ok(actual)
}

/// What a request does, for reports.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Effect {
    /// Creates an object.
    Create,
    /// Changes an object in place.
    Change,
    /// Deletes an object.
    Delete,
}

/// A request, what it does, and the plan field it carries out.
#[derive(Debug, Clone)]
pub struct Step {
    /// The request.
    pub request: Request,
    /// Its effect.
    pub effect: Effect,
    /// The plan field the request carries out (e.g. `egress.classes[2].match`, or `iface` for
    /// the interface's own qdiscs); `None` for requests that undo what a plan no longer wants.
    pub field: Option<String>,
}

impl Step {
    /// A step with `effect` carrying out `field`.
    pub fn new(effect: Effect, field: impl Into<String>, request: Request) -> Step {
        Step {
            request,
            effect,
            field: Some(field.into()),
        }
    }

    /// A step that undoes something, with `effect`.
    pub fn undo(effect: Effect, request: Request) -> Step {
        Step {
            request,
            effect,
            field: None,
        }
    }
}

fn same_class(want: &HtbClass, have: &HtbClass) -> bool {
    let shaping = want.rate_bytes == have.rate_bytes
        && want.ceil_bytes == have.ceil_bytes
        && want.buffer_ticks == have.buffer_ticks
        && want.cbuffer_ticks == have.cbuffer_ticks;
    // The kernel keeps quantum and prio only for leaf classes.
    shaping && (have.level > 0 || (want.quantum == have.quantum && want.prio == have.prio))
}

/// A class's parent, with the kernel's `TC_H_ROOT` for top-level classes read as our root
/// qdisc, which is what we create them under.
fn parent_of(class: &Object) -> u32 {
    if class.parent == tc::TC_H_ROOT {
        tc::handle(tc::ROOT_MAJOR, 0)
    } else {
        class.parent
    }
}

fn filter_sets(filters: &[Object]) -> BTreeMap<(u16, u16), FilterSet> {
    let mut sets: BTreeMap<(u16, u16), FilterSet> = BTreeMap::new();
    for filter in filters {
        let set = sets.entry((filter.prio(), filter.ethertype())).or_default();
        if let Some(entry) = filter.u32_entry() {
            set.push((entry.keys, entry.classid.unwrap_or_default()));
        }
    }
    for set in sets.values_mut() {
        set.sort();
    }
    sets
}

/// The steps that turn `actual` into `tree` on device `ifindex`; the root qdisc's step carries
/// out `root_field`.
pub fn diff(tree: &Tree, actual: &Actual, ifindex: u32, root_field: &str) -> Vec<Step> {
    let mut steps = Vec::new();
    let root = tc::handle(tc::ROOT_MAJOR, 0);
    let fresh = !actual.root_is_ours();
    if fresh {
        let options = wire::htb_qdisc(tc::DEFAULT_CLASS, R2Q);
        steps.push(Step::new(
            Effect::Create,
            root_field,
            tc::qdisc(
                Mode::Replace,
                ifindex,
                root,
                tc::TC_H_ROOT,
                "htb",
                Some(options),
            ),
        ));
    }
    let empty = Actual::default();
    let actual = if fresh { &empty } else { actual };
    for class in &tree.classes {
        let handle = tc::class_handle(class.minor);
        let step = match actual
            .classes
            .get(&handle)
            .map(|o| (o, HtbClass::decode(&o.options)))
        {
            None => Some((Effect::Create, Mode::Create)),
            Some((object, have))
                if parent_of(object) != class.parent
                    || !have.is_some_and(|h| same_class(&class.htb, &h)) =>
            {
                Some((Effect::Change, Mode::Change))
            }
            Some(_) => None,
        };
        if let Some((effect, mode)) = step {
            steps.push(Step::new(effect, &class.field, class.change(mode, ifindex)));
        }
    }
    for class in &tree.classes {
        let Some(leaf) = &class.leaf else { continue };
        let handle = tc::leaf_handle(class.minor);
        let step = match actual.leaves.get(&tc::class_handle(class.minor)) {
            Some(have) if have.handle == handle && leaf.matches(have) => None,
            Some(have) if have.handle == handle && have.kind == leaf.kind() => {
                Some((Effect::Change, Mode::Change))
            }
            Some(have) if have.handle == handle => {
                // The kernel changes a qdisc only into its own kind, and replaces one only by
                // a qdisc of another handle: ours goes, then comes back as the new kind.
                steps.push(Step::undo(
                    Effect::Delete,
                    tc::delete_qdisc(ifindex, handle, tc::class_handle(class.minor)),
                ));
                Some((Effect::Create, Mode::Create))
            }
            Some(_) => Some((Effect::Change, Mode::Replace)),
            None => Some((Effect::Create, Mode::Create)),
        };
        if let Some((effect, mode)) = step {
            steps.push(Step::new(
                effect,
                class.leaf_field(),
                class.leaf_request(leaf, mode, ifindex),
            ));
        }
    }
    let have = filter_sets(&actual.filters);
    let mut want = tree.filters.clone();
    want.values_mut().for_each(|set| set.sort());
    for (key @ (prio, ethertype), set) in &have {
        if want.get(key) != Some(set) {
            steps.push(Step::undo(
                Effect::Delete,
                tc::delete_filters(ifindex, root, *prio, *ethertype),
            ));
        }
    }
    let match_field = |classid: u32| {
        tree.classes
            .iter()
            .find(|c| tc::class_handle(c.minor) == classid)
            .map(|c| format!("{}.match", c.field))
            .unwrap_or_default()
    };
    for (key @ (prio, ethertype), set) in &want {
        if have.get(key) != Some(set) {
            for (keys, classid) in set {
                steps.push(Step::new(
                    Effect::Create,
                    match_field(*classid),
                    tc::u32_filter(ifindex, root, *prio, *ethertype, keys, *classid),
                ));
            }
        }
    }
    let wanted: Vec<u16> = tree.classes.iter().map(|c| c.minor).collect();
    for (minor, _) in actual.our_classes() {
        if !wanted.contains(&minor) {
            steps.push(Step::undo(
                Effect::Delete,
                tc::delete_class(ifindex, tc::class_handle(minor)),
            ));
        }
    }
    steps
}

/// In-place changes (`tc class change`, `tc qdisc change`) of those of `classes` whose minors
/// are in `minors`, and of their queues, on device `ifindex`. Each is refused by the kernel if
/// its object does not exist (or a queue is of another kind), and none creates anything.
pub fn change_in_place(classes: &[Class], minors: &[u16], ifindex: u32) -> Vec<Step> {
    let mut minors = minors.to_vec();
    minors.sort_unstable();
    let mut steps = Vec::with_capacity(2 * minors.len());
    for class in classes
        .iter()
        .filter(|c| minors.binary_search(&c.minor).is_ok())
    {
        steps.push(Step::new(
            Effect::Change,
            &class.field,
            class.change(Mode::Change, ifindex),
        ));
        if let Some(leaf) = &class.leaf {
            steps.push(Step::new(
                Effect::Change,
                class.leaf_field(),
                class.leaf_request(leaf, Mode::Change, ifindex),
            ));
        }
    }
    steps
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::plan::InterfacePlan;

    fn plan(json: &str) -> DirectionPlan {
        serde_json::from_str::<InterfacePlan>(json)
            .unwrap()
            .egress
            .unwrap()
    }

    const PLAN: &str = r#"{"egress": {"rate_bps": "1gbit", "default": {"rate_bps": "1mbit"},
        "classes": [{"name": "cam", "rate_bps": "2mbit", "ceil_bps": "8mbit",
                     "match": {"protocol": "tcp", "dst_port": 5001}}]}}"#;

    fn minors() -> BTreeMap<String, u16> {
        [("cam".to_string(), 3)].into()
    }

    #[test]
    fn classes_get_bursts_quanta_and_queues_from_their_rates() {
        let tree = desired(Direction::Egress, &plan(PLAN), &minors(), 1500);
        let cam = &tree.classes[2];
        assert_eq!(cam.minor, 3);
        assert_eq!(cam.htb.rate_bytes, 250_000);
        assert_eq!(
            cam.htb.buffer_ticks,
            wire::ticks(1600, 250_000).unwrap(),
            "1600 B minimum"
        );
        assert_eq!(cam.htb.quantum, 25_000);
        assert_eq!(cam.leaf, Some(Leaf::Bfifo(25_000)), "100 ms of 2 Mbit/s");
        let root = &tree.classes[0];
        assert_eq!(
            root.htb.buffer_ticks,
            wire::ticks(125_000, 125_000_000).unwrap(),
            "1 ms of 1 Gbit/s"
        );
        assert_eq!(root.htb.quantum, 200_000, "clamped to the kernel's bound");
        let default = &tree.classes[1];
        assert_eq!(default.leaf, Some(Leaf::Bfifo(12_500)));
        assert_eq!(tree.filters.len(), 2, "IPv4 and IPv6 entries");
        assert!(tree.filters.contains_key(&(6, 0x0800)));
    }

    #[test]
    fn a_small_queue_still_holds_two_frames() {
        let mut p = plan(PLAN);
        p.classes[0].rate_bps = Rate::from_bps(8_000);
        let tree = desired(Direction::Egress, &p, &minors(), 1500);
        assert_eq!(tree.classes[2].leaf, Some(Leaf::Bfifo(2 * 1514)));
    }

    /// The kernel's view after `tree` was applied, as dumps would show it.
    fn applied(tree: &Tree) -> Actual {
        let mut actual = Actual {
            root: Some(Object {
                handle: tc::handle(tc::ROOT_MAJOR, 0),
                parent: tc::TC_H_ROOT,
                kind: "htb".into(),
                ..Object::default()
            }),
            ..Actual::default()
        };
        for class in &tree.classes {
            let handle = tc::class_handle(class.minor);
            actual.classes.insert(
                handle,
                Object {
                    handle,
                    parent: class.parent,
                    kind: "htb".into(),
                    options: class.htb.encode(),
                    ..Object::default()
                },
            );
            if let Some(leaf) = &class.leaf {
                actual.leaves.insert(
                    handle,
                    Object {
                        handle: tc::leaf_handle(class.minor),
                        parent: handle,
                        kind: leaf.kind().into(),
                        options: leaf.options(),
                        ..Object::default()
                    },
                );
            }
        }
        for ((prio, ethertype), set) in &tree.filters {
            for (keys, classid) in set {
                let mut options = Vec::new();
                let mut sel = vec![1, 0, keys.len() as u8, 0];
                sel.extend_from_slice(&[0; 12]);
                for (mask, value, off) in keys {
                    sel.extend_from_slice(&mask.to_be_bytes());
                    sel.extend_from_slice(&value.to_be_bytes());
                    sel.extend_from_slice(&off.to_ne_bytes());
                    sel.extend_from_slice(&0i32.to_ne_bytes());
                }
                wire::push_nla(&mut options, 1, &classid.to_ne_bytes());
                wire::push_nla(&mut options, 5, &sel);
                let info = u32::from(*prio) << 16 | u32::from(ethertype.to_be());
                actual.filters.push(Object {
                    info,
                    kind: "u32".into(),
                    options,
                    ..Object::default()
                });
            }
        }
        actual
    }

    fn effects(steps: &[Step]) -> Vec<Effect> {
        steps.iter().map(|s| s.effect).collect()
    }

    #[test]
    fn a_fresh_device_gets_everything_and_an_applied_one_nothing() {
        let tree = desired(Direction::Egress, &plan(PLAN), &minors(), 1500);
        let steps = diff(&tree, &Actual::default(), 7, "iface");
        // root qdisc, 3 classes, 2 leaves, 2 filters
        assert_eq!(steps.len(), 8);
        assert!(effects(&steps).iter().all(|e| *e == Effect::Create));
        assert!(
            diff(&tree, &applied(&tree), 7, "iface").is_empty(),
            "idempotent"
        );
    }

    /// The steps from PLAN, as applied, to PLAN changed by `edit`.
    fn steps_after(edit: impl FnOnce(&mut DirectionPlan)) -> Vec<Step> {
        let tree = desired(Direction::Egress, &plan(PLAN), &minors(), 1500);
        let mut p = plan(PLAN);
        edit(&mut p);
        let minors = if p.classes.is_empty() {
            BTreeMap::new()
        } else {
            minors()
        };
        diff(
            &desired(Direction::Egress, &p, &minors, 1500),
            &applied(&tree),
            7,
            "iface",
        )
    }

    #[test]
    fn a_rate_change_changes_the_class_and_its_queue_in_place() {
        let steps = steps_after(|p| p.classes[0].rate_bps = Rate::from_bps(4_000_000));
        assert_eq!(
            effects(&steps),
            [Effect::Change, Effect::Change],
            "class and bfifo"
        );
        assert!(matches!(
            &steps[0].request.message,
            netlink_packet_route::RouteNetlinkMessage::NewTrafficClass(_)
        ));
        assert_eq!(steps[0].request.flags, 0, "no CREATE: changed in place");
    }

    #[test]
    fn a_queue_of_another_kind_is_deleted_and_created_again() {
        let steps = steps_after(|p| {
            p.classes[0].impairment = Some(serde_json::from_str(r#"{"delay_ms": 20}"#).unwrap())
        });
        assert_eq!(effects(&steps), [Effect::Delete, Effect::Create]);
        assert!(matches!(
            &steps[0].request.message,
            netlink_packet_route::RouteNetlinkMessage::DelQueueDiscipline(_)
        ));
        assert_eq!(
            steps[1].field.as_deref(),
            Some("egress.classes[0].impairment")
        );
    }

    #[test]
    fn a_match_change_replaces_only_that_class_filters_and_removed_classes_go() {
        let steps = steps_after(|p| {
            p.classes[0].matches =
                Some(serde_json::from_str(r#"{"protocol": "udp", "dst_port": 5001}"#).unwrap())
        });
        assert_eq!(
            effects(&steps),
            [
                Effect::Delete,
                Effect::Delete,
                Effect::Create,
                Effect::Create
            ]
        );
        let steps = steps_after(|p| p.classes.clear());
        assert_eq!(
            effects(&steps),
            [Effect::Delete, Effect::Delete, Effect::Delete],
            "2 filter prios, then the class"
        );
        assert!(matches!(
            &steps[2].request.message,
            netlink_packet_route::RouteNetlinkMessage::DelTrafficClass(_)
        ));
    }
}
