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

/// Runs `work` on the database at `url`, on a runtime of its own (for commands that are
/// otherwise synchronous).
pub fn with_db<T>(
    url: &str,
    work: impl AsyncFnOnce(&qoelab_collector::Db) -> anyhow::Result<T>,
) -> anyhow::Result<T> {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    runtime.block_on(async {
        let db = qoelab_collector::Db::connect(url).await?;
        work(&db).await
    })
}
