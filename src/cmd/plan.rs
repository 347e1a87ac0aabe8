//! `qoelab allocate`, `qoelab simulate` and `qoelab requests`: the planner on the command line.

use std::path::{Path, PathBuf};
use std::time::Instant;

use anyhow::{Context, Result, bail};
use clap::Args;
use indicatif::{ProgressBar, ProgressStyle};
use qoelab_planner::allocate::{self, Algorithm, Allocation, Options, Problem};
use qoelab_planner::analytic::parse_analytics;
use qoelab_planner::placement::Method;
use qoelab_planner::replacement::{Policy, Watermarks};
use qoelab_planner::requests::{self, Request, Spec};
use qoelab_planner::scenario::Scenario;
use qoelab_planner::shaping::{MatchBy, PlanOptions, shaping_plan};
use qoelab_planner::simulate::{self, Config, Report, plot};
use qoelab_units::{Rate, Size};
use qoelab_workload::model::ModelSet;

use crate::table::Table;

/// `qoelab allocate`: one allocation of a budget among the analytics of a file.
#[derive(Debug, Args)]
pub struct AllocateArgs {
    /// Upload budget, e.g. 1mbit.
    #[arg(long, value_parser = parse::<Rate>)]
    budget: Rate,
    /// Analytics file (TOML, [[analytic]] entries: id, kind, weight, location, k_min, port,
    /// address); with --watch, analytics registered at start.
    #[arg(long, required_unless_present = "watch")]
    analytics: Option<PathBuf>,
    /// Analytic models (TOML; default: the built-in models).
    #[arg(long)]
    models: Option<PathBuf>,
    /// raa, lagrange, weighted, unweighted or optimal.
    #[arg(long, default_value = "raa", value_parser = parse::<Algorithm>)]
    algorithm: Algorithm,
    /// Knob step of raa.
    #[arg(long, default_value_t = 0.01)]
    alpha: f64,
    /// Also run every algorithm and show its optimality gap.
    #[arg(long, conflicts_with = "watch")]
    compare: bool,
    /// Also print the shaping plan (one class per admitted analytic).
    #[arg(long, conflicts_with = "watch")]
    plan: bool,
    /// What the plan's classes match: port (destination port) or address (source address).
    #[arg(long, default_value = "port", value_parser = parse::<MatchBy>)]
    match_by: MatchBy,
    /// Let classes borrow unused budget (ceil = budget).
    #[arg(long)]
    borrow: bool,
    /// Print JSON instead of tables.
    #[arg(long, conflicts_with = "watch")]
    json: bool,
    #[command(flatten)]
    watch: super::watch::WatchArgs,
}

/// `qoelab simulate`: a minute-stepped gateway simulation over a request trace.
#[derive(Debug, Args)]
pub struct SimulateArgs {
    /// Image placement: exact, fptas, greedy; a comma list or `all` runs each.
    #[arg(long, default_value = "exact")]
    ida: String,
    /// Rate allocation: raa, lagrange, weighted, unweighted, optimal; a comma list or `all`.
    #[arg(long, default_value = "raa")]
    raa: String,
    /// Layer replacement: lru, mru, lfu, mfu, fifo.
    #[arg(long, default_value = "lru", value_parser = parse::<Policy>)]
    lrp: Policy,
    /// Uplink/downlink, e.g. 5mbit/100mbit.
    #[arg(long, default_value = "5mbit/100mbit", value_parser = parse_network)]
    network: (Rate, Rate),
    /// Gateway storage for layers, e.g. 2gb.
    #[arg(long, default_value = "2gb", value_parser = parse::<Size>)]
    storage: Size,
    /// Placement slot, whole minutes, e.g. 5min.
    #[arg(long, default_value = "5min", value_parser = parse_minutes)]
    slot: u32,
    /// ε of fptas, in (0, 1).
    #[arg(long, default_value_t = 0.4)]
    epsilon: f64,
    /// Knob step of raa, in (0, 1).
    #[arg(long, default_value_t = 0.01)]
    alpha: f64,
    /// Analytics the gateway runs at once.
    #[arg(long, default_value_t = 5)]
    edge_slots: u32,
    /// Extraction speed of downloaded layers, e.g. 400mbit.
    #[arg(long, default_value = "400mbit", value_parser = parse::<Rate>)]
    extract_rate: Rate,
    /// Storage high watermark: eviction starts above it.
    #[arg(long, default_value = "80%", value_parser = parse_percent)]
    high_watermark: f64,
    /// Storage low watermark: eviction frees down to it.
    #[arg(long, default_value = "60%", value_parser = parse_percent)]
    low_watermark: f64,
    /// Minutes to simulate (default: until the last request departs).
    #[arg(long)]
    minutes: Option<u32>,
    /// Request trace (`app, arrival_min, lifetime_min` lines); default: generate one.
    #[arg(long)]
    requests: Option<PathBuf>,
    #[command(flatten)]
    generate: GenerateArgs,
    #[command(flatten)]
    scenario: ScenarioArgs,
    /// Directory for the per-minute CSV and SVG of each combination.
    #[arg(long, default_value = "simulation")]
    out: PathBuf,
}

/// How to draw a request trace.
#[derive(Debug, Args)]
pub struct GenerateArgs {
    /// Mean requests per minute (Poisson).
    #[arg(long, default_value_t = 1.0)]
    per_minute: f64,
    /// Shortest lifetime, minutes.
    #[arg(long, default_value_t = 1)]
    lifetime_min: u32,
    /// Longest lifetime, minutes.
    #[arg(long, default_value_t = 10)]
    lifetime_max: u32,
    /// Minutes with arrivals.
    #[arg(long, default_value_t = 40)]
    arrival_minutes: u32,
    /// App mix as app=weight pairs, e.g. yolo-v3=2,audio-yamnet=1 (default: every app of the
    /// scenario equally).
    #[arg(long)]
    mix: Option<String>,
    /// Random seed.
    #[arg(long, default_value_t = 1)]
    seed: u64,
}

/// The gateway's apps and the models they refer to.
#[derive(Debug, Args)]
pub struct ScenarioArgs {
    /// Gateway scenario: apps and image layers (TOML; default: the built-in one).
    #[arg(long)]
    scenario: Option<PathBuf>,
    /// Analytic models (TOML; default: the built-in models).
    #[arg(long)]
    models: Option<PathBuf>,
}

impl ScenarioArgs {
    fn load(&self) -> Result<(ModelSet, Scenario)> {
        let models = load_models(self.models.as_deref())?;
        let scenario = match &self.scenario {
            None => Scenario::builtin(),
            Some(path) => Scenario::from_toml(
                &read(path, "scenario")?,
                &path.display().to_string(),
                &models,
            )?,
        };
        Ok((models, scenario))
    }
}

/// `qoelab requests`: write a seeded request trace.
#[derive(Debug, Args)]
pub struct RequestsArgs {
    #[command(flatten)]
    generate: GenerateArgs,
    #[command(flatten)]
    scenario: ScenarioArgs,
    /// Output file (default: standard output).
    #[arg(long)]
    out: Option<PathBuf>,
}

/// Parses any of our value types for clap, keeping their error message (field, value, accepted
/// forms).
pub(crate) fn parse<T: std::str::FromStr<Err: std::fmt::Display>>(text: &str) -> Result<T, String> {
    text.parse().map_err(|e: T::Err| e.to_string())
}

fn parse_percent(text: &str) -> Result<f64, String> {
    qoelab_units::parse_percent(text).map_err(|e| e.to_string())
}

fn parse_network(text: &str) -> Result<(Rate, Rate), String> {
    let Some((up, down)) = text.split_once('/') else {
        return Err(format!(
            "'{text}' is not upload/download: write two rates separated by '/', e.g. 5mbit/100mbit"
        ));
    };
    Ok((parse(up.trim())?, parse(down.trim())?))
}

fn parse_minutes(text: &str) -> Result<u32, String> {
    let duration = qoelab_units::parse_duration(text).map_err(|e| e.to_string())?;
    let seconds = duration.as_secs();
    if duration.subsec_nanos() != 0 || seconds == 0 || !seconds.is_multiple_of(60) {
        return Err(format!(
            "'{text}' is not a whole number of minutes ≥ 1, e.g. 5min"
        ));
    }
    u32::try_from(seconds / 60).map_err(|_| format!("'{text}' is too long"))
}

/// Parses a comma list of names, or `all`.
fn parse_list<T: Copy + std::str::FromStr<Err = qoelab_planner::PlanError>>(
    text: &str,
    all: &[T],
) -> Result<Vec<T>> {
    if text.trim() == "all" {
        return Ok(all.to_vec());
    }
    text.split(',')
        .map(|name| name.parse().map_err(anyhow::Error::from))
        .collect()
}

fn read(path: &Path, what: &str) -> Result<String> {
    std::fs::read_to_string(path).with_context(|| format!("reading the {what} {}", path.display()))
}

fn load_models(path: Option<&Path>) -> Result<ModelSet> {
    match path {
        None => Ok(ModelSet::builtin()),
        Some(path) => Ok(ModelSet::from_toml(&read(path, "models file")?)
            .with_context(|| format!("in {}", path.display()))?),
    }
}

/// Runs `qoelab allocate`.
pub fn allocate(args: AllocateArgs) -> Result<()> {
    let models = load_models(args.models.as_deref())?;
    let options = Options {
        alpha: args.alpha,
        ..Options::default()
    };
    let plan_options = PlanOptions {
        match_by: args.match_by,
        borrow: args.borrow,
    };
    if args.watch.watch {
        let allocator = super::watch::Allocator {
            budget: args.budget,
            analytics: args.analytics.as_deref(),
            algorithm: args.algorithm,
            options,
            plan_options,
            models,
        };
        return super::watch::run(&args.watch, allocator);
    }
    let path = args
        .analytics
        .as_ref()
        .expect("clap requires --analytics without --watch");
    let analytics = parse_analytics(
        &read(path, "analytics file")?,
        &path.display().to_string(),
        &models,
    )?;
    let problem = Problem::new(args.budget.bps(), analytics)?;
    let allocation = allocate::allocate(&problem, args.algorithm, &options)?;
    let plan = if args.plan {
        Some(shaping_plan(
            &allocation,
            problem.analytics(),
            plan_options,
        )?)
    } else {
        None
    };
    let comparison = if args.compare {
        Some(compare(&problem, &options)?)
    } else {
        None
    };
    if args.json {
        let out = serde_json::json!({
            "allocation": allocation,
            "plan": plan,
            "comparison": comparison.as_ref().map(|c| c.iter().map(|(a, us)| {
                serde_json::json!({ "allocation": a, "elapsed_us": us })
            }).collect::<Vec<_>>()),
        });
        println!("{}", serde_json::to_string_pretty(&out)?);
        return Ok(());
    }
    print!("{}", allocation_table(&allocation));
    if let Some(plan) = plan {
        println!(
            "\nshaping plan (budget {}):",
            Rate::from_bps(plan.budget_bps)
        );
        let mut table = Table::new(&["class", "rate", "ceil", "matches"]);
        for c in &plan.classes {
            table.row(vec![
                c.analytic.clone(),
                Rate::from_bps(c.rate_bps).to_string(),
                Rate::from_bps(c.ceil_bps).to_string(),
                match c.matches {
                    qoelab_planner::shaping::Match::Port(p) => format!("dport {p}"),
                    qoelab_planner::shaping::Match::Address(a) => format!("src {a}"),
                },
            ]);
        }
        print!("{}", table.render());
        if !plan.paused.is_empty() {
            println!("paused: {}", plan.paused.join(", "));
        }
    }
    if let Some(comparison) = comparison {
        println!();
        print!("{}", comparison_table(&comparison));
    }
    Ok(())
}

/// The allocation as a table, with its totals and bound below.
pub(crate) fn allocation_table(allocation: &Allocation) -> String {
    let mut table = Table::new(&[
        "analytic",
        "location",
        "weight",
        "admitted",
        "knob",
        "rate",
        "expected QoS",
    ]);
    for s in &allocation.shares {
        table.row(vec![
            s.id.clone(),
            format!("{:?}", s.location).to_lowercase(),
            format!("{}", s.weight),
            if s.admitted { "yes" } else { "no" }.into(),
            if s.admitted {
                format!("{:.3}", s.knob)
            } else {
                "-".into()
            },
            Rate::from_bps(s.rate_bps).to_string(),
            format!("{:.3}", s.expected_qos),
        ]);
    }
    let mut out = table.render();
    out.push_str(&format!(
        "\n{}: {} of {} used; total weighted QoS {:.4} (mean {:.4})\n",
        allocation.algorithm,
        Rate::from_bps(allocation.used_bps),
        Rate::from_bps(allocation.budget_bps),
        allocation.total_weighted_qos,
        allocation.mean_weighted_qos()
    ));
    if let Some(bound) = allocation.bound {
        out.push_str(&format!(
            "upper bound {:.4}: {}\n",
            bound.upper_bound,
            if bound.exact {
                "proven optimal".to_string()
            } else {
                format!(
                    "within {:.3}% of the optimum",
                    100.0 * allocation.gap_to(bound.upper_bound)
                )
            }
        ));
    }
    out
}

/// Every algorithm on the problem, with its run time in µs.
fn compare(problem: &Problem, options: &Options) -> Result<Vec<(Allocation, f64)>> {
    Algorithm::ALL
        .into_iter()
        .map(|algorithm| {
            let started = Instant::now();
            let allocation = allocate::allocate(problem, algorithm, options)?;
            Ok((allocation, started.elapsed().as_secs_f64() * 1e6))
        })
        .collect()
}

fn comparison_table(comparison: &[(Allocation, f64)]) -> String {
    let optimal = comparison
        .iter()
        .find(|(a, _)| a.algorithm == Algorithm::Optimal)
        .map(|(a, _)| a.total_weighted_qos)
        .unwrap_or(0.0);
    let mut table = Table::new(&[
        "algorithm",
        "weighted QoS",
        "admitted",
        "used",
        "gap to optimal",
        "time",
    ]);
    for (a, us) in comparison {
        table.row(vec![
            a.algorithm.to_string(),
            format!("{:.4}", a.total_weighted_qos),
            format!(
                "{}/{}",
                a.shares.iter().filter(|s| s.admitted).count(),
                a.shares.len()
            ),
            Rate::from_bps(a.used_bps).to_string(),
            format!("{:.3}%", 100.0 * a.gap_to(optimal)),
            format!("{us:.0} µs"),
        ]);
    }
    table.render()
}

impl GenerateArgs {
    fn trace(&self, scenario: &Scenario) -> Result<Vec<Request>> {
        let mix = match &self.mix {
            None => scenario
                .apps
                .iter()
                .map(|a| (a.name.clone(), 1.0))
                .collect(),
            Some(text) => parse_mix(text, scenario)?,
        };
        Ok(requests::generate(&Spec {
            per_minute: self.per_minute,
            lifetime_min: self.lifetime_min,
            lifetime_max: self.lifetime_max,
            minutes: self.arrival_minutes,
            mix,
            seed: self.seed,
        })?)
    }
}

fn parse_mix(text: &str, scenario: &Scenario) -> Result<Vec<(String, f64)>> {
    text.split(',')
        .map(|pair| {
            let Some((app, weight)) = pair.split_once('=') else {
                bail!("--mix '{pair}' is not app=weight, e.g. yolo-v3=2");
            };
            let app = scenario.app(app.trim())?.1.name.clone();
            let weight: f64 = weight
                .trim()
                .parse()
                .with_context(|| format!("--mix weight of '{app}' = '{weight}' is not a number"))?;
            Ok((app, weight))
        })
        .collect()
}

/// Runs `qoelab requests`.
pub fn requests(args: RequestsArgs) -> Result<()> {
    let (_, scenario) = args.scenario.load()?;
    let text = requests::format(&args.generate.trace(&scenario)?);
    match args.out {
        None => print!("{text}"),
        Some(path) => {
            std::fs::write(&path, text).with_context(|| format!("writing {}", path.display()))?
        }
    }
    Ok(())
}

/// Runs `qoelab simulate`.
pub fn simulate(args: SimulateArgs) -> Result<()> {
    let (models, scenario) = args.scenario.load()?;
    let trace = match &args.requests {
        Some(path) => requests::parse(&read(path, "request trace")?, &path.display().to_string())?,
        None => args.generate.trace(&scenario)?,
    };
    let idas = parse_list(&args.ida, &Method::ALL)?;
    let raas = parse_list(&args.raa, &Algorithm::ALL)?;
    let (upload, download) = args.network;
    let base = Config {
        ida: idas[0],
        epsilon: args.epsilon,
        raa: raas[0],
        options: Options {
            alpha: args.alpha,
            ..Options::default()
        },
        lrp: args.lrp,
        watermarks: Watermarks {
            high: args.high_watermark,
            low: args.low_watermark,
        },
        upload_bps: upload.bps(),
        download_bps: download.bps(),
        storage_bytes: args.storage.bytes(),
        slot_min: args.slot,
        edge_slots: args.edge_slots,
        extract_bytes_per_s: args.extract_rate.bytes_per_sec(),
        minutes: args.minutes,
    };
    std::fs::create_dir_all(&args.out)
        .with_context(|| format!("creating {}", args.out.display()))?;
    let combinations: Vec<(Algorithm, Method)> = raas
        .iter()
        .flat_map(|&raa| idas.iter().map(move |&ida| (raa, ida)))
        .collect();
    let progress = ProgressBar::new(combinations.len() as u64);
    progress.set_style(
        ProgressStyle::with_template("{bar:30} {pos}/{len} {msg}")
            .expect("the progress template is valid"),
    );
    let mut reports = Vec::new();
    for (raa, ida) in combinations {
        progress.set_message(format!("{raa} × {ida}"));
        let config = Config {
            raa,
            ida,
            ..base.clone()
        };
        let report = simulate::run(&scenario, &models, &trace, &config)?;
        write_outputs(&args.out, &report, trace.len())?;
        reports.push(report);
        progress.inc(1);
    }
    progress.finish_and_clear();
    println!(
        "{} requests over {} minutes, network {}/{}, storage {:.2} GB, slot {} min, \
         replacement {}\n",
        trace.len(),
        reports.first().map_or(0, |r| r.rows.len()),
        upload,
        download,
        args.storage.bytes() as f64 / 1e9,
        args.slot,
        args.lrp
    );
    print!("{}", summary_table(&reports));
    println!("\nper-minute CSV and SVG in {}", args.out.display());
    Ok(())
}

fn stem(config: &Config) -> String {
    format!("{}_{}_{}", config.raa, config.ida, config.lrp)
}

fn write_outputs(dir: &Path, report: &Report, requests: usize) -> Result<()> {
    let stem = stem(&report.config);
    let csv = dir.join(format!("{stem}.csv"));
    std::fs::write(&csv, report.csv()).with_context(|| format!("writing {}", csv.display()))?;
    let title = format!(
        "{} allocation × {} placement × {} replacement, {requests} requests",
        report.config.raa, report.config.ida, report.config.lrp
    );
    let svg = dir.join(format!("{stem}.svg"));
    std::fs::write(&svg, plot::svg(report, &title))
        .with_context(|| format!("writing {}", svg.display()))?;
    Ok(())
}

fn summary_table(reports: &[Report]) -> String {
    let mut table = Table::new(&[
        "raa",
        "ida",
        "weighted QoS",
        "saved upload",
        "edge share",
        "downloaded",
        "evicted",
        "allocate",
        "place",
    ]);
    for r in reports {
        let s = &r.summary;
        table.row(vec![
            r.config.raa.to_string(),
            r.config.ida.to_string(),
            format!("{:.4}", s.mean_weighted_qos),
            format!("{:.1} kbit/s", s.mean_saved_bps / 1000.0),
            format!("{:.1}%", 100.0 * s.edge_share),
            format!("{:.0} MB", s.download_bytes as f64 / 1e6),
            format!("{:.0} MB", s.evicted_bytes as f64 / 1e6),
            format!("{:.0} µs", s.mean_allocate_us),
            format!("{:.0} µs", s.mean_place_us),
        ]);
    }
    table.render()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn network_is_upload_slash_download() {
        let (up, down) = parse_network("5mbit/100mbit").unwrap();
        assert_eq!((up.bps(), down.bps()), (5_000_000, 100_000_000));
        let err = parse_network("5mbit").unwrap_err();
        assert!(err.contains("e.g. 5mbit/100mbit"), "{err}");
        let err = parse_network("5Mbps/100mbit").unwrap_err();
        assert!(err.contains("ambiguous"), "{err}");
    }

    #[test]
    fn slots_are_whole_minutes() {
        assert_eq!(parse_minutes("5min").unwrap(), 5);
        assert_eq!(parse_minutes("120s").unwrap(), 2);
        for bad in ["90s", "0min", "5"] {
            assert!(parse_minutes(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn lists_take_names_or_all() {
        assert_eq!(parse_list("all", &Method::ALL).unwrap(), Method::ALL);
        assert_eq!(
            parse_list("raa,optimal", &Algorithm::ALL).unwrap(),
            [Algorithm::Raa, Algorithm::Optimal]
        );
        let err = parse_list("raa,best", &Algorithm::ALL)
            .unwrap_err()
            .to_string();
        assert!(err.contains("'best'"), "{err}");
    }

    #[test]
    fn mixes_name_apps_of_the_scenario() {
        let scenario = Scenario::builtin();
        let mix = parse_mix("yolo-v3=2, audio-yamnet=1", &scenario).unwrap();
        assert_eq!(
            mix,
            [
                ("yolo-v3".to_string(), 2.0),
                ("audio-yamnet".to_string(), 1.0)
            ]
        );
        assert!(parse_mix("lidar=1", &scenario).is_err());
        assert!(parse_mix("yolo-v3", &scenario).is_err());
    }
}
