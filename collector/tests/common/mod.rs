//! Test databases (shared with other crates' tests: `qoelab_collector::testing`).

pub use qoelab_collector::testing::TestDb;
