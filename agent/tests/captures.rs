//! Live captures through the agent's API, on a real lab with real TCP traffic.

mod common;

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};

use common::start;
use qoelab_agent::client::ClientError;
use qoelab_capture::CaptureRequest;
use qoelab_lab::{Lab, standard};

fn api_error(err: ClientError) -> (u16, Option<String>) {
    match err {
        ClientError::Api { status, body } => (status.as_u16(), body.field),
        other => panic!("expected an API error, got {other}"),
    }
}

/// Moves `bytes` from the client to the server through the router; returns when done.
fn transfer(lab: &Lab, bytes: usize) {
    let listener = lab
        .server()
        .unwrap()
        .run(|| TcpListener::bind((standard::SERVER_ADDR, 0)))
        .unwrap()
        .unwrap();
    let port = listener.local_addr().unwrap().port();
    let sink = std::thread::spawn(move || {
        let (mut s, _) = listener.accept().unwrap();
        let mut buf = vec![0; 65536];
        let mut n = 0;
        while let Ok(k) = s.read(&mut buf) {
            if k == 0 {
                break;
            }
            n += k;
        }
        n
    });
    lab.client()
        .unwrap()
        .run(|| {
            let mut s = TcpStream::connect((standard::SERVER_ADDR, port)).unwrap();
            s.write_all(&vec![7u8; bytes]).unwrap();
        })
        .unwrap();
    assert_eq!(sink.join().unwrap(), bytes);
}

#[test]
fn a_capture_started_over_the_api_measures_the_traffic() {
    let lab = Lab::standard(None).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let client = start(dir.path(), &runtime);
    let mut request = CaptureRequest::new(&lab.uplink());
    request.netns = Some(lab.router().unwrap().name().to_string());
    request.max_duration_s = 60;
    let started = runtime.block_on(client.start_capture(&request)).unwrap();
    assert_eq!(started.request.bin_ms, 1000);

    transfer(&lab, 2_000_000);
    let list = runtime.block_on(client.captures()).unwrap();
    assert!(list.iter().any(|c| c.id == started.id && c.running));
    // The capture thread may still be reading what the socket buffered: wait for it.
    let snapshot_now = || {
        runtime
            .block_on(client.capture_snapshot(&started.id))
            .unwrap()
    };
    let mut snapshot = snapshot_now();
    for _ in 0..100 {
        if snapshot.stats.packets > 1000 {
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(50));
        snapshot = snapshot_now();
    }
    assert!(snapshot.stats.packets > 1000, "{:?}", snapshot.stats);

    let output = runtime.block_on(client.stop_capture(&started.id)).unwrap();
    let flow = output
        .flows
        .iter()
        .find(|f| f.flow.protocol == "tcp")
        .expect("the TCP flow");
    assert_eq!(flow.c2s.unique_bytes, Some(2_000_000));
    assert!(flow.s2c.pkts > 0);
    assert_eq!(output.stats.kernel_drops, Some(0));
    assert!(
        output.series.iter().any(|r| r.flow_id.is_none()),
        "capture-wide series rows"
    );

    // Collected once: a second stop is a 404 naming the id.
    let (status, field) = api_error(
        runtime
            .block_on(client.stop_capture(&started.id))
            .unwrap_err(),
    );
    assert_eq!((status, field.as_deref()), (404, Some("id")));
}

#[test]
fn bad_capture_requests_get_4xx_naming_the_field() {
    let lab = Lab::standard(None).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let client = start(dir.path(), &runtime);
    let router = lab.router().unwrap().name().to_string();

    let mut no_iface = CaptureRequest::new("qlnosuch0");
    no_iface.netns = Some(router.clone());
    assert_eq!(
        api_error(
            runtime
                .block_on(client.start_capture(&no_iface))
                .unwrap_err()
        ),
        (404, Some("interface".into()))
    );

    let mut no_ns = CaptureRequest::new(&lab.uplink());
    no_ns.netns = Some("qlnosuch-router".into());
    assert_eq!(
        api_error(runtime.block_on(client.start_capture(&no_ns)).unwrap_err()),
        (404, Some("netns".into()))
    );

    let mut too_long = CaptureRequest::new(&lab.uplink());
    too_long.netns = Some(router);
    too_long.max_duration_s = 0;
    let (status, field) = api_error(
        runtime
            .block_on(client.start_capture(&too_long))
            .unwrap_err(),
    );
    assert_eq!((status, field.as_deref()), (422, Some("max_duration_s")));
    assert!(
        runtime.block_on(client.captures()).unwrap().is_empty(),
        "nothing was started"
    );
}
