//! A typed async client of the agent's API, on its Unix socket or over TCP with a token.
//!
//! Captures started through a client are leased: [`AgentClient::start_capture`] asks for a
//! lease of [`CLIENT_LEASE_S`] unless the request names one, and a background task renews it
//! until [`AgentClient::stop_capture`] or until every clone of the client is dropped. A client
//! that goes away (a crashed server) thus leaves no capture running for longer than its lease;
//! the capture's output waits on the agent as after its maximum duration.

use std::collections::HashMap;
use std::fmt;
use std::path::{Path, PathBuf};
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use http_body_util::{BodyExt, Full};
use hyper::body::Bytes;
use hyper::client::conn::http1::SendRequest;
use hyper::{Method, Request, StatusCode};
use hyper_util::rt::TokioIo;
use qoelab_shaper::{ApplyReport, IfaceRef, InterfacePlan, InterfaceStats, RateChanges};
use serde::Serialize;
use serde::de::{DeserializeOwned, IgnoredAny};
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::{TcpStream, UnixStream};
use tokio::sync::oneshot;

use crate::api::{CaptureInfo, CaptureStarted, ErrorBody, ShapedInterface, Status, iface_path};
use crate::tcp::{Token, TokenError};
use qoelab_capture::{CaptureOutput, CaptureRequest};

/// How long connecting to an agent over TCP may take.
pub const TCP_CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

/// The lease [`AgentClient::start_capture`] asks for when the request has none, seconds; it
/// is renewed every third of it.
pub const CLIENT_LEASE_S: u64 = 30;

/// The forms [`AgentClient::connect`] accepts, for error messages.
pub const TARGET_FORMS: &str =
    "a socket path (/run/qoelab/agent.sock), unix:PATH, or tcp://HOST:PORT";

/// Errors of talking to the agent.
#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    /// The agent could not be reached.
    #[error("cannot reach the qoelab agent at {target}: {error}; {}", .target.hint())]
    Connect {
        /// Where the agent was looked for.
        target: Target,
        /// Why; in the message, not a `source()`, so that error chains print it once.
        error: std::io::Error,
    },
    /// The agent's address is not one of the accepted forms.
    #[error("'{target}' is not an agent address: {why}; accepted: {TARGET_FORMS}")]
    Target {
        /// The address given.
        target: String,
        /// What is wrong with it.
        why: String,
    },
    /// The token is unusable.
    #[error(transparent)]
    Token(#[from] TokenError),
    /// The HTTP exchange failed.
    #[error("talking to the qoelab agent failed: {0}")]
    Http(String),
    /// The agent answered with an error.
    #[error("{}{}", .body.error, .body.accepted.as_ref().filter(|a| !body.error.contains(a.as_str())).map(|a| format!(" (accepted: {a})")).unwrap_or_default())]
    Api {
        /// HTTP status.
        status: StatusCode,
        /// The agent's error body.
        body: ErrorBody,
    },
}

/// Where an agent listens.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Target {
    /// A Unix socket (peer credentials checked).
    Unix(PathBuf),
    /// A TCP address (bearer token checked).
    Tcp {
        /// A host name or address (IPv6 without brackets).
        host: String,
        /// The port.
        port: u16,
    },
}

impl fmt::Display for Target {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Target::Unix(path) => write!(f, "unix:{}", path.display()),
            Target::Tcp { host, port } if host.contains(':') => write!(f, "tcp://[{host}]:{port}"),
            Target::Tcp { host, port } => write!(f, "tcp://{host}:{port}"),
        }
    }
}

impl Target {
    /// Parses a bare socket path, `unix:PATH` or `tcp://HOST:PORT` (`tcp://[::1]:7070`).
    pub fn parse(target: &str) -> Result<Target, ClientError> {
        let invalid = |why: &str| ClientError::Target {
            target: target.to_string(),
            why: why.to_string(),
        };
        if let Some(path) = target.strip_prefix("unix:") {
            let path = path.strip_prefix("//").unwrap_or(path);
            if path.is_empty() {
                return Err(invalid("the socket path is empty"));
            }
            return Ok(Target::Unix(path.into()));
        }
        let Some(address) = target.strip_prefix("tcp://") else {
            if target.is_empty() {
                return Err(invalid("it is empty"));
            }
            if target.contains("://") {
                return Err(invalid("the scheme is neither unix: nor tcp://"));
            }
            return Ok(Target::Unix(target.into()));
        };
        let (host, port) = address
            .rsplit_once(':')
            .ok_or_else(|| invalid("the port is missing"))?;
        let port = port
            .parse::<u16>()
            .ok()
            .filter(|p| *p > 0)
            .ok_or_else(|| invalid("the port is not a number from 1 to 65535"))?;
        let host = match host.strip_prefix('[') {
            Some(v6) => v6
                .strip_suffix(']')
                .ok_or_else(|| invalid("an IPv6 address needs its closing ]"))?,
            None if host.contains(':') => {
                return Err(invalid(
                    "write an IPv6 address in brackets: tcp://[::1]:7070",
                ));
            }
            None => host,
        };
        if host.is_empty() || host.contains(['/', '@', ' ']) {
            return Err(invalid("the host is empty or not a host name or address"));
        }
        Ok(Target::Tcp {
            host: host.to_string(),
            port,
        })
    }

    fn hint(&self) -> &'static str {
        match self {
            Target::Unix(_) => {
                "is `qoelab agent` running, and may you use its socket (root or its group)?"
            }
            Target::Tcp { .. } => {
                "is `qoelab agent --listen-tcp` running there, and does a firewall let you through?"
            }
        }
    }
}

/// A connection to an agent, whichever way it was reached.
trait Stream: AsyncRead + AsyncWrite + Unpin + Send + 'static {}
impl<T: AsyncRead + AsyncWrite + Unpin + Send + 'static> Stream for T {}

/// A client of one agent. It keeps its connection open between calls (clones share it; calls
/// take turns) and opens a new one when the agent closed it; making a client connects to
/// nothing yet. The captures it starts live as long as the client (see the [module](self)
/// docs).
#[derive(Debug, Clone)]
pub struct AgentClient {
    target: Target,
    token: Option<Token>,
    /// Connections kept open between calls. A call takes one (or opens one), so concurrent
    /// calls, such as rate readings of several interfaces, run side by side.
    idle: Arc<Mutex<Vec<Open>>>,
    /// The lease renewals of the captures this client (and its clones) started, by capture
    /// id: dropping the sender ends the renewal.
    leases: Arc<Mutex<HashMap<String, oneshot::Sender<()>>>>,
}

/// Idle connections kept per client.
const MAX_IDLE: usize = 4;

type Connection = hyper::client::conn::http1::Connection<TokioIo<Box<dyn Stream>>, Full<Bytes>>;

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
            target: Target::Unix(socket.as_ref().to_path_buf()),
            token: None,
            idle: Arc::default(),
            leases: Arc::default(),
        }
    }

    /// A client of the agent at `target` (see [`Target::parse`]). A `tcp://` target needs the
    /// agent's token; a Unix socket checks peer credentials instead and ignores it.
    pub fn connect(target: &str, token: Option<&str>) -> Result<AgentClient, ClientError> {
        let target = Target::parse(target)?;
        let token = match (&target, token) {
            (Target::Unix(_), _) => None,
            (Target::Tcp { .. }, Some(token)) => Some(Token::parse(token, "for the agent")?),
            (Target::Tcp { .. }, None) => {
                return Err(ClientError::Target {
                    target: target.to_string(),
                    why: "an agent over TCP needs its token".into(),
                });
            }
        };
        Ok(AgentClient {
            target,
            token,
            idle: Arc::default(),
            leases: Arc::default(),
        })
    }

    /// Where this client reaches its agent.
    pub fn target(&self) -> &Target {
        &self.target
    }

    async fn stream(&self) -> Result<Box<dyn Stream>, ClientError> {
        let failed = |error| ClientError::Connect {
            target: self.target.clone(),
            error,
        };
        Ok(match &self.target {
            Target::Unix(path) => Box::new(UnixStream::connect(path).await.map_err(failed)?),
            Target::Tcp { host, port } => {
                let stream = tokio::time::timeout(
                    TCP_CONNECT_TIMEOUT,
                    TcpStream::connect((host.as_str(), *port)),
                )
                .await
                .map_err(|_| failed(std::io::ErrorKind::TimedOut.into()))?
                .map_err(failed)?;
                stream.set_nodelay(true).map_err(failed)?;
                Box::new(stream)
            }
        })
    }

    async fn connect_new(&self) -> Result<Open, ClientError> {
        let (sender, connection) =
            hyper::client::conn::http1::handshake(TokioIo::new(self.stream().await?))
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

    fn request(
        &self,
        method: &Method,
        path: &str,
        body: &Bytes,
    ) -> Result<Request<Full<Bytes>>, ClientError> {
        let mut request = Request::builder()
            .method(method.clone())
            .uri(path)
            .header("content-type", "application/json");
        request = match &self.target {
            Target::Unix(_) => request.header("host", "qoelab-agent"),
            Target::Tcp { .. } => {
                let host = self.target.to_string();
                request.header("host", &host["tcp://".len()..])
            }
        };
        if let Some(token) = &self.token {
            request = request.header("authorization", format!("Bearer {}", token.secret()));
        }
        request.body(Full::new(body.clone())).map_err(|e| http(&e))
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
        // A kept connection the agent has closed meanwhile fails at once; every call is
        // idempotent (plans and rates are absolute), so it is tried once more on a new one.
        let reused = self.idle.lock().unwrap_or_else(|e| e.into_inner()).pop();
        let (status, bytes) = match reused {
            Some(mut open) => {
                match Self::exchange(&mut open, self.request(&method, path, &bytes)?).await {
                    Ok(answer) => {
                        self.keep(open);
                        answer
                    }
                    Err(_) => {
                        self.fresh_exchange(self.request(&method, path, &bytes)?)
                            .await?
                    }
                }
            }
            None => {
                self.fresh_exchange(self.request(&method, path, &bytes)?)
                    .await?
            }
        };
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
        request: Request<Full<Bytes>>,
    ) -> Result<(StatusCode, Bytes), ClientError> {
        let mut open = self.connect_new().await?;
        let answer = Self::exchange(&mut open, request).await?;
        self.keep(open);
        Ok(answer)
    }

    /// Keeps an idle connection for the next call, up to [`MAX_IDLE`].
    fn keep(&self, open: Open) {
        let mut idle = self.idle.lock().unwrap_or_else(|e| e.into_inner());
        if idle.len() < MAX_IDLE {
            idle.push(open);
        }
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

    /// `POST /v1/captures`: starts a live capture, with a lease of [`CLIENT_LEASE_S`] if the
    /// request has none, renewed in the background (on the current tokio runtime) until
    /// [`stop_capture`](Self::stop_capture) or until every clone of this client is dropped.
    pub async fn start_capture(
        &self,
        request: &CaptureRequest,
    ) -> Result<CaptureStarted, ClientError> {
        let mut request = request.clone();
        let lease_s = *request.lease_s.get_or_insert(CLIENT_LEASE_S);
        let started: CaptureStarted = self
            .call(Method::POST, "/v1/captures", Some(&request))
            .await?;
        let (keep, ended) = oneshot::channel();
        {
            let mut leases = self.leases.lock().unwrap_or_else(|e| e.into_inner());
            leases.retain(|_, renewal| !renewal.is_closed());
            leases.insert(started.id.clone(), keep);
        }
        // The renewal's own client must not hold `leases`, or the renewals would never end.
        let renewer = AgentClient {
            target: self.target.clone(),
            token: self.token.clone(),
            idle: self.idle.clone(),
            leases: Arc::default(),
        };
        let every = Duration::from_secs(lease_s) / 3;
        tokio::spawn(renewer.renew_lease(started.id.clone(), every, ended));
        Ok(started)
    }

    /// Asks about capture `id` every `every` until `ended` (its sender dropped) or the agent no
    /// longer knows it. A failed renewal is tried again at the next turn.
    async fn renew_lease(self, id: String, every: Duration, mut ended: oneshot::Receiver<()>) {
        let path = format!("/v1/captures/{id}?stats_only=true");
        loop {
            tokio::select! {
                _ = &mut ended => return,
                () = tokio::time::sleep(every) => {}
            }
            match self.call::<(), IgnoredAny>(Method::GET, &path, None).await {
                Ok(_) => {}
                Err(ClientError::Api {
                    status: StatusCode::NOT_FOUND,
                    ..
                }) => {
                    tracing::debug!(capture = %id, "the agent no longer holds the capture: lease renewal ends");
                    return;
                }
                Err(err) => {
                    tracing::warn!(capture = %id, "renewing the capture's lease failed: {err}");
                }
            }
        }
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

    /// `DELETE /v1/captures/{id}`: stops the capture and returns everything it measured. Its
    /// lease is no longer renewed, also if this fails (the output waits on the agent).
    pub async fn stop_capture(&self, id: &str) -> Result<CaptureOutput, ClientError> {
        self.leases
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .remove(id);
        self.call::<(), _>(Method::DELETE, &format!("/v1/captures/{id}"), None)
            .await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Concurrent calls go over separate connections (a second call waiting for the first
    /// would deadlock on the barrier); idle ones are kept and used again.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn concurrent_calls_run_side_by_side_and_connections_are_kept() {
        use std::sync::atomic::{AtomicUsize, Ordering};
        let dir = tempfile::tempdir().unwrap();
        let socket = dir.path().join("agent.sock");
        let listener = tokio::net::UnixListener::bind(&socket).unwrap();
        let accepted = Arc::new(AtomicUsize::new(0));
        let both_in = Arc::new(tokio::sync::Barrier::new(2));
        let counter = accepted.clone();
        tokio::spawn(async move {
            loop {
                let (stream, _) = listener.accept().await.unwrap();
                counter.fetch_add(1, Ordering::SeqCst);
                let both_in = both_in.clone();
                let service = hyper::service::service_fn(move |request: Request<_>| {
                    let both_in = both_in.clone();
                    async move {
                        if request.uri().path() == "/pair" {
                            both_in.wait().await;
                        }
                        Ok::<_, std::convert::Infallible>(hyper::Response::new(Full::new(
                            Bytes::from_static(b"1"),
                        )))
                    }
                });
                tokio::spawn(
                    hyper::server::conn::http1::Builder::new()
                        .serve_connection(TokioIo::new(stream), service),
                );
            }
        });
        let client = AgentClient::new(&socket);
        let get = |path| client.call::<(), u32>(Method::GET, path, None);
        let pair = tokio::time::timeout(Duration::from_secs(10), async {
            tokio::try_join!(get("/pair"), get("/pair"))
        });
        assert_eq!(
            pair.await
                .expect("the calls waited for each other")
                .unwrap(),
            (1, 1)
        );
        assert_eq!(accepted.load(Ordering::SeqCst), 2);
        for _ in 0..3 {
            assert_eq!(get("/one").await.unwrap(), 1);
        }
        assert_eq!(
            accepted.load(Ordering::SeqCst),
            2,
            "kept connections are used again"
        );
    }

    #[test]
    fn targets_parse_in_every_accepted_form() {
        let unix = |p: &str| Target::Unix(p.into());
        let tcp = |h: &str, port| Target::Tcp {
            host: h.into(),
            port,
        };
        for (text, target) in [
            ("/run/qoelab/agent.sock", unix("/run/qoelab/agent.sock")),
            ("agent.sock", unix("agent.sock")),
            ("unix:/run/x.sock", unix("/run/x.sock")),
            ("unix:///run/x.sock", unix("/run/x.sock")),
            ("tcp://10.0.0.5:7070", tcp("10.0.0.5", 7070)),
            ("tcp://gw-3.example:7070", tcp("gw-3.example", 7070)),
            ("tcp://[fd00::5]:7070", tcp("fd00::5", 7070)),
        ] {
            assert_eq!(Target::parse(text).unwrap(), target, "{text}");
        }
        assert_eq!(tcp("fd00::5", 7070).to_string(), "tcp://[fd00::5]:7070");
        assert_eq!(unix("/a.sock").to_string(), "unix:/a.sock");
    }

    #[test]
    fn bad_targets_name_the_value_and_the_accepted_forms() {
        for (text, why) in [
            ("", "empty"),
            ("unix:", "empty"),
            ("http://gw:7070", "scheme"),
            ("tcp://gw", "port is missing"),
            ("tcp://gw:0", "1 to 65535"),
            ("tcp://gw:http", "1 to 65535"),
            ("tcp://:7070", "host"),
            ("tcp://gw:7070/v1", "1 to 65535"),
            ("tcp://fd00::5:7070", "brackets"),
            ("tcp://[fd00::5:7070", "closing ]"),
        ] {
            let err = Target::parse(text).unwrap_err().to_string();
            assert!(err.contains(why), "{text}: {err}");
            assert!(err.contains(&format!("'{text}'")), "{err}");
            assert!(err.contains("tcp://HOST:PORT"), "{err}");
        }
    }

    #[test]
    fn tcp_needs_a_token_and_a_socket_ignores_it() {
        let err = AgentClient::connect("tcp://127.0.0.1:7070", None).unwrap_err();
        assert!(err.to_string().contains("needs its token"), "{err}");
        let err = AgentClient::connect("tcp://127.0.0.1:7070", Some("short")).unwrap_err();
        assert!(err.to_string().contains("at least 16"), "{err}");
        let client = AgentClient::connect("/run/qoelab/agent.sock", Some("whatever")).unwrap();
        assert!(client.token.is_none());
        assert!(!format!("{client:?}").contains("whatever"));
    }

    #[test]
    fn the_accepted_forms_are_printed_once() {
        let err = |error: &str| ClientError::Api {
            status: StatusCode::UNPROCESSABLE_ENTITY,
            body: ErrorBody {
                error: error.into(),
                field: Some("iface".into()),
                value: Some("eth9".into()),
                accepted: Some("an interface from `ip link`".into()),
            },
        };
        assert_eq!(
            err("no such interface").to_string(),
            "no such interface (accepted: an interface from `ip link`)"
        );
        assert_eq!(
            err("no such interface; accepted: an interface from `ip link`").to_string(),
            "no such interface; accepted: an interface from `ip link`"
        );
    }
}
