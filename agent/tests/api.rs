//! The agent in-process on a temporary socket, driven through its client, shaping a real lab.

mod common;

use common::{start, start_with};

use std::io::{Read, Write};
use std::os::unix::fs::PermissionsExt;
use std::os::unix::net::UnixStream;
use std::path::Path;
use std::process::Command;

use qoelab_agent::client::ClientError;
use qoelab_lab::Lab;
use qoelab_shaper::{IfaceRef, InterfacePlan, Shaper};
use std::sync::Arc;

fn tc_state(ns: &str, dev: &str) -> String {
    ["qdisc", "class", "filter"]
        .iter()
        .map(|what| {
            let out = Command::new("ip")
                .args(["netns", "exec", ns, "tc", what, "show", "dev", dev])
                .output()
                .unwrap();
            String::from_utf8_lossy(&out.stdout).into_owned()
        })
        .collect()
}

const PLAN: &str = r#"{"egress": {"rate_bps": "100mbit", "default": {"rate_bps": "1mbit", "ceil_bps": "100mbit"},
    "classes": [{"name": "cam", "rate_bps": "2mbit", "match": {"protocol": "tcp", "dst_port": 5001}},
                {"name": "lidar", "rate_bps": "8mbit", "match": {"protocol": "tcp", "dst_port": 5002}}]}}"#;

fn status_of(err: ClientError) -> (u16, Option<String>) {
    match err {
        ClientError::Api { status, body } => (status.as_u16(), body.field),
        other => panic!("expected an API error, got {other}"),
    }
}

#[test]
fn plans_apply_and_every_bad_input_gets_a_4xx_and_changes_nothing() {
    let lab = Lab::standard(None).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let client = start(dir.path(), &runtime);
    let router = lab.router().unwrap().name().to_string();
    let iface = IfaceRef::new(Some(&router), &lab.uplink());
    let plan: InterfacePlan = serde_json::from_str(PLAN).unwrap();
    runtime.block_on(async {
        let report = client.apply(&iface, &plan).await.unwrap();
        assert!(report.created >= 8, "{report:?}");
        assert_eq!(client.apply(&iface, &plan).await.unwrap().created, 0);
        assert_eq!(
            client.status().await.unwrap().interfaces,
            std::slice::from_ref(&iface)
        );
        let before = tc_state(&router, &lab.uplink());
        let bad = |edit: &dyn Fn(&mut serde_json::Value)| {
            let mut v: serde_json::Value = serde_json::from_str(PLAN).unwrap();
            edit(&mut v);
            v
        };
        let mut cases: Vec<(serde_json::Value, u16, &str)> = vec![
            (
                bad(&|v| v["egress"]["classes"][1]["rate_bps"] = "0bit".into()),
                422,
                "egress.classes[1].rate_bps",
            ),
            (
                bad(&|v| v["egress"]["classes"][1]["rate_bps"] = "200mbit".into()),
                422,
                "egress.classes[1].rate_bps",
            ),
            (
                bad(&|v| v["egress"]["classes"][1]["ceil_bps"] = "1mbit".into()),
                422,
                "egress.classes[1].ceil_bps",
            ),
            (
                bad(&|v| v["egress"]["classes"][1]["match"]["dst_port"] = 5001.into()),
                422,
                "egress.classes[1].match",
            ),
            (
                bad(&|v| v["egress"]["classes"][1]["rate_bps"] = "8Mbps".into()),
                422,
                "egress.classes[1].rate_bps",
            ),
            (
                bad(&|v| v["egress"]["classes"][1]["rate_bps"] = "8 furlongs".into()),
                422,
                "egress.classes[1].rate_bps",
            ),
        ];
        // Delay needs netem: refused where the kernel lacks it (our users' kernels have it).
        if !qoelab_shaper::Features::probe().unwrap().netem {
            cases.push((
                bad(&|v| {
                    v["egress"]["classes"][0]["impairment"] = serde_json::json!({"delay_ms": 20})
                }),
                422,
                "egress.classes[0].impairment",
            ));
        }
        let plan_path = qoelab_agent::api::iface_path(&iface) + "/plan";
        let rates_path = qoelab_agent::api::iface_path(&iface) + "/rates";
        let socket = dir.path().join("agent.sock");
        let patches = [
            (
                r#"{"egress": {"radar": {"rate_bps": "1mbit"}}}"#,
                "egress.radar",
            ),
            (
                r#"{"egress": {"cam": {"rate_bps": "0bit"}}}"#,
                "egress.classes[0].rate_bps",
            ),
            (
                r#"{"egress": {"cam": {"rate_bps": "1gbit"}}}"#,
                "egress.classes[0].rate_bps",
            ),
            (
                r#"{"egress": {"cam": {"rate_bps": "2 mbits"}}}"#,
                "egress.cam.rate_bps",
            ),
            (r#"{"ingress": {"cam": {"rate_bps": "1mbit"}}}"#, "ingress"),
        ];
        let requests = cases
            .into_iter()
            .map(|(body, status, field)| ("PUT", &plan_path, body.to_string(), status, field))
            .chain(
                patches
                    .into_iter()
                    .map(|(body, field)| ("PATCH", &rates_path, body.to_string(), 422, field)),
            );
        for (method, path, body, status, field) in requests {
            let (got, json) = raw(&socket, method, path, &body);
            assert_eq!(
                (got, json["field"].as_str()),
                (status, Some(field)),
                "{method} {body}: {json}"
            );
            for key in ["error", "value", "accepted"] {
                assert!(
                    json[key].as_str().is_some_and(|s| !s.is_empty()),
                    "{method} {body}: no {key} in {json}"
                );
            }
            assert_eq!(
                tc_state(&router, &lab.uplink()),
                before,
                "kernel unchanged after {method} {body}"
            );
        }
        let unknown = IfaceRef::new(Some(&router), "nosuch0");
        assert_eq!(
            status_of(client.apply(&unknown, &plan).await.unwrap_err()),
            (404, Some("iface".into()))
        );
        let no_ns = IfaceRef::new(Some("qlnosuch-ns"), "eth0");
        assert_eq!(
            status_of(client.apply(&no_ns, &plan).await.unwrap_err()),
            (404, Some("netns".into()))
        );
        assert_eq!(
            client.plan(&iface).await.unwrap(),
            plan,
            "the previous plan stays in force"
        );
        client.clear(&iface).await.unwrap();
        assert!(!tc_state(&router, &lab.uplink()).contains("7100"));
    });
}

/// Sends one raw HTTP request over the socket (blocking) and returns the status and JSON body.
fn raw(socket: &Path, method: &str, path: &str, body: &str) -> (u16, serde_json::Value) {
    let mut stream = UnixStream::connect(socket).unwrap();
    write!(stream, "{method} {path} HTTP/1.1\r\nHost: agent\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}", body.len()).unwrap();
    let mut answer = String::new();
    stream.read_to_string(&mut answer).unwrap();
    let status = answer[9..12].parse().unwrap();
    let json = answer.split_once("\r\n\r\n").map(|(_, b)| b).unwrap_or("");
    (
        status,
        serde_json::from_str(json).unwrap_or(serde_json::Value::Null),
    )
}

/// PUTs a raw JSON plan and returns the error status and field.
#[test]
fn peers_that_are_neither_root_nor_in_the_group_get_403() {
    let dir = tempfile::tempdir().unwrap();
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let _client = start(dir.path(), &runtime);
    let socket = dir.path().join("agent.sock");
    // Mode 0660 keeps strangers out by file permission; open it up to reach the second gate.
    std::fs::set_permissions(&socket, std::fs::Permissions::from_mode(0o666)).unwrap();
    let as_user = |uid: u32, gid: u32| {
        let socket = socket.clone();
        std::thread::spawn(move || {
            // Per-thread credentials (raw syscalls; glibc's wrappers would change every thread).
            // SAFETY: integer arguments; only this thread's credentials change.
            unsafe {
                assert_eq!(
                    libc::syscall(libc::SYS_setgroups, 0, std::ptr::null::<libc::gid_t>()),
                    0
                );
                assert_eq!(libc::syscall(libc::SYS_setresgid, gid, gid, gid), 0);
                assert_eq!(libc::syscall(libc::SYS_setresuid, uid, uid, uid), 0);
            }
            raw(&socket, "GET", "/v1/status", "")
        })
        .join()
        .unwrap()
    };
    let (status, body) = as_user(65534, 65534);
    assert_eq!(status, 403, "{body}");
    assert!(
        body["error"].as_str().unwrap().contains("uid 65534"),
        "{body}"
    );
    let (status, body) = as_user(65534, 4242);
    assert_eq!(status, 200, "a member of the configured group: {body}");
    assert_eq!(raw(&socket, "GET", "/v1/status", "").0, 200, "root");
}

#[test]
fn a_kernel_refusal_part_way_is_a_422_naming_the_field_and_the_previous_plan_stays() {
    let lab = Lab::standard(None).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let shaper = Arc::new(Shaper::open(&dir.path().join("state")).unwrap());
    if shaper.features().netem {
        eprintln!("this kernel has netem: no kind to refuse, nothing to test here");
        return;
    }
    let client = start_with(dir.path(), &runtime, shaper.clone());
    let router = lab.router().unwrap().name().to_string();
    let iface = IfaceRef::new(Some(&router), &lab.uplink());
    let plan: InterfacePlan = serde_json::from_str(PLAN).unwrap();
    runtime.block_on(async {
        client.apply(&iface, &plan).await.unwrap();
        let before = tc_state(&router, &lab.uplink());
        // As if netem's module went away after the agent probed the kernel.
        shaper.assume_features(qoelab_shaper::Features {
            netem: true,
            ..shaper.features()
        });
        let mut v: serde_json::Value = serde_json::from_str(PLAN).unwrap();
        v["egress"]["classes"][0]["rate_bps"] = "3mbit".into();
        v["egress"]["classes"][1]["impairment"] = serde_json::json!({"delay_ms": 20});
        let path = qoelab_agent::api::iface_path(&iface) + "/plan";
        let (status, body) = raw(&dir.path().join("agent.sock"), "PUT", &path, &v.to_string());
        assert_eq!(status, 422, "{body}");
        assert_eq!(body["field"], "egress.classes[1].impairment", "{body}");
        assert!(body["error"].as_str().unwrap().contains("netem"), "{body}");
        assert_eq!(tc_state(&router, &lab.uplink()), before, "kernel as before");
        assert_eq!(
            client.plan(&iface).await.unwrap(),
            plan,
            "previous plan in force"
        );
        client.clear(&iface).await.unwrap();
    });
}

#[test]
fn shaping_calls_work_on_a_current_thread_runtime_too() {
    let dir = tempfile::tempdir().unwrap();
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let client = start(dir.path(), &runtime);
    let unknown = IfaceRef::new(None, "qlnosuch0");
    let err = runtime.block_on(client.clear(&unknown)).unwrap_err();
    assert_eq!(status_of(err), (404, Some("iface".into())));
}
