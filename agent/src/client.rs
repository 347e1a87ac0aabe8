//! A typed async client of the agent's socket API.

use std::path::{Path, PathBuf};
use std::pin::Pin;
use std::sync::Arc;

use http_body_util::{BodyExt, Full};
use hyper::body::Bytes;
use hyper::client::conn::http1::SendRequest;
use hyper::{Method, Request, StatusCode};
use hyper_util::rt::TokioIo;
use qoelab_shaper::{ApplyReport, IfaceRef, InterfacePlan, InterfaceStats, RateChanges};
use serde::Serialize;
use serde::de::DeserializeOwned;
use tokio::net::UnixStream;
use tokio::sync::Mutex;

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

/// A client of one agent socket. It keeps its connection open between calls (clones share
/// it; calls take turns), and opens a new one when the agent closed it.
#[derive(Debug, Clone)]
pub struct AgentClient {
    socket: PathBuf,
    open: Arc<Mutex<Option<Open>>>,
}

type Connection = hyper::client::conn::http1::Connection<TokioIo<UnixStream>, Full<Bytes>>;

/// An open HTTP connection: the handle requests go through, and the connection itself, which
/// is driven only while a call runs, on the caller's task (no hand-over to another thread).
struct Open {
    sender: SendRequest<Full<Bytes>>,
    connection: Pin<Box<Connection>>,
}

impl std::fmt::Debug for Open {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Open")
    }
}

fn http(e: &dyn std::fmt::Display) -> ClientError {
    ClientError::Http(e.to_string())
}

impl AgentClient {
    /// A client of the agent listening on `socket`.
    pub fn new(socket: impl AsRef<Path>) -> AgentClient {
        AgentClient {
            socket: socket.as_ref().to_path_buf(),
            open: Arc::default(),
        }
    }

    async fn connect(&self) -> Result<Open, ClientError> {
        let stream =
            UnixStream::connect(&self.socket)
                .await
                .map_err(|source| ClientError::Connect {
                    socket: self.socket.clone(),
                    source,
                })?;
        let (sender, connection) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
            .await
            .map_err(|e| http(&e))?;
        Ok(Open {
            sender,
            connection: Box::pin(connection),
        })
    }

    /// Sends `request` over `open`, driving the connection meanwhile; the status and body.
    async fn exchange(
        open: &mut Open,
        request: Request<Full<Bytes>>,
    ) -> Result<(StatusCode, Bytes), ClientError> {
        let exchange = async {
            let response = open
                .sender
                .send_request(request)
                .await
                .map_err(|e| http(&e))?;
            let status = response.status();
            let body = response.into_body().collect().await.map_err(|e| http(&e))?;
            Ok((status, body.to_bytes()))
        };
        tokio::select! {
            exchange = exchange => exchange,
            closed = &mut open.connection => Err(http(
                &closed.err().map_or("the agent closed the connection".into(), |e| e.to_string()),
            )),
        }
    }

    async fn call<B: Serialize, T: DeserializeOwned>(
        &self,
        method: Method,
        path: &str,
        body: Option<&B>,
    ) -> Result<T, ClientError> {
        let bytes = Bytes::from(match body {
            Some(body) => serde_json::to_vec(body).map_err(|e| http(&e))?,
            None => Vec::new(),
        });
        let request = || {
            Request::builder()
                .method(method.clone())
                .uri(path)
                .header("host", "qoelab-agent")
                .header("content-type", "application/json")
                .body(Full::new(bytes.clone()))
                .map_err(|e| http(&e))
        };
        let mut slot = self.open.lock().await;
        // A kept connection the agent has closed meanwhile fails at once; every call is
        // idempotent (plans and rates are absolute), so it is tried once more on a new one.
        let reused = slot.take();
        let (status, bytes) = match reused {
            Some(mut open) => match Self::exchange(&mut open, request()?).await {
                Ok(answer) => {
                    *slot = Some(open);
                    answer
                }
                Err(_) => self.fresh_exchange(&mut slot, request()?).await?,
            },
            None => self.fresh_exchange(&mut slot, request()?).await?,
        };
        drop(slot);
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

    /// Sends `request` over a new connection, which is kept if the exchange succeeds.
    async fn fresh_exchange(
        &self,
        slot: &mut Option<Open>,
        request: Request<Full<Bytes>>,
    ) -> Result<(StatusCode, Bytes), ClientError> {
        let mut open = self.connect().await?;
        let answer = Self::exchange(&mut open, request).await?;
        *slot = Some(open);
        Ok(answer)
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
