//! The capture API the agent mounts: start, snapshot while running, stop by itself at the
//! maximum duration or when its lease expires, stop on drop; inside a lab namespace.

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
        lease_s: None,
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

#[test]
fn a_leased_capture_nobody_asks_about_stops_itself_and_keeps_its_output() {
    let lab = Lab::standard(None).expect("lab (run as root)");
    let mut request = CaptureRequest::new(&lab.uplink());
    request.netns = Some(lab.router().unwrap().name().to_string());
    request.lease_s = Some(1);
    let started = Instant::now();
    let untouched = LiveCapture::start(&request).unwrap();
    let renewed = LiveCapture::start(&request).unwrap();
    exchange(&lab, 7003);

    // Both captures run side by side; only `renewed` is asked about (every 300 ms).
    let mut untouched_ended = None;
    while untouched_ended.is_none() || started.elapsed() < Duration::from_millis(2500) {
        assert!(
            started.elapsed() < Duration::from_secs(20),
            "the lease of the untouched capture was not enforced"
        );
        assert!(!renewed.is_finished(), "a renewed lease ended the capture");
        renewed.snapshot().unwrap();
        if untouched_ended.is_none() && untouched.is_finished() {
            untouched_ended = Some(started.elapsed());
        }
        std::thread::sleep(Duration::from_millis(300));
    }
    assert!(
        untouched_ended.unwrap() >= Duration::from_secs(1),
        "ended before its lease: {untouched_ended:?}"
    );
    let out = untouched.stop().unwrap();
    assert!(
        out.flows.iter().any(|f| f.flow.server_port == 7003),
        "the output is kept: {:?}",
        out.flows
    );

    // Not asked about any more, the renewed one ends too, a lease after the last snapshot.
    let quiet = Instant::now();
    while !renewed.is_finished() {
        assert!(
            quiet.elapsed() < Duration::from_secs(20),
            "lease not enforced"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    assert!(quiet.elapsed() >= Duration::from_millis(500));
    assert!(renewed.stop().is_ok());
}
