//! The database handle: PostgreSQL or SQLite behind one pool, one schema, migrations at start.

use std::str::FromStr;
use std::time::{SystemTime, UNIX_EPOCH};

use sqlx::any::{AnyConnectOptions, AnyPoolOptions};
use sqlx::postgres::PgPoolOptions;
use sqlx::{Any, AnyPool, PgPool, Transaction};

use crate::error::{Error, Result};

/// Which database is behind a [`Db`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    /// PostgreSQL, for servers.
    Postgres,
    /// SQLite, the embedded default.
    Sqlite,
}

/// A connection pool with the schema migrated.
#[derive(Debug, Clone)]
pub struct Db {
    pool: AnyPool,
    reads: Option<AnyPool>,
    postgres_reads: Option<PgPool>,
    backend: Backend,
}

/// Read-only connections to a SQLite file beside its one writer (WAL lets them read while it
/// writes): one per core of a small server.
const SQLITE_READERS: u32 = 4;

static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("./migrations");

impl Db {
    /// Connects to `url` (`postgres://…` or `sqlite://path`, created if missing) and runs the
    /// migrations.
    pub async fn connect(url: &str) -> Result<Db> {
        sqlx::any::install_default_drivers();
        let backend = if url.starts_with("postgres://") || url.starts_with("postgresql://") {
            Backend::Postgres
        } else if url.starts_with("sqlite:") {
            Backend::Sqlite
        } else {
            return Err(Error::invalid(
                "database",
                url,
                "postgres://USER:PASSWORD@HOST/DB or sqlite://PATH",
            ));
        };
        let url = match backend {
            Backend::Sqlite if !url.contains("mode=") => {
                let sep = if url.contains('?') { '&' } else { '?' };
                format!("{url}{sep}mode=rwc")
            }
            _ => url.to_string(),
        };
        let options = AnyConnectOptions::from_str(&url)
            .map_err(|e| Error::invalid("database", &url, format!("a valid URL ({e})")))?;
        let max = match backend {
            Backend::Postgres => 8,
            // SQLite allows one writer; more connections only wait on its lock.
            Backend::Sqlite => 1,
        };
        let pool = AnyPoolOptions::new()
            .max_connections(max)
            .acquire_timeout(std::time::Duration::from_secs(10))
            .after_connect(move |conn, _| {
                Box::pin(async move {
                    if backend == Backend::Postgres {
                        // Flow records and feature rows are large texts: compress them with
                        // LZ4 (where the server has it), several times faster than pglz.
                        sqlx::query(
                            "SELECT set_config('default_toast_compression', 'lz4', false) FROM pg_settings \
                             WHERE name = 'default_toast_compression' AND 'lz4' = ANY(enumvals)",
                        )
                        .execute(&mut *conn)
                        .await?;
                    }
                    if backend == Backend::Sqlite {
                        sqlx::query("PRAGMA foreign_keys = ON")
                            .execute(&mut *conn)
                            .await?;
                        sqlx::query("PRAGMA journal_mode = WAL")
                            .execute(&mut *conn)
                            .await?;
                        sqlx::query("PRAGMA busy_timeout = 5000")
                            .execute(&mut *conn)
                            .await?;
                    }
                    Ok(())
                })
            })
            .connect_with(options)
            .await
            .map_err(|e| Error::unavailable(&redact(&url), e))?;
        MIGRATOR.run(&pool).await?;
        let in_memory = url.contains(":memory:") || url.contains("mode=memory");
        let reads = match backend {
            Backend::Sqlite if !in_memory => Some(sqlite_readers(&url)?),
            _ => None,
        };
        let postgres_reads = match backend {
            Backend::Postgres => Some(
                PgPoolOptions::new()
                    .max_connections(max)
                    .acquire_timeout(std::time::Duration::from_secs(10))
                    .connect_lazy(&url)
                    .map_err(|e| {
                        Error::invalid("database", redact(&url), format!("a valid URL ({e})"))
                    })?,
            ),
            Backend::Sqlite => None,
        };
        Ok(Db {
            pool,
            reads,
            postgres_reads,
            backend,
        })
    }

    /// The pool, for queries.
    pub fn pool(&self) -> &AnyPool {
        &self.pool
    }

    /// The pool for reads outside a transaction (lists, pages, counts): on a SQLite file
    /// read-only connections beside the single writer, so reads run in parallel with each
    /// other and with a write; elsewhere [`Db::pool`].
    pub fn reads(&self) -> &AnyPool {
        self.reads.as_ref().unwrap_or(&self.pool)
    }

    /// On PostgreSQL, a pool of its own driver for reads of many rows: sqlx's `Any` rows copy
    /// every column's name and value once more, which costs more than the query itself on a
    /// page of sessions. `None` on SQLite.
    pub fn postgres_reads(&self) -> Option<&PgPool> {
        self.postgres_reads.as_ref()
    }

    /// Which database this is.
    pub fn backend(&self) -> Backend {
        self.backend
    }

    /// Starts a transaction.
    pub async fn begin(&self) -> Result<Transaction<'static, Any>> {
        Ok(self.pool.begin().await?)
    }

    /// Closes the pools.
    pub async fn close(&self) {
        if let Some(reads) = &self.reads {
            reads.close().await;
        }
        if let Some(reads) = &self.postgres_reads {
            reads.close().await;
        }
        self.pool.close().await;
    }
}

/// A lazily connecting pool of read-only connections to the SQLite file of `url` (which names
/// its mode, see [`Db::connect`]).
fn sqlite_readers(url: &str) -> Result<AnyPool> {
    let url = match url.split_once("mode=") {
        Some((head, tail)) => {
            let rest = tail.find('&').map_or("", |i| &tail[i..]);
            format!("{head}mode=ro{rest}")
        }
        None => url.to_string(),
    };
    let options = AnyConnectOptions::from_str(&url)
        .map_err(|e| Error::invalid("database", &url, format!("a valid URL ({e})")))?;
    Ok(AnyPoolOptions::new()
        .max_connections(SQLITE_READERS)
        .acquire_timeout(std::time::Duration::from_secs(10))
        .after_connect(|conn, _| {
            Box::pin(async move {
                sqlx::query("PRAGMA busy_timeout = 5000")
                    .execute(&mut *conn)
                    .await?;
                Ok(())
            })
        })
        .connect_lazy_with(options))
}

/// The next id of counter `name` (`campaign`, `session`, `model`), allocated inside `tx`.
pub async fn next_ids(tx: &mut Transaction<'static, Any>, name: &str, count: i64) -> Result<i64> {
    let (last,): (i64,) =
        sqlx::query_as("UPDATE counters SET value = value + $1 WHERE name = $2 RETURNING value")
            .bind(count)
            .bind(name)
            .fetch_one(&mut **tx)
            .await?;
    Ok(last - count + 1)
}

/// Milliseconds since the Unix epoch.
pub fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or_default()
}

/// `url` with its password replaced by `***`, for messages.
pub fn redact(url: &str) -> String {
    match (url.find("://"), url.rfind('@')) {
        (Some(scheme), Some(at)) if at > scheme => {
            let userinfo = &url[scheme + 3..at];
            match userinfo.split_once(':') {
                Some((user, _)) => format!("{}{user}:***{}", &url[..scheme + 3], &url[at..]),
                None => url.to_string(),
            }
        }
        _ => url.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn passwords_are_redacted() {
        assert_eq!(redact("postgres://u:secret@h/db"), "postgres://u:***@h/db");
        assert_eq!(redact("postgres://h/db"), "postgres://h/db");
        assert_eq!(redact("sqlite://./qoelab.db"), "sqlite://./qoelab.db");
    }
}
