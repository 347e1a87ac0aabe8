//! ABR video: a server of a synthetic video and a player that measures the QoE of a session.
//!
//! - [`manifest`]: the video (ladder, seeded VBR segment sizes) and its manifest.
//! - [`server`]: HTTP/1.1 routes for the manifest and the segments.
//! - [`player`]: real-time playback over HTTP with an ABR algorithm from [`abr`].
//! - [`qoe`]: the per-session QoE record, its scores and labels.

pub mod abr;
pub mod manifest;
pub mod playback;
pub mod player;
pub mod qoe;
pub mod server;

pub use abr::{ABR_NAMES, AbrKind};
pub use manifest::{Manifest, VideoSpec};
pub use player::{PlayerConfig, play};
pub use qoe::{QOE_SCHEMA, QoeClass, QoeRecord, SegmentRecord};

use crate::http::HttpError;

/// What can go wrong with the video server or player.
#[derive(Debug, thiserror::Error)]
pub enum VideoError {
    /// A setting has a value outside what is accepted.
    #[error("{field} {value} is not accepted: use {accepted}")]
    Invalid {
        /// The setting, e.g. `ladder`.
        field: &'static str,
        /// The value as given.
        value: String,
        /// What is accepted.
        accepted: &'static str,
    },
    /// An ABR algorithm name that does not exist.
    #[error("unknown ABR algorithm '{name}': use one of {ABR_NAMES}")]
    UnknownAbr {
        /// The name given.
        name: String,
    },
    /// A request to the server failed.
    #[error(transparent)]
    Http(#[from] HttpError),
    /// A segment did not have the size the manifest gives.
    #[error(
        "{url} sent {got} bytes but the manifest says {expected}: is it a qoelab video server?"
    )]
    SegmentSize {
        /// The segment's URL.
        url: String,
        /// Size in the manifest.
        expected: u64,
        /// Bytes received.
        got: u64,
    },
    /// The server's listener failed.
    #[error("video server: {0}")]
    Serve(#[source] std::io::Error),
}
