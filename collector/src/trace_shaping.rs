//! A bandwidth trace played on a shaped interface through the agent: [`TraceShaper`] is the
//! [`RateSetter`] that `qoelab_workload::trace::play` drives.
//!
//! Each new rate changes the shaped direction in place (one `PUT` of the plan in force with new
//! rates; the agent sends only the differences, so the HTB root, the default class and their
//! queues are changed, never deleted): the direction's link rate becomes the trace's rate and
//! its default class gets what the other classes do not guarantee, borrowing up to the link
//! rate. Classes of analytics keep their rates; their ceilings are capped at the new link rate.
//!
//! A rate of 0 (link down) is shaped as [`DOWN_BPS`]: HTB has no zero rate, and at 64 bit/s a
//! full frame leaves about every three minutes.

use qoelab_agent::client::{AgentClient, ClientError};
use qoelab_shaper::{ApplyReport, Direction, IfaceRef, InterfacePlan};
use qoelab_units::Rate;
use qoelab_workload::trace::RateSetter;

/// The rate that stands for a trace's 0 (link down), bit/s.
pub const DOWN_BPS: u64 = 64;

/// Why a trace's rate could not be set.
#[derive(Debug, thiserror::Error)]
pub enum TraceShapeError {
    /// The agent refused or could not be reached.
    #[error(transparent)]
    Agent(#[from] ClientError),
    /// The direction has no shaping to change.
    #[error(
        "{direction} of {iface} is not shaped: shape it first (e.g. `qoelab shape trace` does, \
         or apply a plan with an [{direction}] section)"
    )]
    NotShaped {
        /// The interface.
        iface: String,
        /// The direction.
        direction: Direction,
    },
    /// The classes guarantee at least the new rate, leaving the default class nothing.
    #[error(
        "a link rate of {rate} is not accepted on {direction} of {iface}: its classes guarantee \
         {classes} together and the default class needs a share; use rates above {classes} or \
         lower the classes' rates"
    )]
    BelowClasses {
        /// The interface.
        iface: String,
        /// The direction.
        direction: Direction,
        /// The rate asked for.
        rate: Rate,
        /// What the classes guarantee.
        classes: Rate,
    },
}

/// Changes the link rate of one shaped direction of an interface, in place.
#[derive(Debug, Clone)]
pub struct TraceShaper {
    client: AgentClient,
    iface: IfaceRef,
    direction: Direction,
    applied: ApplyReport,
}

impl TraceShaper {
    /// Plays on `direction` of `iface` through the agent `client`.
    pub fn new(client: AgentClient, iface: IfaceRef, direction: Direction) -> TraceShaper {
        TraceShaper {
            client,
            iface,
            direction,
            applied: ApplyReport::default(),
        }
    }

    /// What the rate changes so far did to the kernel's objects, summed.
    pub fn applied(&self) -> ApplyReport {
        self.applied
    }

    /// `plan` with the direction's link at `rate_bps` (see the module doc).
    pub fn plan_at(
        &self,
        plan: &InterfacePlan,
        rate_bps: u64,
    ) -> Result<InterfacePlan, TraceShapeError> {
        let mut plan = plan.clone();
        let Some(shaped) = plan.direction_mut(self.direction) else {
            return Err(TraceShapeError::NotShaped {
                iface: self.iface.to_string(),
                direction: self.direction,
            });
        };
        let rate = Rate::from_bps(rate_bps.max(DOWN_BPS));
        let classes: u64 = shaped.classes.iter().map(|c| c.rate_bps.bps()).sum();
        if rate.bps() <= classes {
            return Err(TraceShapeError::BelowClasses {
                iface: self.iface.to_string(),
                direction: self.direction,
                rate,
                classes: Rate::from_bps(classes),
            });
        }
        shaped.rate_bps = rate;
        shaped.default.rate_bps = Rate::from_bps(rate.bps() - classes);
        shaped.default.ceil_bps = (!shaped.classes.is_empty()).then_some(rate);
        for class in &mut shaped.classes {
            class.ceil_bps = class.ceil_bps.map(|ceil| ceil.min(rate));
        }
        Ok(plan)
    }
}

impl RateSetter for TraceShaper {
    type Error = TraceShapeError;

    async fn set_rate(&mut self, rate_bps: u64) -> Result<(), TraceShapeError> {
        // The plan in force now, so changes others made meanwhile are kept.
        let plan = match self.client.plan(&self.iface).await {
            Ok(plan) => plan,
            Err(ClientError::Api { status, .. }) if status.as_u16() == 404 => {
                return Err(TraceShapeError::NotShaped {
                    iface: self.iface.to_string(),
                    direction: self.direction,
                });
            }
            Err(err) => return Err(err.into()),
        };
        let next = self.plan_at(&plan, rate_bps)?;
        let report = self.client.apply(&self.iface, &next).await?;
        self.applied.created += report.created;
        self.applied.changed += report.changed;
        self.applied.deleted += report.deleted;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::network::limit;

    fn shaper(direction: Direction) -> TraceShaper {
        TraceShaper::new(
            AgentClient::new("/nonexistent.sock"),
            IfaceRef::new(Some("qlx-router"), "qlx-wan"),
            direction,
        )
    }

    fn with_class() -> InterfacePlan {
        let mut egress = limit(Rate::from_bps(10_000_000), None);
        egress.default.rate_bps = Rate::from_bps(7_000_000);
        egress.classes.push(
            serde_json::from_str(
                r#"{"name": "cam", "rate_bps": "3mbit", "ceil_bps": "10mbit",
                    "match": {"protocol": "tcp", "dst_port": 5001}}"#,
            )
            .unwrap(),
        );
        InterfacePlan {
            egress: Some(egress),
            ingress: Some(limit(Rate::from_bps(50_000_000), None)),
        }
    }

    #[test]
    fn the_link_and_default_class_follow_the_rate_and_classes_keep_theirs() {
        let only_default = InterfacePlan {
            egress: Some(limit(Rate::from_bps(8_000_000), None)),
            ingress: None,
        };
        let plan = shaper(Direction::Egress)
            .plan_at(&only_default, 2_000_000)
            .unwrap();
        let egress = plan.egress.unwrap();
        assert_eq!(egress.rate_bps.bps(), 2_000_000);
        assert_eq!(egress.default.rate_bps.bps(), 2_000_000);
        assert_eq!(egress.default.ceil(), Rate::from_bps(2_000_000));

        let plan = shaper(Direction::Egress)
            .plan_at(&with_class(), 6_000_000)
            .unwrap();
        assert_eq!(
            plan.ingress,
            with_class().ingress,
            "the other direction is kept"
        );
        let egress = plan.egress.unwrap();
        assert_eq!(egress.default.rate_bps.bps(), 3_000_000, "6 − 3 mbit");
        assert_eq!(egress.default.ceil(), Rate::from_bps(6_000_000));
        assert_eq!(egress.classes[0].rate_bps.bps(), 3_000_000);
        assert_eq!(
            egress.classes[0].ceil(),
            Rate::from_bps(6_000_000),
            "capped"
        );

        let down = shaper(Direction::Ingress)
            .plan_at(&with_class(), 0)
            .unwrap();
        assert_eq!(down.ingress.unwrap().rate_bps.bps(), DOWN_BPS);
    }

    #[test]
    fn rates_the_classes_fill_and_unshaped_directions_are_refused() {
        let err = shaper(Direction::Egress)
            .plan_at(&with_class(), 3_000_000)
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("3mbit is not accepted") && err.contains("guarantee 3mbit"),
            "{err}"
        );
        let egress_only = InterfacePlan {
            ingress: None,
            ..with_class()
        };
        let err = shaper(Direction::Ingress)
            .plan_at(&egress_only, 1_000_000)
            .unwrap_err()
            .to_string();
        assert!(
            err.starts_with("ingress of qlx-wan in namespace qlx-router is not shaped"),
            "{err}"
        );
    }
}
