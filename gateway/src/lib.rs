//! Live rate allocation on an IoT gateway: what `qoelab allocate --watch` runs.
//!
//! Analytics register and deregister over a small JSON API ([`api`]); on every change, and on
//! every budget change, the [`service::Service`] recomputes the allocation with the planner's
//! `live::Reallocator` and carries out the decision's actions in their order:
//!
//! - the uplink's shaping ([`uplink`]): one HTB class per admitted analytic, matched by its
//!   upload's destination port (or its source address), changed in place through the agent;
//!   classes shrink before others grow or are added, so the classes never exceed the budget
//!   and no sending analytic is ever without its class;
//! - the knobs ([`knob`]): POSTed to the URL an analytic registered and/or published (retained)
//!   on MQTT `qoelab/<gateway>/<analytic>/knob`; lower knobs go out before classes shrink,
//!   higher ones after they grow;
//! - the record ([`record`]): every decision as allocation decisions through the collector's
//!   ingest, retried with the next decision while the database is unreachable.
//!
//! A decision the agent refuses is rolled back: the plan in force is put back, knobs already
//! sent are sent again as they were, and the event is refused.
//!
//! Not here: the allocation algorithms (`qoelab-planner`), tc (`qoelab-agent`, `qoelab-shaper`),
//! the database schema (`qoelab-collector`).

pub mod api;
pub mod error;
pub mod knob;
pub mod record;
pub mod registration;
pub mod service;
pub mod uplink;

pub use error::ServiceError;
pub use registration::Registration;
pub use service::{Applied, Config, Service};
