//! Types exchanged over the socket, shared by the server and the client.

use qoelab_shaper::{Features, IfaceRef, InterfacePlan};
use serde::{Deserialize, Serialize};

/// The path segment that names the agent's own network namespace.
pub const HOST_NETNS: &str = "-";

/// The body of every error answer.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ErrorBody {
    /// What is wrong and what to do.
    pub error: String,
    /// The field at fault, e.g. `egress.classes[1].ceil_bps`, if one is.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub field: Option<String>,
    /// The value given.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub value: Option<String>,
    /// What would be accepted.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub accepted: Option<String>,
}

/// `GET /v1/status`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Status {
    /// The agent's version.
    pub version: String,
    /// The kernel's tc features.
    pub features: Features,
    /// The capabilities the agent kept, if it dropped the others.
    pub capabilities: Vec<String>,
    /// The interfaces the agent shapes.
    pub interfaces: Vec<IfaceRef>,
}

/// One entry of `GET /v1/interfaces`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ShapedInterface {
    /// The interface.
    pub iface: IfaceRef,
    /// Its plan in force.
    pub plan: InterfacePlan,
}

/// The URL path of an interface resource.
pub fn iface_path(iface: &IfaceRef) -> String {
    format!(
        "/v1/interfaces/{}/{}",
        iface.netns.as_deref().unwrap_or(HOST_NETNS),
        iface.name
    )
}

/// The answer to `POST /v1/captures`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CaptureStarted {
    /// The capture's id, for `GET`/`DELETE /v1/captures/{id}`.
    pub id: String,
    /// The request as accepted, defaults filled in.
    pub request: qoelab_capture::CaptureRequest,
}

/// One entry of `GET /v1/captures`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CaptureInfo {
    /// Id.
    pub id: String,
    /// What it captures.
    pub request: qoelab_capture::CaptureRequest,
    /// Start, ms since the Unix epoch.
    pub started_unix_ms: u64,
    /// Whether it still runs (else its output waits to be collected).
    pub running: bool,
}
