//! Test databases (shared with other crates' tests: `qoelab_collector::testing`) and what the
//! runner tests share: a workload that sleeps through its session, and waiting for a status.
// Each test binary uses a part of this.
#![allow(dead_code, unused_imports)]

use std::time::Duration;

use qoelab_collector::Db;
use qoelab_collector::campaign::{self, CampaignStatus, Workload};
use qoelab_collector::runner::Driver;
use qoelab_collector::session::Results;
use serde_json::{Value, json};
use tokio_util::sync::CancellationToken;

pub use qoelab_collector::testing::TestDb;

/// A workload that takes its session's time (or until cancelled) and reports a QoE record.
pub struct SleepingDriver;

impl Driver for SleepingDriver {
    async fn run(
        &self,
        _: &Workload,
        total: Duration,
        cancel: CancellationToken,
    ) -> Result<Option<Value>, String> {
        tokio::select! {
            _ = tokio::time::sleep(total) => Ok(Some(json!({"stall_count": 0, "qoe_class": "high"}))),
            _ = cancel.cancelled() => Err("cancelled".into()),
        }
    }
}

/// Waits up to 10 s for campaign `id` to reach `status`.
pub async fn wait_for(db: &Db, id: i64, status: CampaignStatus) {
    for _ in 0..400 {
        if campaign::get(db, id).await.unwrap().status == status {
            return;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    panic!("campaign {id} never became {status}");
}

/// What a capture of one TCP flow between the lab's client and server gives, `s2c_ip_bytes`
/// of it downloaded and `c2s_ip_bytes` uploaded.
pub fn one_flow(c2s_ip_bytes: u64, s2c_ip_bytes: u64) -> Results {
    let flow = json!({"protocol": "tcp", "client_ip": "198.18.1.2", "client_port": 1,
        "server_ip": "198.18.2.2", "server_port": 2, "c2s_ip_bytes": c2s_ip_bytes,
        "s2c_ip_bytes": s2c_ip_bytes});
    Results {
        bin_ms: 1000,
        flows: vec![flow.as_object().unwrap().clone()],
        ..Results::default()
    }
}
