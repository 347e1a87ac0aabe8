//! `qoelab shape trace`: plays a bandwidth trace on an interface through the agent, changing
//! the link rate in place at each step, then puts the interface back as it was.

use std::path::PathBuf;
use std::time::Duration;

use anyhow::{Context, Result};
use clap::Args;
use indicatif::{ProgressBar, ProgressStyle};
use qoelab_agent::client::{AgentClient, ClientError};
use qoelab_agent::server::DEFAULT_SOCKET;
use qoelab_collector::network::limit;
use qoelab_collector::trace_shaping::{TraceShapeError, TraceShaper};
use qoelab_shaper::{Direction, IfaceRef, InterfacePlan};
use qoelab_units::Rate;
use qoelab_workload::trace::{self, RateSetter, Trace};

use super::watch::interrupted;

/// Options of `qoelab shape trace`.
#[derive(Debug, Args)]
pub struct TraceArgs {
    /// The trace: `time_s rate_mbps` lines (`qoelab workload trace generate` writes them).
    file: PathBuf,
    /// The interface to shape.
    #[arg(long)]
    iface: String,
    /// Its network namespace (iproute2 name); default: the agent's own.
    #[arg(long)]
    netns: Option<String>,
    /// The agent's socket.
    #[arg(long, visible_alias = "socket", default_value = DEFAULT_SOCKET)]
    agent: PathBuf,
    /// Which direction follows the trace: egress (sent traffic) or ingress (received).
    #[arg(long, default_value = "egress", value_parser = parse_direction)]
    direction: Direction,
    /// How long the whole trace lasts, e.g. 60s (default: the last step lasts as long as the
    /// one before it; a one-step trace holds until interrupted).
    #[arg(long, value_parser = parse_duration)]
    duration: Option<Duration>,
    /// Leave the last rate in force instead of putting the interface back as it was.
    #[arg(long)]
    keep: bool,
}

fn parse_direction(text: &str) -> Result<Direction, String> {
    Direction::ALL
        .into_iter()
        .find(|d| d.as_str() == text)
        .ok_or_else(|| format!("'{text}' is not a direction: use egress or ingress"))
}

fn parse_duration(text: &str) -> Result<Duration, String> {
    qoelab_units::parse_duration(text).map_err(|e| e.to_string())
}

/// When the trace ends, seconds from its start (`None`: when interrupted).
fn end_s(trace: &Trace, duration: Option<Duration>) -> Option<f64> {
    if let Some(duration) = duration {
        return Some(duration.as_secs_f64());
    }
    match trace.steps() {
        [.., before, last] => Some(last.time_s + (last.time_s - before.time_s)),
        _ => None,
    }
}

/// A [`TraceShaper`] that shows each rate on a progress bar.
struct Shown {
    shaper: TraceShaper,
    bar: ProgressBar,
}

impl RateSetter for Shown {
    type Error = TraceShapeError;

    async fn set_rate(&mut self, rate_bps: u64) -> Result<(), TraceShapeError> {
        self.bar.set_message(Rate::from_bps(rate_bps).to_string());
        self.shaper.set_rate(rate_bps).await
    }
}

/// Runs `qoelab shape trace`.
pub async fn run(args: TraceArgs) -> Result<()> {
    let text = std::fs::read_to_string(&args.file)
        .with_context(|| format!("cannot read the trace {}", args.file.display()))?;
    let trace = Trace::parse(&text).with_context(|| format!("trace {}", args.file.display()))?;
    let end_s = end_s(&trace, args.duration);
    let client = AgentClient::new(&args.agent);
    let iface = IfaceRef::new(args.netns.as_deref(), &args.iface);
    let found = match client.plan(&iface).await {
        Ok(plan) => Some(plan),
        Err(ClientError::Api { status, .. }) if status.as_u16() == 404 => None,
        Err(err) => return Err(err).with_context(|| format!("cannot read the shaping of {iface}")),
    };
    let mut start = found.clone().unwrap_or_default();
    let first = Rate::from_bps(trace.steps()[0].rate_bps);
    if start.direction(args.direction).is_none() {
        let limited = Some(limit(first, None));
        match args.direction {
            Direction::Egress => start.egress = limited,
            Direction::Ingress => start.ingress = limited,
        }
        client
            .apply(&iface, &start)
            .await
            .with_context(|| format!("cannot shape {iface}"))?;
    }

    let bar = match end_s {
        Some(end) => ProgressBar::new(end.ceil() as u64).with_style(
            ProgressStyle::with_template("{pos}/{len} s [{bar:30}] {msg}")
                .expect("the progress template is valid"),
        ),
        None => ProgressBar::new_spinner().with_style(
            ProgressStyle::with_template("{elapsed} {spinner} {msg} (Ctrl-C ends)")
                .expect("the progress template is valid"),
        ),
    };
    let mut shown = Shown {
        shaper: TraceShaper::new(client.clone(), iface.clone(), args.direction),
        bar: bar.clone(),
    };
    let started = tokio::time::Instant::now();
    let ticker = {
        let bar = bar.clone();
        tokio::spawn(async move {
            loop {
                bar.set_position(started.elapsed().as_secs());
                tokio::time::sleep(Duration::from_millis(200)).await;
            }
        })
    };
    let played = async {
        trace::play(&trace, &mut shown).await?;
        match end_s {
            Some(end) => tokio::time::sleep_until(started + Duration::from_secs_f64(end)).await,
            None => std::future::pending().await,
        }
        Ok::<_, trace::TraceError>(())
    };
    let outcome = tokio::select! {
        outcome = played => outcome.map(|()| "played"),
        () = interrupted() => Ok("interrupted"),
    };
    ticker.abort();
    bar.finish_and_clear();
    let applied = shown.shaper.applied();
    let restored = if args.keep {
        Ok("the last rate stays in force")
    } else {
        restore(&client, &iface, found).await
    };
    let how = outcome.with_context(|| format!("playing {} on {iface}", args.file.display()))?;
    println!(
        "{iface} {}: {how} {} steps over {:.1} s: {} changed in place, {} created, {} deleted; {}",
        args.direction,
        trace.steps().len(),
        started.elapsed().as_secs_f64(),
        applied.changed,
        applied.created,
        applied.deleted,
        restored?
    );
    Ok(())
}

/// Puts `iface` back to the plan `found` at the start (or unshaped).
async fn restore(
    client: &AgentClient,
    iface: &IfaceRef,
    found: Option<InterfacePlan>,
) -> Result<&'static str> {
    match found {
        Some(plan) => client.apply(iface, &plan).await.map(|_| ()),
        None => client.clear(iface).await,
    }
    .with_context(|| format!("cannot put {iface} back as it was"))?;
    Ok("restored")
}
