//! The measured link as the runner sees it, implemented with the agent: a session's profile
//! becomes a shaping plan (the same limit in both directions, delay/loss as a netem impairment
//! where the kernel has it), and its capture is a live capture on the agent.

use qoelab_agent::client::{AgentClient, ClientError};
use qoelab_capture::{CaptureOutput, CaptureRequest};
use qoelab_shaper::{ClassPlan, DirectionPlan, IfaceRef, Impairment, InterfacePlan};
use qoelab_units::{Millis, Percent, Rate};

use crate::campaign::Profile;
use crate::runner::Network;
use crate::session::{Bin, Results};

/// Where sessions are shaped and captured.
#[derive(Debug, Clone)]
pub struct Link {
    /// The namespace of the interfaces (`None`: the agent's own).
    pub netns: Option<String>,
    /// Shaped on egress for upload (client → server), e.g. the router's uplink.
    pub upload_iface: String,
    /// Shaped on egress for download (server → client), e.g. the router's LAN side.
    pub download_iface: String,
    /// Where the capture runs.
    pub capture_iface: String,
    /// Series bin size, ms.
    pub bin_ms: u64,
    /// A capture stops itself after this long even if nobody stops it.
    pub max_capture_s: u64,
}

/// [`Network`] through the agent's socket API.
#[derive(Debug, Clone)]
pub struct AgentNetwork {
    client: AgentClient,
    link: Link,
}

impl AgentNetwork {
    /// The link `link` through the agent `client`.
    pub fn new(client: AgentClient, link: Link) -> AgentNetwork {
        AgentNetwork { client, link }
    }

    fn iface(&self, name: &str) -> IfaceRef {
        IfaceRef::new(self.link.netns.as_deref(), name)
    }
}

/// The rate of an unlimited profile that still needs a plan for its delay or loss.
const UNLIMITED_BPS: u64 = 10_000_000_000;

/// The plan that limits one direction to `profile`'s rate (the single default class carries all
/// traffic), with its delay and loss as an impairment; `None` when nothing is to be shaped.
pub fn plan_for(profile: &Profile) -> Option<InterfacePlan> {
    let impairment = (profile.delay_ms.is_some_and(|d| d > 0.0)
        || profile.loss.is_some_and(|l| l > 0.0))
    .then(|| Impairment {
        delay_ms: profile.delay_ms.map(|d| Millis::from_ms(d.round() as u64)),
        jitter_ms: None,
        loss_percent: profile.loss.and_then(|l| Percent::new(l * 100.0)),
    });
    let rate = Rate::from_bps(match (profile.rate_bps, &impairment) {
        (Some(bps), _) => bps,
        (None, Some(_)) => UNLIMITED_BPS,
        (None, None) => return None,
    });
    Some(InterfacePlan {
        egress: Some(limit(rate, impairment)),
        ingress: None,
    })
}

/// One direction limited to `rate`: a single default class carries all traffic.
pub fn limit(rate: Rate, impairment: Option<Impairment>) -> DirectionPlan {
    DirectionPlan {
        rate_bps: rate,
        default: ClassPlan {
            name: String::new(),
            rate_bps: rate,
            ceil_bps: None,
            burst_bytes: None,
            queue_ms: None,
            matches: None,
            impairment,
        },
        classes: Vec::new(),
    }
}

fn describe(e: ClientError) -> String {
    e.to_string()
}

impl Network for AgentNetwork {
    async fn apply(&self, profile: &Profile) -> Result<(), String> {
        let Some(plan) = plan_for(profile) else {
            return self.clear().await;
        };
        for name in [&self.link.upload_iface, &self.link.download_iface] {
            self.client
                .apply(&self.iface(name), &plan)
                .await
                .map_err(describe)?;
        }
        Ok(())
    }

    async fn clear(&self) -> Result<(), String> {
        for name in [&self.link.upload_iface, &self.link.download_iface] {
            match self.client.clear(&self.iface(name)).await {
                Ok(()) => {}
                // Not shaped: already clear.
                Err(ClientError::Api { status, .. }) if status.as_u16() == 404 => {}
                Err(e) => return Err(describe(e)),
            }
        }
        Ok(())
    }

    async fn start_capture(&self) -> Result<String, String> {
        let mut request = CaptureRequest::new(&self.link.capture_iface);
        request.netns = self.link.netns.clone();
        request.bin_ms = self.link.bin_ms;
        request.max_duration_s = self.link.max_capture_s;
        Ok(self
            .client
            .start_capture(&request)
            .await
            .map_err(describe)?
            .id)
    }

    async fn stop_capture(&self, id: &str) -> Result<Results, String> {
        let output = self.client.stop_capture(id).await.map_err(describe)?;
        from_capture(output, self.link.bin_ms)
            .map_err(|e| format!("the capture's output is unreadable: {e}"))
    }
}

/// A capture's output as the collector stores it: flow records as column maps, series rows
/// as numbered bins tied to flows by position.
pub fn from_capture(output: CaptureOutput, bin_ms: u64) -> Result<Results, serde_json::Error> {
    let flow_ids: Vec<u64> = output.flows.iter().map(|f| f.flow.flow_id).collect();
    let flows = output
        .flows
        .iter()
        .map(|f| match serde_json::to_value(f)? {
            serde_json::Value::Object(map) => Ok(map),
            other => Err(serde::de::Error::custom(format!(
                "a flow record is not an object: {other}"
            ))),
        })
        .collect::<Result<_, serde_json::Error>>()?;
    let first = output
        .series
        .iter()
        .map(|r| r.bin_start_unix_s)
        .fold(f64::INFINITY, f64::min);
    let series = output
        .series
        .iter()
        .filter_map(|r| {
            let flow_idx = match r.flow_id {
                None => None,
                // Rows of flows without a record (none in practice) are left out.
                Some(id) => Some(flow_ids.iter().position(|f| *f == id)? as u32),
            };
            Some(Bin {
                flow_idx,
                bin: ((r.bin_start_unix_s - first) / r.bin_s.max(1e-9)).round() as u32,
                start_ms: (r.bin_start_unix_s * 1000.0).round() as i64,
                c2s_bytes: r.c2s_ip_bytes,
                s2c_bytes: r.s2c_ip_bytes,
                c2s_pkts: r.c2s_pkts,
                s2c_pkts: r.s2c_pkts,
                c2s_retx: r.c2s_retx_pkts,
                s2c_retx: r.s2c_retx_pkts,
            })
        })
        .collect();
    Ok(Results {
        capture_id: None,
        bin_ms,
        warmup_ms: 0,
        flows,
        series,
        application: None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_profile_becomes_one_limited_default_class() {
        let plan = plan_for(&Profile {
            rate_bps: Some(2_000_000),
            delay_ms: Some(40.0),
            loss: Some(0.01),
        })
        .unwrap();
        let egress = plan.egress.unwrap();
        assert_eq!(egress.rate_bps.bps(), 2_000_000);
        assert_eq!(egress.default.rate_bps.bps(), 2_000_000);
        let imp = egress.default.impairment.unwrap();
        assert_eq!(imp.delay_ms, Some(Millis::from_ms(40)));
        assert!((imp.loss_percent.unwrap().percent() - 1.0).abs() < 1e-9);
        assert!(
            plan_for(&Profile {
                rate_bps: None,
                delay_ms: None,
                loss: None
            })
            .is_none()
        );
        let delayed = plan_for(&Profile {
            rate_bps: None,
            delay_ms: Some(20.0),
            loss: None,
        })
        .unwrap();
        assert_eq!(delayed.egress.unwrap().rate_bps.bps(), UNLIMITED_BPS);
        let plain = plan_for(&Profile {
            rate_bps: Some(1_000_000),
            delay_ms: Some(0.0),
            loss: None,
        })
        .unwrap();
        assert!(plain.egress.unwrap().default.impairment.is_none());
    }
}
