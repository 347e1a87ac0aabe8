//! The agent over real TCP on 127.0.0.1: the bearer token decides, the token file's mode is
//! checked at start, and the whole start-up path (`server::run`) serves TCP and stops on
//! SIGTERM.

mod common;

use common::run_briefly;

use std::io::{Read, Write};
use std::net::TcpStream;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use qoelab_agent::client::{AgentClient, ClientError};
use qoelab_agent::server::{self, AgentError, AgentState, Config};
use qoelab_agent::tcp::{TcpConfig, Token, TokenError};
use qoelab_shaper::Shaper;

const TOKEN: &str = "3f0c1d9a7b2e4c6f8a1d3e5f7a9c0b2d";

fn token_file(dir: &Path, mode: u32) -> PathBuf {
    let path = dir.join("token");
    std::fs::write(&path, format!("{TOKEN}\n")).unwrap();
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(mode)).unwrap();
    path
}

/// One raw HTTP/1.1 request; returns the status code and the whole response.
fn raw(port: u16, path: &str, authorization: Option<&str>) -> (u16, String) {
    let mut stream = TcpStream::connect(("127.0.0.1", port)).unwrap();
    let auth = authorization
        .map(|a| format!("Authorization: {a}\r\n"))
        .unwrap_or_default();
    write!(
        stream,
        "GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\n{auth}Connection: close\r\n\r\n"
    )
    .unwrap();
    let mut response = String::new();
    stream.read_to_string(&mut response).unwrap();
    let status = response[9..12].parse().unwrap();
    (status, response)
}

fn status_of(err: ClientError) -> u16 {
    match err {
        ClientError::Api { status, .. } => status.as_u16(),
        other => panic!("expected an API error, got {other}"),
    }
}

#[test]
fn tcp_requests_need_the_exact_bearer_token() {
    let dir = tempfile::tempdir().unwrap();
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let token = Token::read(&token_file(dir.path(), 0o600)).unwrap();
    let listener = runtime
        .block_on(tokio::net::TcpListener::bind("127.0.0.1:0"))
        .unwrap();
    let port = listener.local_addr().unwrap().port();
    let state = AgentState {
        shaper: Arc::new(Shaper::open(&dir.path().join("state")).unwrap()),
        allowed_gid: None,
        capabilities: Vec::new(),
        captures: Default::default(),
    };
    runtime.spawn(server::serve_all(
        None,
        Some((listener, token)),
        state,
        std::future::pending(),
    ));
    let target = format!("tcp://127.0.0.1:{port}");
    runtime.block_on(async {
        let good = AgentClient::connect(&target, Some(TOKEN)).unwrap();
        assert_eq!(
            good.status().await.unwrap().version,
            env!("CARGO_PKG_VERSION")
        );
        assert!(good.interfaces().await.unwrap().is_empty());
        let wrong =
            AgentClient::connect(&target, Some("3f0c1d9a7b2e4c6f8a1d3e5f7a9c0b2e")).unwrap();
        let err = wrong.status().await.unwrap_err();
        assert!(err.to_string().contains("does not match"), "{err}");
        assert_eq!(status_of(err), 401);
        let longer = AgentClient::connect(&target, Some(&format!("{TOKEN}0"))).unwrap();
        assert_eq!(status_of(longer.status().await.unwrap_err()), 401);
    });
    let (status, response) = raw(port, "/v1/status", None);
    assert_eq!(status, 401, "{response}");
    assert!(
        response
            .to_ascii_lowercase()
            .contains("www-authenticate: bearer"),
        "{response}"
    );
    assert!(
        response.contains("Authorization: Bearer TOKEN"),
        "{response}"
    );
    for header in [
        format!("Basic {TOKEN}"),
        format!("bearer {TOKEN}"),
        TOKEN.into(),
    ] {
        assert_eq!(raw(port, "/v1/status", Some(&header)).0, 401, "{header}");
    }
    // Unknown paths are no way around the check; with the token they are plain 404s.
    assert_eq!(raw(port, "/nothing", None).0, 401);
    assert_eq!(
        raw(port, "/nothing", Some(&format!("Bearer {TOKEN}"))).0,
        404
    );
    assert_eq!(
        raw(port, "/v1/status", Some(&format!("Bearer {TOKEN}"))).0,
        200
    );
}

#[test]
fn a_token_file_open_to_other_users_is_refused_at_start() {
    let dir = tempfile::tempdir().unwrap();
    for mode in [0o644, 0o604, 0o602] {
        let path = token_file(dir.path(), mode);
        let config = Config {
            socket: None,
            tcp: Some(TcpConfig {
                listen: "127.0.0.1:0".parse().unwrap(),
                token_file: path.clone(),
            }),
            group: None,
            state_dir: dir.path().join("state"),
            drop_capabilities: false,
        };
        let err = run_briefly(config).expect("the agent did not refuse to start");
        assert!(
            matches!(err, AgentError::Token(TokenError::OpenToOthers { .. })),
            "{err}"
        );
        let message = err.to_string();
        assert!(message.contains(&format!("mode {mode:04o}")), "{message}");
        assert!(
            message.contains(&format!("chmod 600 {}", path.display())),
            "{message}"
        );
    }
    // Refused before anything was set up.
    assert!(!dir.path().join("state").exists());
    let missing = Token::read(&dir.path().join("absent")).unwrap_err();
    assert!(matches!(missing, TokenError::Read { .. }), "{missing}");
    for mode in [0o600, 0o640, 0o400] {
        assert!(
            Token::read(&token_file(dir.path(), mode)).is_ok(),
            "{mode:o}"
        );
    }
}

#[test]
fn the_agent_starts_on_tcp_alone_and_stops_on_sigterm() {
    let dir = tempfile::tempdir().unwrap();
    // A free port: bind, read it, release it for the agent.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let config = Config {
        socket: None,
        tcp: Some(TcpConfig {
            listen: ([127, 0, 0, 1], port).into(),
            token_file: token_file(dir.path(), 0o600),
        }),
        group: None,
        state_dir: dir.path().join("state"),
        drop_capabilities: false,
    };
    let agent = std::thread::spawn(move || server::run(config));
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let client = AgentClient::connect(&format!("tcp://127.0.0.1:{port}"), Some(TOKEN)).unwrap();
    let answered = runtime.block_on(async {
        for _ in 0..100 {
            if client.status().await.is_ok() {
                return true;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        false
    });
    assert!(answered, "the agent never answered on 127.0.0.1:{port}");
    // The agent handles SIGTERM from here on (its handler was installed before it served).
    // SAFETY: kill with this process's own id and a signal the agent handles.
    assert_eq!(unsafe { libc::kill(libc::getpid(), libc::SIGTERM) }, 0);
    agent.join().unwrap().unwrap();
    let err = runtime.block_on(client.status()).unwrap_err();
    assert!(matches!(err, ClientError::Connect { .. }), "{err}");
    assert!(err.to_string().contains("--listen-tcp"), "{err}");
}
