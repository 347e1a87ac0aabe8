//! `qoelab workload video serve|play`, `qoelab workload iot sink|run`,
//! `qoelab workload trace generate|check`.
//!
//! Every network command takes `--netns NAME` to run inside a network namespace (a lab node,
//! e.g. `qlNAME-client`); without it, it runs in the caller's network.

use std::future::Future;
use std::path::PathBuf;
use std::time::Duration;

use anyhow::{Context, Result, bail};
use clap::{Args, Subcommand, ValueEnum};
use indicatif::{ProgressBar, ProgressStyle};
use qoelab_lab::NetNs;
use qoelab_units::{Rate, parse_duration};
use qoelab_workload::iot::{self, QosReport, Reporter, SinkConfig, UploaderConfig};
use qoelab_workload::model::{Location, ModelSet};
use qoelab_workload::trace::{Shape, Trace};
use qoelab_workload::video::{self, AbrKind, PlayerConfig, QoeRecord, VideoSpec};

use crate::table::Table;

/// Workload subcommands.
#[derive(Debug, Subcommand)]
pub enum WorkloadCommand {
    /// ABR video: a server of a synthetic video and a player that measures QoE.
    #[command(subcommand)]
    Video(VideoCommand),
    /// IoT analytics: uploaders at a QoS knob, and the sink that measures their QoS.
    #[command(subcommand)]
    Iot(IotCommand),
    /// Bandwidth traces (`time_s rate_mbps` lines).
    #[command(subcommand)]
    Trace(TraceCommand),
}

/// Video subcommands.
#[derive(Debug, Subcommand)]
pub enum VideoCommand {
    /// Serve a synthetic video over HTTP/1.1 until Ctrl-C.
    Serve(ServeArgs),
    /// Play one session and print its QoE.
    Play(PlayArgs),
}

/// `video serve`.
#[derive(Debug, Args)]
pub struct ServeArgs {
    /// Address to listen on.
    #[arg(long, default_value = "0.0.0.0:8080")]
    listen: String,
    /// Bitrate ladder, ascending, comma separated.
    #[arg(
        long,
        value_delimiter = ',',
        default_value = "300kbit,750kbit,1200kbit,1850kbit,2850kbit,4300kbit"
    )]
    ladder: Vec<Rate>,
    /// Media length of a segment.
    #[arg(long, value_parser = parse_duration, default_value = "4s")]
    segment_duration: Duration,
    /// Distinct segments (the video loops after them).
    #[arg(long, default_value_t = 48)]
    segments: usize,
    /// Seed of the segment sizes.
    #[arg(long, default_value_t = 1)]
    seed: u64,
    /// Spread of segment sizes around nominal (σ of the log size; 0 = constant bitrate).
    #[arg(long, default_value_t = 0.25)]
    vbr: f64,
    /// Run inside this network namespace.
    #[arg(long)]
    netns: Option<String>,
}

/// `video play`.
#[derive(Debug, Args)]
pub struct PlayArgs {
    /// The server's base URL, e.g. http://198.18.2.2:8080.
    #[arg(long)]
    server: String,
    /// ABR algorithm: buffer (bba), rate, mpc (robust-mpc).
    #[arg(long, default_value = "buffer")]
    abr: AbrKind,
    /// Media to play (rounded up to whole segments).
    #[arg(long, value_parser = parse_duration, default_value = "60s")]
    duration: Duration,
    /// Media buffered before playback starts.
    #[arg(long, value_parser = parse_duration, default_value = "4s")]
    startup: Duration,
    /// Most media buffered.
    #[arg(long, value_parser = parse_duration, default_value = "60s")]
    buffer_cap: Duration,
    /// Longest a single request may take.
    #[arg(long, value_parser = parse_duration, default_value = "60s")]
    timeout: Duration,
    /// End with the last download instead of playing the buffer out (same QoE, shorter).
    #[arg(long)]
    no_play_out: bool,
    /// An identifier copied into the record.
    #[arg(long)]
    session: Option<String>,
    /// Print the full QoE record as JSON instead of the summary table.
    #[arg(long)]
    json: bool,
    /// Run inside this network namespace.
    #[arg(long)]
    netns: Option<String>,
}

/// IoT subcommands.
#[derive(Debug, Subcommand)]
pub enum IotCommand {
    /// Receive uploads, measure delivery, report achieved QoS until Ctrl-C.
    Sink(SinkArgs),
    /// Run analytics that upload to a sink; print their achieved QoS.
    Run(RunArgs),
}

/// `iot sink`.
#[derive(Debug, Args)]
pub struct SinkArgs {
    /// Address to listen on.
    #[arg(long, default_value = "0.0.0.0:9000")]
    listen: String,
    /// Listen on this many consecutive ports from the --listen port (the runner's uploaders
    /// send analytic i of a session to port PORT+i; campaigns have up to 16 analytics).
    #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u16).range(1..))]
    ports: u16,
    /// POST each QoS report as JSON to this URL.
    #[arg(long)]
    report_url: Option<String>,
    /// Publish each QoS report to this MQTT broker (mqtt://HOST[:PORT]) on
    /// qoelab/<gateway>/<analytic>/qos.
    #[arg(long)]
    mqtt: Option<String>,
    /// Time between a session's periodic reports.
    #[arg(long, value_parser = parse_duration, default_value = "5s")]
    report_interval: Duration,
    /// Run inside this network namespace.
    #[arg(long)]
    netns: Option<String>,
}

/// `iot run`.
#[derive(Debug, Args)]
pub struct RunArgs {
    /// The sink, HOST:PORT.
    #[arg(long)]
    sink: String,
    /// An analytic as KIND:K[:NAME], e.g. object-detection:0.6:cam1; repeat for several
    /// (each uploads over its own connection).
    #[arg(long = "analytic", required = true, value_parser = parse_analytic)]
    analytics: Vec<AnalyticArg>,
    /// The gateway's name (default: this host's name).
    #[arg(long)]
    gateway: Option<String>,
    /// Where the analytics run: cloud (raw data uploaded) or edge (results uploaded).
    #[arg(long, value_enum, default_value = "cloud")]
    location: LocationArg,
    /// Time between frame captures.
    #[arg(long, value_parser = parse_duration, default_value = "1s")]
    period: Duration,
    /// A frame is on time if complete at the sink within this time of its capture.
    #[arg(long, value_parser = parse_duration, default_value = "1s")]
    deadline: Duration,
    /// Session length.
    #[arg(long, value_parser = parse_duration, default_value = "30s")]
    duration: Duration,
    /// Analytic models (TOML, the format of workload/models/analytics.toml); default: built in.
    #[arg(long)]
    models: Option<PathBuf>,
    /// Print the final reports as JSON instead of a table.
    #[arg(long)]
    json: bool,
    /// Run inside this network namespace.
    #[arg(long)]
    netns: Option<String>,
}

/// One `--analytic`.
#[derive(Debug, Clone)]
struct AnalyticArg {
    kind: String,
    knob: f64,
    name: Option<String>,
}

#[derive(Debug, Clone, Copy, ValueEnum)]
enum LocationArg {
    Cloud,
    Edge,
}

/// Trace subcommands.
#[derive(Debug, Subcommand)]
pub enum TraceCommand {
    /// Print a seeded synthetic trace.
    Generate(GenerateArgs),
    /// Read a trace file and summarize it (or say which line is wrong).
    Check {
        /// The trace file.
        file: PathBuf,
    },
}

/// `trace generate`.
#[derive(Debug, Args)]
pub struct GenerateArgs {
    /// The trace's shape.
    #[arg(long, value_enum)]
    shape: ShapeArg,
    /// Trace length.
    #[arg(long, value_parser = parse_duration, default_value = "60s")]
    duration: Duration,
    /// Time between changes (random walk: every interval; on/off: period lengths are
    /// rounded up to it).
    #[arg(long, value_parser = parse_duration, default_value = "1s")]
    interval: Duration,
    /// Seed.
    #[arg(long, default_value_t = 1)]
    seed: u64,
    /// Steady rate; step: first rate; random walk: start; on/off: rate while on.
    #[arg(long, default_value = "5mbit")]
    rate: Rate,
    /// Step: second rate.
    #[arg(long, default_value = "1mbit")]
    to: Rate,
    /// Step: when the second rate starts (default: half-way).
    #[arg(long, value_parser = parse_duration)]
    at: Option<Duration>,
    /// Random walk: lowest rate.
    #[arg(long, default_value = "1mbit")]
    min: Rate,
    /// Random walk: highest rate.
    #[arg(long, default_value = "10mbit")]
    max: Rate,
    /// Random walk: σ of the log-rate change per interval.
    #[arg(long, default_value_t = 0.1)]
    sigma: f64,
    /// On/off: rate while off (0bit = link down).
    #[arg(long, default_value = "0bit")]
    off_rate: Rate,
    /// On/off: mean on period.
    #[arg(long, value_parser = parse_duration, default_value = "10s")]
    mean_on: Duration,
    /// On/off: mean off period.
    #[arg(long, value_parser = parse_duration, default_value = "3s")]
    mean_off: Duration,
}

#[derive(Debug, Clone, Copy, ValueEnum)]
enum ShapeArg {
    Steady,
    Step,
    RandomWalk,
    OnOff,
}

/// Runs a workload subcommand.
pub fn run(command: WorkloadCommand) -> Result<()> {
    match command {
        WorkloadCommand::Video(VideoCommand::Serve(args)) => serve(args),
        WorkloadCommand::Video(VideoCommand::Play(args)) => play(args),
        WorkloadCommand::Iot(IotCommand::Sink(args)) => sink(args),
        WorkloadCommand::Iot(IotCommand::Run(args)) => run_analytics(args),
        WorkloadCommand::Trace(TraceCommand::Generate(args)) => generate(args),
        WorkloadCommand::Trace(TraceCommand::Check { file }) => check(&file),
    }
}

/// Runs the future made by `f` on a fresh runtime, inside namespace `netns` if given.
fn run_in<F, Fut, T>(netns: Option<&str>, f: F) -> Result<T>
where
    F: FnOnce() -> Fut + Send,
    Fut: Future<Output = Result<T>>,
    T: Send,
{
    match netns {
        Some(name) => {
            let ns = NetNs::open(name).with_context(|| {
                format!("cannot open network namespace '{name}': see `ip netns list` or `qoelab lab status`")
            })?;
            ns.run_async(f)
                .with_context(|| format!("cannot enter network namespace '{name}' (needs root)"))?
        }
        None => tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()?
            .block_on(f()),
    }
}

async fn bind(listen: &str) -> Result<tokio::net::TcpListener> {
    tokio::net::TcpListener::bind(listen)
        .await
        .with_context(|| {
            format!("cannot listen on '{listen}': use a free HOST:PORT of this network")
        })
}

/// Listeners on `listen` and the `ports − 1` ports after its port, same address.
async fn bind_ports(listen: &str, ports: u16) -> Result<Vec<tokio::net::TcpListener>> {
    let first = bind(listen).await?;
    let base = first.local_addr()?;
    let mut listeners = vec![first];
    for i in 1..ports {
        let port = base.port().checked_add(i).with_context(|| {
            format!(
                "--ports {ports} from port {} goes past 65535: use a lower port or fewer ports",
                base.port()
            )
        })?;
        let addr = std::net::SocketAddr::new(base.ip(), port);
        listeners.push(bind(&addr.to_string()).await?);
    }
    Ok(listeners)
}

async fn ctrl_c() {
    if tokio::signal::ctrl_c().await.is_err() {
        std::future::pending::<()>().await;
    }
}

fn serve(args: ServeArgs) -> Result<()> {
    let spec = VideoSpec {
        ladder_bps: args.ladder.iter().map(|r| r.bps()).collect(),
        segment_duration_s: args.segment_duration.as_secs_f64(),
        segment_count: args.segments,
        seed: args.seed,
        vbr_sigma: args.vbr,
    };
    spec.validate()?;
    run_in(args.netns.as_deref(), || async {
        let listener = bind(&args.listen).await?;
        eprintln!(
            "serving a video of {} levels ({}) and {} segments of {:?} on http://{}; Ctrl-C stops",
            spec.ladder_bps.len(),
            args.ladder
                .iter()
                .map(Rate::to_string)
                .collect::<Vec<_>>()
                .join(", "),
            spec.segment_count,
            args.segment_duration,
            listener.local_addr()?,
        );
        video::server::serve(listener, &spec, ctrl_c()).await?;
        Ok(())
    })
}

fn play(args: PlayArgs) -> Result<()> {
    let config = PlayerConfig {
        server: args.server.clone(),
        abr: args.abr,
        media_s: args.duration.as_secs_f64(),
        startup_s: args.startup.as_secs_f64(),
        buffer_cap_s: args.buffer_cap.as_secs_f64(),
        request_timeout: args.timeout,
        play_out: !args.no_play_out,
        session: args.session.clone(),
    };
    let progress = ProgressBar::new_spinner();
    progress.set_style(
        ProgressStyle::with_template("{spinner} {elapsed} {msg}").expect("valid template"),
    );
    progress.enable_steady_tick(Duration::from_millis(200));
    let record = run_in(args.netns.as_deref(), || async {
        let on_segment = |s: &video::SegmentRecord| {
            progress.set_message(format!(
                "segment {}: {} at {}, buffer {:.1} s",
                s.index,
                Rate::from_bps(s.bitrate_bps),
                Rate::from_bps(s.throughput_bps / 1000 * 1000),
                s.buffer_s
            ));
        };
        Ok(video::play(&config, on_segment).await?)
    });
    progress.finish_and_clear();
    let record = record?;
    if args.json {
        println!("{}", serde_json::to_string_pretty(&record)?);
    } else {
        print!("{}", qoe_table(&record));
    }
    Ok(())
}

fn qoe_table(r: &QoeRecord) -> String {
    let mut table = Table::new(&[
        "abr",
        "startup",
        "stalls",
        "stall time",
        "avg bitrate",
        "switches",
        "QoE lin",
        "QoE log",
        "class",
    ]);
    table.row(vec![
        r.info.abr.to_string(),
        format!("{:.2} s", r.info.startup_delay_s),
        r.stall_count.to_string(),
        format!("{:.2} s", r.stall_time_s),
        format!("{} kbit/s", r.avg_bitrate_bps / 1000),
        r.switch_count.to_string(),
        format!("{:.3}", r.qoe_lin),
        format!("{:.3}", r.qoe_log),
        r.qoe_class.as_str().to_string(),
    ]);
    table.render()
}

fn sink(args: SinkArgs) -> Result<()> {
    run_in(args.netns.as_deref(), || async {
        let reporter = Reporter::new(args.report_url.as_deref(), args.mqtt.as_deref()).await?;
        let listeners = bind_ports(&args.listen, args.ports).await?;
        let first = listeners[0].local_addr()?;
        let last = listeners[listeners.len() - 1].local_addr()?.port();
        let range = if last == first.port() {
            String::new()
        } else {
            format!(" to port {last}")
        };
        eprintln!("IoT sink on {first}{range}; Ctrl-C stops");
        let config = SinkConfig {
            reporter: reporter.clone(),
            report_interval: args.report_interval,
        };
        let print = |report: &QosReport| {
            println!(
                "{}",
                serde_json::to_string(report).expect("reports serialize")
            );
        };
        iot::run_sinks(listeners, config, ctrl_c(), print).await?;
        reporter.close().await;
        Ok(())
    })
}

fn run_analytics(args: RunArgs) -> Result<()> {
    let models = match &args.models {
        Some(path) => {
            let text = std::fs::read_to_string(path)
                .with_context(|| format!("cannot read the models file {}", path.display()))?;
            ModelSet::from_toml(&text).with_context(|| format!("models file {}", path.display()))?
        }
        None => ModelSet::builtin(),
    };
    let gateway = args.gateway.clone().unwrap_or_else(hostname);
    let mut configs: Vec<UploaderConfig> = Vec::new();
    for analytic in &args.analytics {
        let name = analytic.name.clone().unwrap_or_else(|| {
            let taken = configs.iter().filter(|c| c.kind == analytic.kind).count();
            if taken == 0 {
                analytic.kind.clone()
            } else {
                format!("{}-{}", analytic.kind, taken + 1)
            }
        });
        if configs.iter().any(|c| c.analytic == name) {
            bail!(
                "two analytics are named '{name}': give each a distinct NAME in --analytic KIND:K:NAME"
            );
        }
        let config = UploaderConfig {
            sink: args.sink.clone(),
            gateway: gateway.clone(),
            analytic: name,
            kind: analytic.kind.clone(),
            knob: analytic.knob,
            location: match args.location {
                LocationArg::Cloud => Location::Cloud,
                LocationArg::Edge => Location::Edge,
            },
            period: args.period,
            deadline: args.deadline,
            duration: args.duration,
        };
        // Refuse a bad knob or kind before any upload starts.
        config.hello(&models)?;
        configs.push(config);
    }
    let progress = ProgressBar::new(args.duration.as_secs());
    progress.set_style(
        ProgressStyle::with_template("{bar:30} {pos}/{len} s {msg}").expect("valid template"),
    );
    progress.set_message(format!(
        "{} analytics uploading to {}",
        configs.len(),
        args.sink
    ));
    let reports = run_in(args.netns.as_deref(), || async {
        let ticker = async {
            loop {
                tokio::time::sleep(Duration::from_secs(1)).await;
                progress.inc(1);
            }
        };
        let uploads =
            futures::future::try_join_all(configs.iter().map(|c| iot::upload(c, &models)));
        tokio::select! {
            reports = uploads => Ok(reports?),
            _ = ticker => unreachable!("the ticker never ends"),
        }
    });
    progress.finish_and_clear();
    let reports = reports?;
    if args.json {
        println!("{}", serde_json::to_string_pretty(&reports)?);
        return Ok(());
    }
    let mut table = Table::new(&[
        "analytic",
        "kind",
        "K",
        "rate",
        "expected QoS",
        "achieved QoS",
        "on time",
        "late",
        "missing",
        "latency p95",
    ]);
    for r in &reports {
        table.row(vec![
            r.spec.analytic.clone(),
            r.spec.kind.clone(),
            format!("{}", r.spec.knob),
            Rate::from_bps(r.spec.rate_bps).to_string(),
            format!("{:.3}", r.expected_qos),
            format!("{:.3}", r.achieved_qos),
            format!("{}/{}", r.frames_on_time, r.frames_due),
            r.frames_late.to_string(),
            r.frames_missing.to_string(),
            r.latency_ms_p95
                .map_or("-".into(), |l| format!("{l:.0} ms")),
        ]);
    }
    print!("{}", table.render());
    Ok(())
}

fn parse_analytic(text: &str) -> Result<AnalyticArg, String> {
    let form = "use KIND:K[:NAME], e.g. object-detection:0.6 or audio-classification:0.5:mic1";
    let parts: Vec<&str> = text.split(':').collect();
    let (kind, knob, name) = match parts[..] {
        [kind, knob] => (kind, knob, None),
        [kind, knob, name] => (kind, knob, Some(name.to_string())),
        _ => return Err(format!("'{text}' is not an analytic: {form}")),
    };
    let knob = knob
        .parse::<f64>()
        .map_err(|_| format!("the knob '{knob}' in '{text}' is not a number: {form}"))?;
    Ok(AnalyticArg {
        kind: kind.to_string(),
        knob,
        name,
    })
}

fn hostname() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|h| h.trim().to_string())
        .ok()
        .filter(|h| !h.is_empty())
        .unwrap_or_else(|| "gateway".to_string())
}

fn generate(args: GenerateArgs) -> Result<()> {
    let duration_s = args.duration.as_secs_f64();
    let shape = match args.shape {
        ShapeArg::Steady => Shape::Steady {
            rate_bps: args.rate.bps(),
        },
        ShapeArg::Step => Shape::Step {
            from_bps: args.rate.bps(),
            to_bps: args.to.bps(),
            at_s: args.at.map_or(duration_s / 2.0, |d| d.as_secs_f64()),
        },
        ShapeArg::RandomWalk => Shape::RandomWalk {
            start_bps: args.rate.bps(),
            min_bps: args.min.bps(),
            max_bps: args.max.bps(),
            sigma: args.sigma,
        },
        ShapeArg::OnOff => Shape::OnOff {
            on_bps: args.rate.bps(),
            off_bps: args.off_rate.bps(),
            mean_on_s: args.mean_on.as_secs_f64(),
            mean_off_s: args.mean_off.as_secs_f64(),
        },
    };
    let trace = Trace::generate(&shape, duration_s, args.interval.as_secs_f64(), args.seed)?;
    print!("{}", trace.to_text());
    Ok(())
}

fn check(file: &PathBuf) -> Result<()> {
    let text = std::fs::read_to_string(file)
        .with_context(|| format!("cannot read trace {}", file.display()))?;
    let trace = Trace::parse(&text).with_context(|| format!("trace {}", file.display()))?;
    let steps = trace.steps();
    let rates: Vec<u64> = steps.iter().map(|s| s.rate_bps).collect();
    println!(
        "{}: {} steps from {} s to {} s, rate {} to {}",
        file.display(),
        steps.len(),
        steps[0].time_s,
        steps[steps.len() - 1].time_s,
        Rate::from_bps(*rates.iter().min().expect("a trace has steps")),
        Rate::from_bps(*rates.iter().max().expect("a trace has steps")),
    );
    Ok(())
}
