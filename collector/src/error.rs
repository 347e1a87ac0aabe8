//! Collector errors, classified so that the web layer maps each to one HTTP status.

/// Everything the collector can fail with.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A value given by the user is not acceptable (HTTP 400/422).
    #[error("{field} = '{value}' is not accepted: {accepted}")]
    Invalid {
        /// The field, e.g. `limits` or `reports[3].knob`.
        field: String,
        /// The value as given.
        value: String,
        /// What is accepted.
        accepted: String,
    },
    /// The thing asked for does not exist (HTTP 404).
    #[error("{0}")]
    NotFound(String),
    /// The request does not fit the current state, e.g. finishing a session that is not
    /// running (HTTP 409).
    #[error("{0}")]
    Conflict(String),
    /// The database cannot be reached (HTTP 503); nothing was stored.
    #[error("the database at {url} is unavailable: {reason}")]
    Unavailable {
        /// The database URL, password redacted.
        url: String,
        /// What the driver said.
        reason: String,
    },
    /// Part of the appliance could not be started (HTTP 500).
    #[error("{0}")]
    Setup(String),
    /// A query failed. (The messages below carry their cause in the text, so that one line
    /// says everything; they deliberately do not chain it as a `source`.)
    #[error("database error: {0}")]
    Database(sqlx::Error),
    /// The schema could not be migrated.
    #[error("database migration failed: {0}")]
    Migrate(sqlx::migrate::MigrateError),
    /// A stored document could not be read back.
    #[error("stored JSON is unreadable: {0}")]
    Json(serde_json::Error),
    /// Writing an export failed.
    #[error("export failed: {0}")]
    Io(std::io::Error),
    /// A stored model could not be read back or written.
    #[error("stored model unusable: {0}")]
    Model(String),
}

macro_rules! from_cause {
    ($($ty:ty => $variant:ident),+) => {
        $(impl From<$ty> for Error {
            fn from(e: $ty) -> Error {
                Error::$variant(e)
            }
        })+
    };
}

from_cause!(sqlx::Error => Database, sqlx::migrate::MigrateError => Migrate, serde_json::Error => Json, std::io::Error => Io);

impl Error {
    /// An [`Error::Invalid`] for `field`.
    pub fn invalid(
        field: impl Into<String>,
        value: impl ToString,
        accepted: impl Into<String>,
    ) -> Error {
        Error::Invalid {
            field: field.into(),
            value: value.to_string(),
            accepted: accepted.into(),
        }
    }

    /// An [`Error::Unavailable`] for the database at `url`.
    pub fn unavailable(url: &str, cause: sqlx::Error) -> Error {
        Error::Unavailable {
            url: url.to_string(),
            reason: cause.to_string(),
        }
    }

    /// Whether retrying later may succeed (the database was unreachable or dropped the
    /// connection), as opposed to an error in the request or the data.
    pub fn is_transient(&self) -> bool {
        match self {
            Error::Unavailable { .. } => true,
            Error::Database(sqlx::Error::Database(db)) => {
                // SQLSTATE 08xxx: connection exceptions; 57P0x: server shutting down or starting.
                db.code()
                    .is_some_and(|c| c.starts_with("08") || c.starts_with("57P"))
            }
            Error::Database(e) => matches!(
                e,
                sqlx::Error::Io(_)
                    | sqlx::Error::PoolTimedOut
                    | sqlx::Error::PoolClosed
                    | sqlx::Error::WorkerCrashed
            ),
            _ => false,
        }
    }
}

/// Result with [`Error`].
pub type Result<T> = std::result::Result<T, Error>;
