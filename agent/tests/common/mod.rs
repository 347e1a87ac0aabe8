//! The agent in-process on a temporary socket, for the API tests.
#![allow(dead_code)]

use std::sync::Arc;

use qoelab_agent::client::AgentClient;
use qoelab_agent::server::{self, AgentState};
use qoelab_shaper::Shaper;

/// Starts the agent on a socket in `dir` with `shaper`; returns its client.
pub fn start_with(
    dir: &std::path::Path,
    runtime: &tokio::runtime::Runtime,
    shaper: Arc<Shaper>,
) -> AgentClient {
    let socket = dir.join("agent.sock");
    let listener = runtime
        .block_on(async { tokio::net::UnixListener::bind(&socket) })
        .unwrap();
    let state = AgentState {
        shaper,
        allowed_gid: Some(4242),
        capabilities: Vec::new(),
        captures: Default::default(),
    };
    runtime.spawn(server::serve(listener, state, std::future::pending()));
    AgentClient::new(socket)
}

/// Starts the agent on a socket in `dir`; returns its client.
pub fn start(dir: &std::path::Path, runtime: &tokio::runtime::Runtime) -> AgentClient {
    start_with(
        dir,
        runtime,
        Arc::new(Shaper::open(&dir.join("state")).unwrap()),
    )
}
