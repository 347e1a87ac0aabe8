//! `qoelab allocate --watch` and `qoelab shape trace` as a user runs them: against an agent
//! (in this test process) shaping a lab's uplink, and with bad input.

mod common;

use std::io::{BufRead, BufReader, Read, Write};
use std::process::{Command, Stdio};

use common::qoelab;
use qoelab_agent::local::LocalAgent;
use qoelab_lab::Lab;

/// A lab and an agent shaping its router, on a multi-thread runtime of the test.
struct Setup {
    lab: Lab,
    agent: LocalAgent,
    dir: tempfile::TempDir,
    socket: String,
    runtime: tokio::runtime::Runtime,
}

impl Setup {
    fn new() -> Setup {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .unwrap();
        let lab = Lab::standard(None).unwrap();
        let dir = tempfile::tempdir().unwrap();
        let socket = dir.path().join("agent.sock");
        let agent = runtime
            .block_on(async { LocalAgent::start(&socket, &dir.path().join("state")) })
            .unwrap();
        Setup {
            lab,
            agent,
            socket: socket.display().to_string(),
            dir,
            runtime,
        }
    }

    /// `--agent SOCKET --netns NS --iface IFACE`: the lab's uplink through the agent.
    fn uplink_args(&self) -> Vec<String> {
        let netns = self.lab.router().unwrap().name().to_string();
        [
            "--agent",
            &self.socket,
            "--netns",
            &netns,
            "--iface",
            &self.lab.uplink(),
        ]
        .map(String::from)
        .to_vec()
    }

    fn file(&self, name: &str, text: &str) -> String {
        let path = self.dir.path().join(name);
        std::fs::write(&path, text).unwrap();
        path.display().to_string()
    }

    fn shaped(&self) -> usize {
        self.runtime
            .block_on(self.agent.client().interfaces())
            .unwrap()
            .len()
    }
}

#[test]
fn shape_trace_plays_a_trace_in_place_and_restores() {
    let setup = Setup::new();
    let trace = setup.file("trace.txt", "0 4\n1 2\n");
    let mut args = vec!["shape".to_string(), "trace".into(), trace];
    args.extend(setup.uplink_args());
    let (ok, out, err) = qoelab(&args.iter().map(String::as_str).collect::<Vec<_>>());
    assert!(ok, "{err}");
    assert!(
        out.contains("played 2 steps") && out.contains("0 deleted") && out.contains("restored"),
        "{out}"
    );
    assert_eq!(setup.shaped(), 0, "put back unshaped");
}

#[test]
fn allocate_watch_serves_registrations_and_restores_on_sigterm() {
    let setup = Setup::new();
    let analytics = setup.file(
        "analytics.toml",
        "[[analytic]]\nid = \"mic-1\"\nkind = \"audio-classification\"\nlocation = \"cloud\"\n\
         port = 9101\n",
    );
    let mut child = Command::new(env!("CARGO_BIN_EXE_qoelab"))
        .args(["allocate", "--watch", "--budget", "1mbit"])
        .args(setup.uplink_args())
        .args(["--analytics", &analytics, "--listen", "127.0.0.1:0"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let mut seen = Vec::new();
    let api = loop {
        let line = lines.next().expect("the API address is printed").unwrap();
        seen.push(line.clone());
        if let Some(rest) = line.strip_prefix("registration API on http://") {
            break rest.trim_end_matches("/v1/analytics").to_string();
        }
    };
    let seen = seen.join("\n");
    assert!(seen.contains("#1 register mic-1"), "{seen}");
    assert!(seen.contains("4 created, 0 deleted"), "{seen}");

    let mut conn = std::net::TcpStream::connect(&api).unwrap();
    write!(
        conn,
        "GET /v1/allocation HTTP/1.1\r\nHost: {api}\r\nConnection: close\r\n\r\n"
    )
    .unwrap();
    let mut answer = String::new();
    conn.read_to_string(&mut answer).unwrap();
    assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
    assert!(answer.contains(r#""id":"mic-1""#), "{answer}");
    assert_eq!(setup.shaped(), 1);

    // SIGTERM: the uplink is put back as found.
    unsafe { libc::kill(child.id() as i32, libc::SIGTERM) };
    let status = child.wait().unwrap();
    let rest: Vec<String> = lines.map_while(Result::ok).collect();
    let mut err = String::new();
    child
        .stderr
        .take()
        .unwrap()
        .read_to_string(&mut err)
        .unwrap();
    assert!(status.success(), "{err}");
    assert!(rest.iter().any(|l| l.ends_with(": restored")), "{rest:?}");
    assert_eq!(setup.shaped(), 0);
}

#[test]
fn bad_input_is_refused_by_name() {
    let dir = tempfile::tempdir().unwrap();
    let trace = dir.path().join("trace.txt");
    std::fs::write(&trace, "0 5\n3 fast\n").unwrap();
    let trace = trace.display().to_string();
    let (ok, _, err) = qoelab(&["shape", "trace", &trace, "--iface", "qlx-wan"]);
    assert!(!ok);
    assert!(
        err.contains("line 2 '3 fast'") && err.contains("'fast'"),
        "{err}"
    );

    std::fs::write(dir.path().join("good.txt"), "0 5\n").unwrap();
    let good = dir.path().join("good.txt").display().to_string();
    let socket = dir.path().join("none.sock").display().to_string();
    let (ok, _, err) = qoelab(&["shape", "trace", &good, "--iface", "x", "--agent", &socket]);
    assert!(!ok);
    assert!(
        err.contains("cannot reach the qoelab agent") && err.contains(&socket),
        "{err}"
    );
    let (ok, _, err) = qoelab(&["shape", "trace", &good, "--iface", "x", "--direction", "up"]);
    assert!(!ok);
    assert!(
        err.contains("'up' is not a direction: use egress or ingress"),
        "{err}"
    );

    let (ok, _, err) = qoelab(&["allocate", "--watch", "--budget", "1mbit"]);
    assert!(!ok);
    assert!(err.contains("--iface"), "{err}");
    let (ok, _, err) = qoelab(&["allocate", "--watch", "--budget", "1mbit", "--iface", "x"]);
    assert!(!ok);
    assert!(err.contains("--watch needs --listen"), "{err}");
    let (ok, _, err) = qoelab(&["allocate", "--budget", "1mbit", "--listen", "127.0.0.1:1"]);
    assert!(!ok);
    assert!(err.contains("--watch"), "{err}");
}
