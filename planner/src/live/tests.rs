use std::collections::HashMap;

use qoelab_workload::model::Location;

use super::*;
use crate::analytic::tests::builtin;

/// Audio analytics upload 262–689 kbit/s from the cloud: three fit in 1 Mbit/s, four do not.
fn audio(i: u16) -> Analytic {
    let mut a = builtin(
        &format!("mic-{i}"),
        "audio-classification",
        f64::from(i),
        Location::Cloud,
    );
    a.port = Some(6000 + i);
    a
}

fn reallocator() -> Reallocator {
    Reallocator::new(
        1_000_000,
        Algorithm::Raa,
        allocate::Options::default(),
        PlanOptions::default(),
    )
    .unwrap()
}

/// A gateway carrying out actions: classes in force and what each analytic sends.
#[derive(Default)]
struct Gateway {
    classes: HashMap<String, u64>,
    sending_bps: HashMap<String, f64>,
}

impl Gateway {
    /// Carries out a decision, checking after every action that the classes fit `limit` and
    /// that every sending analytic has a class at least as fast as it sends.
    fn carry_out(&mut self, decision: &Decision, analytics: &[Analytic], limit: u64) {
        for action in &decision.actions {
            match action {
                Action::PublishKnob { analytic, knob } => {
                    let a = analytics.iter().find(|a| &a.id == analytic).unwrap();
                    self.sending_bps.insert(analytic.clone(), a.rate_bps(*knob));
                }
                Action::Pause { analytic } => {
                    self.sending_bps.remove(analytic);
                }
                Action::SetClass(class) => {
                    self.classes.insert(class.analytic.clone(), class.rate_bps);
                }
                Action::RemoveClass { analytic } => {
                    self.classes.remove(analytic);
                    // A departed analytic stops sending when it leaves.
                    if !analytics.iter().any(|a| &a.id == analytic) {
                        self.sending_bps.remove(analytic);
                    }
                }
            }
            let total: u64 = self.classes.values().sum();
            assert!(
                total <= limit,
                "after {action:?}: classes {total} > {limit}"
            );
            for (id, &sending) in &self.sending_bps {
                let class = self.classes.get(id).copied().unwrap_or(0);
                assert!(
                    class as f64 >= sending.floor(),
                    "after {action:?}: {id} sends {sending} with a class of {class}"
                );
            }
        }
        let expected: HashMap<String, u64> = decision
            .plan
            .classes
            .iter()
            .map(|c| (c.analytic.clone(), c.rate_bps))
            .collect();
        assert_eq!(self.classes, expected, "the actions reach the plan");
    }
}

#[test]
fn arrivals_and_departures_reallocate_without_gaps_or_oversubscription() {
    let mut r = reallocator();
    let mut gateway = Gateway::default();
    for i in 1..=3 {
        let d = r.apply(Event::Register(audio(i))).unwrap();
        assert_eq!(d.sequence, u64::from(i));
        gateway.carry_out(&d, r.analytics(), 1_000_000);
        assert_eq!(d.plan.classes.len(), usize::from(i));
    }
    let before = r.plan().clone();
    // A fourth arrival: the minimums (4 × 262 kbit/s) exceed 1 Mbit/s; the lightest pauses.
    let d = r.apply(Event::Register(audio(4))).unwrap();
    gateway.carry_out(&d, r.analytics(), 1_000_000);
    assert_eq!(d.plan.paused, ["mic-1"]);
    assert_eq!(d.event, "register mic-4");
    assert!(matches!(
        d.actions[0],
        Action::PublishKnob { .. } | Action::Pause { .. }
    ));
    assert!(d.actions.contains(&Action::Pause {
        analytic: "mic-1".into()
    }));
    assert!(d.actions.contains(&Action::RemoveClass {
        analytic: "mic-1".into()
    }));
    assert_ne!(&d.plan, &before);
    // The heaviest leaves: mic-1 is admitted again.
    let d = r.apply(Event::Deregister("mic-4".into())).unwrap();
    gateway.carry_out(&d, r.analytics(), 1_000_000);
    assert!(d.plan.paused.is_empty());
    assert!(d.plan.class("mic-1").is_some() && d.plan.class("mic-4").is_none());
    // A smaller budget: classes shrink before anything else.
    let d = r.apply(Event::Budget(900_000)).unwrap();
    gateway.carry_out(&d, r.analytics(), 1_000_000);
    assert!(d.plan.classes.iter().map(|c| c.rate_bps).sum::<u64>() <= 900_000);
    for id in ["mic-1", "mic-2", "mic-3"] {
        let d = r.apply(Event::Deregister(id.into())).unwrap();
        gateway.carry_out(&d, r.analytics(), 900_000);
    }
    assert!(r.plan().classes.is_empty() && gateway.classes.is_empty());
}

#[test]
fn an_unchanged_allocation_needs_no_actions_and_re_registering_replaces() {
    let mut r = reallocator();
    r.apply(Event::Register(audio(1))).unwrap();
    let d = r.apply(Event::Register(audio(1))).unwrap();
    assert!(d.actions.is_empty(), "{:?}", d.actions);
    let mut moved = audio(1);
    moved.port = Some(7000);
    let d = r.apply(Event::Register(moved)).unwrap();
    assert_eq!(r.analytics().len(), 1);
    assert!(
        matches!(&d.actions[..], [Action::SetClass(c)] if c.matches == crate::shaping::Match::Port(7000))
    );
}

#[test]
fn refused_events_change_nothing() {
    let mut r = reallocator();
    r.apply(Event::Register(audio(1))).unwrap();
    let plan = r.plan().clone();
    let err = r.apply(Event::Deregister("mic-9".into())).unwrap_err();
    assert_eq!(
        err.to_string(),
        "deregister analytic = 'mic-9' is not accepted: the id of a registered analytic"
    );
    let mut portless = audio(2);
    portless.port = None;
    let err = r.apply(Event::Register(portless)).unwrap_err();
    assert!(
        err.to_string().starts_with("analytic 'mic-2' port = none"),
        "{err}"
    );
    let err = r.apply(Event::Budget(0)).unwrap_err();
    assert!(err.to_string().starts_with("budget = 0bit"), "{err}");
    assert_eq!(r.plan(), &plan);
    assert_eq!(r.analytics().len(), 1);
    assert_eq!(r.apply(Event::Register(audio(3))).unwrap().sequence, 2);
}
