//! `qoelab agent` as an operator starts it: the refusals deploy/README.md quotes (missing
//! capabilities, a token file open to others, options that need each other), and the agent over
//! TCP alone, with its real capability drop, stopped by SIGTERM.

use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::process::{Command, Output, Stdio};
use std::time::Duration;

use qoelab_agent::client::{AgentClient, ClientError};

const TOKEN: &str = "9c1e5b7d3a2f4e6081b9c7d5e3f1a2b4";

fn token_file(dir: &Path, mode: u32) -> String {
    let path = dir.join("agent.token");
    std::fs::write(&path, TOKEN).unwrap();
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(mode)).unwrap();
    path.display().to_string()
}

/// `qoelab agent ARGS` under `setpriv SETPRIV` (util-linux), waited for.
fn agent(setpriv: &[&str], args: &[&str]) -> Output {
    Command::new("setpriv")
        .args(setpriv)
        .arg("--")
        .arg(env!("CARGO_BIN_EXE_qoelab"))
        .arg("agent")
        .args(args)
        .output()
        .expect("setpriv runs")
}

/// The error `qoelab agent ARGS` under `setpriv SETPRIV` ends with: exit code 1 and stderr.
fn refusal(setpriv: &[&str], args: &[&str]) -> String {
    let run = agent(setpriv, args);
    let stderr = String::from_utf8_lossy(&run.stderr).into_owned();
    assert_eq!(run.status.code(), Some(1), "{stderr}");
    stderr
}

#[test]
fn an_agent_without_its_capabilities_names_the_missing_ones() {
    let dir = tempfile::tempdir().unwrap();
    let socket = dir.path().join("agent.sock").display().to_string();
    let state = dir.path().join("state").display().to_string();
    let args = ["--socket", &socket, "--state-dir", &state];
    // As `docker run --cap-drop ALL --cap-add NET_ADMIN --cap-add NET_RAW` would start it.
    let container = ["--inh-caps=-all", "--bounding-set=-all,+net_admin,+net_raw"];
    let stderr = refusal(&container, &args);
    assert!(
        stderr.contains("missing: CAP_SYS_ADMIN (probe tc features"),
        "{stderr}"
    );
    assert!(!stderr.contains("CAP_NET_ADMIN ("), "{stderr}");
    let plain_user = [
        "--reuid=65534",
        "--regid=65534",
        "--clear-groups",
        "--inh-caps=-all",
    ];
    let stderr = refusal(&plain_user, &args);
    assert!(
        stderr.contains("the agent needs root, or the capabilities CAP_NET_ADMIN, CAP_NET_RAW, CAP_SYS_ADMIN; missing: CAP_NET_ADMIN"),
        "{stderr}"
    );
    assert!(!dir.path().join("agent.sock").exists());
}

#[test]
fn a_token_file_others_can_read_stops_the_agent_before_it_listens() {
    let dir = tempfile::tempdir().unwrap();
    let token = token_file(dir.path(), 0o644);
    let tcp_only = [
        "--no-socket",
        "--listen-tcp",
        "127.0.0.1:0",
        "--token-file",
        &token,
    ];
    let stderr = refusal(&[], &tcp_only);
    assert!(
        stderr.contains(&format!(
            "the token file {token} is accessible to every user (mode 0644); restrict it: chmod 600 {token}"
        )),
        "{stderr}"
    );
    // Options that only make sense together are refused by the parser.
    let run = agent(&[], &["--token-file", &token]);
    assert_eq!(run.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&run.stderr).contains("--listen-tcp <ADDR>"));
}

#[test]
fn the_agent_serves_tcp_alone_with_its_token_and_stops_on_sigterm() {
    let dir = tempfile::tempdir().unwrap();
    let token = token_file(dir.path(), 0o600);
    let state = dir.path().join("state").display().to_string();
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let listen = format!("127.0.0.1:{port}");
    let mut child = Command::new(env!("CARGO_BIN_EXE_qoelab"))
        .args(["agent", "--no-socket", "--listen-tcp", &listen])
        .args(["--token-file", &token, "--state-dir", &state])
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let target = format!("tcp://{listen}");
    let client = AgentClient::connect(&target, Some(TOKEN)).unwrap();
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let status = runtime.block_on(async {
        for _ in 0..200 {
            if let Ok(status) = client.status().await {
                return Some(status);
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        None
    });
    let Some(status) = status else {
        child.kill().unwrap();
        let out = child.wait_with_output().unwrap();
        panic!("no answer: {}", String::from_utf8_lossy(&out.stderr));
    };
    assert_eq!(
        status.capabilities,
        ["CAP_NET_ADMIN", "CAP_NET_RAW", "CAP_SYS_ADMIN"]
    );
    let wrong = AgentClient::connect(&target, Some("9c1e5b7d3a2f4e6081b9c7d5e3f1a2b5")).unwrap();
    match runtime.block_on(wrong.status()) {
        Err(ClientError::Api { status, .. }) => assert_eq!(status.as_u16(), 401),
        other => panic!("expected 401, got {other:?}"),
    }
    // SAFETY: kill with the child's id.
    assert_eq!(
        unsafe { libc::kill(child.id() as libc::pid_t, libc::SIGTERM) },
        0
    );
    let out = child.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}
