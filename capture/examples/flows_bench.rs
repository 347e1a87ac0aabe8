//! The flow-statistics engine over one capture file, as `qoelab flows FILE -o OUT.csv` runs
//! it (the same memory-mapped reader, engine and CSV writer) without the rest of the CLI, so
//! that benchmarks and profiles need not build the whole `qoelab` binary.
//! `bench/capture/run.sh` times it against tcptrace and tshark.
//!
//! `cargo run --release -p qoelab-capture --example flows_bench -- FILE.pcap OUT.csv`

use std::fs::File;
use std::io::BufWriter;
use std::path::Path;
use std::time::Instant;

use qoelab_capture::output::{Format, RecordWriter};
use qoelab_capture::{AnalyzerConfig, FlowRecord, analyze_file};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().collect();
    let [_, input, output] = args.as_slice() else {
        return Err("usage: flows_bench FILE.pcap OUT.csv".into());
    };
    let started = Instant::now();
    let (out, damage) = analyze_file(Path::new(input), AnalyzerConfig::default())?;
    let mut writer: RecordWriter<_, FlowRecord> =
        RecordWriter::new(BufWriter::new(File::create(output)?), Format::Csv)?;
    writer.write(&out.flows)?;
    writer.finish()?;
    let secs = started.elapsed().as_secs_f64();
    if let Some(err) = damage {
        eprintln!("warning: {err}");
    }
    eprintln!(
        "{} packets, {} flows, {} malformed in {secs:.3} s: {:.2} Mpps",
        out.stats.packets,
        out.flows.len(),
        out.stats.malformed_packets,
        out.stats.packets as f64 / secs / 1e6
    );
    Ok(())
}
