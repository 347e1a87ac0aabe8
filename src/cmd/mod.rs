//! One module per top-level command.

pub mod agent;
pub mod campaign;
pub mod capture;
pub mod flows;
pub mod lab;
pub mod models;
pub mod plan;
pub mod predict;
pub mod report;
pub mod serve;
pub mod shape;
pub mod shape_trace;
pub mod train;
pub mod up;
pub mod watch;
pub mod workload;
