//! What an analytic sends to register (`POST /v1/analytics`), and its checks beyond the
//! planner's: the id names the analytic's HTB class and an MQTT topic level, and the knob URL
//! must be reachable by HTTP.
//!
//! ```json
//! {"id": "mic-1", "kind": "audio-classification", "weight": 2, "location": "cloud",
//!  "k_min": 0.4, "port": 9101, "knob_url": "http://198.18.1.2:7001/knob"}
//! ```
//!
//! `weight` defaults to 1 and `k_min` to the model's lowest knob (the knob range is
//! [`k_min`, 1]); `port` (the destination port of its TCP uploads) or `address` (its source
//! address) is what its class matches, whichever the service matches by; `knob_url` is optional
//! when knobs go out over MQTT.

use std::net::IpAddr;

use qoelab_planner::analytic::{Analytic, AnalyticSpec};
use qoelab_workload::http;
use qoelab_workload::model::{Location, ModelSet};
use serde::{Deserialize, Serialize};

use crate::ServiceError;

/// The longest id: the agent's class-name limit.
const MAX_ID: usize = 64;

/// One analytic's registration.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Registration {
    /// Unique id: 1–64 letters, digits, `-`, `_` or `.`.
    pub id: String,
    /// Model kind, e.g. `audio-classification`.
    pub kind: String,
    /// Importance in the weighted QoS, > 0.
    #[serde(default = "one")]
    pub weight: f64,
    /// Where it runs (selects the bitrate model).
    pub location: Location,
    /// Lowest knob, at least the model's.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub k_min: Option<f64>,
    /// Destination port of its uploads.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub port: Option<u16>,
    /// Its source address.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub address: Option<IpAddr>,
    /// Where its knob is POSTed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub knob_url: Option<String>,
}

fn one() -> f64 {
    1.0
}

impl From<AnalyticSpec> for Registration {
    fn from(spec: AnalyticSpec) -> Registration {
        Registration {
            id: spec.id,
            kind: spec.kind,
            weight: spec.weight,
            location: spec.location,
            k_min: spec.k_min,
            port: spec.port,
            address: spec.address,
            knob_url: None,
        }
    }
}

impl Registration {
    /// Checks the registration and makes the planner's analytic of it.
    pub fn analytic(&self, models: &ModelSet) -> Result<Analytic, ServiceError> {
        check_name("id", &self.id)?;
        if let Some(url) = &self.knob_url {
            http::parse_url(url).map_err(|e| {
                ServiceError::invalid("knob_url", format!("'{url}'"), format!("{e}"))
            })?;
        }
        let spec = AnalyticSpec {
            id: self.id.clone(),
            kind: self.kind.clone(),
            weight: self.weight,
            location: self.location,
            k_min: self.k_min,
            port: self.port,
            address: self.address,
        };
        Ok(Analytic::new(spec, models)?)
    }
}

/// Checks a name that becomes an HTB class name and an MQTT topic level.
pub fn check_name(field: &str, name: &str) -> Result<(), ServiceError> {
    let valid = (1..=MAX_ID).contains(&name.len())
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"-_.".contains(&b))
        && name != "default";
    if valid {
        Ok(())
    } else {
        Err(ServiceError::invalid(
            field,
            format!("'{name}'"),
            "1 to 64 letters, digits, '-', '_' or '.', other than 'default'",
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn registration() -> Registration {
        serde_json::from_str(
            r#"{"id": "mic-1", "kind": "audio-classification", "location": "cloud",
                "port": 9101, "knob_url": "http://127.0.0.1:7001/knob"}"#,
        )
        .unwrap()
    }

    #[test]
    fn a_registration_becomes_an_analytic_with_defaults() {
        let a = registration().analytic(&ModelSet::builtin()).unwrap();
        assert_eq!((a.weight, a.k_min, a.port), (1.0, 0.38, Some(9101)));
    }

    #[test]
    fn bad_fields_are_named() {
        let models = ModelSet::builtin();
        let err = |r: Registration| r.analytic(&models).unwrap_err().to_string();
        let e = err(Registration {
            id: "cam/1".into(),
            ..registration()
        });
        assert!(e.starts_with("id = 'cam/1' is not accepted"), "{e}");
        let e = err(Registration {
            id: "default".into(),
            ..registration()
        });
        assert!(e.contains("other than 'default'"), "{e}");
        let e = err(Registration {
            knob_url: Some("127.0.0.1:7001".into()),
            ..registration()
        });
        assert!(e.starts_with("knob_url = '127.0.0.1:7001'"), "{e}");
        let e = err(Registration {
            weight: 0.0,
            ..registration()
        });
        assert_eq!(e, "weight = 0 is not accepted: a positive finite number");
        let e = err(Registration {
            k_min: Some(0.1),
            ..registration()
        });
        assert!(e.starts_with("k_min = 0.1 is not accepted"), "{e}");
    }
}
