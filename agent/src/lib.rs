//! The privileged qoelab agent and its client.
//!
//! The agent owns the host's traffic control and packet capture and offers it to
//! unprivileged programs as HTTP/JSON on a Unix socket, like the Docker Engine API
//! (`curl --unix-socket /run/qoelab/agent.sock http://agent/v1/status` works). Each connection's
//! peer credentials are checked: root or members of the configured group only. After setup it
//! keeps only the capabilities it needs ([`caps::KEPT`]). [`client::AgentClient`] is the typed
//! client the CLI, the collector and the planner use. For a server on another host the same API
//! is served over TCP, where a bearer token takes the place of the peer check ([`tcp`]).
//!
//! Resources are modules of [`server`]: `shaping` serves `/v1/interfaces/...`, [`captures`]
//! serves `/v1/captures/...`; each is one module merged into [`server::router`].
//!
//! Not here: shaping logic (`qoelab-shaper`), databases, the web UI.

pub mod api;
pub mod caps;
pub mod captures;
pub mod client;
pub mod local;
pub mod server;
mod shaping;
pub mod tcp;
