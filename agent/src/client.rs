//! A typed async client of the agent's socket API.

use std::path::{Path, PathBuf};

use http_body_util::{BodyExt, Full};
use hyper::body::Bytes;
use hyper::{Method, Request, StatusCode};
use hyper_util::rt::TokioIo;
use qoelab_shaper::{ApplyReport, IfaceRef, InterfacePlan, InterfaceStats, RateChanges};
use serde::Serialize;
use serde::de::DeserializeOwned;
use tokio::net::UnixStream;

use crate::api::{CaptureInfo, CaptureStarted, ErrorBody, ShapedInterface, Status, iface_path};
use qoelab_capture::{CaptureOutput, CaptureRequest};

/// Errors of talking to the agent.
#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    /// The socket could not be reached.
    #[error(
        "cannot reach the qoelab agent at {socket}: {source}; is `qoelab agent` running, and may you use its socket (root or its group)?"
    )]
    Connect {
        /// The socket path.
        socket: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// The HTTP exchange failed.
    #[error("talking to the qoelab agent failed: {0}")]
    Http(String),
    /// The agent answered with an error.
    #[error("{}{}", .body.error, .body.accepted.as_ref().map(|a| format!(" (accepted: {a})")).unwrap_or_default())]
    Api {
        /// HTTP status.
        status: StatusCode,
        /// The agent's error body.
        body: ErrorBody,
    },
}

/// A client of one agent socket.
#[derive(Debug, Clone)]
pub struct AgentClient {
    socket: PathBuf,
}

impl AgentClient {
    /// A client of the agent listening on `socket`.
    pub fn new(socket: impl AsRef<Path>) -> AgentClient {
        AgentClient {
            socket: socket.as_ref().to_path_buf(),
        }
    }

    async fn call<B: Serialize, T: DeserializeOwned>(
        &self,
        method: Method,
        path: &str,
        body: Option<&B>,
    ) -> Result<T, ClientError> {
        let http = |e: &dyn std::fmt::Display| ClientError::Http(e.to_string());
        let stream =
            UnixStream::connect(&self.socket)
                .await
                .map_err(|source| ClientError::Connect {
                    socket: self.socket.clone(),
                    source,
                })?;
        let (mut sender, connection) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
            .await
            .map_err(|e| http(&e))?;
        tokio::spawn(connection);
        let bytes = match body {
            Some(body) => serde_json::to_vec(body).map_err(|e| http(&e))?,
            None => Vec::new(),
        };
        let request = Request::builder()
            .method(method)
            .uri(path)
            .header("host", "qoelab-agent")
            .header("content-type", "application/json")
            .body(Full::new(Bytes::from(bytes)))
            .map_err(|e| http(&e))?;
        let response = sender.send_request(request).await.map_err(|e| http(&e))?;
        let status = response.status();
        let bytes = response
            .into_body()
            .collect()
            .await
            .map_err(|e| http(&e))?
            .to_bytes();
        if !status.is_success() {
            let body = serde_json::from_slice(&bytes).unwrap_or_else(|_| ErrorBody {
                error: String::from_utf8_lossy(&bytes).into_owned(),
                field: None,
                value: None,
                accepted: None,
            });
            return Err(ClientError::Api { status, body });
        }
        let bytes = if bytes.is_empty() {
            Bytes::from_static(b"null")
        } else {
            bytes
        };
        serde_json::from_slice(&bytes).map_err(|e| http(&e))
    }

    /// `GET /v1/status`.
    pub async fn status(&self) -> Result<Status, ClientError> {
        self.call::<(), _>(Method::GET, "/v1/status", None).await
    }

    /// `GET /v1/interfaces`.
    pub async fn interfaces(&self) -> Result<Vec<ShapedInterface>, ClientError> {
        self.call::<(), _>(Method::GET, "/v1/interfaces", None)
            .await
    }

    /// `PUT .../plan`: applies a whole plan.
    pub async fn apply(
        &self,
        iface: &IfaceRef,
        plan: &InterfacePlan,
    ) -> Result<ApplyReport, ClientError> {
        self.call(
            Method::PUT,
            &format!("{}/plan", iface_path(iface)),
            Some(plan),
        )
        .await
    }

    /// `GET .../plan`.
    pub async fn plan(&self, iface: &IfaceRef) -> Result<InterfacePlan, ClientError> {
        self.call::<(), _>(Method::GET, &format!("{}/plan", iface_path(iface)), None)
            .await
    }

    /// `PATCH .../rates`: changes some classes' rates in place.
    pub async fn set_rates(
        &self,
        iface: &IfaceRef,
        changes: &RateChanges,
    ) -> Result<ApplyReport, ClientError> {
        self.call(
            Method::PATCH,
            &format!("{}/rates", iface_path(iface)),
            Some(changes),
        )
        .await
    }

    /// `GET .../stats`: counters, and rates over `interval_ms` if it is above 0.
    pub async fn stats(
        &self,
        iface: &IfaceRef,
        interval_ms: u64,
    ) -> Result<InterfaceStats, ClientError> {
        self.call::<(), _>(
            Method::GET,
            &format!("{}/stats?interval_ms={interval_ms}", iface_path(iface)),
            None,
        )
        .await
    }

    /// `DELETE ...`: restores the interface.
    pub async fn clear(&self, iface: &IfaceRef) -> Result<(), ClientError> {
        self.call::<(), ()>(Method::DELETE, &iface_path(iface), None)
            .await
    }

    /// `POST /v1/captures`: starts a live capture.
    pub async fn start_capture(
        &self,
        request: &CaptureRequest,
    ) -> Result<CaptureStarted, ClientError> {
        self.call(Method::POST, "/v1/captures", Some(request)).await
    }

    /// `GET /v1/captures`: the captures the agent holds.
    pub async fn captures(&self) -> Result<Vec<CaptureInfo>, ClientError> {
        self.call::<(), _>(Method::GET, "/v1/captures", None).await
    }

    /// `GET /v1/captures/{id}`: the flows so far, the capture keeps running.
    pub async fn capture_snapshot(&self, id: &str) -> Result<CaptureOutput, ClientError> {
        self.call::<(), _>(Method::GET, &format!("/v1/captures/{id}"), None)
            .await
    }

    /// `DELETE /v1/captures/{id}`: stops the capture and returns everything it measured.
    pub async fn stop_capture(&self, id: &str) -> Result<CaptureOutput, ClientError> {
        self.call::<(), _>(Method::DELETE, &format!("/v1/captures/{id}"), None)
            .await
    }
}
