//! Test databases for this crate's tests and those of crates built on it: a fresh PostgreSQL
//! database per test (dropped afterwards) and a fresh SQLite file, so every test runs against
//! both backends and tests never share state. Compiled with the `testing` feature only.

use crate::Db;

/// Where the test PostgreSQL server is; `.ci/run` starts one and creates this role.
pub fn pg_admin_url() -> String {
    std::env::var("QOELAB_TEST_PG")
        .unwrap_or_else(|_| "postgres://qoelab:qoelab@127.0.0.1/postgres".into())
}

/// A database that disappears when dropped.
pub struct TestDb {
    /// The migrated database.
    pub db: Db,
    /// Its URL.
    pub url: String,
    cleanup: Option<Box<dyn FnOnce() + Send>>,
}

impl Drop for TestDb {
    fn drop(&mut self) {
        if let Some(cleanup) = self.cleanup.take() {
            cleanup();
        }
    }
}

fn unique(prefix: &str) -> String {
    use std::sync::atomic::{AtomicU32, Ordering};
    static N: AtomicU32 = AtomicU32::new(0);
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .subsec_nanos();
    format!(
        "{prefix}_{}_{}_{}",
        std::process::id(),
        nanos,
        N.fetch_add(1, Ordering::Relaxed)
    )
}

impl TestDb {
    /// A fresh PostgreSQL database on [`pg_admin_url`]'s server, dropped with the value.
    pub async fn postgres() -> TestDb {
        let admin = pg_admin_url();
        let name = unique("qltest");
        sqlx::any::install_default_drivers();
        let mut conn = <sqlx::AnyConnection as sqlx::Connection>::connect(&admin)
            .await
            .unwrap_or_else(|e| {
                panic!(
                    "the test PostgreSQL at {admin} is unreachable ({e}); start it as .ci/run does"
                )
            });
        sqlx::query(sqlx::AssertSqlSafe(format!("CREATE DATABASE {name}")))
            .execute(&mut conn)
            .await
            .unwrap();
        let url = format!("{}/{name}", admin.rsplit_once('/').unwrap().0);
        let db = Db::connect(&url).await.unwrap();
        TestDb {
            db,
            url,
            cleanup: Some(Box::new(move || {
                std::thread::spawn(move || {
                    let rt = tokio::runtime::Builder::new_current_thread()
                        .enable_all()
                        .build()
                        .unwrap();
                    // FORCE ends the test's own pool connections; that pool belongs to the
                    // test's runtime, which is blocked here, so it cannot be closed politely.
                    rt.block_on(async move {
                        let mut conn = <sqlx::AnyConnection as sqlx::Connection>::connect(&admin)
                            .await
                            .unwrap();
                        let drop = format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)");
                        sqlx::query(sqlx::AssertSqlSafe(drop))
                            .execute(&mut conn)
                            .await
                            .unwrap();
                    })
                })
                .join()
                .unwrap();
            })),
        }
    }

    /// A fresh SQLite file in the temporary directory, removed with the value.
    pub async fn sqlite() -> TestDb {
        let path = std::env::temp_dir().join(format!("{}.db", unique("qltest")));
        let url = format!("sqlite://{}", path.display());
        let db = Db::connect(&url).await.unwrap();
        TestDb {
            db,
            url,
            cleanup: Some(Box::new(move || {
                for suffix in ["", "-wal", "-shm"] {
                    let _ = std::fs::remove_file(format!("{}{suffix}", path.display()));
                }
            })),
        }
    }

    /// Both backends, for tests that must behave the same on each.
    pub async fn both() -> [TestDb; 2] {
        [TestDb::postgres().await, TestDb::sqlite().await]
    }
}
