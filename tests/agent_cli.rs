//! `qoelab agent` as an operator starts it: the refusals deploy/README.md quotes (missing
//! capabilities, a token file open to others, options that need each other), the agent over
//! TCP alone, with its real capability drop, stopped by SIGTERM, and the agent with only the
//! two network capabilities (no CAP_SYS_ADMIN) at work in its own namespace.

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
    // As `docker run --cap-drop ALL --cap-add NET_ADMIN` would start it.
    let container = ["--inh-caps=-all", "--bounding-set=-all,+net_admin"];
    let stderr = refusal(&container, &args);
    assert!(
        stderr.contains("missing: CAP_NET_RAW (capture packets)."),
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
        stderr.contains("the agent needs root, or the capabilities CAP_NET_ADMIN, CAP_NET_RAW (and CAP_SYS_ADMIN to work in other network namespaces); missing: CAP_NET_ADMIN (program qdiscs, classes, filters and IFB devices), CAP_NET_RAW (capture packets)."),
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

/// The status and body of the agent's refusal.
fn api_refusal<T: std::fmt::Debug>(
    result: Result<T, ClientError>,
) -> (u16, qoelab_agent::api::ErrorBody) {
    match result {
        Err(ClientError::Api { status, body }) => (status.as_u16(), body),
        other => panic!("expected a refusal, got {other:?}"),
    }
}

/// `tc qdisc show dev IFACE` inside namespace `netns`.
fn qdiscs(netns: &str, iface: &str) -> String {
    let out = Command::new("ip")
        .args(["netns", "exec", netns, "tc", "qdisc", "show", "dev", iface])
        .output()
        .unwrap();
    String::from_utf8_lossy(&out.stdout).into_owned()
}

#[test]
fn an_agent_with_only_the_network_capabilities_shapes_and_captures_its_own_namespace() {
    use qoelab_lab::{Lab, standard};
    use qoelab_shaper::{IfaceRef, InterfacePlan};
    use serde_json::json;

    let lab = Lab::standard(None).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let socket = dir.path().join("agent.sock");
    // As `docker run --cap-drop ALL --cap-add NET_ADMIN --cap-add NET_RAW` would start it, in
    // the lab's router namespace, as its own.
    let mut command = Command::new("setpriv");
    command
        .args([
            "--inh-caps=-all",
            "--bounding-set=-all,+net_admin,+net_raw",
            "--",
        ])
        .arg(env!("CARGO_BIN_EXE_qoelab"))
        .args(["agent", "--socket", &socket.display().to_string()])
        .args([
            "--state-dir",
            &dir.path().join("state").display().to_string(),
        ])
        .stderr(Stdio::piped());
    let child = lab.spawn(standard::ROUTER, &mut command).unwrap();
    let client = AgentClient::new(&socket);
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let uplink = lab.uplink();
    let router = lab.router().unwrap().name().to_string();
    let own = IfaceRef {
        netns: None,
        name: uplink.clone(),
    };
    let plan = |impairment: serde_json::Value| -> InterfacePlan {
        serde_json::from_value(json!({"egress": {"rate_bps": "100mbit",
            "default": {"rate_bps": "1mbit"},
            "classes": [{"name": "cam", "rate_bps": "10mbit", "match": {"protocol": "tcp", "dst_port": 8080},
                "impairment": impairment}]}}))
        .unwrap()
    };
    runtime.block_on(async {
        let mut status = None;
        for _ in 0..200 {
            if let Ok(s) = client.status().await {
                status = Some(s);
                break;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        let status = status.expect("the agent answers");
        assert_eq!(status.capabilities, ["CAP_NET_ADMIN", "CAP_NET_RAW"]);
        assert!(!status.features.probed, "no scratch namespace to probe in");

        client.apply(&own, &plan(json!(null))).await.unwrap();
        let stats = client.stats(&own, 0).await.unwrap();
        let classes: Vec<_> = stats.directions[0]
            .classes
            .iter()
            .map(|c| c.rate_bps)
            .collect();
        assert!(classes.contains(&10_000_000), "{classes:?}");

        // netem is taken as present: this kernel's answer decides.
        let delayed = client.apply(&own, &plan(json!({"delay_ms": 20}))).await;
        let kernel_has_netem = qoelab_shaper::Features::probe().unwrap().netem;
        if kernel_has_netem {
            delayed.unwrap();
        } else {
            let (code, body) = api_refusal(delayed);
            assert_eq!(code, 422, "{body:?}");
            assert_eq!(body.field.as_deref(), Some("egress.classes[0].impairment"));
            assert!(
                body.error.contains("the tc kind it needs"),
                "{}",
                body.error
            );
        }

        // Other namespaces need CAP_SYS_ADMIN, and the refusal says so.
        let client_ns = lab.client().unwrap().name().to_string();
        let elsewhere = IfaceRef {
            netns: Some(client_ns.clone()),
            name: "cl".into(),
        };
        let (code, body) = api_refusal(client.apply(&elsewhere, &plan(json!(null))).await);
        assert_eq!(code, 403, "{body:?}");
        assert!(body.error.contains("needs CAP_SYS_ADMIN"), "{}", body.error);
        let mut capture = qoelab_capture::CaptureRequest::new(&uplink);
        let started = client.start_capture(&capture).await.unwrap();
        client.stop_capture(&started.id).await.unwrap();
        capture.netns = Some(client_ns);
        let (code, body) = api_refusal(client.start_capture(&capture).await);
        assert_eq!(code, 403, "{body:?}");
        assert!(body.error.contains("needs CAP_SYS_ADMIN"), "{}", body.error);
        assert!(qdiscs(&router, &uplink).contains("htb"));
    });
    // SAFETY: kill with the child's id.
    unsafe { libc::kill(child.id() as libc::pid_t, libc::SIGTERM) };
    let out = child.wait_with_output().unwrap();
    let restored = !qdiscs(&router, &uplink).contains("htb");
    lab.teardown().unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(restored, "the agent restored the uplink when it stopped");
}
