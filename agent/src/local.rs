//! The agent inside another program (`qoelab up`, tests): the same server and socket API,
//! served on the caller's tokio runtime, without dropping the caller's capabilities.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use qoelab_shaper::{IfaceRef, ShapeError, Shaper};
use tokio::net::UnixListener;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

use crate::client::AgentClient;
use crate::server::{AgentError, AgentState, bind, serve};

/// An agent serving on a socket from within this process.
#[derive(Debug)]
pub struct LocalAgent {
    client: AgentClient,
    shaper: Arc<Shaper>,
    socket: PathBuf,
    stop: Option<oneshot::Sender<()>>,
    task: Option<JoinHandle<std::io::Result<()>>>,
}

impl LocalAgent {
    /// Opens the shaper state in `state_dir` (adopting leftovers of an earlier run) and serves
    /// the API on `socket` on the current runtime.
    pub fn start(socket: &Path, state_dir: &Path) -> Result<LocalAgent, AgentError> {
        std::fs::create_dir_all(state_dir).map_err(|error| AgentError::Setup {
            what: format!("create the state dir {}", state_dir.display()),
            error,
        })?;
        let shaper = Arc::new(Shaper::open(state_dir)?);
        let listener = bind(socket, None)?;
        let listener = UnixListener::from_std(listener).map_err(|error| AgentError::Setup {
            what: format!("listen on {}", socket.display()),
            error,
        })?;
        let state = AgentState {
            shaper: shaper.clone(),
            allowed_gid: None,
            capabilities: Vec::new(),
            captures: Default::default(),
        };
        let (stop, stopped) = oneshot::channel::<()>();
        let task = tokio::spawn(serve(listener, state, async move {
            let _ = stopped.await;
        }));
        Ok(LocalAgent {
            client: AgentClient::new(socket),
            shaper,
            socket: socket.to_path_buf(),
            stop: Some(stop),
            task: Some(task),
        })
    }

    /// A client of this agent.
    pub fn client(&self) -> &AgentClient {
        &self.client
    }

    /// Stops serving, restores every interface the agent shaped and removes the socket;
    /// returns the interfaces that could not be restored.
    pub async fn stop(mut self) -> Vec<(IfaceRef, ShapeError)> {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(task) = self.task.take() {
            let _ = task.await;
        }
        self.restore()
    }

    fn restore(&self) -> Vec<(IfaceRef, ShapeError)> {
        let failed = self.shaper.restore_all();
        let _ = std::fs::remove_file(&self.socket);
        failed
    }
}

impl Drop for LocalAgent {
    fn drop(&mut self) {
        if self.stop.is_some() {
            if let Some(task) = self.task.take() {
                task.abort();
            }
            for (iface, err) in self.restore() {
                tracing::error!(%iface, "could not restore: {err}");
            }
        }
    }
}
