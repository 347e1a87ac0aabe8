//! `qoelab serve` as a user runs it: it refuses to open the API to the network without a
//! token, serves over a database, fails sessions plainly while it has no link to shape or no
//! agent answers, and stops cleanly on SIGTERM. (`tests/up_cli.rs` runs the same runner, agent
//! client and pages against a real agent and lab.)

mod http;

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use http::{Server, free_port, http};

fn qoelab() -> Command {
    Command::new(env!("CARGO_BIN_EXE_qoelab"))
}

#[test]
fn serve_refuses_the_network_without_a_token() {
    let out = qoelab()
        .args([
            "serve",
            "--listen",
            "0.0.0.0:0",
            "--database",
            "sqlite:///nonexistent/x.db",
        ])
        .env_remove("QOELAB_TOKEN")
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("0.0.0.0:0") && err.contains("--token"),
        "{err}"
    );
}

/// Starts `qoelab serve` with `extra` arguments over a fresh SQLite file, runs a one-session
/// campaign, and returns the failure reason of its session, the dashboard, and the exit status
/// after SIGTERM.
fn serve_one_session(name: &str, extra: &[&str]) -> (String, String, std::process::ExitStatus) {
    let port = free_port();
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join(format!("{name}.db"));
    let mut server = Server(
        qoelab()
            .args(["serve", "--listen", &format!("127.0.0.1:{port}")])
            .args(["--agent", "/nonexistent.sock"])
            .args(extra)
            .arg("--database")
            .arg(format!("sqlite://{}", db.display()))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap(),
    );
    server.wait_healthy(port, Duration::from_secs(30));
    let spec = r#"{"name": "no agent", "sessions": 1, "duration_s": 1, "limits": ["2mbit"],
        "workload": {"kind": "video", "abr": "buffer"}, "start": true}"#;
    let (status, body) = http(port, "POST", "/api/v1/campaigns", spec).unwrap();
    assert!(status.contains("201"), "{status}: {body}");
    let started = Instant::now();
    let mut failed = String::new();
    while started.elapsed() < Duration::from_secs(30) && !failed.contains("failure") {
        std::thread::sleep(Duration::from_millis(200));
        failed = http(port, "GET", "/api/v1/sessions?status=failed", "")
            .unwrap()
            .1;
    }
    let (_, page) = http(port, "GET", "/", "").unwrap();
    let exit = server.stop("-TERM", Duration::from_secs(15));
    (failed, page, exit)
}

#[test]
fn serve_without_a_link_fails_sessions_saying_which_flags_are_missing() {
    let (failed, page, exit) = serve_one_session("nolink", &[]);
    assert!(
        failed.contains(
            "no link to shape and capture: start qoelab serve with --uplink IFACE --downlink IFACE"
        ),
        "{failed}"
    );
    assert!(page.contains("agent not connected"), "{page}");
    assert!(exit.success(), "{exit}");
}

#[test]
fn serve_fails_sessions_plainly_while_no_agent_answers_and_stops_on_sigterm() {
    let (failed, page, exit) =
        serve_one_session("noagent", &["--uplink", "qlz-wan", "--downlink", "qlz-lan"]);
    assert!(
        failed.contains("cannot reach the qoelab agent at unix:/nonexistent.sock"),
        "{failed}"
    );
    assert!(page.contains("agent not connected"), "{page}");
    assert!(
        page.contains("cannot reach the qoelab agent"),
        "the dashboard says why: {page}"
    );
    assert!(exit.success(), "{exit}");
}

#[test]
fn serve_refuses_half_a_link() {
    let out = qoelab()
        .args(["serve", "--uplink", "eth0"])
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("--downlink"), "{err}");
}
