//! [`ClientView`]: the [`AgentView`] of a real agent, read through its client.

use std::time::Duration;

use futures::future::try_join_all;
use qoelab_agent::client::{AgentClient, ClientError};
use qoelab_collector::network::from_capture;
use qoelab_collector::runner::BoxFuture;
use serde_json::Value;

use crate::AgentView;

/// Rates on the dashboard are measured over this long (the agent reads the counters twice).
const RATE_INTERVAL: Duration = Duration::from_millis(500);

/// The agent behind `client`, its captures binned by `bin_ms`.
#[derive(Debug, Clone)]
pub struct ClientView {
    client: AgentClient,
    bin_ms: u64,
}

impl ClientView {
    /// The view of the agent `client` reaches; live captures are read in bins of `bin_ms`.
    pub fn new(client: AgentClient, bin_ms: u64) -> ClientView {
        ClientView { client, bin_ms }
    }
}

fn describe(e: impl std::fmt::Display) -> String {
    e.to_string()
}

fn to_json(value: impl serde::Serialize) -> Result<Value, String> {
    serde_json::to_value(value).map_err(describe)
}

impl AgentView for ClientView {
    fn status(&self) -> BoxFuture<'_, Result<Value, String>> {
        Box::pin(async move { to_json(self.client.status().await.map_err(describe)?) })
    }

    fn stats(&self) -> BoxFuture<'_, Result<Value, String>> {
        Box::pin(async move {
            let shaped = self.client.interfaces().await.map_err(describe)?;
            let interval = RATE_INTERVAL.as_millis() as u64;
            let reads = shaped.iter().map(|s| async move {
                let stats = self.client.stats(&s.iface, interval).await?;
                Ok::<_, ClientError>((stats, &s.plan))
            });
            let mut out = Vec::new();
            for (stats, plan) in try_join_all(reads).await.map_err(describe)? {
                let mut stats = to_json(stats)?;
                stats["plan"] = to_json(plan)?;
                out.push(stats);
            }
            Ok(Value::Array(out))
        })
    }

    fn capture(&self, id: &str) -> BoxFuture<'_, Result<Value, String>> {
        let id = id.to_string();
        Box::pin(async move {
            let so_far = self.client.capture_snapshot(&id).await.map_err(describe)?;
            to_json(from_capture(so_far, self.bin_ms).map_err(describe)?)
        })
    }
}
