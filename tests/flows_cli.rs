//! `qoelab flows` as a user runs it: output files, series, summary, errors and exit codes.

use std::path::PathBuf;
use std::process::Command;

fn fixture(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("capture/tests/fixtures")
        .join(name)
}

fn qoelab(args: &[&std::ffi::OsStr]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_qoelab"))
        .args(args)
        .output()
        .expect("qoelab runs")
}

#[test]
fn flows_writes_records_series_and_a_summary() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("flows.csv");
    let run = qoelab(&[
        "flows".as_ref(),
        fixture("ethernet.pcap").as_os_str(),
        fixture("vlan.pcap").as_os_str(),
        "--series".as_ref(),
        "10ms".as_ref(),
        "-o".as_ref(),
        out.as_os_str(),
    ]);
    let stderr = String::from_utf8_lossy(&run.stderr);
    assert!(run.status.success(), "{stderr}");
    assert!(stderr.contains("packets           42"), "{stderr}");
    // The files are one capture: UDP and ICMP continue their flows, the TCP connection was
    // closed by FINs, so its new SYN starts a sixth flow.
    assert!(stderr.contains("flows             6"), "{stderr}");
    let csv = std::fs::read_to_string(&out).unwrap();
    let mut lines = csv.lines();
    assert!(
        lines
            .next()
            .unwrap()
            .starts_with("flow_id,protocol,ip_version,client_ip")
    );
    assert_eq!(lines.count(), 6);
    let series = std::fs::read_to_string(dir.path().join("flows.series.csv")).unwrap();
    assert!(series.starts_with("flow_id,bin_start_unix_s,bin_s,"));
    assert!(series.lines().count() > 5);
}

#[test]
fn a_corrupt_file_fails_after_writing_what_came_before() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("flows.jsonl");
    let run = qoelab(&[
        "flows".as_ref(),
        fixture("corrupt.pcap").as_os_str(),
        "--format".as_ref(),
        "jsonl".as_ref(),
        "-o".as_ref(),
        out.as_os_str(),
    ]);
    assert!(!run.status.success());
    let stderr = String::from_utf8_lossy(&run.stderr);
    assert!(stderr.contains("corrupt at byte 114"), "{stderr}");
    let text = std::fs::read_to_string(&out).unwrap();
    assert_eq!(
        text.lines().count(),
        1,
        "the flow of the frame before the damage"
    );
    assert!(text.contains("\"c2s_syn_pkts\":1"));
}

#[test]
fn usage_errors_name_the_accepted_forms() {
    let run = qoelab(&[
        "flows".as_ref(),
        fixture("ethernet.pcap").as_os_str(),
        "--series".as_ref(),
        "1s".as_ref(),
    ]);
    assert!(!run.status.success());
    assert!(String::from_utf8_lossy(&run.stderr).contains("--series needs a file to write to"));
    assert!(run.stdout.is_empty(), "nothing written before the error");
    let run = qoelab(&["flows".as_ref(), fixture("empty.pcap").as_os_str()]);
    assert!(String::from_utf8_lossy(&run.stderr).contains("is empty (0 bytes)"));
    let run = qoelab(&[
        "capture".as_ref(),
        "qlnosuch0".as_ref(),
        "--seconds".as_ref(),
        "1".as_ref(),
    ]);
    assert!(!run.status.success());
    let stderr = String::from_utf8_lossy(&run.stderr);
    assert!(
        stderr.contains("interface 'qlnosuch0' does not exist") || stderr.contains("CAP_NET_RAW"),
        "{stderr}"
    );
}
