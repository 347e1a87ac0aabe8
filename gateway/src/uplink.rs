//! The gateway uplink's egress shaping, owned by the service while it runs.
//!
//! The HTB root is the link's rate (the budget); the default class guarantees the [`Link`]'s
//! reserve to traffic no analytic's class matches (and may borrow up to the link rate); each
//! admitted analytic has a class with its allocated rate. Every change is one `PUT` of the
//! whole plan, of which the agent sends only the differences: a rate change is an in-place
//! class change, an added or removed analytic adds or removes only its class and filters.
//!
//! An ingress plan already on the interface is kept as it is; an egress plan already there is a
//! conflict (someone else shapes the uplink). At the end the interface is put back as found.

use qoelab_agent::client::{AgentClient, ClientError};
use qoelab_planner::shaping::{self, Match as By};
use qoelab_shaper::classify::{Match, PortRange, Prefix, Protocol};
use qoelab_shaper::plan::MAX_RATE_BPS;
use qoelab_shaper::{ApplyReport, ClassPlan, DirectionPlan, IfaceRef, InterfacePlan};
use qoelab_units::{Millis, Rate};
use serde::Serialize;

use crate::ServiceError;

/// The reserve when none is given: this share of the link rate…
const DEFAULT_RESERVE_SHARE: u64 = 100;
/// …but at least this, bit/s.
const MIN_RESERVE_BPS: u64 = 1000;
/// IP protocol number of TCP.
const TCP: u8 = 6;
/// A class's queue holds at least this many full frames: with fewer, a TCP upload that loses a
/// packet cannot fast-retransmit, waits for a timeout, and the class idles below its rate.
const QUEUE_FRAMES: u64 = 10;
/// Bits of a full Ethernet frame at MTU 1500.
const FRAME_BITS: u64 = 1514 * 8;
/// The shortest queue, ms (the shaper's default).
const MIN_QUEUE_MS: u64 = 100;
/// The longest queue the shaper accepts, ms.
const MAX_QUEUE_MS: u64 = 10_000;

/// The link's rate and the default class's share of it; analytics share the rest.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct Link {
    /// The uplink's rate, bit/s (the HTB root).
    pub rate_bps: u64,
    /// Guaranteed to traffic of no analytic, bit/s (the default class).
    pub reserve_bps: u64,
}

impl Link {
    /// A link of `rate_bps` reserving `reserve_bps` (default: 1% of the rate, at least
    /// 1 kbit/s) for unclassified traffic.
    pub fn new(rate_bps: u64, reserve_bps: Option<u64>) -> Result<Link, ServiceError> {
        let reserve_bps =
            reserve_bps.unwrap_or((rate_bps / DEFAULT_RESERVE_SHARE).max(MIN_RESERVE_BPS));
        if reserve_bps == 0 {
            return Err(ServiceError::invalid(
                "reserve",
                "0bit",
                "a positive rate for unclassified traffic, e.g. 10kbit",
            ));
        }
        if rate_bps > MAX_RATE_BPS {
            return Err(ServiceError::invalid(
                "budget",
                Rate::from_bps(rate_bps),
                format!("at most {}", Rate::from_bps(MAX_RATE_BPS)),
            ));
        }
        if rate_bps <= reserve_bps {
            return Err(ServiceError::invalid(
                "budget",
                Rate::from_bps(rate_bps),
                format!(
                    "a rate above the reserve {} kept for unclassified traffic",
                    Rate::from_bps(reserve_bps)
                ),
            ));
        }
        Ok(Link {
            rate_bps,
            reserve_bps,
        })
    }

    /// What the analytics share, bit/s.
    pub fn allocatable_bps(&self) -> u64 {
        self.rate_bps - self.reserve_bps
    }

    /// The link to hold while going from `self` to `next`: the higher rate and the lower
    /// reserve, under which both the old and the new classes fit.
    pub fn between(&self, next: &Link) -> Link {
        Link {
            rate_bps: self.rate_bps.max(next.rate_bps),
            reserve_bps: self.reserve_bps.min(next.reserve_bps),
        }
    }
}

/// The planner's class as the shaper's: named after the analytic, TCP to its port or anything
/// from its address, with a queue of at least [`QUEUE_FRAMES`] full frames (100 ms at rates
/// above 1.2 Mbit/s; 462 ms at 262 kbit/s).
pub fn class_plan(class: &shaping::ClassPlan) -> ClassPlan {
    let matches = match class.matches {
        By::Port(port) => Match {
            protocol: Some(Protocol(TCP)),
            dst_port: Some(PortRange {
                first: port,
                last: port,
            }),
            ..Match::default()
        },
        By::Address(address) => Match {
            src: Some(
                address
                    .to_string()
                    .parse::<Prefix>()
                    .expect("an address is a prefix"),
            ),
            ..Match::default()
        },
    };
    let queue_ms = (QUEUE_FRAMES * FRAME_BITS * 1000)
        .div_ceil(class.rate_bps.max(1))
        .clamp(MIN_QUEUE_MS, MAX_QUEUE_MS);
    ClassPlan {
        name: class.analytic.clone(),
        rate_bps: Rate::from_bps(class.rate_bps),
        ceil_bps: Some(Rate::from_bps(class.ceil_bps)),
        burst_bytes: None,
        queue_ms: Some(Millis::from_ms(queue_ms)),
        matches: Some(matches),
        impairment: None,
    }
}

/// Sets the root and the default class of `plan` for `link`.
fn set_link(plan: &mut DirectionPlan, link: Link) {
    let rate = Rate::from_bps(link.rate_bps);
    plan.rate_bps = rate;
    plan.default.rate_bps = Rate::from_bps(link.reserve_bps);
    plan.default.ceil_bps = Some(rate);
}

/// The uplink's shaping as the service has it in force.
#[derive(Debug)]
pub struct Uplink {
    agent: AgentClient,
    iface: IfaceRef,
    ingress: Option<DirectionPlan>,
    egress: DirectionPlan,
}

impl Uplink {
    /// Takes the egress of `iface`: shapes it to `link` with no analytic classes yet.
    pub async fn take(
        agent: AgentClient,
        iface: IfaceRef,
        link: Link,
    ) -> Result<Uplink, ServiceError> {
        let found = match agent.plan(&iface).await {
            Ok(plan) => Some(plan),
            Err(ClientError::Api { status, .. }) if status.as_u16() == 404 => None,
            Err(e) => {
                return Err(ServiceError::agent(
                    format!("read the shaping of {iface}"),
                    e,
                ));
            }
        };
        let ingress = match found {
            Some(InterfacePlan {
                egress: Some(_), ..
            }) => {
                return Err(ServiceError::Conflict(format!(
                    "the egress of {iface} is shaped already: clear it first (`qoelab shape clear \
                     --iface {}`) so the allocator owns the uplink",
                    iface.name
                )));
            }
            Some(plan) => plan.ingress,
            None => None,
        };
        let mut egress = qoelab_collector::network::limit(Rate::from_bps(link.rate_bps), None);
        set_link(&mut egress, link);
        let mut uplink = Uplink {
            agent,
            iface,
            ingress,
            egress: egress.clone(),
        };
        uplink
            .put(egress)
            .await
            .map_err(|e| ServiceError::agent(format!("shape {}", uplink.iface), e))?;
        Ok(uplink)
    }

    /// The interface.
    pub fn iface(&self) -> &IfaceRef {
        &self.iface
    }

    /// The egress plan in force.
    pub fn egress(&self) -> &DirectionPlan {
        &self.egress
    }

    /// Makes `egress` the plan in force.
    pub async fn put(&mut self, egress: DirectionPlan) -> Result<ApplyReport, ClientError> {
        let plan = InterfacePlan {
            egress: Some(egress.clone()),
            ingress: self.ingress.clone(),
        };
        let report = self.agent.apply(&self.iface, &plan).await?;
        self.egress = egress;
        Ok(report)
    }

    /// Adds an analytic's class, or changes it in place.
    pub async fn set_class(
        &mut self,
        class: &shaping::ClassPlan,
    ) -> Result<ApplyReport, ClientError> {
        let class = class_plan(class);
        let mut egress = self.egress.clone();
        match egress.classes.iter_mut().find(|c| c.name == class.name) {
            Some(existing) => *existing = class,
            None => egress.classes.push(class),
        }
        self.put(egress).await
    }

    /// Removes an analytic's class.
    pub async fn remove_class(&mut self, analytic: &str) -> Result<ApplyReport, ClientError> {
        let mut egress = self.egress.clone();
        egress.classes.retain(|c| c.name != analytic);
        self.put(egress).await
    }

    /// Changes the root and the default class for `link`, in place.
    pub async fn set_link(&mut self, link: Link) -> Result<ApplyReport, ClientError> {
        let mut egress = self.egress.clone();
        set_link(&mut egress, link);
        self.put(egress).await
    }

    /// Puts the interface back as found: its ingress plan alone, or unshaped.
    pub async fn release(&self) -> Result<(), ClientError> {
        match &self.ingress {
            Some(ingress) => {
                let plan = InterfacePlan {
                    egress: None,
                    ingress: Some(ingress.clone()),
                };
                self.agent.apply(&self.iface, &plan).await.map(|_| ())
            }
            None => self.agent.clear(&self.iface).await,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn links_reserve_a_share_for_unclassified_traffic() {
        let link = Link::new(1_000_000, None).unwrap();
        assert_eq!(
            (link.reserve_bps, link.allocatable_bps()),
            (10_000, 990_000)
        );
        assert_eq!(Link::new(50_000, None).unwrap().reserve_bps, 1000);
        let err = Link::new(1000, None).unwrap_err().to_string();
        assert!(
            err.starts_with("budget = 1kbit is not accepted: a rate above the reserve 1kbit"),
            "{err}"
        );
        assert!(Link::new(1_000_000, Some(0)).is_err());
        let fixed = Link::new(2_000_000, Some(50_000)).unwrap();
        assert_eq!(
            link.between(&fixed),
            Link {
                rate_bps: 2_000_000,
                reserve_bps: 10_000
            }
        );
    }

    #[test]
    fn planner_classes_match_tcp_to_the_port_or_the_source() {
        let class = shaping::ClassPlan {
            analytic: "mic-1".into(),
            rate_bps: 330_000,
            ceil_bps: 330_000,
            matches: By::Port(9101),
        };
        let shaped = class_plan(&class);
        assert_eq!(shaped.name, "mic-1");
        assert_eq!(shaped.ceil(), Rate::from_bps(330_000));
        assert_eq!(
            shaped.queue(),
            Millis::from_ms(368),
            "10 frames at 330 kbit/s"
        );
        let fast = class_plan(&shaping::ClassPlan {
            rate_bps: 50_000_000,
            ..class.clone()
        });
        assert_eq!(fast.queue(), Millis::from_ms(100));
        assert_eq!(
            serde_json::to_string(&shaped.matches).unwrap(),
            r#"{"protocol":"tcp","dst_port":9101}"#
        );
        let by_source = class_plan(&shaping::ClassPlan {
            matches: By::Address("198.18.1.7".parse().unwrap()),
            ..class
        });
        assert_eq!(
            serde_json::to_string(&by_source.matches).unwrap(),
            r#"{"src":"198.18.1.7/32"}"#
        );
    }
}
