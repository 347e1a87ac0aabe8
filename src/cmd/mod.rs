//! One module per top-level command.

pub mod lab;
pub mod workload;
