//! Shaping plans: the desired state of one interface, written by people (TOML) or programs
//! (JSON), and their validation.
//!
//! A plan has an `egress` and/or an `ingress` direction. Each direction has the link's rate
//! (`rate_bps`, the parent of every class), a `default` class for traffic no class matches, and
//! `classes`, one per analytic, each with a rate, a ceiling, an optional burst, a queue length
//! in milliseconds of its rate, a match and an optional impairment (netem, where the kernel has
//! it). [`InterfacePlan::validate`] checks everything the kernel would refuse or silently get
//! wrong, and names the field of the first problem.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::fmt;

use qoelab_units::{Millis, Percent, RATE_FORMS, Rate, SIZE_FORMS, Size};
use serde::{Deserialize, Serialize};

use crate::classify::Match;
use crate::features::Features;
use crate::wire;

/// The highest rate a plan may ask for (100 Gbit/s).
pub const MAX_RATE_BPS: u64 = 100_000_000_000;
/// The most classes a direction may have.
pub const MAX_CLASSES: usize = 2000;
/// The queue length when a class gives none.
pub const DEFAULT_QUEUE_MS: u64 = 100;
/// The longest queue a class may ask for.
pub const MAX_QUEUE_MS: u64 = 10_000;
/// The longest delay an impairment may add.
pub const MAX_DELAY_MS: u64 = 60_000;
/// The smallest default burst: more than one full Ethernet frame.
pub const MIN_BURST_BYTES: u64 = 1600;
/// The most u32 filters (hash tables) the kernel holds under one qdisc; each class has one per
/// address family it matches.
pub const MAX_U32_FILTERS: usize = 2047;

/// The two directions, as named in plans, field paths and the API.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Direction {
    /// Traffic the interface sends (upload on a gateway's uplink).
    Egress,
    /// Traffic the interface receives, shaped on an IFB device it is redirected to.
    Ingress,
}

impl Direction {
    /// Both directions.
    pub const ALL: [Direction; 2] = [Direction::Egress, Direction::Ingress];

    /// `egress` or `ingress`.
    pub fn as_str(self) -> &'static str {
        match self {
            Direction::Egress => "egress",
            Direction::Ingress => "ingress",
        }
    }
}

impl fmt::Display for Direction {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The desired shaping of one interface.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct InterfacePlan {
    /// Shaping of sent traffic.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub egress: Option<DirectionPlan>,
    /// Shaping of received traffic (through an IFB device).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ingress: Option<DirectionPlan>,
}

impl InterfacePlan {
    /// The plan of `direction`, if it is shaped.
    pub fn direction(&self, direction: Direction) -> Option<&DirectionPlan> {
        match direction {
            Direction::Egress => self.egress.as_ref(),
            Direction::Ingress => self.ingress.as_ref(),
        }
    }

    /// Mutable access to the plan of `direction`.
    pub fn direction_mut(&mut self, direction: Direction) -> Option<&mut DirectionPlan> {
        match direction {
            Direction::Egress => self.egress.as_mut(),
            Direction::Ingress => self.ingress.as_mut(),
        }
    }

    /// Gives the classes named in `changes` their new rates (and ceilings, where given).
    pub fn set_rates(&mut self, changes: &RateChanges) -> Result<(), PlanError> {
        for (direction, rates) in changes.directions() {
            let Some(plan) = self.direction_mut(direction) else {
                return Err(PlanError::new(
                    direction.as_str(),
                    "(rates)",
                    format!("{direction} is not shaped by the plan in force"),
                    "rate changes for a shaped direction",
                ));
            };
            let index: HashMap<&str, usize> = plan
                .classes
                .iter()
                .enumerate()
                .map(|(i, c)| (c.name.as_str(), i))
                .collect();
            let mut targets = Vec::with_capacity(rates.len());
            for (name, change) in rates {
                let position = match name.as_str() {
                    DEFAULT_CLASS_NAME => None,
                    name => match index.get(name) {
                        Some(i) => Some(*i),
                        None => {
                            let names: Vec<&str> = std::iter::once(DEFAULT_CLASS_NAME)
                                .chain(plan.classes.iter().map(|c| c.name.as_str()))
                                .collect();
                            return Err(PlanError::new(
                                format!("{direction}.{name}"),
                                name,
                                "no class of this name",
                                format!("one of: {}", names.join(", ")),
                            ));
                        }
                    },
                };
                targets.push((position, change));
            }
            for (position, change) in targets {
                let class = match position {
                    Some(i) => &mut plan.classes[i],
                    None => &mut plan.default,
                };
                class.rate_bps = change.rate_bps;
                if change.ceil_bps.is_some() {
                    class.ceil_bps = change.ceil_bps;
                }
            }
        }
        Ok(())
    }

    /// The value at a field path such as `egress.classes[1].rate_bps`, as JSON text (strings
    /// bare).
    pub fn value_at(&self, path: &str) -> Option<String> {
        let json = serde_json::to_value(self).ok()?;
        json_at(&json, path).map(|v| match v {
            serde_json::Value::String(s) => s.clone(),
            other => other.to_string(),
        })
    }

    /// Checks the plan against the rules below and the kernel's `features`; the error names
    /// the first offending field.
    pub fn validate(&self, features: &Features) -> Result<(), PlanError> {
        self.validate_with(features, Checks::All)
    }

    /// Checks a plan that differs from a valid one only in rates and ceilings: everything but
    /// names and matches, which are what makes a full check grow with the square of the classes.
    pub fn validate_rates(&self, features: &Features) -> Result<(), PlanError> {
        self.validate_with(features, Checks::Rates)
    }

    fn validate_with(&self, features: &Features, checks: Checks) -> Result<(), PlanError> {
        if self.egress.is_none() && self.ingress.is_none() {
            return Err(PlanError::new(
                "egress",
                "(none)",
                "a plan shapes egress, ingress or both",
                "an [egress] and/or [ingress] section; to remove shaping, clear the interface",
            ));
        }
        for direction in Direction::ALL {
            if let Some(plan) = self.direction(direction) {
                plan.validate(direction.as_str(), features, checks)?;
            }
        }
        Ok(())
    }
}

/// The desired shaping of one direction.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DirectionPlan {
    /// The link's rate: the parent of every class; no class's rate or ceiling may exceed it.
    pub rate_bps: Rate,
    /// The class of traffic no other class matches.
    pub default: ClassPlan,
    /// One class per analytic, matched in any order (matches may not overlap).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub classes: Vec<ClassPlan>,
}

/// What a validation covers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Checks {
    /// Everything.
    All,
    /// All but names and matches.
    Rates,
}

impl DirectionPlan {
    fn validate(&self, path: &str, features: &Features, checks: Checks) -> Result<(), PlanError> {
        let parent = self.rate_bps.bps();
        if parent == 0 || parent > MAX_RATE_BPS {
            return Err(PlanError::new(
                format!("{path}.rate_bps"),
                self.rate_bps,
                "the link rate must be above 0 and at most 100gbit",
                format!("1bit to 100gbit, written as {RATE_FORMS}"),
            ));
        }
        if self.classes.len() > MAX_CLASSES {
            return Err(PlanError::new(
                format!("{path}.classes"),
                self.classes.len(),
                "too many classes",
                format!("at most {MAX_CLASSES} classes per direction"),
            ));
        }
        self.default.validate(
            &format!("{path}.default"),
            Role::Default,
            self.rate_bps,
            features,
        )?;
        for (i, class) in self.classes.iter().enumerate() {
            let class_path = format!("{path}.classes[{i}]");
            class.validate(&class_path, Role::Analytic, self.rate_bps, features)?;
        }
        let total: u64 = self
            .classes
            .iter()
            .chain([&self.default])
            .map(|c| c.rate_bps.bps())
            .sum();
        if total > parent {
            return Err(PlanError::new(
                format!("{path}.classes"),
                Rate::from_bps(total),
                format!(
                    "the guaranteed rates of the classes and the default class add up to more \
                     than the link rate {}",
                    self.rate_bps
                ),
                "rates whose sum is at most the direction's rate_bps (ceilings may exceed it)",
            ));
        }
        if checks == Checks::All {
            self.validate_matches(path)?;
        }
        Ok(())
    }

    /// Checks names and matches: unique names, valid matches, no overlaps, and no more u32
    /// filters than the kernel holds.
    fn validate_matches(&self, path: &str) -> Result<(), PlanError> {
        let mut names = BTreeSet::new();
        let mut filters = 0;
        for (i, class) in self.classes.iter().enumerate() {
            let class_path = format!("{path}.classes[{i}]");
            class.validate_match(&class_path)?;
            filters += class.matches.as_ref().map_or(0, Match::filters);
            if !names.insert(class.name.as_str()) {
                return Err(PlanError::new(
                    format!("{class_path}.name"),
                    &class.name,
                    "another class of this direction has the same name",
                    "a name used once per direction",
                ));
            }
        }
        if filters > MAX_U32_FILTERS {
            return Err(PlanError::new(
                format!("{path}.classes"),
                format!("{} classes", self.classes.len()),
                format!(
                    "the matches need {filters} u32 filters (one per class and address family \
                     it matches); the kernel holds at most {MAX_U32_FILTERS} under one qdisc"
                ),
                format!(
                    "matches needing at most {MAX_U32_FILTERS} filters: fewer classes, or a src \
                     or dst prefix on each match so it covers one address family"
                ),
            ));
        }
        for (i, a) in self.classes.iter().enumerate() {
            for (j, b) in self.classes.iter().enumerate().skip(i + 1) {
                let (Some(ma), Some(mb)) = (&a.matches, &b.matches) else {
                    continue;
                };
                if ma.overlaps(mb) {
                    return Err(PlanError::new(
                        format!("{path}.classes[{j}].match"),
                        mb,
                        format!(
                            "overlaps the match of class '{}' ({path}.classes[{i}]): a packet \
                             matching both could be counted in either",
                            a.name
                        ),
                        "matches that differ in address family, a src/dst prefix, the protocol \
                         or a port range",
                    ));
                }
            }
        }
        Ok(())
    }
}

/// New rates for some classes of one direction, by class name (`default` for the default
/// class).
pub type DirectionRates = BTreeMap<String, RateChange>;

/// New rates for classes of an interface.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RateChanges {
    /// Egress classes.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub egress: DirectionRates,
    /// Ingress classes.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub ingress: DirectionRates,
}

impl RateChanges {
    /// The directions with changes, and their changes.
    pub fn directions(&self) -> impl Iterator<Item = (Direction, &DirectionRates)> {
        [
            (Direction::Egress, &self.egress),
            (Direction::Ingress, &self.ingress),
        ]
        .into_iter()
        .filter(|(_, rates)| !rates.is_empty())
    }
}

/// A class's new rate and, optionally, ceiling (otherwise the ceiling is kept, or follows the
/// rate if the class had none).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RateChange {
    /// New guaranteed rate.
    pub rate_bps: Rate,
    /// New ceiling.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ceil_bps: Option<Rate>,
}

/// A plan file (TOML): one `[[interface]]` table per interface, each with the interface's
/// `name`, optional `netns`, and its `egress` and/or `ingress` sections.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PlanFile {
    /// The interfaces and their plans.
    pub interface: Vec<PlanFileEntry>,
}

/// One interface of a plan file.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PlanFileEntry {
    /// Network namespace (iproute2 name); absent for the agent's own.
    #[serde(default)]
    pub netns: Option<String>,
    /// Interface name.
    pub name: String,
    /// Shaping of sent traffic.
    #[serde(default)]
    pub egress: Option<DirectionPlan>,
    /// Shaping of received traffic.
    #[serde(default)]
    pub ingress: Option<DirectionPlan>,
}

impl PlanFileEntry {
    /// The interface and its plan.
    pub fn into_parts(self) -> (crate::IfaceRef, InterfacePlan) {
        (
            crate::IfaceRef {
                netns: self.netns,
                name: self.name,
            },
            InterfacePlan {
                egress: self.egress,
                ingress: self.ingress,
            },
        )
    }
}

/// The name the default class goes by in stats and rate changes.
pub const DEFAULT_CLASS_NAME: &str = "default";

/// One class: an analytic's share of a direction, or the default class.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ClassPlan {
    /// The analytic's name: 1–64 letters, digits, `-`, `_` or `.`; not needed on the default
    /// class.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub name: String,
    /// Guaranteed rate.
    pub rate_bps: Rate,
    /// Highest rate when the link has room (default: the rate, a strict limit).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ceil_bps: Option<Rate>,
    /// Bytes that may leave at once above the rate (default: 1 ms of the rate, at least
    /// 1600 bytes).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub burst_bytes: Option<Size>,
    /// Queue length as time at the guaranteed rate (default 100 ms); the queue is a byte fifo
    /// of that many bytes, at least two full frames.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub queue_ms: Option<Millis>,
    /// Which packets belong to the class (not on the default class).
    #[serde(default, rename = "match", skip_serializing_if = "Option::is_none")]
    pub matches: Option<Match>,
    /// Delay, jitter and loss added after shaping (needs netem in the kernel).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub impairment: Option<Impairment>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Role {
    Default,
    Analytic,
}

impl ClassPlan {
    /// The ceiling: as given, else the rate.
    pub fn ceil(&self) -> Rate {
        self.ceil_bps.unwrap_or(self.rate_bps)
    }

    /// The queue length: as given, else 100 ms.
    pub fn queue(&self) -> Millis {
        self.queue_ms.unwrap_or(Millis::from_ms(DEFAULT_QUEUE_MS))
    }

    /// The burst at `rate`: as given, else 1 ms of the rate, at least 1600 bytes.
    pub fn burst_at(&self, rate: Rate) -> u64 {
        self.burst_bytes
            .map(|b| b.bytes())
            .unwrap_or_else(|| default_burst(rate))
    }

    /// Checks an analytic class's name and match.
    fn validate_match(&self, path: &str) -> Result<(), PlanError> {
        let field = |name: &str| format!("{path}.{name}");
        let valid = (1..=64).contains(&self.name.len())
            && self
                .name
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"-_.".contains(&b))
            && self.name != DEFAULT_CLASS_NAME;
        if !valid {
            return Err(PlanError::new(
                field("name"),
                &self.name,
                "not a valid class name",
                "1 to 64 letters, digits, '-', '_' or '.', other than 'default'",
            ));
        }
        match &self.matches {
            None => Err(PlanError::new(
                field("match"),
                "(none)",
                "a class needs a match, or it would get no traffic",
                "match = { dst = \"198.18.2.2\", protocol = \"tcp\", dst_port = 5001 } \
                 or any of src, dst, protocol, src_port, dst_port",
            )),
            Some(m) => m.validate(&field("match")),
        }
    }

    fn validate(
        &self,
        path: &str,
        role: Role,
        parent: Rate,
        features: &Features,
    ) -> Result<(), PlanError> {
        let field = |name: &str| format!("{path}.{name}");
        if role == Role::Default {
            if !self.name.is_empty() && self.name != DEFAULT_CLASS_NAME {
                return Err(PlanError::new(
                    field("name"),
                    &self.name,
                    "the default class is always called 'default'",
                    "no name, or 'default'",
                ));
            }
            if let Some(m) = &self.matches {
                return Err(PlanError::new(
                    field("match"),
                    m,
                    "the default class takes what no class matches; it has no match",
                    "no match on the default class",
                ));
            }
        }
        let rate = self.rate_bps.bps();
        if rate == 0 || rate > parent.bps() {
            return Err(PlanError::new(
                field("rate_bps"),
                self.rate_bps,
                format!("the rate must be above 0 and at most the link rate {parent}"),
                format!("1bit to {parent}, written as {RATE_FORMS}"),
            ));
        }
        let ceil = self.ceil();
        if ceil < self.rate_bps || ceil > parent {
            return Err(PlanError::new(
                field("ceil_bps"),
                ceil,
                format!(
                    "the ceiling must be at least the rate {} and at most the link rate {parent}",
                    self.rate_bps
                ),
                format!("{} to {parent}", self.rate_bps),
            ));
        }
        for (name, rate) in [("burst_bytes", self.rate_bps), ("burst_bytes", ceil)] {
            let burst = self.burst_at(rate);
            let frame_fits = burst >= 64;
            if !frame_fits || wire::ticks(burst, rate.bytes_per_sec().max(1)).is_none() {
                return Err(PlanError::new(
                    field(name),
                    burst,
                    "the burst must hold a frame and take at most 274 s at the rate",
                    format!("64 bytes or more, written as {SIZE_FORMS}"),
                ));
            }
        }
        let queue = self.queue();
        if queue.duration().is_zero() || queue.duration().as_millis() > u128::from(MAX_QUEUE_MS) {
            return Err(PlanError::new(
                field("queue_ms"),
                queue,
                "the queue must hold more than 0 ms and at most 10 s of the rate",
                "a duration above 0 up to 10s, e.g. 100ms (or a number of milliseconds)",
            ));
        }
        if let Some(impairment) = &self.impairment {
            impairment.validate(&field("impairment"), features)?;
        }
        Ok(())
    }
}

/// The default burst at `rate`: 1 ms of it, at least [`MIN_BURST_BYTES`].
pub fn default_burst(rate: Rate) -> u64 {
    (rate.bytes_per_sec() / 1000).max(MIN_BURST_BYTES)
}

/// Delay, jitter and loss added by netem after a class's shaping.
#[derive(Debug, Clone, Copy, PartialEq, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Impairment {
    /// Added one-way delay.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub delay_ms: Option<Millis>,
    /// Random variation of the delay, at most the delay.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub jitter_ms: Option<Millis>,
    /// Share of packets dropped at random.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub loss_percent: Option<Percent>,
}

impl Impairment {
    fn validate(&self, path: &str, features: &Features) -> Result<(), PlanError> {
        if !features.netem {
            return Err(PlanError::new(
                path,
                serde_json::to_string(self).unwrap_or_default(),
                "netem is not available in this kernel, so delay, jitter and loss cannot be added",
                "no impairment on this kernel, or a kernel with netem (CONFIG_NET_SCH_NETEM)",
            ));
        }
        let delay = self.delay_ms.unwrap_or_default();
        if delay.duration().as_millis() > u128::from(MAX_DELAY_MS) {
            return Err(PlanError::new(
                format!("{path}.delay_ms"),
                delay,
                "the delay is too long",
                "0 to 60s",
            ));
        }
        if let Some(jitter) = self.jitter_ms
            && jitter > delay
        {
            return Err(PlanError::new(
                format!("{path}.jitter_ms"),
                jitter,
                format!("the jitter may not exceed the delay {delay}"),
                format!("0 to {delay}"),
            ));
        }
        Ok(())
    }
}

/// The value at a field path such as `egress.classes[1].rate_bps` (the form of
/// [`PlanError::field`]; `?` parts, as serde_path_to_error writes unknown ones, are skipped).
pub fn json_at<'a>(value: &'a serde_json::Value, path: &str) -> Option<&'a serde_json::Value> {
    let mut at = value;
    for part in path.split('.').filter(|p| !p.is_empty() && *p != "?") {
        let (name, index) = match part.split_once('[') {
            Some((name, rest)) => (
                name,
                Some(rest.trim_end_matches(']').parse::<usize>().ok()?),
            ),
            None => (part, None),
        };
        if !name.is_empty() {
            at = at.get(name)?;
        }
        if let Some(i) = index {
            at = at.get(i)?;
        }
    }
    Some(at)
}

/// A plan that cannot be applied: the field, the value given, what is wrong and what would be
/// accepted.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, thiserror::Error)]
#[error("{field} = {value}: {message}; accepted: {accepted}")]
pub struct PlanError {
    /// Path of the field, e.g. `egress.classes[1].ceil_bps`.
    pub field: String,
    /// The value as given.
    pub value: String,
    /// What is wrong with it.
    pub message: String,
    /// What would be accepted.
    pub accepted: String,
}

impl PlanError {
    /// An error about `field`.
    pub fn new(
        field: impl Into<String>,
        value: impl fmt::Display,
        message: impl Into<String>,
        accepted: impl Into<String>,
    ) -> PlanError {
        PlanError {
            field: field.into(),
            value: value.to_string(),
            message: message.into(),
            accepted: accepted.into(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn features(netem: bool) -> Features {
        Features {
            netem,
            ..Features::all()
        }
    }

    fn plan(json: &str) -> InterfacePlan {
        serde_json::from_str(json).unwrap()
    }

    const TWO_CLASSES: &str = r#"{"egress": {"rate_bps": "20mbit",
        "default": {"rate_bps": "1mbit", "ceil_bps": "20mbit"},
        "classes": [
          {"name": "cam", "rate_bps": "2mbit", "match": {"protocol": "tcp", "dst_port": 5001}},
          {"name": "lidar", "rate_bps": 8000000, "ceil_bps": "10mbit",
           "match": {"protocol": "tcp", "dst_port": "5002"}}]}}"#;

    fn field_of(p: &InterfacePlan) -> String {
        p.validate(&features(false)).unwrap_err().field
    }

    #[test]
    fn a_good_plan_passes_and_defaults_apply() {
        let p = plan(TWO_CLASSES);
        p.validate(&features(false)).unwrap();
        let egress = p.egress.as_ref().unwrap();
        assert_eq!(egress.classes[0].ceil(), Rate::from_bps(2_000_000));
        assert_eq!(egress.classes[0].queue(), Millis::from_ms(100));
        assert_eq!(egress.classes[0].burst_at(Rate::from_bps(2_000_000)), 1600);
        assert_eq!(
            egress.classes[0].burst_at(Rate::from_bps(1_000_000_000)),
            125_000
        );
    }

    #[test]
    fn each_rule_names_its_field() {
        let mut p = plan(TWO_CLASSES);
        p.egress.as_mut().unwrap().classes[1].rate_bps = Rate::from_bps(0);
        assert_eq!(field_of(&p), "egress.classes[1].rate_bps");

        let mut p = plan(TWO_CLASSES);
        p.egress.as_mut().unwrap().classes[1].rate_bps = Rate::from_bps(30_000_000);
        assert_eq!(
            field_of(&p),
            "egress.classes[1].rate_bps",
            "above the parent"
        );

        let mut p = plan(TWO_CLASSES);
        p.egress.as_mut().unwrap().classes[1].ceil_bps = Some(Rate::from_bps(1_000_000));
        let err = p.validate(&features(false)).unwrap_err();
        assert_eq!(err.field, "egress.classes[1].ceil_bps");
        assert_eq!(err.value, "1mbit");

        let mut p = plan(TWO_CLASSES);
        p.egress.as_mut().unwrap().classes[1].matches =
            p.egress.as_ref().unwrap().classes[0].matches.clone();
        let err = p.validate(&features(false)).unwrap_err();
        assert_eq!(err.field, "egress.classes[1].match");
        assert!(err.message.contains("'cam'"), "{err}");

        let mut p = plan(TWO_CLASSES);
        p.egress.as_mut().unwrap().classes[1].name = "cam".into();
        assert_eq!(field_of(&p), "egress.classes[1].name");

        let mut p = plan(TWO_CLASSES);
        p.egress.as_mut().unwrap().default.rate_bps = Rate::from_bps(15_000_000);
        assert_eq!(
            field_of(&p),
            "egress.classes",
            "sum of rates above the link"
        );

        let mut p = plan(TWO_CLASSES);
        p.egress.as_mut().unwrap().classes[0].queue_ms = Some(Millis::from_ms(0));
        assert_eq!(field_of(&p), "egress.classes[0].queue_ms");

        let mut p = plan(TWO_CLASSES);
        p.egress.as_mut().unwrap().rate_bps = Rate::from_bps(MAX_RATE_BPS + 1);
        assert_eq!(field_of(&p), "egress.rate_bps");

        assert_eq!(field_of(&InterfacePlan::default()), "egress");
    }

    #[test]
    fn values_are_found_by_their_field_path() {
        let p = plan(TWO_CLASSES);
        assert_eq!(
            p.value_at("egress.classes[1].rate_bps").as_deref(),
            Some("8000000")
        );
        assert_eq!(
            p.value_at("egress.classes[0].match").as_deref(),
            Some(r#"{"dst_port":5001,"protocol":"tcp"}"#)
        );
        assert_eq!(p.value_at("egress.classes[2].rate_bps"), None);
        assert_eq!(p.value_at("ingress"), None);
    }

    #[test]
    fn impairments_need_netem() {
        let mut p = plan(TWO_CLASSES);
        p.egress.as_mut().unwrap().classes[0].impairment = Some(Impairment {
            delay_ms: Some(Millis::from_ms(20)),
            ..Impairment::default()
        });
        let err = p.validate(&features(false)).unwrap_err();
        assert_eq!(err.field, "egress.classes[0].impairment");
        assert!(err.message.contains("netem is not available"), "{err}");
        p.validate(&features(true)).unwrap();
        p.egress.as_mut().unwrap().classes[0].impairment = Some(Impairment {
            delay_ms: Some(Millis::from_ms(20)),
            jitter_ms: Some(Millis::from_ms(30)),
            ..Impairment::default()
        });
        let err = p.validate(&features(true)).unwrap_err();
        assert_eq!(err.field, "egress.classes[0].impairment.jitter_ms");
    }

    #[test]
    fn unknown_fields_and_units_are_refused_when_reading() {
        let err = serde_json::from_str::<InterfacePlan>(r#"{"egress": {"rate": 5}}"#)
            .unwrap_err()
            .to_string();
        assert!(err.contains("unknown field `rate`"), "{err}");
        let err = serde_json::from_str::<InterfacePlan>(
            r#"{"egress": {"rate_bps": "5Mbps", "default": {"rate_bps": 1}}}"#,
        )
        .unwrap_err()
        .to_string();
        assert!(err.contains("ambiguous"), "{err}");
    }
}
