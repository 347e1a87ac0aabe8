//! `qoelab flows FILE...`: flow statistics of capture files, as CSV or JSONL.

use std::fs::File;
use std::io::{self, BufWriter, Write};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use clap::Args;
use indicatif::{ProgressBar, ProgressStyle};
use qoelab_capture::output::{Format, RecordWriter};
use qoelab_capture::{
    Analyzer, AnalyzerConfig, CaptureFile, CaptureStats, FileError, Filter, FlowRecord, Protocol,
    SeriesRow,
};

use crate::table::Table;

/// Options of `qoelab flows`.
#[derive(Debug, Args)]
pub struct FlowsArgs {
    /// Capture files (pcap or pcapng), read in this order as one capture.
    #[arg(required = true)]
    files: Vec<PathBuf>,
    #[command(flatten)]
    output: OutputArgs,
    #[command(flatten)]
    filter: FilterArgs,
}

/// Where and how records are written (shared with `qoelab capture`).
#[derive(Debug, Args)]
pub struct OutputArgs {
    /// Output format.
    #[arg(long, default_value = "csv", value_parser = parse_format)]
    format: Format,
    /// Write flow records here instead of standard output.
    #[arg(short = 'o', long = "output", value_name = "OUT")]
    output: Option<PathBuf>,
    /// Also write time-binned series with this bin size (e.g. 1s, 100ms) to
    /// OUT.series.csv/.jsonl (or --series-output).
    #[arg(long, value_name = "BIN", value_parser = parse_bin)]
    series: Option<Duration>,
    /// Where to write the series (default: next to OUT).
    #[arg(long, value_name = "PATH", requires = "series")]
    series_output: Option<PathBuf>,
}

/// The user-space filter (shared with `qoelab capture`).
#[derive(Debug, Args)]
pub struct FilterArgs {
    /// Keep packets from or to this network (repeatable; e.g. 198.18.2.0/24 or 2001:db8::1).
    #[arg(long = "net", value_name = "CIDR", value_parser = parse_net)]
    nets: Vec<ipnet::IpNet>,
    /// Keep packets from or to this port (repeatable).
    #[arg(long = "port", value_name = "PORT")]
    ports: Vec<u16>,
    /// Keep this transport protocol: tcp, udp or icmp (repeatable).
    #[arg(long = "proto", value_name = "PROTO")]
    protocols: Vec<Protocol>,
}

impl FilterArgs {
    /// The filter these options describe.
    pub fn filter(&self) -> Filter {
        Filter {
            nets: self.nets.clone(),
            ports: self.ports.clone(),
            protocols: self.protocols.clone(),
        }
    }
}

fn parse_format(text: &str) -> Result<Format, String> {
    text.parse()
}

fn parse_bin(text: &str) -> Result<Duration, String> {
    let bin = qoelab_units::parse_duration(text).map_err(|e| e.to_string())?;
    if bin < Duration::from_millis(10) {
        return Err(format!("'{text}' is too small a bin: use 10ms or more"));
    }
    Ok(bin)
}

fn parse_net(text: &str) -> Result<ipnet::IpNet, String> {
    text.parse::<ipnet::IpNet>()
        .or_else(|_| text.parse::<std::net::IpAddr>().map(ipnet::IpNet::from))
        .map_err(|_| {
            format!("'{text}' is not an address or network: use e.g. 198.18.2.2 or 198.18.2.0/24")
        })
}

/// The open output files of one run.
pub struct Outputs {
    flows: RecordWriter<Box<dyn Write>, FlowRecord>,
    series: Option<RecordWriter<Box<dyn Write>, SeriesRow>>,
    paths: Vec<String>,
}

impl OutputArgs {
    /// The series bin size, if series are on.
    pub fn series_bin(&self) -> Option<Duration> {
        self.series
    }

    /// Creates the output files (standard output for flows without `-o`).
    pub fn open(&self) -> Result<Outputs> {
        let create = |path: &Path| -> Result<Box<dyn Write>> {
            let file = File::create(path)
                .with_context(|| format!("cannot create output file {}", path.display()))?;
            Ok(Box::new(BufWriter::with_capacity(1 << 20, file)))
        };
        let series = match (self.series, &self.series_output, &self.output) {
            (None, _, _) => None,
            (Some(_), Some(path), _) => Some(path.clone()),
            (Some(_), None, Some(out)) => Some(series_path(out, self.format)),
            (Some(_), None, None) => {
                bail!(
                    "--series needs a file to write to: give -o OUT (series go to OUT.series.{}) or --series-output PATH",
                    self.format.extension()
                )
            }
        };
        let mut paths = Vec::new();
        let flows_out: Box<dyn Write> = match &self.output {
            Some(path) => {
                paths.push(path.display().to_string());
                create(path)?
            }
            None => Box::new(BufWriter::new(io::stdout().lock())),
        };
        let series = match series {
            Some(path) => {
                paths.push(path.display().to_string());
                Some(RecordWriter::new(create(&path)?, self.format)?)
            }
            None => None,
        };
        Ok(Outputs {
            flows: RecordWriter::new(flows_out, self.format)?,
            series,
            paths,
        })
    }
}

/// `OUT.csv` → `OUT.series.csv`.
fn series_path(out: &Path, format: Format) -> PathBuf {
    let stem = out.file_stem().unwrap_or_default().to_string_lossy();
    out.with_file_name(format!("{stem}.series.{}", format.extension()))
}

impl Outputs {
    /// Writes records and series rows.
    pub fn write(&mut self, flows: &[FlowRecord], series: &[SeriesRow]) -> Result<()> {
        self.flows
            .write(flows)
            .context("cannot write flow records")?;
        if let Some(w) = &mut self.series {
            w.write(series).context("cannot write series")?;
        }
        Ok(())
    }

    /// Flushes everything; returns the files written.
    pub fn finish(self) -> Result<Vec<String>> {
        self.flows.finish().context("cannot write flow records")?;
        if let Some(w) = self.series {
            w.finish().context("cannot write series")?;
        }
        Ok(self.paths)
    }
}

/// Prints the closing summary of a capture to standard error.
pub fn print_summary(
    stats: &CaptureStats,
    flows_written: u64,
    elapsed: Duration,
    files: &[String],
) {
    let secs = elapsed.as_secs_f64().max(1e-9);
    let mut t = Table::new(&["", ""]);
    let mut row = |k: &str, v: String| t.row(vec![k.to_string(), v]);
    row("packets", stats.packets.to_string());
    row("flows", flows_written.to_string());
    row(
        "tcp / udp / icmp",
        format!(
            "{} / {} / {}",
            stats.tcp_packets, stats.udp_packets, stats.icmp_packets
        ),
    );
    row("not IP", stats.non_ip_packets.to_string());
    let reasons: Vec<String> = stats
        .malformed_reasons
        .iter()
        .map(|(r, n)| format!("{r}: {n}"))
        .collect();
    row(
        "malformed",
        if reasons.is_empty() {
            stats.malformed_packets.to_string()
        } else {
            format!("{} ({})", stats.malformed_packets, reasons.join("; "))
        },
    );
    if stats.filtered_packets > 0 {
        row("filtered out", stats.filtered_packets.to_string());
    }
    if stats.fragment_packets > 0 {
        row(
            "IP fragments",
            format!(
                "{} ({} not attributed)",
                stats.fragment_packets, stats.unattributed_fragments
            ),
        );
    }
    if stats.snaplen_cut_packets > 0 {
        row("cut by snaplen", stats.snaplen_cut_packets.to_string());
    }
    if stats.flows_evicted > 0 {
        row("flows evicted", stats.flows_evicted.to_string());
    }
    if let Some(drops) = stats.kernel_drops {
        row("kernel drops", drops.to_string());
    }
    row(
        "time",
        format!("{secs:.2} s, {:.0} packets/s", stats.packets as f64 / secs),
    );
    if !files.is_empty() {
        row("written", files.join(", "));
    }
    eprint!("{}", t.render().trim_start_matches('\n'));
}

/// Treats a closed standard output (e.g. `qoelab flows f.pcap | head`) as a normal end.
pub fn quiet_on_broken_pipe(result: Result<()>) -> Result<()> {
    match result {
        Err(err)
            if err.chain().any(|cause| {
                cause
                    .downcast_ref::<io::Error>()
                    .is_some_and(|e| e.kind() == io::ErrorKind::BrokenPipe)
            }) =>
        {
            Ok(())
        }
        other => other,
    }
}

/// Runs `qoelab flows`.
pub fn run(args: FlowsArgs) -> Result<()> {
    quiet_on_broken_pipe(flows(args))
}

fn flows(args: FlowsArgs) -> Result<()> {
    let started = Instant::now();
    let mut files = Vec::new();
    for path in &args.files {
        files.push(CaptureFile::open(path)?);
    }
    let total: u64 = files.iter().map(CaptureFile::len).sum();
    let bar = ProgressBar::new(total).with_style(
        ProgressStyle::with_template(
            "{spinner} {bytes}/{total_bytes} [{bar:30}] {binary_bytes_per_sec}, eta {eta} {msg}",
        )
        .unwrap_or_else(|_| ProgressStyle::default_bar()),
    );
    let mut outputs = args.output.open()?;
    let mut analyzer = Analyzer::new(AnalyzerConfig {
        filter: args.filter.filter(),
        series_bin: args.output.series_bin(),
        ..AnalyzerConfig::default()
    });
    let mut done_before: u64 = 0;
    let mut write_error = None;
    let mut corrupt = Vec::new();
    for file in &files {
        let damage = qoelab_capture::feed(file, &mut analyzer, |offset, analyzer| {
            bar.set_position(done_before + offset);
            bar.set_message(format!("{} flows", analyzer.stats().flows));
            let (flows, series) = analyzer.take_finished();
            if write_error.is_none()
                && let Err(err) = outputs.write(&flows, &series)
            {
                write_error = Some(err);
            }
        });
        done_before += file.len();
        match damage {
            Some(err @ FileError::Truncated { .. }) => {
                bar.suspend(|| eprintln!("qoelab: warning: {err}"));
            }
            Some(err) => corrupt.push(err),
            None => {}
        }
        if let Some(err) = write_error.take() {
            return Err(err);
        }
    }
    bar.finish_and_clear();
    let output = analyzer.finish();
    outputs.write(&output.flows, &output.series)?;
    let flows_written = output.stats.flows;
    let paths = outputs.finish()?;
    print_summary(&output.stats, flows_written, started.elapsed(), &paths);
    if let Some(first) = corrupt.into_iter().next() {
        bail!("{first} (the records of everything before it were written)");
    }
    Ok(())
}
