//! Live captures through the agent's API, on a real lab with real TCP traffic.

mod common;

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::time::{Duration, Instant};

use common::start;
use qoelab_agent::client::{AgentClient, CLIENT_LEASE_S, ClientError};
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
    assert_eq!(started.request.lease_s, Some(CLIENT_LEASE_S));

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
    too_long.max_duration_s = 60;
    for lease_s in [0, 4000] {
        too_long.lease_s = Some(lease_s);
        let (status, field) = api_error(
            runtime
                .block_on(client.start_capture(&too_long))
                .unwrap_err(),
        );
        assert_eq!((status, field.as_deref()), (422, Some("lease_s")));
    }
    assert!(
        runtime.block_on(client.captures()).unwrap().is_empty(),
        "nothing was started"
    );
}

#[test]
fn a_capture_runs_while_its_client_lives_and_stops_when_it_goes_away() {
    let lab = Lab::standard(None).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let client = start(dir.path(), &runtime);
    // Another client, e.g. of another process: listing captures renews no lease.
    let observer = AgentClient::new(dir.path().join("agent.sock"));
    let running = |id: &str| {
        let list = runtime.block_on(observer.captures()).unwrap();
        let info = list
            .iter()
            .find(|c| c.id == id)
            .expect("the capture is listed");
        assert_eq!(info.request.lease_s, Some(1));
        info.running
    };
    let mut request = CaptureRequest::new(&lab.uplink());
    request.netns = Some(lab.router().unwrap().name().to_string());
    request.lease_s = Some(1);
    let starter = client.clone();
    let id = runtime
        .block_on(starter.start_capture(&request))
        .unwrap()
        .id;
    transfer(&lab, 100_000);
    // The clone that started it goes; `client` still renews the lease, well past 1 s.
    drop(starter);
    let since = Instant::now();
    while since.elapsed() < Duration::from_millis(3500) {
        assert!(running(&id), "the capture stopped while its client lived");
        std::thread::sleep(Duration::from_millis(250));
    }

    drop(client);
    let gone = Instant::now();
    while running(&id) {
        assert!(
            gone.elapsed() < Duration::from_secs(30),
            "the capture ran on after its client went away"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    let output = runtime.block_on(observer.stop_capture(&id)).unwrap();
    let flow = output
        .flows
        .iter()
        .find(|f| f.flow.protocol == "tcp")
        .expect("the output of the capture is kept");
    assert_eq!(flow.c2s.unique_bytes, Some(100_000));
}
