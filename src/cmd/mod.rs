//! One module per top-level command.

pub mod campaign;
pub mod lab;
pub mod models;
pub mod plan;
pub mod predict;
pub mod report;
pub mod serve;
pub mod train;
