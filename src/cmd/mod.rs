//! One module per top-level command.

pub mod capture;
pub mod flows;
pub mod lab;
