//! `qoelab workload …` refuses bad input with a message that names the value.

mod common;

use common::qoelab;

/// A loopback port that was free a moment ago (bound, read, closed).
fn closed_port() -> u16 {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    listener.local_addr().unwrap().port()
}

fn temp_file(name: &str, text: &str) -> std::path::PathBuf {
    let path = std::env::temp_dir().join(format!("qoelab-cli-{name}-{}", std::process::id()));
    std::fs::write(&path, text).unwrap();
    path
}

#[test]
fn bad_inputs_are_refused_by_name() {
    let port = closed_port().to_string();
    let server = format!("http://127.0.0.1:{port}");
    let sink = format!("127.0.0.1:{port}");
    let trace = temp_file("trace", "0 5\n# ok so far\n10 fast\n");
    let play = |abr| {
        vec![
            "workload", "video", "play", "--server", &server, "--abr", abr,
        ]
    };
    let iot = |analytic| {
        vec![
            "workload",
            "iot",
            "run",
            "--sink",
            &sink,
            "--analytic",
            analytic,
        ]
    };
    let cases = [
        (
            play("pensieve"),
            "unknown ABR algorithm 'pensieve'".to_string(),
        ),
        (play("mpc"), format!("cannot reach {server}/manifest.json")),
        (iot("object-detection:1.5"), "K = 1.5".into()),
        (
            iot("object-detection:0.5"),
            format!("cannot reach the sink at {sink}"),
        ),
        (
            vec!["workload", "trace", "check", trace.to_str().unwrap()],
            "trace line 3 '10 fast': the rate 'fast'".into(),
        ),
        (
            vec!["workload", "video", "serve", "--ladder", "750kbit,300kbit"],
            "ladder [750000, 300000] bit/s".into(),
        ),
        (
            vec!["workload", "iot", "sink", "--ports", "0"],
            "invalid value '0' for '--ports".into(),
        ),
        (
            vec![
                "workload",
                "iot",
                "sink",
                "--listen",
                "127.0.0.1:65535",
                "--ports",
                "2",
            ],
            "--ports 2 from port 65535 goes past 65535".into(),
        ),
    ];
    for (args, needle) in cases {
        let (ok, _, stderr) = qoelab(&args);
        assert!(!ok && stderr.contains(&needle), "qoelab {args:?}: {stderr}");
    }
    std::fs::remove_file(&trace).unwrap();
}

#[test]
fn generated_traces_pass_the_check() {
    let generate = [
        "workload", "trace", "generate", "--shape", "on-off", "--seed", "4",
    ];
    let (ok, text, stderr) = qoelab(&generate);
    assert!(ok, "{stderr}");
    let trace = temp_file("onoff", &text);
    let (ok, summary, stderr) = qoelab(&["workload", "trace", "check", trace.to_str().unwrap()]);
    assert!(
        ok && summary.contains("rate 0bit to 5mbit"),
        "{summary} {stderr}"
    );
    std::fs::remove_file(&trace).unwrap();
}

/// A process killed when dropped, also when the test fails.
struct Running(std::process::Child);

impl Drop for Running {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

#[test]
fn an_iot_sink_serves_every_port_of_its_range() {
    use std::io::BufRead;
    // Two consecutive ports that were free a moment ago.
    let port = loop {
        let first = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let port = first.local_addr().unwrap().port();
        if port < u16::MAX && std::net::TcpListener::bind(("127.0.0.1", port + 1)).is_ok() {
            break port;
        }
    };
    let mut sink = Running(
        std::process::Command::new(env!("CARGO_BIN_EXE_qoelab"))
            .args(["workload", "iot", "sink", "--ports", "2", "--listen"])
            .arg(format!("127.0.0.1:{port}"))
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .expect("run the sink"),
    );
    let mut banner = String::new();
    std::io::BufReader::new(sink.0.stderr.take().unwrap())
        .read_line(&mut banner)
        .unwrap();
    assert!(
        banner.contains(&format!(
            "IoT sink on 127.0.0.1:{port} to port {}",
            port + 1
        )),
        "{banner}"
    );
    // The second port is served like the first.
    let sink_addr = format!("127.0.0.1:{}", port + 1);
    let (ok, report, stderr) = qoelab(&[
        "workload",
        "iot",
        "run",
        "--sink",
        &sink_addr,
        "--analytic",
        "object-detection:0.5:cam",
        "--period",
        "250ms",
        "--duration",
        "1s",
        "--json",
    ]);
    assert!(ok, "{stderr}");
    assert!(report.contains("\"frames_on_time\": 4"), "{report}");
    let mut line = String::new();
    std::io::BufReader::new(sink.0.stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    assert!(
        line.contains("\"analytic\":\"cam\""),
        "the sink printed {line}"
    );
}
