//! Reference workloads that run over real TCP through a lab while their quality is measured.
//!
//! - [`model`]: analytic models (knob → upload bitrate and expected QoS), kept as TOML data.
//!
//! Not here: shaping (the agent does it) or storage (the collector does it).

pub mod model;
