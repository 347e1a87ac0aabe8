//! From an allocation to a shaping-plan description: one class per admitted analytic with its
//! allocated rate, matched by the analytic's upload port or its source address. The agent's
//! client turns this into HTB classes and filters; this crate only describes them.

use std::collections::HashMap;
use std::net::IpAddr;

use serde::{Deserialize, Serialize};

use crate::PlanError;
use crate::allocate::Allocation;
use crate::analytic::Analytic;
use crate::error::named_enum;

/// How an analytic's traffic is recognized.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum MatchBy {
    /// The destination port of its uploads.
    Port,
    /// Its source address.
    Address,
}

named_enum!(MatchBy, "match by", [Port => "port", Address => "address"]);

/// What a class matches.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Match {
    /// Packets to this destination port (TCP or UDP).
    Port(u16),
    /// Packets from this source address.
    Address(IpAddr),
}

/// One analytic's class.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ClassPlan {
    /// The analytic's id.
    pub analytic: String,
    /// Guaranteed rate, bit/s (the allocation).
    pub rate_bps: u64,
    /// Ceiling, bit/s: the rate, or the budget when analytics may borrow unused bandwidth.
    pub ceil_bps: u64,
    /// Its traffic.
    pub matches: Match,
}

/// The classes under one uplink budget.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct ShapingPlan {
    /// The parent rate, bit/s.
    pub budget_bps: u64,
    /// One class per admitted analytic, in allocation order.
    pub classes: Vec<ClassPlan>,
    /// Analytics not admitted: no class; they are told to pause.
    pub paused: Vec<String>,
}

impl ShapingPlan {
    /// The class of `analytic`, if it has one.
    pub fn class(&self, analytic: &str) -> Option<&ClassPlan> {
        self.classes.iter().find(|c| c.analytic == analytic)
    }
}

/// How plans are made.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct PlanOptions {
    /// What classes match on.
    pub match_by: MatchBy,
    /// Whether classes may borrow up to the budget (ceil = budget) or are capped at their rate.
    pub borrow: bool,
}

impl Default for PlanOptions {
    fn default() -> PlanOptions {
        PlanOptions {
            match_by: MatchBy::Port,
            borrow: false,
        }
    }
}

/// The plan enforcing `allocation` of `analytics` (the allocation's problem, same order).
pub fn shaping_plan(
    allocation: &Allocation,
    analytics: &[Analytic],
    options: PlanOptions,
) -> Result<ShapingPlan, PlanError> {
    let mut plan = ShapingPlan {
        budget_bps: allocation.budget_bps,
        ..ShapingPlan::default()
    };
    let mut seen = HashMap::new();
    for (share, analytic) in allocation.shares.iter().zip(analytics) {
        if !share.admitted {
            plan.paused.push(share.id.clone());
            continue;
        }
        let matches = match options.match_by {
            MatchBy::Port => analytic.port.map(Match::Port),
            MatchBy::Address => analytic.address.map(Match::Address),
        }
        .ok_or_else(|| {
            PlanError::invalid(
                format!("analytic '{}' {}", analytic.id, options.match_by),
                "none",
                match options.match_by {
                    MatchBy::Port => "a port to match its uploads on",
                    MatchBy::Address => "an address to match its uploads on",
                },
            )
        })?;
        if let Some(other) = seen.insert(matches, &analytic.id) {
            let value = match matches {
                Match::Port(port) => port.to_string(),
                Match::Address(address) => address.to_string(),
            };
            return Err(PlanError::invalid(
                format!("analytic '{}' {}", analytic.id, options.match_by),
                &value,
                format!("a value no other analytic uses ('{other}' uses {value})"),
            ));
        }
        let rate_bps = share.rate_bps.max(1);
        plan.classes.push(ClassPlan {
            analytic: share.id.clone(),
            rate_bps,
            ceil_bps: if options.borrow {
                allocation.budget_bps
            } else {
                rate_bps
            },
            matches,
        });
    }
    Ok(plan)
}

#[cfg(test)]
mod tests {
    use qoelab_workload::model::Location;

    use super::*;
    use crate::allocate::{Algorithm, Options, Problem, allocate};
    use crate::analytic::tests::builtin;

    fn analytics() -> Vec<Analytic> {
        (0..3)
            .map(|i| {
                let mut a = builtin(
                    &format!("cam-{i}"),
                    "object-detection",
                    1.0 + i as f64,
                    Location::Cloud,
                );
                a.port = Some(5000 + i as u16);
                a.address = Some(format!("198.18.1.{}", 10 + i).parse().unwrap());
                a
            })
            .collect()
    }

    fn plan_for(
        budget_bps: u64,
        analytics: &[Analytic],
        options: PlanOptions,
    ) -> Result<ShapingPlan, PlanError> {
        let problem = Problem::new(budget_bps, analytics.to_vec()).unwrap();
        let allocation = allocate(&problem, Algorithm::Optimal, &Options::default()).unwrap();
        shaping_plan(&allocation, analytics, options)
    }

    #[test]
    fn one_class_per_admitted_analytic_with_its_rate() {
        let plan = plan_for(100_000, &analytics(), PlanOptions::default()).unwrap();
        assert_eq!(plan.budget_bps, 100_000);
        assert_eq!(plan.classes.len(), 3);
        assert!(plan.classes.iter().map(|c| c.rate_bps).sum::<u64>() <= 100_000);
        assert_eq!(plan.class("cam-2").unwrap().matches, Match::Port(5002));
        assert!(plan.classes.iter().all(|c| c.ceil_bps == c.rate_bps));
        let by_address = PlanOptions {
            match_by: MatchBy::Address,
            borrow: true,
        };
        let plan = plan_for(100_000, &analytics(), by_address).unwrap();
        assert_eq!(
            plan.class("cam-0").unwrap().matches,
            Match::Address("198.18.1.10".parse().unwrap())
        );
        assert!(plan.classes.iter().all(|c| c.ceil_bps == 100_000));
        // 40 kbit/s fits two lowest knobs (15.95 kbit/s each): the lightest is paused.
        let plan = plan_for(40_000, &analytics(), PlanOptions::default()).unwrap();
        assert_eq!(plan.paused, ["cam-0"]);
        assert!(plan.class("cam-0").is_none());
        let json = serde_json::to_string(&plan.classes[0]).unwrap();
        assert!(json.contains(r#""matches":{"port":5001}"#), "{json}");
    }

    #[test]
    fn missing_or_shared_match_fields_are_refused() {
        let mut list = analytics();
        list[1].port = None;
        let err = plan_for(100_000, &list, PlanOptions::default()).unwrap_err();
        assert_eq!(
            err.to_string(),
            "analytic 'cam-1' port = none is not accepted: a port to match its uploads on"
        );
        let mut list = analytics();
        list[2].port = Some(5000);
        let err = plan_for(100_000, &list, PlanOptions::default()).unwrap_err();
        assert_eq!(
            err.to_string(),
            "analytic 'cam-2' port = 5000 is not accepted: a value no other analytic uses \
             ('cam-0' uses 5000)"
        );
        let err = "dscp".parse::<MatchBy>().unwrap_err().to_string();
        assert_eq!(
            err,
            "match by = 'dscp' is not accepted: one of port, address"
        );
    }
}
