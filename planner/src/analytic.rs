//! Analytics as the planner sees them: an id, a weight, where the analytic runs, its knob range
//! and its model (knob → upload bitrate, expected QoS).
//!
//! An analytics file (TOML) lists them:
//!
//! ```toml
//! [[analytic]]
//! id = "cam-1"                 # unique
//! kind = "object-detection"    # a kind of the model set
//! weight = 2.0                 # > 0 (default 1)
//! location = "cloud"           # edge | cloud
//! k_min = 0.3                  # optional: raise the model's lowest knob
//! port = 5001                  # optional: the destination port of its uploads (shaping match)
//! address = "198.18.1.2"       # optional: its source address (shaping match)
//! ```

use std::net::IpAddr;

use qoelab_workload::model::{AnalyticModel, Location, ModelSet};
use serde::{Deserialize, Serialize};

use crate::PlanError;

/// An analytic as written in a file or sent by a registering analytic.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AnalyticSpec {
    /// Unique id.
    pub id: String,
    /// Model kind, e.g. `object-detection`.
    pub kind: String,
    /// Importance in the weighted QoS (default 1).
    #[serde(default = "default_weight")]
    pub weight: f64,
    /// Where it runs.
    pub location: Location,
    /// Lowest knob, if higher than the model's.
    #[serde(default)]
    pub k_min: Option<f64>,
    /// Destination port of its uploads.
    #[serde(default)]
    pub port: Option<u16>,
    /// Its source address.
    #[serde(default)]
    pub address: Option<IpAddr>,
}

fn default_weight() -> f64 {
    1.0
}

/// A validated analytic with its model.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Analytic {
    /// Unique id.
    pub id: String,
    /// Weight in the weighted QoS, > 0.
    pub weight: f64,
    /// Where it runs (selects the bitrate model).
    pub location: Location,
    /// Lowest knob, in (0, 1].
    pub k_min: f64,
    /// Its model.
    pub model: AnalyticModel,
    /// Destination port of its uploads, for shaping.
    pub port: Option<u16>,
    /// Source address, for shaping.
    pub address: Option<IpAddr>,
}

impl Analytic {
    /// Validates `spec` and attaches its model from `models`.
    pub fn new(spec: AnalyticSpec, models: &ModelSet) -> Result<Analytic, PlanError> {
        let field = |name: &str| format!("analytic '{}' {name}", spec.id);
        if spec.id.trim().is_empty() {
            return Err(PlanError::invalid("analytic id", "''", "a non-empty name"));
        }
        if !(spec.weight.is_finite() && spec.weight > 0.0) {
            return Err(PlanError::invalid(
                field("weight"),
                spec.weight,
                "a positive finite number",
            ));
        }
        let model = models.get(&spec.kind)?.clone();
        let k_min = spec.k_min.unwrap_or(model.k_min);
        if !(k_min >= model.k_min && k_min <= 1.0) {
            return Err(PlanError::invalid(
                field("k_min"),
                k_min,
                format!(
                    "a knob in [{}, 1] (the '{}' model's range: k_min may only raise its lowest knob)",
                    model.k_min, model.kind
                ),
            ));
        }
        Ok(Analytic {
            id: spec.id,
            weight: spec.weight,
            location: spec.location,
            k_min,
            model,
            port: spec.port,
            address: spec.address,
        })
    }

    /// Upload bitrate in bit/s at knob `k`.
    pub fn rate_bps(&self, k: f64) -> f64 {
        self.model.rate_bps(k, self.location)
    }

    /// Expected QoS at knob `k`.
    pub fn expected_qos(&self, k: f64) -> f64 {
        self.model.expected_qos(k)
    }

    /// Weighted QoS at knob `k`.
    pub fn value(&self, k: f64) -> f64 {
        self.weight * self.expected_qos(k)
    }

    /// Whether the bitrate does not depend on the knob (then the knob is always 1).
    pub fn is_flat(&self) -> bool {
        self.rate_bps(1.0) <= self.rate_bps(0.0)
    }

    /// The knob on admission: `k_min`, or 1 when the bitrate does not depend on the knob.
    pub fn entry_knob(&self) -> f64 {
        if self.is_flat() { 1.0 } else { self.k_min }
    }

    /// The bitrate on admission.
    pub fn min_rate_bps(&self) -> f64 {
        self.rate_bps(self.entry_knob())
    }

    /// The bitrate at knob 1.
    pub fn max_rate_bps(&self) -> f64 {
        self.rate_bps(1.0)
    }

    /// The knob that uses `rate_bps`, within [entry knob, 1].
    pub fn knob_for_rate(&self, rate_bps: f64) -> f64 {
        if self.is_flat() {
            return 1.0;
        }
        let slope = self.rate_bps(1.0) - self.rate_bps(0.0);
        ((rate_bps - self.rate_bps(0.0)) / slope).clamp(self.k_min, 1.0)
    }

    /// The knobs where the weighted QoS, as a function of bitrate, changes slope: the entry
    /// knob, the QoS curve's points inside the range, and 1. Between two of them the value is
    /// linear in the bitrate, so every optimum puts all analytics but one on a vertex.
    pub fn vertices(&self) -> Vec<f64> {
        let entry = self.entry_knob();
        let mut knobs = vec![entry];
        knobs.extend(
            self.model
                .qos
                .iter()
                .map(|p| p[0])
                .filter(|&k| k > entry && k < 1.0),
        );
        if entry < 1.0 {
            knobs.push(1.0);
        }
        knobs
    }

    /// Whether the weighted QoS is concave in the bitrate over [entry, 1] (slopes between
    /// vertices never increase): then marginal-utility water-filling is exact.
    pub fn is_concave(&self) -> bool {
        let slopes: Vec<f64> = self
            .vertices()
            .windows(2)
            .map(|w| self.slope(w[0], w[1]))
            .collect();
        slopes
            .windows(2)
            .all(|s| s[1] <= s[0] + 1e-12 * s[0].abs().max(1.0))
    }

    /// Weighted QoS gained per bit/s between knobs `from` and `to` (`to` > `from`).
    pub fn slope(&self, from: f64, to: f64) -> f64 {
        let cost = self.rate_bps(to) - self.rate_bps(from);
        if cost <= 0.0 {
            return f64::INFINITY;
        }
        (self.value(to) - self.value(from)) / cost
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct AnalyticsFile {
    #[serde(default)]
    analytic: Vec<AnalyticSpec>,
}

/// Reads an analytics file (see the module doc) without validating the analytics.
pub fn parse_specs(text: &str, source_name: &str) -> Result<Vec<AnalyticSpec>, PlanError> {
    let file: AnalyticsFile =
        toml::from_str(text).map_err(|e| PlanError::syntax(source_name, e.message()))?;
    Ok(file.analytic)
}

/// Parses an analytics file (see the module doc) and validates every analytic.
pub fn parse_analytics(
    text: &str,
    source_name: &str,
    models: &ModelSet,
) -> Result<Vec<Analytic>, PlanError> {
    parse_specs(text, source_name)?
        .into_iter()
        .map(|spec| Analytic::new(spec, models))
        .collect()
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// An analytic of a built-in kind.
    pub(crate) fn builtin(id: &str, kind: &str, weight: f64, location: Location) -> Analytic {
        let spec = AnalyticSpec {
            id: id.into(),
            kind: kind.into(),
            weight,
            location,
            k_min: None,
            port: None,
            address: None,
        };
        Analytic::new(spec, &ModelSet::builtin()).unwrap()
    }

    #[test]
    fn a_file_parses_with_defaults_and_optional_fields() {
        let text = r#"
            [[analytic]]
            id = "cam-1"
            kind = "object-detection"
            location = "cloud"
            [[analytic]]
            id = "mic-1"
            kind = "audio-classification"
            weight = 3
            location = "edge"
            k_min = 0.5
            port = 5001
            address = "198.18.1.2"
        "#;
        let a = parse_analytics(text, "a.toml", &ModelSet::builtin()).unwrap();
        assert_eq!(a[0].weight, 1.0);
        assert_eq!(a[0].k_min, 0.2);
        assert_eq!(a[1].k_min, 0.5);
        assert_eq!(a[1].port, Some(5001));
        assert_eq!(a[1].address, Some("198.18.1.2".parse().unwrap()));
    }

    #[test]
    fn bad_fields_are_refused_by_name_and_value() {
        let models = ModelSet::builtin();
        let spec = |weight: f64, k_min: Option<f64>, kind: &str| AnalyticSpec {
            id: "cam-1".into(),
            kind: kind.into(),
            weight,
            location: Location::Cloud,
            k_min,
            port: None,
            address: None,
        };
        let err = Analytic::new(spec(-1.0, None, "object-detection"), &models).unwrap_err();
        assert_eq!(
            err.to_string(),
            "analytic 'cam-1' weight = -1 is not accepted: a positive finite number"
        );
        let err = Analytic::new(spec(1.0, Some(1.2), "object-detection"), &models).unwrap_err();
        assert_eq!(
            err.to_string(),
            "analytic 'cam-1' k_min = 1.2 is not accepted: a knob in [0.2, 1] (the \
             'object-detection' model's range: k_min may only raise its lowest knob)"
        );
        // Below the model's lowest knob the analytic could be told a knob it cannot run at.
        let err = Analytic::new(spec(1.0, Some(0.1), "object-detection"), &models).unwrap_err();
        assert!(err.to_string().contains("k_min = 0.1"), "{err}");
        let err = Analytic::new(spec(1.0, None, "lidar"), &models).unwrap_err();
        assert!(
            err.to_string().contains("unknown analytic kind 'lidar'"),
            "{err}"
        );
        let err = parse_analytics("[[analytic]]\nid = 3", "a.toml", &models).unwrap_err();
        assert!(err.to_string().starts_with("a.toml: "), "{err}");
        let err = parse_analytics(
            "[[analytic]]\nid='a'\nkind='object-detection'\nlocation='moon'",
            "a.toml",
            &models,
        )
        .unwrap_err();
        assert!(err.to_string().contains("moon"), "{err}");
    }

    #[test]
    fn vertices_and_concavity_follow_the_curve() {
        let od = builtin("a", "object-detection", 1.0, Location::Cloud);
        assert_eq!(od.vertices(), vec![0.2, 0.4, 0.6, 0.8, 1.0]);
        assert!(od.is_concave());
        // A lowest knob below the curve's first point adds a flat start: not concave.
        let mut flat_start = od.clone();
        flat_start.k_min = 0.1;
        assert_eq!(flat_start.vertices()[..2], [0.1, 0.2]);
        assert!(!flat_start.is_concave());
        // At the edge audio uploads labels only: the knob costs nothing and sits at 1.
        let audio = builtin("b", "audio-classification", 1.0, Location::Edge);
        assert!(audio.is_flat());
        assert_eq!(audio.entry_knob(), 1.0);
        assert_eq!(audio.vertices(), vec![1.0]);
        assert_eq!(audio.knob_for_rate(0.0), 1.0);
    }
}
