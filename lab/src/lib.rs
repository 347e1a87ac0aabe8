//! Declarative network-namespace testbeds.
//!
//! A [`Topology`] lists nodes (each a network namespace), veth links between them with
//! addresses in 198.18.0.0/15, static routes and IP forwarding. [`Lab::build`] makes it real
//! over netlink, with segmentation offloads off so frames are wire-sized, under names unique to
//! the lab (`ql<lab>-<node>`, `ql<lab>-<iface>`) so that several labs coexist. A lab is removed
//! by [`Lab::teardown`], by dropping it, or, if its process died, by [`admin::clean`]; a
//! build-up that fails half-way removes what it created before it returns the error.
//!
//! Code runs inside a lab through [`NetNs`]: spawn a process there ([`Lab::spawn`]), run a
//! closure or a future there, or create sockets there and use them from anywhere.
//!
//! Not here: shaping, capture or anything else done *with* a lab.

pub mod admin;
mod configure;
mod error;
mod lab;
pub mod names;
pub mod netns;
pub mod offload;
mod privilege;
pub mod registry;
pub mod topology;

pub use error::{LabError, Result};
pub use lab::Lab;
pub use netns::NetNs;
pub use privilege::check as check_privileges;
pub use topology::{Endpoint, Link, Node, Route, Topology, standard};
