//! IoT analytics: gateway analytics that upload at the bitrate their QoS knob K sets, a sink
//! that measures delivery and computes the achieved QoS, and QoS reports over HTTP and MQTT.
//!
//! - [`uploader`]: one analytic's upload session ([`upload`]).
//! - [`sink`]: the receiving end ([`run_sink`]; [`run_sinks`] on several ports); the
//!   achieved-QoS rule is in [`qos`].
//! - [`wire`]: the protocol between them.
//! - [`report`]: report delivery (HTTP POST, MQTT publish), and [`MqttPublisher`] for other
//!   messages.

pub mod qos;
pub mod report;
pub mod sink;
pub mod uploader;
pub mod wire;

pub use qos::{QOS_SCHEMA, QosReport};
pub use report::{MqttPublisher, Reporter};
pub use sink::{SinkConfig, run_sink, run_sinks};
pub use uploader::{UploaderConfig, upload};

use crate::http::HttpError;
use crate::model::ModelError;

/// What can go wrong with an upload session, the sink or report delivery.
#[derive(Debug, thiserror::Error)]
pub enum IotError {
    /// The analytic model refused the kind or the knob.
    #[error(transparent)]
    Model(#[from] ModelError),
    /// A setting has a value outside what is accepted.
    #[error("{field} {value} is not accepted: use {accepted}")]
    Invalid {
        /// The setting.
        field: &'static str,
        /// The value as given.
        value: String,
        /// What is accepted.
        accepted: &'static str,
    },
    /// The sink could not be reached.
    #[error(
        "cannot reach the sink at {addr}: {reason}; check the address and that the sink is running"
    )]
    Unreachable {
        /// The sink's address as given.
        addr: String,
        /// The connection error.
        reason: String,
    },
    /// The sink refused the session.
    #[error("the sink at {sink} refused the session: {reason}")]
    Refused {
        /// The sink's address.
        sink: String,
        /// Its reason.
        reason: String,
    },
    /// The other end broke the protocol.
    #[error("{peer}: {reason}")]
    Protocol {
        /// Who.
        peer: String,
        /// What was wrong.
        reason: String,
    },
    /// A socket operation failed.
    #[error("{context}: {source}")]
    Io {
        /// What was being done.
        context: String,
        /// The error.
        source: std::io::Error,
    },
    /// A report destination URL is unusable.
    #[error(transparent)]
    Http(#[from] HttpError),
    /// The MQTT broker could not be reached.
    #[error("cannot reach the MQTT broker at {url}: {reason}")]
    Mqtt {
        /// The broker's URL.
        url: String,
        /// Why.
        reason: String,
    },
}

impl IotError {
    fn io(context: impl Into<String>, source: std::io::Error) -> IotError {
        IotError::Io {
            context: context.into(),
            source,
        }
    }
}
