//! Shaping benchmarks in a real lab, side by side with iproute2's `tc` (run as root):
//!
//! - `rates`: 200 HTB class rate changes on the lab router's uplink, timed for the shaper
//!   called in-process, for the agent over its Unix socket (HTTP PATCH), for one `tc -batch`
//!   file (classes only, and classes plus their queues, which is what the shaper changes), and
//!   for 200 `tc` processes; medians over rounds, ratios against `tc -batch`.
//! - `accuracy`: one class at 1, 10, 100 Mbit/s and 1 Gbit/s with TCP through the router;
//!   frame rate from the class's byte counter over 3 s, against the configured rate.
//!
//! `bench/shaper.sh [rates|accuracy] [--rounds N] [--process-rounds N]` runs it.

#[path = "../../shaper/tests/common/mod.rs"]
mod common;

use std::collections::BTreeMap;
use std::io::Write;
use std::net::SocketAddr;
use std::path::Path;
use std::process::Command;
use std::sync::Arc;
use std::time::{Duration, Instant};

use qoelab_agent::client::AgentClient;
use qoelab_agent::server::{self, AgentState};
use qoelab_lab::{Lab, NetNs, standard};
use qoelab_shaper::{Direction, IfaceRef, InterfacePlan, RateChange, RateChanges, Shaper};
use qoelab_units::Rate;

/// Classes changed per round.
const CLASSES: usize = 200;

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let flag = |name: &str, default: usize| {
        args.iter()
            .position(|a| a == name)
            .and_then(|i| args.get(i + 1))
            .map(|v| v.parse().expect("a number"))
            .unwrap_or(default)
    };
    let rounds = flag("--rounds", 21);
    let process_rounds = flag("--process-rounds", 5);
    let which: Vec<&str> = ["rates", "accuracy"]
        .into_iter()
        .filter(|w| args.iter().any(|a| a == w))
        .collect();
    let all = which.is_empty();
    println!("load before: {}", load());
    if all || which.contains(&"rates") {
        rates(rounds, process_rounds);
    }
    if all || which.contains(&"accuracy") {
        accuracy();
    }
    println!("load after: {}", load());
}

/// The load averages and the number of CPUs, as `uptime` would say.
fn load() -> String {
    let avg = std::fs::read_to_string("/proc/loadavg").unwrap_or_default();
    let cpus = std::thread::available_parallelism().map_or(0, |n| n.get());
    let fields: Vec<&str> = avg.split_whitespace().take(3).collect();
    format!("load average {} on {cpus} CPUs", fields.join(", "))
}

fn uplink(lab: &Lab) -> IfaceRef {
    IfaceRef::new(Some(lab.router().unwrap().name()), &lab.uplink())
}

fn class_name(i: usize) -> String {
    format!("a{i:03}")
}

/// A plan of `CLASSES` UDP classes at `rate_bps` each, on a 10 Gbit/s link.
fn many_classes(rate_bps: u64) -> InterfacePlan {
    let classes: Vec<String> = (0..CLASSES)
        .map(|i| {
            format!(
                r#"{{"name": "{}", "rate_bps": {rate_bps}, "match": {{"protocol": "udp", "dst_port": {}}}}}"#,
                class_name(i),
                20_000 + i
            )
        })
        .collect();
    serde_json::from_str(&format!(
        r#"{{"egress": {{"rate_bps": "10gbit", "default": {{"rate_bps": "1mbit", "ceil_bps": "1gbit"}},
            "classes": [{}]}}}}"#,
        classes.join(",")
    ))
    .unwrap()
}

/// Rates of the `set`-th of six rate sets: every class gets a distinct rate, and no two sets
/// share one, so each timed step changes all 200 classes.
fn rate_of(set: usize, class: usize) -> u64 {
    1_000_000 + (set * CLASSES + class) as u64 * 1000
}

fn changes(set: usize) -> RateChanges {
    RateChanges {
        egress: (0..CLASSES)
            .map(|i| {
                let change = RateChange {
                    rate_bps: Rate::from_bps(rate_of(set, i)),
                    ceil_bps: Some(Rate::from_bps(rate_of(set, i))),
                };
                (class_name(i), change)
            })
            .collect(),
        ..RateChanges::default()
    }
}

/// Checks the kernel now has the rates of `set` on every class.
fn assert_rates(shaper: &Shaper, iface: &IfaceRef, set: usize, method: &str) {
    let stats = shaper.stats(iface).unwrap();
    for i in 0..CLASSES {
        let class = stats.class(Direction::Egress, &class_name(i)).unwrap();
        assert_eq!(
            (class.rate_bps, class.ceil_bps),
            (rate_of(set, i), rate_of(set, i)),
            "{method} left class {} at the wrong rate",
            class.name
        );
    }
}

/// The `tc` command lines that set the rates of `set`: class changes, and with `queues` the
/// byte fifo of each class resized to 100 ms of its rate as the shaper does.
fn tc_lines(
    dev: &str,
    classids: &BTreeMap<String, String>,
    set: usize,
    queues: bool,
) -> Vec<String> {
    let mut lines = Vec::new();
    for i in 0..CLASSES {
        let classid = &classids[&class_name(i)];
        let rate = rate_of(set, i);
        let quantum = (rate / 8 / 10).clamp(1600, 200_000);
        lines.push(format!(
            "class change dev {dev} parent 7100:1 classid {classid} htb rate {rate}bit ceil {rate}bit burst 1600b cburst 1600b quantum {quantum}"
        ));
        if queues {
            let minor = u16::from_str_radix(classid.split(':').nth(1).unwrap(), 16).unwrap();
            lines.push(format!(
                "qdisc change dev {dev} parent {classid} handle {:x}: bfifo limit {}",
                0x7200 + minor,
                (rate / 8 / 10).max(3028)
            ));
        }
    }
    lines
}

/// `tc ARGS` inside `ns`, which must succeed.
fn tc(ns: &NetNs, args: &[&str]) {
    let mut command = Command::new("tc");
    command.args(args);
    ns.prepare(&mut command);
    let output = command.output().expect("run tc");
    assert!(
        output.status.success(),
        "tc {args:?}: {}",
        String::from_utf8_lossy(&output.stderr)
    );
}

fn tc_batch(ns: &NetNs, file: &Path, lines: &[String]) -> Duration {
    std::fs::File::create(file)
        .and_then(|mut f| f.write_all((lines.join("\n") + "\n").as_bytes()))
        .unwrap();
    let start = Instant::now();
    tc(ns, &["-batch", file.to_str().unwrap()]);
    start.elapsed()
}

fn tc_processes(ns: &NetNs, lines: &[String]) -> Duration {
    let start = Instant::now();
    for line in lines {
        let args: Vec<&str> = line.split_whitespace().collect();
        tc(ns, &args);
    }
    start.elapsed()
}

fn median(samples: &mut [Duration]) -> Duration {
    samples.sort();
    samples[samples.len() / 2]
}

fn ms(d: Duration) -> String {
    format!("{:.3}", d.as_secs_f64() * 1000.0)
}

fn rates(rounds: usize, process_rounds: usize) {
    let lab = Lab::standard(None).unwrap();
    let state = tempfile::tempdir().unwrap();
    let shaper = Arc::new(Shaper::open(&state.path().join("state")).unwrap());
    let iface = uplink(&lab);
    let router = lab.router().unwrap();
    let dev = lab.uplink();
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let socket = state.path().join("agent.sock");
    let listener = runtime
        .block_on(async { tokio::net::UnixListener::bind(&socket) })
        .unwrap();
    let agent_state = AgentState {
        shaper: shaper.clone(),
        allowed_gid: None,
        capabilities: Vec::new(),
        captures: Default::default(),
    };
    runtime.spawn(server::serve(listener, agent_state, std::future::pending()));
    let client = AgentClient::new(&socket);

    let created = shaper.apply(&iface, many_classes(1_000_000)).unwrap();
    println!(
        "\n== 200 class rate changes on {dev} (lab router), {rounds} rounds ({process_rounds} for 200 tc processes)"
    );
    println!("set-up: {} objects created", created.created);
    let classids: BTreeMap<String, String> = shaper
        .stats(&iface)
        .unwrap()
        .directions
        .iter()
        .flat_map(|d| {
            d.classes
                .iter()
                .map(|c| (c.name.clone(), c.classid.clone()))
        })
        .collect();
    let batch_file = state.path().join("rates.batch");

    let mut library = Vec::new();
    let mut agent = Vec::new();
    let mut batch = Vec::new();
    let mut batch_queues = Vec::new();
    let mut processes = Vec::new();
    let mut http_alone = Vec::new();
    let mut full_path = Vec::new();
    let mut sent = 0;
    // Sets 0 and 1 alternate for rate changes, 2 and 3 for tc, 4 and 5 for whole plans, so every
    // step changes every class.
    for round in 0..rounds {
        let ours = round % 2;
        let theirs = 2 + round % 2;

        let start = Instant::now();
        let report = shaper.set_rates(&iface, &changes(ours)).unwrap();
        library.push(start.elapsed());
        sent = report.requests();
        assert_rates(&shaper, &iface, ours, "the shaper");

        let lines = tc_lines(&dev, &classids, theirs, false);
        batch.push(tc_batch(router, &batch_file, &lines));
        assert_rates(&shaper, &iface, theirs, "tc -batch");

        let patch = changes(1 - ours);
        let start = Instant::now();
        runtime.block_on(client.set_rates(&iface, &patch)).unwrap();
        agent.push(start.elapsed());
        assert_rates(&shaper, &iface, 1 - ours, "the agent");

        let lines = tc_lines(&dev, &classids, 5 - theirs, true);
        batch_queues.push(tc_batch(router, &batch_file, &lines));
        assert_rates(&shaper, &iface, 5 - theirs, "tc -batch with queues");

        let start = Instant::now();
        runtime.block_on(client.status()).unwrap();
        http_alone.push(start.elapsed());

        // The full path for comparison: a whole plan with new rates, diffed against dumps.
        let mut plan = shaper.plan(&iface).unwrap();
        plan.set_rates(&changes(4 + round % 2)).unwrap();
        let start = Instant::now();
        shaper.apply(&iface, plan).unwrap();
        full_path.push(start.elapsed());
        assert_rates(&shaper, &iface, 4 + round % 2, "a whole plan");

        if round < process_rounds {
            let lines = tc_lines(&dev, &classids, theirs, false);
            processes.push(tc_processes(router, &lines));
            assert_rates(&shaper, &iface, theirs, "200 tc processes");
        }
    }
    shaper.restore(&iface).unwrap();

    let batch_median = median(&mut batch);
    let processes_median = median(&mut processes);
    let rows: [(&str, &mut Vec<Duration>); 7] = [
        ("qoelab shaper (in-process set_rates)", &mut library),
        (
            "qoelab shaper, whole plan (reads the kernel)",
            &mut full_path,
        ),
        ("qoelab agent (PATCH over its Unix socket)", &mut agent),
        (
            "agent GET /v1/status (HTTP round trip alone)",
            &mut http_alone,
        ),
        ("tc -batch, 200 class changes", &mut batch),
        (
            "tc -batch, 200 class + 200 queue changes",
            &mut batch_queues,
        ),
        ("200 tc processes (class changes)", &mut processes),
    ];
    println!("the shaper sends {sent} requests per round (each class and its byte fifo)");
    println!(
        "{:<46} {:>5} {:>10} {:>8} {:>8} {:>12} {:>10}",
        "method", "runs", "median ms", "min ms", "max ms", "vs tc -batch", "vs 200 tc"
    );
    for (name, samples) in rows {
        let med = median(samples);
        let times = |anchor: Duration| anchor.as_secs_f64() / med.as_secs_f64();
        println!(
            "{name:<46} {:>5} {:>10} {:>8} {:>8} {:>11.1}x {:>9.0}x",
            samples.len(),
            ms(med),
            ms(samples[0]),
            ms(samples[samples.len() - 1]),
            times(batch_median),
            times(processes_median),
        );
    }
    println!("(vs X: X's median divided by this row's median; above 1 means faster than X)");
}

fn accuracy() {
    println!("\n== rate accuracy: one class, TCP through the lab router, frame bytes over 3 s");
    println!("(offered: what the senders got to the router, bit/s of frames)");
    println!(
        "{:>10} {:>8} {:>14} {:>14} {:>9} {:>12} {:>8}",
        "rate", "streams", "offered", "measured bit/s", "of rate", "overlimits", "drops"
    );
    for rate_bps in [1_000_000u64, 10_000_000, 100_000_000, 1_000_000_000] {
        for _ in 0..3 {
            accuracy_run(rate_bps);
        }
    }
}

/// Bytes received by `dev` inside `ns` (its link counters: frames with their Ethernet header).
fn rx_bytes(ns: &NetNs, dev: &str) -> u64 {
    let mut command = Command::new("ip");
    command.args(["-j", "-s", "link", "show", "dev", dev]);
    ns.prepare(&mut command);
    let output = command.output().expect("run ip");
    let links: serde_json::Value = serde_json::from_slice(&output.stdout).expect("ip -j output");
    links[0]["stats64"]["rx"]["bytes"]
        .as_u64()
        .expect("rx bytes")
}

fn accuracy_run(rate_bps: u64) {
    let lab = Lab::standard(None).unwrap();
    let state = tempfile::tempdir().unwrap();
    let shaper = Shaper::open(state.path()).unwrap();
    let iface = uplink(&lab);
    let plan: InterfacePlan = serde_json::from_str(&format!(
        r#"{{"egress": {{"rate_bps": "10gbit", "default": {{"rate_bps": "1mbit"}},
            "classes": [{{"name": "flow", "rate_bps": {rate_bps},
                          "match": {{"protocol": "tcp", "dst_port": 5001}}}}]}}}}"#
    ))
    .unwrap();
    shaper.apply(&iface, plan).unwrap();
    let streams = if rate_bps >= 1_000_000_000 { 4 } else { 1 };
    let to = SocketAddr::new(standard::SERVER_ADDR.into(), 5001);
    let deadline = Instant::now() + Duration::from_secs(6);
    let sink = common::tcp_sink(lab.server().unwrap(), to, deadline);
    let senders: Vec<_> = (0..streams)
        .map(|_| common::tcp_sender(lab.client().unwrap(), to, deadline))
        .collect();
    // TCP's start-up (BBR's bandwidth probe, or slow start) settles within ~10 round trips.
    std::thread::sleep(Duration::from_secs(2));
    let router = lab.router().unwrap();
    let lan = lab.downlink();
    let (offered_before, before) = (rx_bytes(router, &lan), shaper.stats(&iface).unwrap());
    let start = Instant::now();
    std::thread::sleep(Duration::from_secs(3));
    let (offered_after, after) = (rx_bytes(router, &lan), shaper.stats(&iface).unwrap());
    let elapsed = start.elapsed();
    for sender in senders {
        sender.join().unwrap().unwrap();
    }
    sink.join().unwrap().unwrap();
    let stats = after.with_rates_since(&before, elapsed);
    let class = stats.class(Direction::Egress, "flow").unwrap();
    let earlier = before.class(Direction::Egress, "flow").unwrap();
    let measured = class.measured_bps.unwrap_or(0);
    let offered = (offered_after - offered_before) as f64 * 8.0 / elapsed.as_secs_f64();
    // Below the rate, the class cannot be full: the senders (or the CPU) are the limit.
    let note = if offered < rate_bps as f64 * 0.99 {
        "  offered < rate"
    } else {
        ""
    };
    println!(
        "{:>10} {streams:>8} {offered:>14.0} {measured:>14} {:>8.2}% {:>12} {:>8}{note}",
        Rate::from_bps(rate_bps).to_string(),
        measured as f64 * 100.0 / rate_bps as f64,
        class.counters.overlimits - earlier.counters.overlimits,
        class.counters.drops - earlier.counters.drops,
    );
    shaper.restore(&iface).unwrap();
}
