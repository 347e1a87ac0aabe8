//! One module per top-level command.

pub mod campaign;
pub mod lab;
