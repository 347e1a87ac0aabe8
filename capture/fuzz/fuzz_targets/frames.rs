//! Every link type's decoder, and the flow engine, over arbitrary frames.
#![no_main]

use libfuzzer_sys::fuzz_target;
use qoelab_capture::decode::{LinkType, decode};
use qoelab_capture::{Analyzer, AnalyzerConfig};

fuzz_target!(|data: &[u8]| {
    for link in LinkType::ALL {
        let _ = decode(link, data);
    }
    // The input as a sequence of raw-IP frames, each prefixed by a length byte.
    let mut analyzer = Analyzer::new(AnalyzerConfig {
        series_bin: Some(std::time::Duration::from_millis(100)),
        max_flows: 8,
        ..AnalyzerConfig::default()
    });
    let mut rest = data;
    let mut ts = 0u64;
    while let Some((&len, tail)) = rest.split_first() {
        let (frame, tail) = tail.split_at(usize::from(len).min(tail.len()));
        ts += u64::from(len) * 1_000_000;
        analyzer.frame(LinkType::Raw, ts, u32::from(len), frame);
        rest = tail;
    }
    let _ = analyzer.finish();
});
