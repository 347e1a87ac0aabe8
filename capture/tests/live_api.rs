//! The capture API the agent mounts: start, snapshot while running, stop by itself at the
//! maximum duration, stop on drop; inside a lab namespace.

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::time::{Duration, Instant};

use qoelab_capture::{CaptureError, CaptureRequest, Filter, LiveCapture, Protocol};
use qoelab_lab::{Lab, standard};

/// One small TCP exchange client → server:`port`.
fn exchange(lab: &Lab, port: u16) {
    let listener = lab
        .server()
        .unwrap()
        .run(|| TcpListener::bind((standard::SERVER_ADDR, port)))
        .unwrap()
        .unwrap();
    let server = std::thread::spawn(move || {
        let (mut c, _) = listener.accept().unwrap();
        let mut buf = [0u8; 5];
        c.read_exact(&mut buf).unwrap();
        c.write_all(b"world").unwrap();
    });
    lab.client()
        .unwrap()
        .run(|| {
            let mut c = TcpStream::connect((standard::SERVER_ADDR, port)).unwrap();
            c.write_all(b"hello").unwrap();
            let mut buf = [0u8; 5];
            c.read_exact(&mut buf).unwrap();
        })
        .unwrap();
    server.join().unwrap();
}

#[test]
fn snapshot_while_running_then_the_capture_stops_itself_at_its_maximum_duration() {
    let lab = Lab::standard(None).expect("lab (run as root)");
    let request = CaptureRequest {
        interface: lab.uplink(),
        netns: Some(lab.router().unwrap().name().to_string()),
        filter: Filter {
            ports: vec![7001],
            protocols: vec![Protocol::Tcp],
            ..Filter::default()
        },
        bin_ms: 100,
        max_duration_s: 2,
    };
    let started = Instant::now();
    let capture = LiveCapture::start(&request).unwrap();
    exchange(&lab, 7001);
    exchange(&lab, 7002); // filtered out
    std::thread::sleep(Duration::from_millis(200));
    let snap = capture.snapshot().unwrap();
    assert!(!capture.is_finished());
    assert_eq!(snap.flows.len(), 1, "{:?}", snap.flows);
    let flow = &snap.flows[0];
    assert_eq!(flow.flow.server_port, 7001);
    assert_eq!((flow.c2s.payload_bytes, flow.s2c.payload_bytes), (5, 5));
    assert!(
        snap.stats.filtered_packets > 0,
        "port 7002 was filtered out"
    );
    assert!(
        snap.series
            .iter()
            .any(|r| r.flow_id == Some(flow.flow.flow_id))
    );

    while !capture.is_finished() {
        assert!(
            started.elapsed() < Duration::from_secs(10),
            "max duration not enforced"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    assert!(started.elapsed() >= Duration::from_secs(2));
    let after_end = capture.snapshot().unwrap();
    let out = capture.stop().unwrap();
    assert_eq!(
        after_end, out,
        "after the end a snapshot is the final output"
    );
    assert_eq!(out.flows.len(), 1);
    assert_eq!(out.stats.kernel_drops, Some(0));
    let last = &out.flows[0];
    assert_eq!(last.flow.flow_id, flow.flow.flow_id);
    assert!(last.c2s.pkts >= flow.c2s.pkts);
    assert_ne!(
        last.flow.close_reason, "active",
        "the final record is closed"
    );
}

#[test]
fn dropping_the_handle_stops_the_capture_and_bad_requests_are_refused() {
    let lab = Lab::standard(None).expect("lab (run as root)");
    let ns = lab.router().unwrap().name().to_string();
    let mut request = CaptureRequest::new(&lab.downlink());
    request.netns = Some(ns.clone());
    let capture = LiveCapture::start(&request).unwrap();
    let started = Instant::now();
    drop(capture);
    assert!(
        started.elapsed() < Duration::from_secs(2),
        "drop waits for the thread only briefly"
    );

    request.interface = "qlnosuch".into();
    let err = LiveCapture::start(&request).unwrap_err();
    assert!(matches!(err, CaptureError::Source(_)), "{err}");
    assert_eq!(
        err.to_string(),
        format!("interface 'qlnosuch' does not exist in network namespace '{ns}'")
    );
    request.netns = Some("qlnosuchns".into());
    let err = LiveCapture::start(&request).unwrap_err().to_string();
    assert!(
        err.starts_with("cannot enter network namespace 'qlnosuchns'"),
        "{err}"
    );
}
