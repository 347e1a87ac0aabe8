//! [`AgentView`]: what the dashboard, `/metrics` and live predictions read from the agent,
//! as the agent's own JSON documents (so pages and tests need no live agent), and
//! [`ClientView`], the view of a real agent through its client. Without an agent the pages
//! say "agent not connected" and the metrics report it as down.

use std::collections::BTreeMap;

use serde::Deserialize;
use serde_json::Value;

use qoelab_collector::runner::BoxFuture;

/// A read-only view of the agent.
pub trait AgentView: Send + Sync {
    /// The agent's status document (`GET /v1/status`: version, features, capabilities,
    /// interfaces); rendered as key/value pairs.
    fn status(&self) -> BoxFuture<'_, Result<Value, String>>;

    /// Statistics of every shaped interface now: a JSON array of the agent's interface
    /// statistics (`iface {netns, name}`, `interval_ms`, `directions [{direction, device,
    /// classes [{name, classid, rate_bps, ceil_bps, bytes, packets, drops, overlimits,
    /// backlog_bytes, qlen, measured_bps}]}]`), each optionally with the `plan` in force. Read
    /// by [`interfaces`].
    fn stats(&self) -> BoxFuture<'_, Result<Value, String>>;

    /// What running capture `id` has measured so far, in the shape of the collector's
    /// `session::Results` (`bin_ms`, `flows`, `series`), for live QoE predictions.
    fn capture(&self, id: &str) -> BoxFuture<'_, Result<Value, String>> {
        let _ = id;
        Box::pin(async { Err("this agent does not report running captures".to_string()) })
    }
}

/// One shaped interface, as read from [`AgentView::stats`].
#[derive(Debug, Clone, Deserialize)]
pub struct InterfaceView {
    /// The interface.
    pub iface: IfaceView,
    /// Milliseconds between the two reads the measured rates come from.
    #[serde(default)]
    pub interval_ms: u64,
    /// Each shaped direction.
    #[serde(default)]
    pub directions: Vec<DirectionView>,
    /// The plan in force, as the agent sent it.
    #[serde(default)]
    pub plan: Option<Value>,
}

/// An interface, in a named network namespace or the agent's own.
#[derive(Debug, Clone, Deserialize)]
pub struct IfaceView {
    /// The namespace (`None` for the agent's own).
    #[serde(default)]
    pub netns: Option<String>,
    /// The interface name.
    pub name: String,
}

impl std::fmt::Display for IfaceView {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match &self.netns {
            Some(ns) => write!(f, "{}@{ns}", self.name),
            None => f.write_str(&self.name),
        }
    }
}

/// The classes of one direction.
#[derive(Debug, Clone, Deserialize)]
pub struct DirectionView {
    /// `egress` or `ingress`.
    pub direction: String,
    /// The device the classes live on.
    #[serde(default)]
    pub device: String,
    /// The classes.
    #[serde(default)]
    pub classes: Vec<ClassView>,
}

/// One class's limits and counters.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default)]
pub struct ClassView {
    /// The analytic's name, or `default`.
    pub name: String,
    /// The class handle.
    pub classid: String,
    /// Guaranteed rate, bit/s.
    pub rate_bps: u64,
    /// Ceiling, bit/s.
    pub ceil_bps: u64,
    /// Bytes sent.
    pub bytes: u64,
    /// Packets sent.
    pub packets: u64,
    /// Packets dropped.
    pub drops: u64,
    /// Times over its rate.
    pub overlimits: u64,
    /// Bytes queued now.
    pub backlog_bytes: u64,
    /// Measured send rate, bit/s, if known.
    pub measured_bps: Option<u64>,
}

/// Reads [`AgentView::stats`]'s document.
pub fn interfaces(stats: Value) -> Result<Vec<InterfaceView>, String> {
    serde_json::from_value(stats)
        .map_err(|e| format!("the agent's statistics are not in the expected form: {e}"))
}

/// The scalar fields of a JSON object, flattened with dotted names (`features.netem`), for a
/// key/value table.
pub fn flatten(value: &Value) -> BTreeMap<String, String> {
    fn walk(prefix: &str, value: &Value, out: &mut BTreeMap<String, String>) {
        match value {
            Value::Object(map) => {
                for (k, v) in map {
                    let key = if prefix.is_empty() {
                        k.clone()
                    } else {
                        format!("{prefix}.{k}")
                    };
                    walk(&key, v, out);
                }
            }
            Value::Array(items) if items.iter().all(|i| !i.is_object()) => {
                let texts: Vec<String> = items.iter().map(scalar_text).collect();
                out.insert(prefix.to_string(), texts.join(", "));
            }
            Value::Array(items) => {
                for (i, item) in items.iter().enumerate() {
                    walk(&format!("{prefix}[{i}]"), item, out);
                }
            }
            other => {
                out.insert(prefix.to_string(), scalar_text(other));
            }
        }
    }
    let mut out = BTreeMap::new();
    walk("", value, &mut out);
    out
}

/// A JSON scalar as text (strings without quotes).
pub fn scalar_text(value: &Value) -> String {
    match value {
        Value::String(s) => s.clone(),
        Value::Null => "–".into(),
        other => other.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn the_agents_statistics_are_read_tolerantly() {
        let doc = json!([{
            "iface": {"netns": "qlab-router", "name": "qlab-wan"},
            "interval_ms": 1000,
            "directions": [{"direction": "egress", "device": "qlab-wan", "classes": [
                {"name": "cam1", "classid": "7100:3", "rate_bps": 2000000, "ceil_bps": 2000000,
                 "bytes": 10, "packets": 1, "drops": 4, "overlimits": 0, "backlog_bytes": 0,
                 "qlen": 0, "measured_bps": 1900000, "future_field": true}
            ]}],
            "plan": {"egress": {}}
        }]);
        let ifaces = interfaces(doc).unwrap();
        assert_eq!(ifaces[0].iface.to_string(), "qlab-wan@qlab-router");
        let class = &ifaces[0].directions[0].classes[0];
        assert_eq!((class.drops, class.measured_bps), (4, Some(1_900_000)));
        let err = interfaces(json!({"not": "a list"})).unwrap_err();
        assert!(err.contains("expected form"), "{err}");
    }

    #[test]
    fn documents_flatten_to_dotted_keys() {
        let flat = flatten(&json!({"version": "0.1", "features": {"netem": false},
            "capabilities": ["CAP_NET_ADMIN", "CAP_NET_RAW"], "interfaces": [{"name": "wan"}]}));
        assert_eq!(flat["features.netem"], "false");
        assert_eq!(flat["capabilities"], "CAP_NET_ADMIN, CAP_NET_RAW");
        assert_eq!(flat["interfaces[0].name"], "wan");
        assert_eq!(flat["version"], "0.1");
    }
}
