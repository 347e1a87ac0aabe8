//! Property tests standing in for a fuzzer (only stable Rust here): the decoder, the engine
//! and the file reader never panic, whatever the bytes. Bounded case counts keep this fast;
//! for a longer run (a debug build, so integer overflows panic too):
//! `QOELAB_FUZZ_CASES=100000 cargo test -p qoelab-capture --test fuzz`.

use std::io::Write;

use proptest::prelude::*;
use qoelab_capture::decode::{LinkType, decode};
use qoelab_capture::{Analyzer, AnalyzerConfig, analyze_file};

/// Bytes that look like IP often enough to reach the transport decoders.
fn ipish() -> impl Strategy<Value = Vec<u8>> {
    (
        prop::sample::select(vec![0x45u8, 0x46, 0x4f, 0x60, 0x00]),
        prop::sample::select(vec![6u8, 17, 1, 58, 0, 43, 44, 60]),
        prop::collection::vec(any::<u8>(), 0..120),
    )
        .prop_map(|(first, proto, mut rest)| {
            rest.insert(0, first);
            if rest.len() > 9 {
                rest[9] = proto; // IPv4 protocol
            }
            if rest.len() > 6 && first == 0x60 {
                rest[6] = proto; // IPv6 next header
            }
            rest
        })
}

/// `QOELAB_FUZZ_CASES`, or `default`.
fn cases(default: u32) -> u32 {
    std::env::var("QOELAB_FUZZ_CASES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(cases(2000)))]

    #[test]
    fn decode_never_panics(link in prop::sample::select(LinkType::ALL.to_vec()), bytes in prop::collection::vec(any::<u8>(), 0..200)) {
        let _ = decode(link, &bytes);
    }

    #[test]
    fn decode_of_ip_like_bytes_never_panics(bytes in ipish()) {
        let _ = decode(LinkType::Raw, &bytes);
        let _ = decode(LinkType::Ipv6, &bytes);
    }

    #[test]
    fn the_engine_never_panics(frames in prop::collection::vec((ipish(), any::<u32>(), 0u64..10_000_000_000), 1..40)) {
        let mut analyzer = Analyzer::new(AnalyzerConfig {
            series_bin: Some(std::time::Duration::from_millis(100)),
            max_flows: 4,
            ..AnalyzerConfig::default()
        });
        for (bytes, wire_len, ts) in &frames {
            analyzer.frame(LinkType::Raw, *ts, *wire_len, bytes);
        }
        let snapshot = analyzer.snapshot();
        let out = analyzer.finish();
        prop_assert_eq!(out.stats.packets, frames.len() as u64);
        prop_assert_eq!(snapshot.flows.len(), out.flows.len());
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(cases(300)))]

    /// Random byte flips and cuts of a real capture file: every outcome is a result, never
    /// a panic.
    #[test]
    fn the_file_reader_never_panics(
        name in prop::sample::select(vec!["ethernet.pcap", "ethernet.pcapng", "vlan.pcap"]),
        flips in prop::collection::vec((any::<prop::sample::Index>(), any::<u8>()), 1..12),
        cut in any::<prop::sample::Index>(),
    ) {
        let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures").join(name);
        let mut bytes = std::fs::read(path).unwrap();
        for (at, value) in flips {
            let i = at.index(bytes.len());
            bytes[i] = value;
        }
        let len = cut.index(bytes.len()) + 1;
        bytes.truncate(len);
        let mut file = tempfile::NamedTempFile::new().unwrap();
        file.write_all(&bytes).unwrap();
        let _ = analyze_file(file.path(), AnalyzerConfig::default());
    }
}
