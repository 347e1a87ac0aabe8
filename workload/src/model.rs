//! Analytic models: how a QoS knob K in [k_min, 1] sets an analytic's upload bitrate (a linear
//! model per location) and its expected QoS (a monotone piecewise-linear curve).
//!
//! Models are data: the built-in set is `models/analytics.toml` (documented there), and users
//! load their own measured curves with [`ModelSet::from_toml`].

use serde::{Deserialize, Serialize};

/// The built-in models, from the reference deployment.
pub const BUILTIN_TOML: &str = include_str!("../models/analytics.toml");

/// A model file that does not describe valid analytics.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum ModelError {
    /// The TOML itself is malformed or misses a field.
    #[error("analytic models: {0}")]
    Syntax(String),
    /// A field has a value outside what is accepted.
    #[error("analytic '{kind}': {field} = {value} is not accepted: {accepted}")]
    Invalid {
        /// The analytic kind.
        kind: String,
        /// The field, e.g. `k_min`.
        field: &'static str,
        /// The value as written.
        value: String,
        /// What is accepted.
        accepted: &'static str,
    },
    /// A kind was asked for that the set does not have.
    #[error("unknown analytic kind '{kind}': known kinds are {known}")]
    UnknownKind {
        /// The kind asked for.
        kind: String,
        /// The kinds the set has, comma separated.
        known: String,
    },
    /// A knob outside the analytic's range.
    #[error("knob K = {knob} for '{kind}' is out of range: use a value in [{k_min}, 1]")]
    KnobOutOfRange {
        /// The analytic kind.
        kind: String,
        /// The knob given.
        knob: f64,
        /// The lowest accepted knob.
        k_min: f64,
    },
}

/// Where an analytic runs: on the gateway (edge) or in the cloud.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Location {
    /// On the gateway: processed data is uploaded.
    Edge,
    /// In the cloud: raw data is uploaded.
    Cloud,
}

/// A linear bitrate model: `slope_kbps · K + intercept_kbps` kbit/s (k = 1000).
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Linear {
    /// kbit/s per unit of K.
    pub slope_kbps: f64,
    /// kbit/s at K = 0.
    pub intercept_kbps: f64,
}

/// Bitrate models per location.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Bandwidth {
    /// When the analytic runs in the cloud (raw data uploaded).
    pub cloud: Linear,
    /// When the analytic runs at the edge (results uploaded).
    pub edge: Linear,
}

/// One analytic kind.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AnalyticModel {
    /// Kind name, e.g. `object-detection`.
    pub kind: String,
    /// Lowest knob value the analytic runs at.
    pub k_min: f64,
    /// Upload bitrate per location.
    pub bandwidth: Bandwidth,
    /// Expected QoS as `[K, QoS]` points, K ascending, QoS non-decreasing, both in [0, 1].
    pub qos: Vec<[f64; 2]>,
}

impl AnalyticModel {
    /// The upload bitrate in bit/s at knob `k` in `location`.
    pub fn rate_bps(&self, k: f64, location: Location) -> f64 {
        let m = self.linear(location);
        (m.slope_kbps * k + m.intercept_kbps) * 1000.0
    }

    /// The knob that uses `rate_bps` in `location`, clamped to [k_min, 1].
    pub fn knob_for_rate(&self, rate_bps: f64, location: Location) -> f64 {
        let m = self.linear(location);
        if m.slope_kbps <= 0.0 {
            return 1.0;
        }
        ((rate_bps / 1000.0 - m.intercept_kbps) / m.slope_kbps).clamp(self.k_min, 1.0)
    }

    /// The expected QoS at knob `k`: linear between the curve's points, constant outside.
    pub fn expected_qos(&self, k: f64) -> f64 {
        let points = &self.qos;
        let first = points[0];
        let last = points[points.len() - 1];
        if k <= first[0] {
            return first[1];
        }
        if k >= last[0] {
            return last[1];
        }
        let i = points.partition_point(|p| p[0] <= k);
        let ([k0, q0], [k1, q1]) = (points[i - 1], points[i]);
        q0 + (q1 - q0) * (k - k0) / (k1 - k0)
    }

    /// Checks that `k` is in [k_min, 1].
    pub fn check_knob(&self, k: f64) -> Result<f64, ModelError> {
        if (self.k_min..=1.0).contains(&k) {
            Ok(k)
        } else {
            Err(ModelError::KnobOutOfRange {
                kind: self.kind.clone(),
                knob: k,
                k_min: self.k_min,
            })
        }
    }

    fn linear(&self, location: Location) -> Linear {
        match location {
            Location::Edge => self.bandwidth.edge,
            Location::Cloud => self.bandwidth.cloud,
        }
    }

    fn validate(&self) -> Result<(), ModelError> {
        let invalid = |field, value: String, accepted| ModelError::Invalid {
            kind: self.kind.clone(),
            field,
            value,
            accepted,
        };
        if !(self.k_min > 0.0 && self.k_min <= 1.0) {
            return Err(invalid(
                "k_min",
                self.k_min.to_string(),
                "a number in (0, 1]",
            ));
        }
        for (field, m) in [
            ("bandwidth.cloud", self.bandwidth.cloud),
            ("bandwidth.edge", self.bandwidth.edge),
        ] {
            let ok = m.slope_kbps >= 0.0
                && m.intercept_kbps >= 0.0
                && m.slope_kbps + m.intercept_kbps > 0.0;
            if !ok {
                return Err(invalid(
                    field,
                    format!(
                        "{{ slope_kbps = {}, intercept_kbps = {} }}",
                        m.slope_kbps, m.intercept_kbps
                    ),
                    "non-negative slope and intercept, not both zero",
                ));
            }
        }
        let in_unit = |x: f64| (0.0..=1.0).contains(&x);
        let ordered = self
            .qos
            .windows(2)
            .all(|w| w[0][0] < w[1][0] && w[0][1] <= w[1][1]);
        if self.qos.is_empty()
            || !ordered
            || !self.qos.iter().all(|p| in_unit(p[0]) && in_unit(p[1]))
        {
            return Err(invalid(
                "qos",
                format!("{:?}", self.qos),
                "[K, QoS] points with K strictly ascending, QoS non-decreasing, both in [0, 1]",
            ));
        }
        Ok(())
    }
}

/// A set of analytic models, one per kind.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ModelSet {
    /// The analytics, in file order.
    #[serde(rename = "analytic")]
    pub analytics: Vec<AnalyticModel>,
}

impl ModelSet {
    /// The built-in models (object detection, audio classification).
    pub fn builtin() -> ModelSet {
        ModelSet::from_toml(BUILTIN_TOML).expect("the built-in models are valid")
    }

    /// Parses and validates a model file.
    pub fn from_toml(text: &str) -> Result<ModelSet, ModelError> {
        let set: ModelSet = toml::from_str(text).map_err(|e| ModelError::Syntax(e.to_string()))?;
        let mut kinds = std::collections::HashSet::new();
        for model in &set.analytics {
            model.validate()?;
            if !kinds.insert(model.kind.as_str()) {
                return Err(ModelError::Syntax(format!(
                    "kind '{}' is defined twice",
                    model.kind
                )));
            }
        }
        Ok(set)
    }

    /// The model of `kind`.
    pub fn get(&self, kind: &str) -> Result<&AnalyticModel, ModelError> {
        self.analytics
            .iter()
            .find(|m| m.kind == kind)
            .ok_or_else(|| ModelError::UnknownKind {
                kind: kind.to_string(),
                known: self
                    .analytics
                    .iter()
                    .map(|m| m.kind.as_str())
                    .collect::<Vec<_>>()
                    .join(", "),
            })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn builtin_models_give_the_reference_bitrates() {
        let set = ModelSet::builtin();
        let od = set.get("object-detection").unwrap();
        assert!((od.rate_bps(1.0, Location::Cloud) - 57_969.0).abs() < 1.0);
        assert!((od.rate_bps(0.2, Location::Cloud) - 15_953.0).abs() < 1.0);
        assert!((od.rate_bps(1.0, Location::Edge) - 34_180.0).abs() < 1.0);
        let audio = set.get("audio-classification").unwrap();
        assert!((audio.rate_bps(1.0, Location::Cloud) - 688_571.0).abs() < 1.0);
    }

    #[test]
    fn qos_is_interpolated_and_flat_outside_the_points() {
        let od = ModelSet::builtin().get("object-detection").unwrap().clone();
        assert_eq!(od.expected_qos(0.1), 0.525);
        assert_eq!(od.expected_qos(0.2), 0.525);
        assert!((od.expected_qos(0.3) - 0.6625).abs() < 1e-9);
        assert_eq!(od.expected_qos(0.9), 0.99);
        assert_eq!(od.expected_qos(1.0), 0.99);
    }

    #[test]
    fn knob_for_rate_inverts_the_bitrate_model_within_range() {
        let od = ModelSet::builtin().get("object-detection").unwrap().clone();
        let k = od.knob_for_rate(od.rate_bps(0.55, Location::Cloud), Location::Cloud);
        assert!((k - 0.55).abs() < 1e-9);
        assert_eq!(od.knob_for_rate(1.0, Location::Cloud), od.k_min);
        assert_eq!(od.knob_for_rate(1e9, Location::Cloud), 1.0);
    }

    #[test]
    fn bad_models_and_knobs_are_refused_with_the_field() {
        let od = ModelSet::builtin().get("object-detection").unwrap().clone();
        let err = od.check_knob(1.5).unwrap_err().to_string();
        assert!(err.contains("1.5") && err.contains("[0.2, 1]"), "{err}");
        let bad = BUILTIN_TOML.replacen("k_min = 0.2", "k_min = 1.5", 1);
        let err = ModelSet::from_toml(&bad).unwrap_err().to_string();
        assert!(err.contains("k_min = 1.5"), "{err}");
        let bad = BUILTIN_TOML.replacen("[0.4, 0.80]", "[0.4, 0.40]", 1);
        assert!(
            ModelSet::from_toml(&bad)
                .unwrap_err()
                .to_string()
                .contains("qos")
        );
        let err = ModelSet::builtin()
            .get("face-recognition")
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("object-detection, audio-classification"),
            "{err}"
        );
        assert!(matches!(
            ModelSet::from_toml("analytic = 3"),
            Err(ModelError::Syntax(_))
        ));
    }
}
