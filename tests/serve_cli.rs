//! `qoelab serve` as a user runs it: it refuses to open the API to the network without a
//! token, serves over a database, fails sessions plainly while it has no link to shape or no
//! agent answers, takes QoS reports from an MQTT broker, and stops cleanly on SIGTERM. (`tests/up_cli.rs` runs the same runner, agent
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

#[test]
fn serve_refuses_a_bad_broker_url_naming_the_flag() {
    let out = qoelab()
        .args(["serve", "--mqtt", "tcp://broker:1883"])
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    for part in [
        "--mqtt",
        "tcp://broker:1883",
        "mqtt://HOST or mqtt://HOST:PORT",
    ] {
        assert!(err.contains(part), "{part} in {err}");
    }
}

#[test]
fn serve_stores_qos_reports_published_on_the_broker() {
    let broker = qoelab_workload::testing::Mosquitto::start();
    let port = free_port();
    let dir = tempfile::tempdir().unwrap();
    let mut server = Server(
        qoelab()
            .args(["serve", "--listen", &format!("127.0.0.1:{port}")])
            .args(["--agent", "/nonexistent.sock", "--mqtt", &broker.url()])
            .arg("--database")
            .arg(format!("sqlite://{}", dir.path().join("mqtt.db").display()))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap(),
    );
    server.wait_healthy(port, Duration::from_secs(30));
    let report: qoelab_workload::iot::QosReport = serde_json::from_str(
        r#"{"schema": "qoelab.iot-qos.v1", "gateway": "gw-1", "analytic": "cam-1",
        "kind": "object-detection", "location": "cloud", "knob": 0.5, "rate_bps": 400000,
        "frame_bytes": 50000, "period_ms": 1000, "deadline_ms": 500,
        "started_unix_ms": 1700000000000, "report_unix_ms": 1700000010000, "elapsed_s": 10.0,
        "final": true, "frames_expected": 10, "frames_due": 10, "frames_received": 10,
        "frames_on_time": 9, "frames_late": 1, "frames_missing": 0, "bytes_received": 500200,
        "throughput_bps": 400160, "latency_ms_mean": 120.0, "latency_ms_p95": 480.0,
        "latency_ms_max": 510.0, "lateness_ms_mean": 10.0, "completeness": 1.0,
        "on_time_ratio": 0.9, "expected_qos": 0.9, "achieved_qos": 0.81}"#,
    )
    .unwrap();
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let reporter = runtime
        .block_on(qoelab_workload::iot::Reporter::new(
            None,
            Some(&broker.url()),
        ))
        .unwrap();
    // Published until stored (the server subscribes once it is up); a repeat is stored once.
    let started = Instant::now();
    let mut analytics = String::new();
    while started.elapsed() < Duration::from_secs(30) && !analytics.contains("cam-1") {
        runtime.block_on(reporter.send(&report));
        std::thread::sleep(Duration::from_millis(300));
        analytics = http(port, "GET", "/api/v1/analytics", "").unwrap().1;
    }
    assert!(analytics.contains(r#""reports":1"#), "{analytics}");
    runtime.block_on(reporter.close());
    assert!(server.stop("-TERM", Duration::from_secs(15)).success());
}

#[test]
fn serve_drives_every_gateway_of_its_gateways_file() {
    let port = free_port();
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("gateways.toml");
    std::fs::write(
        &file,
        r#"
        [[gateway]]
        name = "gw-a"
        agent = "/nonexistent-a.sock"

        [[gateway]]
        name = "gw-b"
        agent = "/nonexistent-b.sock"
        uplink = "qlz-wan"
        downlink = "qlz-lan"
        "#,
    )
    .unwrap();
    let mut server = Server(
        qoelab()
            .args(["serve", "--listen", &format!("127.0.0.1:{port}")])
            .arg("--gateways")
            .arg(&file)
            .arg("--database")
            .arg(format!("sqlite://{}", dir.path().join("gw.db").display()))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap(),
    );
    server.wait_healthy(port, Duration::from_secs(30));
    let spec = |gateway: &str| {
        format!(
            r#"{{"name": "on {gateway}", "sessions": 1, "duration_s": 1, "limits": ["2mbit"],
            "workload": {{"kind": "video", "abr": "buffer"}}, "gateway": "{gateway}", "start": true}}"#
        )
    };
    let (status, body) = http(port, "POST", "/api/v1/campaigns", &spec("gw-z")).unwrap();
    assert!(status.contains("422"), "{status}: {body}");
    assert!(
        body.contains(r#""field":"gateway""#) && body.contains("gw-a, gw-b"),
        "{body}"
    );
    for gateway in ["gw-a", "gw-b"] {
        let (status, body) = http(port, "POST", "/api/v1/campaigns", &spec(gateway)).unwrap();
        assert!(status.contains("201"), "{status}: {body}");
    }
    let started = Instant::now();
    let mut failed = String::new();
    while started.elapsed() < Duration::from_secs(30) && !failed.contains(r#""total":2"#) {
        std::thread::sleep(Duration::from_millis(200));
        failed = http(port, "GET", "/api/v1/sessions?status=failed", "")
            .unwrap()
            .1;
    }
    // Each gateway's session failed its own way: gw-a has no link, gw-b's agent is absent.
    let no_link = format!(
        "no link to shape and capture on gateway gw-a: give its [[gateway]] entry in {} uplink and downlink",
        file.display()
    );
    assert!(failed.contains(&no_link), "{failed}");
    assert!(
        failed.contains("cannot reach the qoelab agent at unix:/nonexistent-b.sock"),
        "{failed}"
    );
    let (_, page) = http(port, "GET", "/", "").unwrap();
    assert!(
        page.contains("Gateway gw-a") && page.contains("Gateway gw-b"),
        "{page}"
    );
    let (_, metrics) = http(port, "GET", "/metrics", "").unwrap();
    assert!(
        metrics.contains(r#"qoelab_agent_up{gateway="gw-a"} 0"#)
            && metrics.contains(r#"qoelab_agent_up{gateway="gw-b"} 0"#),
        "{metrics}"
    );
    let exit = server.stop("-TERM", Duration::from_secs(15));
    assert!(exit.success(), "{exit}");
}

#[test]
fn serve_refuses_a_gateways_file_beside_the_options_of_one_gateway_or_a_bad_file() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("gateways.toml");
    std::fs::write(&file, "[[gateway]]\nname = \"gw-a\"\nagent = \"/a.sock\"\n").unwrap();
    let out = qoelab()
        .arg("serve")
        .arg("--gateways")
        .arg(&file)
        .env("QOELAB_UPLINK", "eth0")
        .env("QOELAB_DOWNLINK", "eth1")
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("--uplink (QOELAB_UPLINK), --downlink (QOELAB_DOWNLINK) cannot be given"),
        "{err}"
    );
    std::fs::write(
        &file,
        "[[gateway]]\nname = \"gw-a\"\nagent = \"tcp://10.0.0.1:7070\"\n",
    )
    .unwrap();
    let out = qoelab()
        .arg("serve")
        .arg("--gateways")
        .arg(&file)
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains(&format!(
            "{}: gateway 1 (gw-a): agent_token_file = '' is not accepted",
            file.display()
        )),
        "{err}"
    );
}
