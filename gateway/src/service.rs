//! The live allocation service: registered analytics, the allocation in force, and the carrying
//! out of each decision (see the crate documentation for the order and the rollback).
//!
//! Events are handled one at a time; a [`Service`] is a cheap handle to share between the API
//! and the command line.

use std::sync::Arc;

use qoelab_agent::client::AgentClient;
use qoelab_planner::allocate::{self, Algorithm, Allocation};
use qoelab_planner::live::{Action, Decision, Event, Reallocator};
use qoelab_planner::shaping::{PlanOptions, ShapingPlan};
use qoelab_shaper::{ApplyReport, DirectionPlan, IfaceRef};
use qoelab_units::Rate;
use qoelab_workload::model::ModelSet;
use serde::Serialize;
use tokio::sync::{Mutex, broadcast};

use crate::ServiceError;
use crate::knob::{KnobMessage, Publisher, now_ms};
use crate::record::{DecisionStore, Stored};
use crate::registration::{Registration, check_name};
use crate::uplink::{Link, Uplink};

/// How the service allocates and where it enforces.
#[derive(Debug, Clone)]
pub struct Config {
    /// The gateway's name (in knob messages, MQTT topics and stored decisions).
    pub gateway: String,
    /// The uplink whose egress is shaped.
    pub uplink: IfaceRef,
    /// The uplink's rate, bit/s.
    pub budget_bps: u64,
    /// Kept for unclassified traffic (default: 1% of the budget, at least 1 kbit/s).
    pub reserve_bps: Option<u64>,
    /// The allocation algorithm.
    pub algorithm: Algorithm,
    /// Its tuning.
    pub options: allocate::Options,
    /// What classes match on, and whether they may borrow.
    pub plan_options: PlanOptions,
    /// Analytic models.
    pub models: ModelSet,
}

/// One step of a decision as carried out.
#[derive(Debug, Clone, Serialize)]
pub struct Step {
    /// What was done.
    #[serde(flatten)]
    pub what: StepKind,
    /// What the agent changed (shaping steps).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub shaping: Option<ApplyReport>,
    /// Knob deliveries that failed.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub undelivered: Vec<String>,
}

/// A step: one of the decision's actions, or a change of the link itself.
#[derive(Debug, Clone, Serialize)]
#[serde(untagged)]
pub enum StepKind {
    /// The root and default class (budget changes).
    Link(LinkStep),
    /// An action of the planner's decision.
    Action(Action),
}

/// The link's rate and reserve set, in place.
#[derive(Debug, Clone, Copy, Serialize)]
#[serde(tag = "action", rename = "set_link")]
pub struct LinkStep {
    /// The link.
    #[serde(flatten)]
    pub link: Link,
}

/// A decision carried out.
#[derive(Debug, Clone, Serialize)]
pub struct Applied {
    /// 1 for the first decision, then counting up.
    pub sequence: u64,
    /// What caused it, e.g. `register mic-4`.
    pub event: String,
    /// When, Unix ms.
    pub ts_ms: i64,
    /// The link now.
    pub link: Link,
    /// The allocation now (none when no analytic is registered).
    pub allocation: Option<Allocation>,
    /// The classes now.
    pub plan: ShapingPlan,
    /// What was done, in order.
    pub steps: Vec<Step>,
    /// How storing it went (none without a database).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub stored: Option<Stored>,
}

/// The state as `GET /v1/allocation` shows it.
#[derive(Debug, Clone, Serialize)]
pub struct View {
    /// The gateway's name.
    pub gateway: String,
    /// The shaped uplink.
    pub uplink: IfaceRef,
    /// Its rate and reserve.
    pub link: Link,
    /// The algorithm.
    pub algorithm: Algorithm,
    /// The last decision's sequence number (0 before the first).
    pub sequence: u64,
    /// The allocation in force.
    pub allocation: Option<Allocation>,
    /// The classes in force.
    pub plan: ShapingPlan,
    /// The registered analytics, in registration order.
    pub analytics: Vec<Registration>,
}

struct State {
    config: Config,
    reallocator: Reallocator,
    link: Link,
    uplink: Uplink,
    registrations: Vec<Registration>,
    allocation: Option<Allocation>,
    sequence: u64,
    publisher: Publisher,
    store: Option<DecisionStore>,
    stopped: bool,
}

/// A handle on the running service.
#[derive(Clone)]
pub struct Service {
    state: Arc<Mutex<State>>,
    decisions: broadcast::Sender<Applied>,
}

impl std::fmt::Debug for Service {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Service").finish_non_exhaustive()
    }
}

impl Service {
    /// Checks `config`, takes the uplink (shaped to the budget, no analytic yet) and starts with
    /// no analytic registered.
    pub async fn start(
        config: Config,
        agent: AgentClient,
        publisher: Publisher,
        store: Option<DecisionStore>,
    ) -> Result<Service, ServiceError> {
        check_name("gateway", &config.gateway)?;
        let link = Link::new(config.budget_bps, config.reserve_bps)?;
        let reallocator = Reallocator::new(
            link.allocatable_bps(),
            config.algorithm,
            config.options,
            config.plan_options,
        )?;
        let uplink = Uplink::take(agent, config.uplink.clone(), link).await?;
        let (decisions, _) = broadcast::channel(64);
        Ok(Service {
            state: Arc::new(Mutex::new(State {
                config,
                reallocator,
                link,
                uplink,
                registrations: Vec::new(),
                allocation: None,
                sequence: 0,
                publisher,
                store,
                stopped: false,
            })),
            decisions,
        })
    }

    /// Every decision carried out from now on.
    pub fn decisions(&self) -> broadcast::Receiver<Applied> {
        self.decisions.subscribe()
    }

    /// Registers an analytic, or replaces its registration; true when it is new.
    pub async fn register(
        &self,
        registration: Registration,
    ) -> Result<(bool, Applied), ServiceError> {
        let mut state = self.state.lock().await;
        let analytic = registration.analytic(&state.config.models)?;
        let mut registrations = state.registrations.clone();
        let new = match registrations.iter_mut().find(|r| r.id == registration.id) {
            Some(existing) => {
                *existing = registration;
                false
            }
            None => {
                registrations.push(registration);
                true
            }
        };
        let link = state.link;
        let applied = state
            .decide(Event::Register(analytic), link, registrations)
            .await?;
        Ok((new, self.announce(applied)))
    }

    /// Deregisters an analytic.
    pub async fn deregister(&self, id: &str) -> Result<Applied, ServiceError> {
        let mut state = self.state.lock().await;
        if !state.registrations.iter().any(|r| r.id == id) {
            return Err(ServiceError::Unknown { id: id.to_string() });
        }
        let mut registrations = state.registrations.clone();
        registrations.retain(|r| r.id != id);
        let link = state.link;
        let applied = state
            .decide(Event::Deregister(id.to_string()), link, registrations)
            .await?;
        let gateway = state.config.gateway.clone();
        state.publisher.forget(&gateway, id).await;
        Ok(self.announce(applied))
    }

    /// Changes the uplink's rate (and its reserve: given, or 1% of the new rate by default).
    pub async fn set_budget(
        &self,
        budget_bps: u64,
        reserve_bps: Option<u64>,
    ) -> Result<Applied, ServiceError> {
        let mut state = self.state.lock().await;
        let reserve_bps = reserve_bps.or(state.config.reserve_bps);
        let link = Link::new(budget_bps, reserve_bps)?;
        let registrations = state.registrations.clone();
        let applied = state
            .decide(Event::Budget(link.allocatable_bps()), link, registrations)
            .await?;
        state.config.budget_bps = budget_bps;
        state.config.reserve_bps = reserve_bps;
        Ok(self.announce(applied))
    }

    /// The state now.
    pub async fn view(&self) -> View {
        let state = self.state.lock().await;
        View {
            gateway: state.config.gateway.clone(),
            uplink: state.uplink.iface().clone(),
            link: state.link,
            algorithm: state.config.algorithm,
            sequence: state.sequence,
            allocation: state.allocation.clone(),
            plan: state.reallocator.plan().clone(),
            analytics: state.registrations.clone(),
        }
    }

    /// Puts the uplink back as found and disconnects from the broker; later events are refused.
    pub async fn stop(&self) -> Result<(), ServiceError> {
        let mut state = self.state.lock().await;
        if state.stopped {
            return Ok(());
        }
        state.stopped = true;
        state.publisher.close().await;
        state
            .uplink
            .release()
            .await
            .map_err(|e| ServiceError::agent(format!("restore {}", state.uplink.iface()), e))
    }

    fn announce(&self, applied: Applied) -> Applied {
        // Nobody listening is fine.
        let _ = self.decisions.send(applied.clone());
        applied
    }
}

impl State {
    /// Applies `event`; on success the state moves to `link` and `registrations`, on any error
    /// nothing changes.
    async fn decide(
        &mut self,
        event: Event,
        link: Link,
        registrations: Vec<Registration>,
    ) -> Result<Applied, ServiceError> {
        if self.stopped {
            return Err(ServiceError::Conflict(
                "the allocator is stopping: the uplink is no longer shaped by it".into(),
            ));
        }
        let before = self.reallocator.clone();
        let decision = self.reallocator.apply(event)?;
        let ts_ms = now_ms();
        let old_egress = self.uplink.egress().clone();
        let mut told = Vec::new();
        let steps = match self
            .carry_out(&decision, link, &registrations, ts_ms, &mut told)
            .await
        {
            Ok(steps) => steps,
            Err(err) => {
                self.reallocator = before;
                self.roll_back(old_egress, &told).await;
                return Err(err);
            }
        };
        self.link = link;
        self.registrations = registrations;
        self.allocation = decision.allocation.clone();
        self.sequence = decision.sequence;
        let stored = match (&mut self.store, &decision.allocation) {
            (Some(store), Some(allocation)) => {
                Some(store.store(decision.sequence, allocation, ts_ms).await)
            }
            _ => None,
        };
        Ok(Applied {
            sequence: decision.sequence,
            event: decision.event,
            ts_ms,
            link,
            allocation: decision.allocation,
            plan: decision.plan,
            steps,
            stored,
        })
    }

    /// Carries out `decision` under the move to `link`, noting in `told` the analytics whose
    /// knob messages went out.
    async fn carry_out(
        &mut self,
        decision: &Decision,
        link: Link,
        registrations: &[Registration],
        ts_ms: i64,
        told: &mut Vec<String>,
    ) -> Result<Vec<Step>, ServiceError> {
        let mut steps = Vec::new();
        self.move_link(self.link.between(&link), &mut steps).await?;
        for action in &decision.actions {
            steps.push(
                self.act(action, decision, registrations, ts_ms, told)
                    .await?,
            );
        }
        self.move_link(link, &mut steps).await?;
        Ok(steps)
    }

    /// Sets the root and default class for `link` unless they are so already.
    async fn move_link(&mut self, link: Link, steps: &mut Vec<Step>) -> Result<(), ServiceError> {
        if self.current_link() == link {
            return Ok(());
        }
        let report = self.uplink.set_link(link).await.map_err(|e| {
            let what = format!(
                "set the link to {} with {} reserved",
                Rate::from_bps(link.rate_bps),
                Rate::from_bps(link.reserve_bps)
            );
            ServiceError::agent(what, e)
        })?;
        steps.push(Step {
            what: StepKind::Link(LinkStep { link }),
            shaping: Some(report),
            undelivered: Vec::new(),
        });
        Ok(())
    }

    /// The link as the plan in force has it.
    fn current_link(&self) -> Link {
        let egress = self.uplink.egress();
        Link {
            rate_bps: egress.rate_bps.bps(),
            reserve_bps: egress.default.rate_bps.bps(),
        }
    }

    async fn act(
        &mut self,
        action: &Action,
        decision: &Decision,
        registrations: &[Registration],
        ts_ms: i64,
        told: &mut Vec<String>,
    ) -> Result<Step, ServiceError> {
        let agent_failed = |what: String| move |e| ServiceError::agent(what, e);
        let (shaping, undelivered) = match action {
            Action::SetClass(class) => {
                let what = format!(
                    "set the class of {} to {} bit/s",
                    class.analytic, class.rate_bps
                );
                let report = self
                    .uplink
                    .set_class(class)
                    .await
                    .map_err(agent_failed(what))?;
                (Some(report), Vec::new())
            }
            Action::RemoveClass { analytic } => {
                let what = format!("remove the class of {analytic}");
                let report = self
                    .uplink
                    .remove_class(analytic)
                    .await
                    .map_err(agent_failed(what))?;
                (Some(report), Vec::new())
            }
            Action::PublishKnob { analytic, .. } | Action::Pause { analytic } => {
                let message = self.message(
                    analytic,
                    decision.allocation.as_ref(),
                    decision.sequence,
                    ts_ms,
                );
                told.push(analytic.clone());
                (None, self.tell(registrations, &message).await)
            }
        };
        Ok(Step {
            what: StepKind::Action(action.clone()),
            shaping,
            undelivered,
        })
    }

    /// The knob message of `analytic` under `allocation` (paused when not admitted).
    fn message(
        &self,
        analytic: &str,
        allocation: Option<&Allocation>,
        sequence: u64,
        ts_ms: i64,
    ) -> KnobMessage {
        let share = allocation
            .and_then(|a| a.shares.iter().find(|s| s.id == analytic))
            .filter(|s| s.admitted);
        KnobMessage {
            schema: crate::knob::KNOB_SCHEMA.to_string(),
            gateway: self.config.gateway.clone(),
            analytic: analytic.to_string(),
            sequence,
            paused: share.is_none(),
            knob: share.map_or(0.0, |s| s.knob),
            rate_bps: share.map_or(0, |s| s.rate_bps),
            expected_qos: share.map_or(0.0, |s| s.expected_qos),
            ts_ms,
        }
    }

    async fn tell(&self, registrations: &[Registration], message: &KnobMessage) -> Vec<String> {
        let url = registrations
            .iter()
            .find(|r| r.id == message.analytic)
            .and_then(|r| r.knob_url.as_deref());
        self.publisher.send(url, message).await
    }

    /// Puts the previous plan back and tells the analytics already told their previous knob.
    async fn roll_back(&mut self, egress: DirectionPlan, told: &[String]) {
        if let Err(err) = self.uplink.put(egress).await {
            tracing::error!(
                uplink = %self.uplink.iface(),
                "could not put the previous plan back: {err}"
            );
        }
        let ts_ms = now_ms();
        for analytic in told {
            let message = self.message(analytic, self.allocation.as_ref(), self.sequence, ts_ms);
            let registrations = self.registrations.clone();
            self.tell(&registrations, &message).await;
        }
    }
}
