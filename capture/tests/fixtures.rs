//! Every link type, truncated, corrupted, snaplen-cut, malformed and empty capture files
//! (written by `fixtures/generate.py`; see its docstring for the reference conversation).

use std::path::PathBuf;

use qoelab_capture::{AnalyzerConfig, CaptureOutput, FileError, FlowRecord, analyze_file};

fn fixture(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures")
        .join(name)
}

fn analyze(name: &str) -> CaptureOutput {
    let (out, damage) = analyze_file(&fixture(name), AnalyzerConfig::default()).unwrap();
    assert!(damage.is_none(), "{name}: {damage:?}");
    out
}

fn tcp_flow(out: &CaptureOutput) -> &FlowRecord {
    out.flows
        .iter()
        .find(|f| f.flow.protocol == "tcp" && f.flow.server_port == 80)
        .expect("the reference TCP flow")
}

/// The reference conversation's TCP flow, as every link type must decode it.
fn assert_reference_tcp_flow(name: &str, f: &FlowRecord) {
    let (c, s) = (&f.c2s, &f.s2c);
    assert_eq!(
        f.flow.client_ip.unwrap().to_string(),
        "198.18.1.2",
        "{name}"
    );
    assert_eq!(
        (f.flow.client_port, f.flow.server_port),
        (40000, 80),
        "{name}"
    );
    assert_eq!(f.flow.close_reason, "fin", "{name}");
    assert_eq!(f.flow.handshake_complete, Some(true), "{name}");
    assert!(
        (f.flow.duration_s - 0.053).abs() < 1e-9,
        "{name}: {}",
        f.flow.duration_s
    );
    assert_eq!((c.pkts, s.pkts), (10, 6), "{name}");
    assert_eq!(
        (c.ip_bytes, s.ip_bytes),
        (10 * 40 + 20 + 5000, 6 * 40 + 20 + 500),
        "{name}"
    );
    assert_eq!((c.payload_bytes, c.data_pkts), (5000, 5), "{name}");
    assert_eq!(c.unique_bytes, Some(4000), "{name}");
    assert_eq!((c.retx_pkts, c.retx_bytes), (Some(1), Some(1000)), "{name}");
    assert_eq!(c.out_of_seq_pkts, Some(1), "{name}");
    assert_eq!(s.dup_ack_pkts, Some(1), "{name}");
    assert_eq!(
        (c.syn_pkts, c.fin_pkts, s.fin_pkts),
        (Some(1), Some(1), Some(1)),
        "{name}"
    );
    assert_eq!(c.pure_ack_pkts, Some(3), "{name}");
    // 9 ms for the second segment; the ACK of the third came after the repairs (no sample).
    assert_eq!(c.rtt_samples, Some(1), "{name}");
    assert_eq!(
        (c.rtt_min_ms, c.rtt_max_ms),
        (Some(9.0), Some(9.0)),
        "{name}"
    );
    assert_eq!(
        (c.rtt_avg_ms, c.rtt_std_ms),
        (Some(9.0), Some(0.0)),
        "{name}"
    );
    assert_eq!(
        (s.rtt_samples, s.rtt_avg_ms),
        (Some(1), Some(6.0)),
        "{name}"
    );
    assert_eq!(c.rtt_handshake_ms, Some(10.0), "{name}");
    assert_eq!(s.rtt_handshake_ms, Some(10.0), "{name}");
    assert_eq!((c.mss_bytes, c.win_scale), (Some(1460), Some(7)), "{name}");
    assert_eq!(
        (c.sack_permitted, c.timestamps),
        (Some(true), Some(true)),
        "{name}"
    );
    assert_eq!((c.ttl_min, s.ttl_max), (Some(64), Some(60)), "{name}");
    assert_eq!(
        (c.rwin_min_bytes, c.rwin_max_bytes),
        (Some(502), Some(502 << 7)),
        "{name}"
    );
    assert_eq!(
        (c.seg_min_bytes, c.seg_max_bytes),
        (Some(1000), Some(1000)),
        "{name}"
    );
    assert_eq!(c.inflight_max_bytes, Some(4000), "{name}");
    assert_eq!(
        (c.first_payload_ms, c.last_payload_ms),
        (Some(21.0), Some(34.0)),
        "{name}"
    );
    assert_eq!(
        (c.iat_min_ms, c.iat_max_ms),
        (Some(1.0), Some(20.0)),
        "{name}"
    );
    assert!((c.iat_mean_ms.unwrap() - 53.0 / 9.0).abs() < 1e-9, "{name}");
}

#[test]
fn every_link_type_decodes_the_same_conversation() {
    for name in [
        "ethernet.pcap",
        "ethernet.pcapng",
        "vlan.pcap",
        "qinq.pcap",
        "sll.pcap",
        "sll2.pcap",
        "raw.pcap",
        "null.pcap",
    ] {
        let out = analyze(name);
        assert_eq!(out.stats.malformed_packets, 0, "{name}");
        assert_reference_tcp_flow(name, tcp_flow(&out));
        let udp = out.flows.iter().find(|f| f.flow.protocol == "udp").unwrap();
        assert_eq!(
            (udp.flow.client_port, udp.flow.server_port),
            (5353, 53),
            "{name}"
        );
        assert_eq!(
            (udp.c2s.payload_bytes, udp.s2c.payload_bytes),
            (12, 40),
            "{name}"
        );
        assert_eq!(
            udp.c2s.retx_pkts, None,
            "TCP-only columns are empty for UDP"
        );
        let icmp = out
            .flows
            .iter()
            .find(|f| f.flow.protocol == "icmp")
            .unwrap();
        assert_eq!((icmp.c2s.pkts, icmp.c2s.payload_bytes), (1, 16), "{name}");
        let first = out.stats.first_unix_s.unwrap();
        assert!(
            (first - 1_700_000_000.0).abs() < 1e-6,
            "{name}: time stamp {first}"
        );
    }
}

#[test]
fn wire_bytes_include_each_link_header() {
    let per_frame = |name: &str| {
        let f = analyze(name);
        let t = tcp_flow(&f);
        (t.c2s.wire_bytes - t.c2s.ip_bytes) / t.c2s.pkts
    };
    assert_eq!(per_frame("raw.pcap"), 0);
    assert_eq!(per_frame("null.pcap"), 4);
    assert_eq!(per_frame("ethernet.pcap"), 14);
    assert_eq!(per_frame("vlan.pcap"), 18);
    assert_eq!(per_frame("qinq.pcap"), 22);
    assert_eq!(per_frame("sll.pcap"), 16);
    assert_eq!(per_frame("sll2.pcap"), 20);
}

#[test]
fn ethernet_extras_ipv6_extension_headers_fragments_and_arp() {
    let out = analyze("ethernet.pcap");
    let s = &out.stats;
    assert_eq!(s.non_ip_packets, 1, "ARP");
    assert_eq!(
        (s.ipv6_packets, s.fragment_packets, s.unattributed_fragments),
        (1, 2, 1)
    );
    let v6 = out.flows.iter().find(|f| f.flow.ip_version == 6).unwrap();
    assert_eq!(v6.flow.client_ip.unwrap().to_string(), "2001:db8::1");
    assert_eq!((v6.flow.server_port, v6.c2s.syn_pkts), (443, Some(1)));
    assert_eq!(
        v6.c2s.mss_bytes,
        Some(1460),
        "TCP options behind a hop-by-hop header"
    );
    assert_eq!(v6.flow.handshake_complete, Some(false));
    let frag = out
        .flows
        .iter()
        .find(|f| f.flow.server_port == 4001)
        .unwrap();
    assert_eq!(
        frag.c2s.pkts, 1,
        "only the first fragment carries the ports"
    );
    assert_eq!(out.flows.len(), 5);
}

#[test]
fn snaplen_cut_frames_count_bytes_from_ip_headers() {
    let out = analyze("snaplen.pcap");
    // Both SYNs (options), the six payload packets, the UDP answer and the ICMP echo.
    assert_eq!(out.stats.snaplen_cut_packets, 10);
    let full = analyze("ethernet.pcap");
    let (cut, whole) = (tcp_flow(&out), tcp_flow(&full));
    assert_eq!(cut.c2s.ip_bytes, whole.c2s.ip_bytes);
    assert_eq!(cut.c2s.wire_bytes, whole.c2s.wire_bytes);
    assert_eq!(cut.c2s.unique_bytes, Some(4000));
    assert_eq!(cut.c2s.retx_pkts, Some(1));
    assert_eq!(cut.c2s.mss_bytes, None, "SYN options were cut away");
}

#[test]
fn a_truncated_file_keeps_every_complete_frame() {
    let (out, damage) =
        analyze_file(&fixture("truncated.pcap"), AnalyzerConfig::default()).unwrap();
    match damage {
        Some(FileError::Truncated { offset, frames, .. }) => {
            assert_eq!(frames, out.stats.packets);
            assert!(
                offset > 24 && frames > 10,
                "offset {offset}, frames {frames}"
            );
        }
        other => panic!("expected a truncation, got {other:?}"),
    }
    assert!(tcp_flow(&out).c2s.pkts >= 8);
}

#[test]
fn a_corrupt_record_is_reported_with_its_offset_after_the_frames_before_it() {
    let (out, damage) = analyze_file(&fixture("corrupt.pcap"), AnalyzerConfig::default()).unwrap();
    let err = damage.expect("corruption reported");
    let msg = err.to_string();
    assert!(msg.contains("corrupt at byte"), "{msg}");
    assert!(msg.contains("268435455 captured bytes"), "{msg}");
    assert!(msg.contains("1 frames before it were read"), "{msg}");
    assert_eq!(out.stats.packets, 1);
    assert_eq!(out.flows.len(), 1, "the first SYN still makes a flow");
}

#[test]
fn empty_and_foreign_files_are_clear_errors() {
    let err = analyze_file(&fixture("empty.pcap"), AnalyzerConfig::default()).unwrap_err();
    assert!(
        err.to_string()
            .ends_with("empty.pcap is empty (0 bytes): not a capture file"),
        "{err}"
    );
    let err = analyze_file(&fixture("generate.py"), AnalyzerConfig::default()).unwrap_err();
    let msg = err.to_string();
    assert!(
        msg.contains("is not a capture file: it starts with 23212f75"),
        "{msg}"
    );
    let err = analyze_file(&fixture("missing.pcap"), AnalyzerConfig::default()).unwrap_err();
    assert!(err.to_string().contains("cannot read"), "{err}");
}

#[test]
fn malformed_frames_are_counted_by_reason_and_skipped() {
    let out = analyze("malformed.pcap");
    let s = &out.stats;
    assert_eq!(s.packets, 6);
    assert_eq!(s.malformed_packets, 5, "{:?}", s.malformed_reasons);
    let reasons: Vec<&str> = s.malformed_reasons.keys().map(String::as_str).collect();
    assert_eq!(
        reasons,
        [
            "IPv4 header length below 20 bytes",
            "IPv4 header truncated",
            "IPv6 extension header truncated",
            "TCP data offset below 5 words",
            "VLAN tag header truncated",
        ]
    );
    assert_eq!(out.flows.len(), 1, "the good SYN after the garbage");
}

#[test]
fn series_bins_add_up_to_the_flow_totals() {
    let config = AnalyzerConfig {
        series_bin: Some(std::time::Duration::from_millis(10)),
        ..AnalyzerConfig::default()
    };
    let (out, _) = analyze_file(&fixture("ethernet.pcap"), config).unwrap();
    let tcp = tcp_flow(&out);
    let rows: Vec<_> = out
        .series
        .iter()
        .filter(|r| r.flow_id == Some(tcp.flow.flow_id))
        .collect();
    assert_eq!(rows.iter().map(|r| r.c2s_pkts).sum::<u64>(), tcp.c2s.pkts);
    assert_eq!(
        rows.iter().map(|r| r.s2c_ip_bytes).sum::<u64>(),
        tcp.s2c.ip_bytes
    );
    assert_eq!(rows.iter().map(|r| r.c2s_retx_pkts).sum::<u64>(), 1);
    assert_eq!(rows.len(), 6, "bins 0,10,20,30,40,50 ms");
    let whole: Vec<_> = out.series.iter().filter(|r| r.flow_id.is_none()).collect();
    assert_eq!(
        whole.iter().map(|r| r.c2s_pkts + r.s2c_pkts).sum::<u64>(),
        16 + 3 + 2
    );
    assert_eq!(whole[0].bin_start_unix_s, 1_700_000_000.0);
}
