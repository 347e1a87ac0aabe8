//! Decisions for an IoT gateway whose analytics run either at the edge or in the cloud:
//!
//! - [`allocate`]: split the upload budget among analytics by setting their QoS knobs
//!   (`raa`, `lagrange`, `weighted`, `unweighted`, and the `optimal` reference with its bound);
//! - [`placement`]: which analytic images to download to the gateway in a time slot (a
//!   set-union knapsack: layers shared or already present are charged once; `exact`, `fptas`,
//!   `greedy`);
//! - [`replacement`]: which layers to evict when storage passes its high watermark;
//! - [`requests`] and [`simulate`]: seeded request traces and a minute-stepped simulator that
//!   writes per-minute CSV and an SVG plot;
//! - [`shaping`] and [`live`]: turning an allocation into a shaping-plan description and
//!   reallocating on register/deregister events, with the order of changes that never
//!   oversubscribes the uplink.
//!
//! Analytic behaviour (knob → bitrate, expected QoS) comes from `qoelab-workload`'s models.
//!
//! Not here: talking to the agent, the shaper or a database. This crate decides; the caller
//! enforces and records.

pub mod allocate;
pub mod analytic;
pub mod error;
pub mod live;
pub mod placement;
pub mod replacement;
pub mod requests;
pub mod scenario;
pub mod shaping;
pub mod simulate;

pub use error::PlanError;
