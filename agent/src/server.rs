//! The agent's HTTP server on a Unix socket: setup, peer checks, errors, routes, shutdown.
//!
//! | method | path | what |
//! |---|---|---|
//! | GET | `/v1/status` | version, kernel tc features, capabilities kept, interfaces shaped |
//! | GET | `/v1/interfaces` | every shaped interface with its plan |
//! | GET | `/v1/interfaces/{netns}/{iface}/plan` | the plan in force |
//! | PUT | `/v1/interfaces/{netns}/{iface}/plan` | apply a whole plan (only differences are sent) |
//! | PATCH | `/v1/interfaces/{netns}/{iface}/rates` | change rates of some classes in place |
//! | GET | `/v1/interfaces/{netns}/{iface}/stats?interval_ms=N` | class counters, rates over N ms |
//! | DELETE | `/v1/interfaces/{netns}/{iface}` | restore the interface as it was |
//! | POST, GET | `/v1/captures` | start a live capture; list captures (see [`crate::captures`]) |
//! | GET, DELETE | `/v1/captures/{id}` | snapshot of a capture; stop it and take its output |
//!
//! `{netns}` is an iproute2 namespace name, or `-` for the agent's own namespace. The same API
//! can also be served over TCP with a bearer token instead of peer checks ([`crate::tcp`]).

use std::future::Future;
use std::io;
use std::os::unix::fs::{PermissionsExt, chown};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use axum::extract::connect_info::Connected;
use axum::extract::{ConnectInfo, Request, State};
use axum::http::StatusCode;
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::serve::IncomingStream;
use axum::{Json, Router};
use qoelab_shaper::{ShapeError, Shaper};
use tokio::net::{TcpListener, UnixListener};

use crate::api::{ErrorBody, Status};
use crate::caps;
use crate::tcp::{TcpConfig, Token, TokenError};

/// Where the agent listens unless told otherwise.
pub const DEFAULT_SOCKET: &str = "/run/qoelab/agent.sock";
/// Where the agent keeps its state unless told otherwise.
pub const DEFAULT_STATE_DIR: &str = "/run/qoelab";

/// How to run the agent.
#[derive(Debug, Clone)]
pub struct Config {
    /// The socket path; `None` serves only on TCP.
    pub socket: Option<PathBuf>,
    /// Whether and where to serve the API on TCP with a token as well.
    pub tcp: Option<TcpConfig>,
    /// A group whose members may use the socket besides root.
    pub group: Option<String>,
    /// Where state files live.
    pub state_dir: PathBuf,
    /// Whether to drop capabilities after setup (off only for in-process tests).
    pub drop_capabilities: bool,
}

/// Errors of starting the agent.
#[derive(Debug, thiserror::Error)]
pub enum AgentError {
    /// A setup step failed.
    #[error("{what}: {error}")]
    Setup {
        /// The step.
        what: String,
        /// Why; in the message, not a `source()`, so that error chains print it once.
        error: io::Error,
    },
    /// The configured group does not exist.
    #[error("group '{0}' does not exist; create it (groupadd {0}) or pass another --group")]
    UnknownGroup(String),
    /// The shaper could not start.
    #[error(transparent)]
    Shaper(#[from] ShapeError),
    /// The TCP token is unusable.
    #[error(transparent)]
    Token(#[from] TokenError),
    /// The agent lacks capabilities it needs.
    #[error(
        "the agent needs root, or the capabilities {} (and {} to work in other network namespaces); missing: {}. Run it as root, or grant them (systemd: AmbientCapabilities=, docker: cap_add, Kubernetes: securityContext.capabilities.add)",
        caps::KEPT[..caps::REQUIRED].iter().map(|(_, name, _)| *name).collect::<Vec<_>>().join(", "),
        caps::KEPT[caps::REQUIRED].1,
        .0.iter().map(|(name, why)| format!("{name} ({why})")).collect::<Vec<_>>().join(", ")
    )]
    MissingCapabilities(Vec<(&'static str, &'static str)>),
    /// Neither a socket nor a TCP address was given.
    #[error("nothing to listen on: give --socket PATH, or --listen-tcp ADDR with --token-file")]
    NoListener,
}

fn setup(what: impl Into<String>) -> impl FnOnce(io::Error) -> AgentError {
    let what = what.into();
    move |error| AgentError::Setup { what, error }
}

/// State shared by the handlers.
#[derive(Debug, Clone)]
pub struct AgentState {
    /// The shaper.
    pub shaper: Arc<Shaper>,
    /// The group allowed besides root.
    pub allowed_gid: Option<u32>,
    /// Capabilities kept, for status.
    pub capabilities: Vec<String>,
    /// Live captures.
    pub captures: Arc<crate::captures::Captures>,
}

/// An error answer: a status and a JSON body.
#[derive(Debug)]
pub struct ApiError {
    /// HTTP status.
    pub status: StatusCode,
    /// Body.
    pub body: ErrorBody,
}

impl ApiError {
    /// An error with only a message.
    pub fn message(status: StatusCode, error: impl Into<String>) -> ApiError {
        ApiError {
            status,
            body: ErrorBody {
                error: error.into(),
                field: None,
                value: None,
                accepted: None,
            },
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        (self.status, Json(self.body)).into_response()
    }
}

impl From<ShapeError> for ApiError {
    fn from(err: ShapeError) -> ApiError {
        let error = err.to_string();
        let (status, field, value, accepted) = match &err {
            ShapeError::Invalid(plan) => {
                return ApiError {
                    status: StatusCode::UNPROCESSABLE_ENTITY,
                    body: ErrorBody {
                        error,
                        field: Some(plan.field.clone()),
                        value: Some(plan.value.clone()),
                        accepted: Some(plan.accepted.clone()),
                    },
                };
            }
            ShapeError::UnknownNetns { netns } => (
                StatusCode::NOT_FOUND,
                "netns",
                netns.clone(),
                "a namespace from `ip netns list`, or - for the agent's own",
            ),
            ShapeError::NetnsNotPermitted { netns } => (
                StatusCode::FORBIDDEN,
                "netns",
                netns.clone(),
                "- for the agent's own namespace (others need CAP_SYS_ADMIN)",
            ),
            ShapeError::UnknownInterface { name, .. } => (
                StatusCode::NOT_FOUND,
                "iface",
                name.clone(),
                "an interface from `ip link` in that namespace",
            ),
            ShapeError::MissingFeature { field, feature } => {
                return ApiError {
                    status: StatusCode::UNPROCESSABLE_ENTITY,
                    body: ErrorBody {
                        error,
                        field: Some(field.clone()),
                        value: Some(feature.clone()),
                        accepted: Some(
                            "a plan that needs only what this kernel has (GET /v1/status lists it, if the agent could probe)"
                                .into(),
                        ),
                    },
                };
            }
            ShapeError::NotShaped { iface } => (
                StatusCode::NOT_FOUND,
                "iface",
                iface.clone(),
                "an interface this agent shapes (GET /v1/interfaces)",
            ),
            ShapeError::Rejected { field, value, .. } => (
                StatusCode::UNPROCESSABLE_ENTITY,
                field.as_str(),
                value.clone(),
                "a value this kernel accepts; its message above says what it objected to",
            ),
            ShapeError::Conflict(_) => return ApiError::message(StatusCode::CONFLICT, error),
            ShapeError::Kernel { .. } | ShapeError::Io { .. } => {
                return ApiError::message(StatusCode::INTERNAL_SERVER_ERROR, error);
            }
        };
        ApiError {
            status,
            body: ErrorBody {
                error,
                field: Some(field.into()),
                value: Some(value),
                accepted: Some(accepted.into()),
            },
        }
    }
}

/// The credentials of a connection's peer (SO_PEERCRED), taken when it connects.
#[derive(Debug, Clone, Copy)]
pub struct Peer {
    /// User id.
    pub uid: u32,
    /// Primary group id.
    pub gid: u32,
    /// Process id, if known.
    pub pid: Option<i32>,
}

impl Connected<IncomingStream<'_, UnixListener>> for Peer {
    fn connect_info(stream: IncomingStream<'_, UnixListener>) -> Peer {
        match stream.io().peer_cred() {
            Ok(cred) => Peer {
                uid: cred.uid(),
                gid: cred.gid(),
                pid: cred.pid(),
            },
            // Unknown credentials are nobody's: refused below.
            Err(_) => Peer {
                uid: u32::MAX,
                gid: u32::MAX,
                pid: None,
            },
        }
    }
}

impl Peer {
    /// Root, or a member (primary or supplementary) of `group`.
    fn allowed(&self, group: Option<u32>) -> bool {
        if self.uid == 0 {
            return true;
        }
        let Some(group) = group else { return false };
        self.gid == group
            || self
                .pid
                .is_some_and(|pid| supplementary_groups(pid).contains(&group))
    }
}

fn supplementary_groups(pid: i32) -> Vec<u32> {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .ok()
        .and_then(|s| {
            s.lines().find(|l| l.starts_with("Groups:")).map(|l| {
                l["Groups:".len()..]
                    .split_whitespace()
                    .filter_map(|g| g.parse().ok())
                    .collect()
            })
        })
        .unwrap_or_default()
}

async fn check_peer(
    State(state): State<AgentState>,
    ConnectInfo(peer): ConnectInfo<Peer>,
    request: Request,
    next: Next,
) -> Response {
    if peer.allowed(state.allowed_gid) {
        next.run(request).await
    } else {
        tracing::warn!(?peer, "refused a peer");
        ApiError::message(StatusCode::FORBIDDEN, format!("uid {} is neither root nor in the agent's group; ask an administrator to add you to it", peer.uid)).into_response()
    }
}

async fn status(State(state): State<AgentState>) -> Json<Status> {
    Json(Status {
        version: env!("CARGO_PKG_VERSION").into(),
        features: state.shaper.features(),
        capabilities: state.capabilities.clone(),
        interfaces: state.shaper.shaped(),
    })
}

async fn not_found() -> ApiError {
    ApiError::message(
        StatusCode::NOT_FOUND,
        "no such resource; the routes are listed in the README (GET /v1/status, /v1/interfaces/...)",
    )
}

/// The whole API without access checks: one module per resource, merged here.
pub(crate) fn api() -> Router<AgentState> {
    Router::new()
        .route("/v1/status", get(status))
        .merge(crate::shaping::routes())
        .merge(crate::captures::routes())
        .fallback(not_found)
}

/// The whole API behind the peer check, for the Unix socket.
pub fn router(state: AgentState) -> Router {
    api()
        .route_layer(middleware::from_fn_with_state(state.clone(), check_peer))
        .with_state(state)
}

/// Serves `router` on `listener` until `shutdown` completes.
pub async fn serve(
    listener: UnixListener,
    state: AgentState,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> io::Result<()> {
    serve_all(Some(listener), None, state, shutdown).await
}

/// Serves the API on the Unix socket and over TCP with a token (each if given), with one
/// state, until `shutdown` completes.
pub async fn serve_all(
    unix: Option<UnixListener>,
    tcp: Option<(TcpListener, Token)>,
    state: AgentState,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> io::Result<()> {
    let sweeper = tokio::spawn(crate::captures::sweeper(state.captures.clone()));
    // Every listener stops when the sender is dropped, that is when `shutdown` completes.
    let (stop, stopped) = tokio::sync::watch::channel(());
    let stopped = move || {
        let mut stopped = stopped.clone();
        async move {
            let _ = stopped.changed().await;
        }
    };
    let on_unix = async {
        let Some(listener) = unix else { return Ok(()) };
        let app = router(state.clone()).into_make_service_with_connect_info::<Peer>();
        axum::serve(listener, app)
            .with_graceful_shutdown(stopped())
            .await
    };
    let on_tcp = async {
        let Some((listener, token)) = tcp else {
            return Ok(());
        };
        crate::tcp::serve(listener, state.clone(), token, stopped()).await
    };
    let (_, on_unix, on_tcp) = tokio::join!(
        async move {
            shutdown.await;
            drop(stop);
        },
        on_unix,
        on_tcp
    );
    sweeper.abort();
    on_unix.and(on_tcp)
}

/// Binds the socket (replacing a stale one), mode 0660, group `gid`.
pub(crate) fn bind(
    path: &Path,
    gid: Option<u32>,
) -> Result<std::os::unix::net::UnixListener, AgentError> {
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir).map_err(setup(format!("create {}", dir.display())))?;
    }
    if path.exists() {
        if std::os::unix::net::UnixStream::connect(path).is_ok() {
            return Err(AgentError::Setup {
                what: format!("listen on {}", path.display()),
                error: io::Error::new(
                    io::ErrorKind::AddrInUse,
                    "another agent is running on this socket",
                ),
            });
        }
        std::fs::remove_file(path)
            .map_err(setup(format!("remove the stale socket {}", path.display())))?;
    }
    let listener = std::os::unix::net::UnixListener::bind(path)
        .map_err(setup(format!("listen on {}", path.display())))?;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o660))
        .map_err(setup("set the socket's mode"))?;
    if let Some(gid) = gid {
        chown(path, None, Some(gid)).map_err(setup("set the socket's group"))?;
    }
    listener
        .set_nonblocking(true)
        .map_err(setup("make the socket non-blocking"))?;
    Ok(listener)
}

/// Runs the agent until SIGTERM or SIGINT, then restores every interface it shaped and removes
/// its socket. Blocking; call it from the main thread before starting other threads, as the
/// capability drop only covers threads started afterwards.
pub fn run(config: Config) -> Result<(), AgentError> {
    if config.socket.is_none() && config.tcp.is_none() {
        return Err(AgentError::NoListener);
    }
    let tcp = config.tcp.as_ref().map(crate::tcp::bind).transpose()?;
    let missing = caps::missing();
    if !missing.is_empty() {
        return Err(AgentError::MissingCapabilities(missing));
    }
    let allowed_gid = match &config.group {
        None => None,
        Some(name) => Some(
            nix::unistd::Group::from_name(name)
                .map_err(|e| setup(format!("look up group {name}"))(e.into()))?
                .ok_or_else(|| AgentError::UnknownGroup(name.clone()))?
                .gid
                .as_raw(),
        ),
    };
    std::fs::create_dir_all(&config.state_dir).map_err(setup(format!(
        "create the state dir {}",
        config.state_dir.display()
    )))?;
    let shaper = Arc::new(Shaper::open(&config.state_dir)?);
    let unix = match &config.socket {
        Some(socket) => Some(bind(socket, allowed_gid)?),
        None => None,
    };
    let capabilities = if config.drop_capabilities {
        caps::drop_all_but_kept().map_err(setup("drop capabilities"))?;
        caps::held_names()
    } else {
        Vec::new()
    };
    tracing::info!(socket = ?config.socket, tcp = ?config.tcp.as_ref().map(|t| t.listen), ?capabilities, "agent ready");
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .map_err(setup("start the runtime"))?;
    let state = AgentState {
        shaper: shaper.clone(),
        allowed_gid,
        capabilities,
        captures: Default::default(),
    };
    let served = runtime.block_on(async move {
        let unix = unix.map(UnixListener::from_std).transpose()?;
        let tcp = match tcp {
            Some((listener, token)) => Some((TcpListener::from_std(listener)?, token)),
            None => None,
        };
        serve_all(unix, tcp, state, shutdown_signal()).await
    });
    for (iface, err) in shaper.restore_all() {
        tracing::error!(%iface, "could not restore: {err}");
    }
    if let Some(socket) = &config.socket {
        let _ = std::fs::remove_file(socket);
    }
    served.map_err(setup("serve"))
}

async fn shutdown_signal() {
    use tokio::signal::unix::{SignalKind, signal};
    let (Ok(mut term), Ok(mut int)) = (
        signal(SignalKind::terminate()),
        signal(SignalKind::interrupt()),
    ) else {
        return std::future::pending().await;
    };
    tokio::select! {
        _ = term.recv() => tracing::info!("SIGTERM: restoring interfaces"),
        _ = int.recv() => tracing::info!("SIGINT: restoring interfaces"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use qoelab_shaper::netlink::KernelError;

    #[test]
    fn kernel_refusals_map_to_the_status_of_whose_fault_they_are() {
        let refusal = KernelError {
            errno: libc::EINVAL,
            message: Some("bad value".into()),
        };
        let rejected = ApiError::from(ShapeError::Rejected {
            field: "egress.classes[0].queue_ms".into(),
            value: "100".into(),
            source: refusal.clone(),
        });
        assert_eq!(rejected.status, StatusCode::UNPROCESSABLE_ENTITY);
        assert_eq!(
            rejected.body.field.as_deref(),
            Some("egress.classes[0].queue_ms")
        );
        assert!(rejected.body.error.contains("bad value"));
        let conflict = ApiError::from(ShapeError::Conflict("changed meanwhile".into()));
        assert_eq!(conflict.status, StatusCode::CONFLICT);
        let internal = ApiError::from(ShapeError::Kernel {
            what: "x".into(),
            field: None,
            source: refusal,
        });
        assert_eq!(internal.status, StatusCode::INTERNAL_SERVER_ERROR);
    }
}
