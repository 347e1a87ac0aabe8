//! The collector: storage, labeling campaigns, ingest, correlation and dataset export.
//!
//! - [`appliance`]: lab + agent + workload servers + runner on one machine (`qoelab up`).
//! - [`db`]: PostgreSQL or SQLite behind one pool and one portable schema (migrations at start).
//! - [`campaign`]: campaign specs, validation, the seeded spread of profiles over sessions.
//! - [`session`]: session states, storing a session's results in one transaction, queries.
//! - [`columns`]: the dataset's column documentation (`COLUMNS.md`).
//! - [`features`]: correlation of flows, series, profile and application report into one row.
//! - [`runner`]: runs campaigns session by session; serves external clients.
//! - [`application`]: the application data external clients report (`qoelab.app-qoe.v1`).
//! - [`gateways`]: several gateways' runners side by side over one database.
//! - [`workloads`]: the built-in workloads (video, IoT) as the runner's driver, in a lab or not.
//! - [`network`]: the runner's link through the agent (shaping plans, live captures).
//! - [`trace_shaping`]: a bandwidth trace played on a shaped interface, rates changed in place.
//! - [`events`]: progress events for live views.
//! - [`mqtt`]: QoS reports and placement/allocation decisions from an MQTT broker.
//! - [`ingest`]: batches of QoS reports and placement/allocation decisions, idempotent.
//! - [`export`]: CSV, JSON Lines and Parquet datasets, streamed.
//! - [`form`]: campaign specs as typed into a form or on the command line.
//! - [`models`]: trained QoE models in the database; a campaign as a classifier frame.
//!
//! Not here: HTML (the web crate renders), shaping and capture (the agent does them).

pub mod appliance;
pub mod application;
pub mod campaign;
pub mod columns;
pub mod db;
pub mod error;
pub mod events;
pub mod export;
pub mod features;
pub mod form;
pub mod gateways;
pub mod ingest;
pub mod models;
pub mod mqtt;
pub mod network;
pub mod runner;
pub mod session;
mod shuffle;
#[cfg(feature = "testing")]
pub mod testing;
pub mod trace_shaping;
pub mod workloads;

pub use db::{Backend, Db};
pub use error::{Error, Result};
