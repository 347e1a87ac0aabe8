//! Start-up refusals of `server::run` that need no network.

mod common;

use common::run_briefly;

use qoelab_agent::server::{AgentError, Config};

#[test]
fn an_agent_without_any_listener_refuses_to_start() {
    let dir = tempfile::tempdir().unwrap();
    let err = run_briefly(Config {
        socket: None,
        tcp: None,
        group: Some("root".into()),
        state_dir: dir.path().join("state"),
        drop_capabilities: false,
    })
    .expect("the agent did not refuse to start");
    assert!(matches!(err, AgentError::NoListener), "{err}");
    assert!(err.to_string().contains("--listen-tcp"), "{err}");
    assert!(!dir.path().join("state").exists());
}
