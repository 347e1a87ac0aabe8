//! The capture file reader (pcap and pcapng) and the engine over arbitrary files.
#![no_main]

use libfuzzer_sys::fuzz_target;
use qoelab_capture::{AnalyzerConfig, analyze_file};

fuzz_target!(|data: &[u8]| {
    let path = std::env::temp_dir().join(format!("qoelab-fuzz-{}.pcap", std::process::id()));
    std::fs::write(&path, data).expect("temp file");
    let _ = analyze_file(&path, AnalyzerConfig::default());
});
