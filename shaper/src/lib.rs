//! Per-analytic traffic shaping with Linux tc, programmed over netlink.
//!
//! A [`plan::InterfacePlan`] says how one interface should be shaped: per direction, the link
//! rate, a default class, and one HTB class per analytic with its rate, ceiling, burst, queue
//! length, packet match and optional impairment. The [`Shaper`] turns plans into HTB qdiscs,
//! classes, byte-fifo queues and u32 filters (ingress through an IFB device), sending only
//! what differs from the kernel's state, changing rates in place and in one batch; it records
//! the interface's original qdiscs so it can restore them, and adopts its own leftovers after a
//! crash. [`wire`] encodes the kernel structures netlink-packet-route lacks.
//!
//! Not here: the socket API and privilege handling (the `qoelab-agent` crate), databases,
//! capture.

pub mod classify;
mod error;
pub mod features;
pub mod netlink;
pub mod plan;
pub mod reconcile;
mod shaper;
pub mod state;
pub mod stats;
pub mod tc;
pub mod wire;

pub use error::ShapeError;
pub use features::Features;
pub use plan::{
    ClassPlan, Direction, DirectionPlan, DirectionRates, Impairment, InterfacePlan, PlanError,
    RateChange, RateChanges,
};
pub use shaper::{ApplyReport, IFB_PREFIX, Shaper};
pub use state::IfaceRef;
pub use stats::{ClassStats, DirectionStats, InterfaceStats};
