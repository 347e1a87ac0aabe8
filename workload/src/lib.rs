//! Reference workloads that run over real TCP through a lab (or real networks) while their
//! quality is measured: the application side of a labeled dataset.
//!
//! - [`video`]: an ABR video server and a real-time player that records the session's QoE
//!   (startup, stalls, bitrate, switches, Pensieve's QoE_lin/QoE_log, labels).
//! - [`iot`]: gateway analytics (object detection, audio classification) that upload at the
//!   bitrate their QoS knob sets, a sink that measures delivery and computes the achieved QoS,
//!   and QoS reports over HTTP and MQTT.
//! - [`model`]: analytic models (knob → upload bitrate and expected QoS), kept as TOML data.
//! - [`trace`]: bandwidth traces, a seeded trace generator, and a player that hands each step's
//!   rate to a [`trace::RateSetter`].
//! - [`http`]: the small HTTP client they share.
//!
//! The JSON formats other parts of qoelab ingest (the video QoE record, the QoS report) are
//! documented field by field in `workload/FORMATS.md`.
//!
//! Not here: shaping (the agent does it; a trace only calls a [`trace::RateSetter`]) or storage
//! (the collector does it).

mod decimals;
pub mod http;
pub mod iot;
pub mod model;
mod random;
#[cfg(feature = "testing")]
pub mod testing;
pub mod trace;
pub mod video;
