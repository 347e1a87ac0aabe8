//! One module per top-level command.

pub mod agent;
pub mod lab;
pub mod shape;
