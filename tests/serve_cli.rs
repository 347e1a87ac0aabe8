//! `qoelab serve` as a user runs it: it refuses to open the API to the network without a
//! token, serves over a database, fails sessions plainly while no agent is connected, and
//! stops cleanly on SIGTERM.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

fn qoelab() -> Command {
    Command::new(env!("CARGO_BIN_EXE_qoelab"))
}

/// One HTTP/1.1 request over a fresh connection; returns the status line and the body.
fn http(port: u16, method: &str, path: &str, body: &str) -> Option<(String, String)> {
    let mut stream = TcpStream::connect(("127.0.0.1", port)).ok()?;
    let request = format!(
        "{method} {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\
         Content-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    );
    stream.write_all(request.as_bytes()).ok()?;
    let mut reply = String::new();
    stream.read_to_string(&mut reply).ok()?;
    let (head, body) = reply.split_once("\r\n\r\n")?;
    Some((head.lines().next()?.to_string(), body.to_string()))
}

/// The server process, killed if the test fails before it stops it.
struct Server(std::process::Child);

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
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

#[test]
fn serve_runs_fails_sessions_without_an_agent_and_stops_on_sigterm() {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let db = std::env::temp_dir().join(format!("qoelab-serve-{}.db", std::process::id()));
    let mut server = Server(
        qoelab()
            .args([
                "serve",
                "--listen",
                &format!("127.0.0.1:{port}"),
                "--agent",
                "/nonexistent.sock",
            ])
            .arg("--database")
            .arg(format!("sqlite://{}", db.display()))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap(),
    );
    let started = Instant::now();
    while http(port, "GET", "/healthz", "").is_none_or(|(status, _)| !status.contains("200")) {
        assert!(
            started.elapsed() < Duration::from_secs(30),
            "qoelab serve did not come up"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    let spec = r#"{"name": "no agent", "sessions": 1, "duration_s": 1, "limits": ["unlimited"],
        "workload": {"kind": "video", "abr": "buffer"}, "start": true}"#;
    let (status, _) = http(port, "POST", "/api/v1/campaigns", spec).unwrap();
    assert!(status.contains("201"), "{status}");
    let mut failure = String::new();
    while started.elapsed() < Duration::from_secs(30) && !failure.contains("agent not connected") {
        std::thread::sleep(Duration::from_millis(200));
        failure = http(port, "GET", "/api/v1/sessions?status=failed", "")
            .unwrap()
            .1;
    }
    assert!(
        failure.contains("agent not connected: no qoelab agent answers at /nonexistent.sock"),
        "{failure}"
    );
    let (_, page) = http(port, "GET", "/", "").unwrap();
    assert!(page.contains("agent not connected"));

    Command::new("kill")
        .args(["-TERM", &server.0.id().to_string()])
        .status()
        .unwrap();
    let stopping = Instant::now();
    let exit = loop {
        if let Some(exit) = server.0.try_wait().unwrap() {
            break exit;
        }
        assert!(
            stopping.elapsed() < Duration::from_secs(15),
            "qoelab serve ignored SIGTERM"
        );
        std::thread::sleep(Duration::from_millis(100));
    };
    for suffix in ["", "-wal", "-shm"] {
        let _ = std::fs::remove_file(format!("{}{suffix}", db.display()));
    }
    assert!(exit.success(), "{exit}");
}
