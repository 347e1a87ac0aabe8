//! A gateway scenario: the apps requests may ask for, each an analytic of a model kind packaged
//! as an image of layers. The built-in one is `scenarios/gateway.toml` (documented there).

use std::collections::HashSet;

use qoelab_units::Size;
use qoelab_workload::model::ModelSet;
use serde::Deserialize;

use crate::PlanError;
use crate::placement::Layer;

/// The built-in scenario.
pub const BUILTIN_TOML: &str = include_str!("../scenarios/gateway.toml");

/// An app: an analytic kind in an image.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct App {
    /// Name requests use.
    pub name: String,
    /// Model kind of its analytic.
    pub kind: String,
    /// Weight of its analytics in the weighted QoS (default 1).
    #[serde(default = "default_weight")]
    pub weight: f64,
    /// Layer ids of its image, base first.
    pub image: Vec<String>,
}

fn default_weight() -> f64 {
    1.0
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct LayerEntry {
    id: String,
    size: Size,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ScenarioFile {
    #[serde(default)]
    layer: Vec<LayerEntry>,
    #[serde(default)]
    app: Vec<App>,
}

/// A validated scenario.
#[derive(Debug, Clone, PartialEq)]
pub struct Scenario {
    /// Every layer an image uses.
    pub layers: Vec<Layer>,
    /// The apps.
    pub apps: Vec<App>,
}

impl Scenario {
    /// The built-in scenario.
    pub fn builtin() -> Scenario {
        Scenario::from_toml(BUILTIN_TOML, "built-in scenario", &ModelSet::builtin())
            .expect("the built-in scenario is valid")
    }

    /// Parses and validates a scenario against `models`.
    pub fn from_toml(
        text: &str,
        source_name: &str,
        models: &ModelSet,
    ) -> Result<Scenario, PlanError> {
        let file: ScenarioFile =
            toml::from_str(text).map_err(|e| PlanError::syntax(source_name, e.message()))?;
        let layers: Vec<Layer> = file
            .layer
            .into_iter()
            .map(|l| Layer {
                id: l.id,
                bytes: l.size.bytes(),
            })
            .collect();
        let known: HashSet<&str> = layers.iter().map(|l| l.id.as_str()).collect();
        if file.app.is_empty() {
            return Err(PlanError::invalid(
                format!("{source_name} apps"),
                "none",
                "at least one [[app]]",
            ));
        }
        let mut names = HashSet::new();
        for app in &file.app {
            if !names.insert(app.name.as_str()) {
                return Err(PlanError::invalid(
                    "app name",
                    format!("'{}' (twice)", app.name),
                    "unique app names",
                ));
            }
            models.get(&app.kind)?;
            if !(app.weight.is_finite() && app.weight > 0.0) {
                return Err(PlanError::invalid(
                    format!("app '{}' weight", app.name),
                    app.weight,
                    "a positive finite number",
                ));
            }
            if let Some(missing) = app.image.iter().find(|l| !known.contains(l.as_str())) {
                return Err(PlanError::invalid(
                    format!("app '{}' image layer", app.name),
                    format!("'{missing}'"),
                    "a layer listed as [[layer]]",
                ));
            }
        }
        Ok(Scenario {
            layers,
            apps: file.app,
        })
    }

    /// The app called `name`.
    pub fn app(&self, name: &str) -> Result<(usize, &App), PlanError> {
        self.apps
            .iter()
            .enumerate()
            .find(|(_, a)| a.name == name)
            .ok_or_else(|| {
                let known: Vec<&str> = self.apps.iter().map(|a| a.name.as_str()).collect();
                PlanError::invalid(
                    "app",
                    format!("'{name}'"),
                    format!("one of {}", known.join(", ")),
                )
            })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_builtin_scenario_is_valid_and_larger_than_the_default_storage() {
        let s = Scenario::builtin();
        assert_eq!(s.apps.len(), 7);
        let total: u64 = s.layers.iter().map(|l| l.bytes).sum();
        assert!(total > 2_000_000_000, "{total}");
        assert_eq!(s.app("yolo-v3").unwrap().1.weight, 2.0);
        let err = s.app("lidar").unwrap_err().to_string();
        assert!(
            err.starts_with("app = 'lidar' is not accepted: one of yolo-v3, "),
            "{err}"
        );
    }

    #[test]
    fn bad_scenarios_are_refused_by_field() {
        let models = ModelSet::builtin();
        let bad = BUILTIN_TOML.replacen(
            "\"darknet\", \"yolov3-weights\"",
            "\"darknet\", \"yolo9\"",
            1,
        );
        let err = Scenario::from_toml(&bad, "s.toml", &models)
            .unwrap_err()
            .to_string();
        assert_eq!(
            err,
            "app 'yolo-v3' image layer = 'yolo9' is not accepted: a layer listed as [[layer]]"
        );
        let bad = BUILTIN_TOML.replacen("size = \"27mb\"", "size = \"27mbit\"", 1);
        let err = Scenario::from_toml(&bad, "s.toml", &models)
            .unwrap_err()
            .to_string();
        assert!(
            err.starts_with("s.toml: ") && err.contains("27mbit"),
            "{err}"
        );
        let err = Scenario::from_toml("", "s.toml", &models)
            .unwrap_err()
            .to_string();
        assert!(err.starts_with("s.toml apps = none"), "{err}");
    }
}
