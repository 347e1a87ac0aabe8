//! `qoelab capture IFACE`: live flow statistics from an interface, also inside a namespace.

use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use anyhow::Result;
use clap::Args;
use indicatif::{ProgressBar, ProgressStyle};
use qoelab_capture::{CaptureRequest, LiveCapture, MAX_CAPTURE_DURATION};

use crate::cmd::flows::{FilterArgs, OutputArgs, print_summary, quiet_on_broken_pipe};

/// Options of `qoelab capture`.
#[derive(Debug, Args)]
pub struct CaptureArgs {
    /// The interface to capture on.
    interface: String,
    /// The network namespace of the interface (as `ip netns list` names it, e.g. a lab's
    /// `ql<lab>-router`).
    #[arg(long, value_name = "NS")]
    netns: Option<String>,
    /// Stop after this many seconds (default: at Ctrl-C, at most 24 hours).
    #[arg(long, value_name = "N")]
    seconds: Option<u64>,
    #[command(flatten)]
    output: OutputArgs,
    #[command(flatten)]
    filter: FilterArgs,
}

static INTERRUPTED: AtomicBool = AtomicBool::new(false);

extern "C" fn on_interrupt(_: libc::c_int) {
    INTERRUPTED.store(true, Ordering::Relaxed);
}

/// Makes Ctrl-C end the capture normally (records are still written).
fn catch_interrupt() {
    let handler = on_interrupt as extern "C" fn(libc::c_int);
    // SAFETY: the handler only stores to an atomic, which is async-signal-safe.
    unsafe {
        libc::signal(libc::SIGINT, handler as libc::sighandler_t);
        libc::signal(libc::SIGTERM, handler as libc::sighandler_t);
    }
}

/// Runs `qoelab capture`.
pub fn run(args: CaptureArgs) -> Result<()> {
    quiet_on_broken_pipe(capture(args))
}

fn capture(args: CaptureArgs) -> Result<()> {
    let request = CaptureRequest {
        interface: args.interface.clone(),
        netns: args.netns.clone(),
        filter: args.filter.filter(),
        bin_ms: args.output.series_bin().map_or(0, |b| b.as_millis() as u64),
        max_duration_s: args.seconds.unwrap_or(MAX_CAPTURE_DURATION.as_secs()),
        lease_s: None,
    };
    request.validate()?;
    let mut outputs = args.output.open()?;
    catch_interrupt();
    let started = Instant::now();
    let capture = LiveCapture::start(&request)?;
    let spinner = ProgressBar::new_spinner().with_style(
        ProgressStyle::with_template("{spinner} {elapsed} {msg}")
            .unwrap_or_else(|_| ProgressStyle::default_spinner()),
    );
    let until = args
        .seconds
        .map_or("Ctrl-C".to_string(), |s| format!("{s} s or Ctrl-C"));
    while !capture.is_finished() && !INTERRUPTED.load(Ordering::Relaxed) {
        std::thread::sleep(Duration::from_millis(200));
        let stats = capture.stats()?;
        spinner.set_message(format!(
            "capturing on {} until {until}: {} packets, {} flows, {} kernel drops",
            request.interface,
            stats.packets,
            stats.flows,
            stats.kernel_drops.unwrap_or(0)
        ));
        spinner.tick();
    }
    spinner.finish_and_clear();
    let output = capture.stop()?;
    outputs.write(&output.flows, &output.series)?;
    let paths = outputs.finish()?;
    print_summary(
        &output.stats,
        output.flows.len() as u64,
        started.elapsed(),
        &paths,
    );
    Ok(())
}
