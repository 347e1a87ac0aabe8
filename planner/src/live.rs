//! Reallocation on register/deregister events: the pure core of `qoelab allocate --watch`.
//!
//! A [`Reallocator`] holds the registered analytics, the budget and the plan in force. Each
//! [`Event`] recomputes the allocation and returns a [`Decision`]: the new allocation and plan,
//! and the [`Action`]s that take the gateway from the old plan to the new one in an order that
//! never oversubscribes the uplink and never leaves a sending analytic without its class:
//!
//! 1. knobs that go down are published (and analytics no longer admitted are paused), so
//!    those analytics send less before their classes shrink;
//! 2. classes that shrink are changed;
//! 3. classes of departed or paused analytics are removed;
//! 4. classes of newly admitted analytics are added;
//! 5. classes that grow are changed;
//! 6. knobs that go up, and the knobs of newly admitted analytics, are published.
//!
//! An analytic is expected to send only after its first knob arrives, so a new class always
//! exists before its traffic does. A refused event (a bad analytic, an unknown id) changes
//! nothing. The caller carries out the actions (agent, MQTT/HTTP) and stores the decisions.

use serde::Serialize;

use crate::PlanError;
use crate::allocate::{self, Algorithm, Allocation, Problem};
use crate::analytic::Analytic;
use crate::shaping::{ClassPlan, PlanOptions, ShapingPlan, shaping_plan};

/// Something that changes the allocation.
#[derive(Debug, Clone, PartialEq)]
pub enum Event {
    /// An analytic registers (or re-registers with new properties, replacing the old ones).
    Register(Analytic),
    /// An analytic leaves.
    Deregister(String),
    /// The uplink budget changes, bit/s.
    Budget(u64),
}

impl Event {
    fn describe(&self) -> String {
        match self {
            Event::Register(a) => format!("register {}", a.id),
            Event::Deregister(id) => format!("deregister {id}"),
            Event::Budget(bps) => format!("budget {bps} bit/s"),
        }
    }
}

/// One step from the old plan to the new.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "snake_case", tag = "action")]
pub enum Action {
    /// Tell an analytic its knob.
    PublishKnob {
        /// The analytic.
        analytic: String,
        /// Its knob.
        knob: f64,
    },
    /// Tell an analytic to stop sending (not admitted).
    Pause {
        /// The analytic.
        analytic: String,
    },
    /// Create or change a class.
    SetClass(ClassPlan),
    /// Remove an analytic's class.
    RemoveClass {
        /// The analytic.
        analytic: String,
    },
}

/// The outcome of one event, to carry out and to store.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Decision {
    /// 1 for the first decision, then counting up.
    pub sequence: u64,
    /// What caused it, e.g. `register cam-4`.
    pub event: String,
    /// The allocation (none when no analytic is registered).
    pub allocation: Option<Allocation>,
    /// The plan now in force.
    pub plan: ShapingPlan,
    /// How to get there, in order.
    pub actions: Vec<Action>,
}

/// Registered analytics and the plan in force.
#[derive(Debug, Clone)]
pub struct Reallocator {
    budget_bps: u64,
    algorithm: Algorithm,
    options: allocate::Options,
    plan_options: PlanOptions,
    analytics: Vec<Analytic>,
    plan: ShapingPlan,
    knobs: Vec<(String, f64)>,
    sequence: u64,
}

impl Reallocator {
    /// No analytics yet, an empty plan under `budget_bps`.
    pub fn new(
        budget_bps: u64,
        algorithm: Algorithm,
        options: allocate::Options,
        plan_options: PlanOptions,
    ) -> Result<Reallocator, PlanError> {
        options.validate()?;
        check_budget(budget_bps)?;
        Ok(Reallocator {
            budget_bps,
            algorithm,
            options,
            plan_options,
            analytics: Vec::new(),
            plan: ShapingPlan {
                budget_bps,
                ..ShapingPlan::default()
            },
            knobs: Vec::new(),
            sequence: 0,
        })
    }

    /// The plan in force.
    pub fn plan(&self) -> &ShapingPlan {
        &self.plan
    }

    /// The registered analytics, in registration order.
    pub fn analytics(&self) -> &[Analytic] {
        &self.analytics
    }

    /// Applies an event; on error nothing changes.
    pub fn apply(&mut self, event: Event) -> Result<Decision, PlanError> {
        let mut analytics = self.analytics.clone();
        let mut budget_bps = self.budget_bps;
        match &event {
            Event::Register(a) => match analytics.iter_mut().find(|x| x.id == a.id) {
                Some(existing) => *existing = a.clone(),
                None => analytics.push(a.clone()),
            },
            Event::Deregister(id) => {
                let before = analytics.len();
                analytics.retain(|a| &a.id != id);
                if analytics.len() == before {
                    return Err(PlanError::invalid(
                        "deregister analytic",
                        format!("'{id}'"),
                        "the id of a registered analytic",
                    ));
                }
            }
            Event::Budget(bps) => budget_bps = check_budget(*bps)?,
        }
        let (allocation, plan) = if analytics.is_empty() {
            let empty = ShapingPlan {
                budget_bps,
                ..ShapingPlan::default()
            };
            (None, empty)
        } else {
            let problem = Problem::new(budget_bps, analytics.clone())?;
            let allocation = allocate::allocate(&problem, self.algorithm, &self.options)?;
            let plan = shaping_plan(&allocation, &analytics, self.plan_options)?;
            (Some(allocation), plan)
        };
        let knobs: Vec<(String, f64)> = allocation.as_ref().map_or(Vec::new(), |a| {
            a.shares
                .iter()
                .filter(|s| s.admitted)
                .map(|s| (s.id.clone(), s.knob))
                .collect()
        });
        let actions = transition(&self.plan, &plan, &self.knobs, &knobs);
        self.sequence += 1;
        self.analytics = analytics;
        self.budget_bps = budget_bps;
        self.plan = plan.clone();
        self.knobs = knobs;
        Ok(Decision {
            sequence: self.sequence,
            event: event.describe(),
            allocation,
            plan,
            actions,
        })
    }
}

fn check_budget(budget_bps: u64) -> Result<u64, PlanError> {
    if budget_bps == 0 {
        Err(PlanError::invalid(
            "budget",
            "0bit",
            "a positive rate, e.g. 1mbit",
        ))
    } else {
        Ok(budget_bps)
    }
}

fn knob_of(knobs: &[(String, f64)], id: &str) -> Option<f64> {
    knobs.iter().find(|(k, _)| k == id).map(|(_, v)| *v)
}

/// The ordered actions from (`old`, `old_knobs`) to (`new`, `new_knobs`); see the module doc.
pub fn transition(
    old: &ShapingPlan,
    new: &ShapingPlan,
    old_knobs: &[(String, f64)],
    new_knobs: &[(String, f64)],
) -> Vec<Action> {
    let mut lower_knobs = Vec::new();
    let mut shrink = Vec::new();
    let mut remove = Vec::new();
    let mut add = Vec::new();
    let mut grow = Vec::new();
    let mut raise_knobs = Vec::new();
    for (id, knob) in new_knobs {
        let publish = Action::PublishKnob {
            analytic: id.clone(),
            knob: *knob,
        };
        match knob_of(old_knobs, id) {
            Some(before) if *knob < before => lower_knobs.push(publish),
            Some(before) if *knob == before => {}
            _ => raise_knobs.push(publish),
        }
    }
    for id in &new.paused {
        if !old.paused.contains(id) {
            lower_knobs.push(Action::Pause {
                analytic: id.clone(),
            });
        }
    }
    for class in &old.classes {
        if new.class(&class.analytic).is_none() {
            remove.push(Action::RemoveClass {
                analytic: class.analytic.clone(),
            });
        }
    }
    for class in &new.classes {
        match old.class(&class.analytic) {
            None => add.push(Action::SetClass(class.clone())),
            Some(before) if before == class => {}
            Some(before) if class.rate_bps < before.rate_bps => {
                shrink.push(Action::SetClass(class.clone()))
            }
            Some(_) => grow.push(Action::SetClass(class.clone())),
        }
    }
    [lower_knobs, shrink, remove, add, grow, raise_knobs].concat()
}

#[cfg(test)]
mod tests;
