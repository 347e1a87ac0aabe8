//! Correlation: one feature row per session from its flows, its time series, its network
//! profile and its application report. Column meanings are documented in `COLUMNS.md`.
//!
//! Flow columns are aggregated by their name, so any statistic the capture adds is carried
//! over without code here: `*_min` → minimum over flows, `*_max` → maximum, `*_avg`, `*_mean`
//! and `*_std` → mean weighted by the flows' bytes in that direction, everything else (counts,
//! bytes, packets) → sum; times within a flow (`*_first_*` → earliest, `*_last_*` → latest),
//! `duration_s`, `mss_bytes` and `win_scale` → maximum; `rtt_handshake_ms` → plain mean over
//! the flows that have one; flags (true/false) → the share of flows where they hold. Identity
//! and absolute-time columns of a flow are not features.
//!
//! An IoT session's record gives each analytic the match rule of its flows (TCP to its own
//! sink port): the flows matching it are aggregated again into that analytic's `an_<name>_…`
//! columns, next to its QoS labels.

use std::collections::{BTreeMap, HashMap};
use std::net::SocketAddr;

use qoelab_shaper::classify::{Match, Protocol};
use serde::Deserialize;
use serde_json::{Map, Value};

use crate::session::{Bin, Results, Session};
use crate::workloads::AnalyticRecord;

/// Flow columns that identify a flow or place it in time; they are not aggregated.
const NOT_FEATURES: [&str; 8] = [
    "protocol",
    "client_ip",
    "client_port",
    "server_ip",
    "server_port",
    "flow_id",
    "ip_version",
    "close_reason",
];

/// Flow columns aggregated by their maximum although their names carry no `_max`.
const MAX_COLUMNS: [&str; 3] = ["duration_s", "mss_bytes", "win_scale"];

/// Flow columns aggregated by their plain mean over the flows that have a value: one sample
/// per flow, which neither sums nor weighs by bytes meaningfully.
const MEAN_COLUMNS: [&str; 1] = ["rtt_handshake_ms"];

/// Flow columns aggregated again per analytic of an IoT session (the uploads are client to
/// server), as `an_<name>_<column>`.
pub const ANALYTIC_COLUMNS: [&str; 3] = ["c2s_ip_bytes", "c2s_retx_pkts", "c2s_rtt_avg_ms"];

/// Fields of an application record that describe the session rather than its quality.
const NOT_LABELS: [&str; 4] = ["schema", "session", "server", "started_unix_ms"];

/// A bin with fewer bytes than this in a direction counts as idle (at most two full frames:
/// acknowledgements and keep-alives, no payload burst).
pub const IDLE_BYTES: u64 = 3000;

/// The numeric value of `key` in a flow record (booleans count as 0/1).
pub fn number(flow: &Map<String, Value>, key: &str) -> Option<f64> {
    match flow.get(key)? {
        Value::Number(n) => n.as_f64(),
        Value::Bool(b) => Some(f64::from(u8::from(*b))),
        _ => None,
    }
}

/// Absolute times (seconds or ms since the Unix epoch) place a flow in time; not features.
fn is_time_column(name: &str) -> bool {
    name.ends_with("_unix_s") || name.ends_with("_unix_ms")
}

enum Rule {
    Min,
    Max,
    Mean,
    WeightedMean,
    Share,
    Sum,
}

/// How flow column `name` (a flag if `flag`) becomes a session feature, in words; `None` for
/// columns that are not features.
pub fn aggregation_of(name: &str, flag: bool) -> Option<&'static str> {
    if NOT_FEATURES.contains(&name) || is_time_column(name) {
        return None;
    }
    Some(match rule_for(name, flag) {
        Rule::Min => "Minimum over flows",
        Rule::Max => "Maximum over flows",
        Rule::Mean => "Mean over the flows that have one",
        Rule::WeightedMean => "Byte-weighted mean over flows",
        Rule::Share => "Share of flows where it holds",
        Rule::Sum => "Sum over flows",
    })
}

fn rule_for(name: &str, flag: bool) -> Rule {
    let bare = name
        .strip_prefix("c2s_")
        .or_else(|| name.strip_prefix("s2c_"))
        .unwrap_or(name);
    if flag {
        Rule::Share
    } else if bare.starts_with("first_") || name.contains("_first_") {
        Rule::Min
    } else if bare.starts_with("last_") || name.contains("_last_") || MAX_COLUMNS.contains(&bare) {
        Rule::Max
    } else if MEAN_COLUMNS.contains(&bare) {
        Rule::Mean
    } else if name.ends_with("_min") || name.contains("_min_") {
        Rule::Min
    } else if name.ends_with("_max") || name.contains("_max_") {
        Rule::Max
    } else if ["_avg", "_mean", "_std"]
        .iter()
        .any(|s| name.ends_with(s) || name.contains(&format!("{s}_")))
    {
        Rule::WeightedMean
    } else {
        Rule::Sum
    }
}

/// The weight of a flow's `direction` (`c2s_` or `s2c_`) in byte-weighted means: its IP bytes,
/// at least 1 so that flows without payload still count.
fn weight_of(flow: &Map<String, Value>, direction: &str) -> f64 {
    number(flow, &format!("{direction}ip_bytes"))
        .unwrap_or(0.0)
        .max(1.0)
}

/// The feature row of a finished session.
pub fn feature_row(session: &Session, results: &Results) -> BTreeMap<String, Value> {
    let mut row = BTreeMap::new();
    row.insert("session_id".into(), session.id.into());
    row.insert("campaign_id".into(), session.campaign_id.into());
    row.insert("seq".into(), session.seq.into());
    row.insert(
        "ctx_rate_bps".into(),
        session.profile.rate_bps.map_or(Value::Null, Value::from),
    );
    row.insert(
        "ctx_delay_ms".into(),
        session.profile.delay_ms.map_or(Value::Null, Value::from),
    );
    row.insert(
        "ctx_loss".into(),
        session.profile.loss.map_or(Value::Null, Value::from),
    );
    row.insert("ctx_workload".into(), session.workload.clone().into());
    aggregate_flows(&results.flows, &mut row);
    // Warm-up bins are left out: the series describe the measured part of the session.
    let start_ms = results.series.iter().map(|b| b.start_ms).min().unwrap_or(0);
    let measured_from = start_ms + results.warmup_ms as i64;
    let capture_bins: Vec<&Bin> = results
        .series
        .iter()
        .filter(|b| b.flow_idx.is_none() && b.start_ms >= measured_from)
        .collect();
    series_features(&capture_bins, results.bin_ms.max(1), &mut row);
    if let Some(Value::Object(record)) = &results.application {
        attribute_flows(&results.flows, record, &mut row);
        for (key, value) in record {
            if NOT_LABELS.contains(&key.as_str()) {
                continue;
            }
            let value = match value {
                Value::Bool(b) => Value::from(u8::from(*b)),
                Value::Number(_) | Value::String(_) | Value::Null => value.clone(),
                _ => continue,
            };
            row.insert(format!("label_{key}"), value);
        }
    }
    row
}

/// Running aggregate of one flow column.
struct Acc {
    count: usize,
    flag: bool,
    sum: f64,
    min: f64,
    max: f64,
    weighted: f64,
    weights: f64,
}

impl Acc {
    fn new() -> Acc {
        Acc {
            count: 0,
            flag: false,
            sum: 0.0,
            min: f64::INFINITY,
            max: f64::NEG_INFINITY,
            weighted: 0.0,
            weights: 0.0,
        }
    }

    /// The session feature of column `name` from this aggregate (`null` if undefined).
    fn value(&self, name: &str) -> Value {
        finite(match rule_for(name, self.flag) {
            Rule::Share | Rule::Mean => self.sum / self.count as f64,
            Rule::Min => self.min,
            Rule::Max => self.max,
            Rule::Sum => self.sum,
            Rule::WeightedMean => self.weighted / self.weights,
        })
    }
}

fn aggregate_flows(flows: &[Map<String, Value>], row: &mut BTreeMap<String, Value>) {
    row.insert("flow_count".into(), flows.len().into());
    let count = |proto: &str| {
        flows
            .iter()
            .filter(|f| f.get("protocol").and_then(Value::as_str) == Some(proto))
            .count()
    };
    row.insert("tcp_flow_count".into(), count("tcp").into());
    row.insert("udp_flow_count".into(), count("udp").into());
    for (name, acc) in accumulate(flows) {
        if !(NOT_FEATURES.contains(&name) || is_time_column(name)) {
            row.insert(name.to_string(), acc.value(name));
        }
    }
}

/// The running aggregate of every column of `flows`, in order of first appearance.
fn accumulate<'a>(flows: impl IntoIterator<Item = &'a Map<String, Value>>) -> Vec<(&'a str, Acc)> {
    // One pass over every flow's columns. Flow records mostly share their columns in the same
    // order, so a column is first looked for just after the previous one, then by name.
    let mut accs: Vec<(&str, Acc)> = Vec::new();
    let mut index: HashMap<&str, usize> = HashMap::new();
    for flow in flows {
        let weights = [weight_of(flow, "c2s_"), weight_of(flow, "s2c_")];
        let mut next = 0;
        for (name, value) in flow {
            let (v, flag) = match value {
                Value::Number(n) => (n.as_f64().unwrap_or(f64::NAN), false),
                Value::Bool(b) => (f64::from(u8::from(*b)), true),
                _ => continue,
            };
            let slot = match accs.get(next) {
                Some((n, _)) if *n == name.as_str() => next,
                _ => *index.entry(name.as_str()).or_insert_with(|| {
                    accs.push((name.as_str(), Acc::new()));
                    accs.len() - 1
                }),
            };
            next = slot + 1;
            let acc = &mut accs[slot].1;
            let w = weights[usize::from(name.starts_with("s2c_"))];
            acc.count += 1;
            acc.flag |= flag;
            acc.sum += v;
            acc.min = acc.min.min(v);
            acc.max = acc.max.max(v);
            acc.weighted += v * w;
            acc.weights += w;
        }
    }
    accs
}

/// The name of an analytic in column names: lower case, anything but `a-z`, `0-9` and `_`
/// becoming `_` (`object-detection-0` → `object_detection_0`).
fn column_name(analytic: &str) -> String {
    analytic
        .chars()
        .map(|c| match c.to_ascii_lowercase() {
            c @ ('a'..='z' | '0'..='9') => c,
            _ => '_',
        })
        .collect()
}

/// Whether `flow` (a capture record) matches `rule`, the flow's client being the sender: the
/// rule's `dst` and `dst_port` are the flow's server side.
fn flow_matches(rule: &Match, flow: &Map<String, Value>) -> bool {
    let end = |ip: &str, port: &str| -> Option<SocketAddr> {
        let ip = flow.get(ip)?.as_str()?.parse().ok()?;
        Some(SocketAddr::new(
            ip,
            u16::try_from(flow.get(port)?.as_u64()?).ok()?,
        ))
    };
    let protocol = flow
        .get("protocol")
        .and_then(|p| Protocol::deserialize(p).ok());
    match (
        protocol,
        end("client_ip", "client_port"),
        end("server_ip", "server_port"),
    ) {
        (Some(protocol), Some(client), Some(server)) => rule.matches(protocol, client, server),
        _ => false,
    }
}

/// The per-analytic columns of an IoT session (`record` holds each analytic's report and match
/// rule): each analytic's flows aggregated, its QoS as labels, and the flows of none. A flow
/// matching several rules is the first analytic's. Other records add nothing.
fn attribute_flows(
    flows: &[Map<String, Value>],
    record: &Map<String, Value>,
    row: &mut BTreeMap<String, Value>,
) {
    let Some(Ok(analytics)) = record
        .get("reports")
        .map(Vec::<AnalyticRecord>::deserialize)
    else {
        return;
    };
    let mut attributed = vec![false; flows.len()];
    for analytic in &analytics {
        let mut mine = Vec::new();
        for (flow, taken) in flows.iter().zip(&mut attributed) {
            if !*taken && flow_matches(&analytic.rule, flow) {
                *taken = true;
                mine.push(flow);
            }
        }
        let accs = accumulate(mine.iter().copied());
        let acc = |name: &str| accs.iter().find(|(n, _)| *n == name).map(|(_, a)| a);
        let prefix = format!("an_{}_", column_name(&analytic.report.spec.analytic));
        let mut put = |name: &str, value: Value| row.insert(format!("{prefix}{name}"), value);
        put("flow_count", mine.len().into());
        for name in ANALYTIC_COLUMNS {
            put(name, acc(name).unwrap_or(&Acc::new()).value(name));
        }
        // Over the span of its flows, first packet to last.
        let span_s = match (acc("first_unix_s"), acc("last_unix_s")) {
            (Some(first), Some(last)) => last.max - first.min,
            _ => f64::NAN,
        };
        let bytes = acc("c2s_ip_bytes").map_or(0.0, |a| a.sum);
        put("c2s_throughput_bps", finite(bytes * 8.0 / span_s));
        let report = &analytic.report;
        for (name, value) in [
            ("expected_qos", report.expected_qos),
            ("achieved_qos", report.achieved_qos),
            ("on_time_ratio", report.on_time_ratio),
        ] {
            row.insert(format!("label_{prefix}{name}"), finite(value));
        }
    }
    let unattributed = attributed.iter().filter(|taken| !**taken).count();
    row.insert("unattributed_flow_count".into(), unattributed.into());
}

fn finite(v: f64) -> Value {
    if v.is_finite() {
        Value::from(v)
    } else {
        Value::Null
    }
}

/// Quantile `q` of sorted values, linear between neighbours.
fn quantile(sorted: &[f64], q: f64) -> f64 {
    let pos = q * (sorted.len() - 1) as f64;
    let (lo, hi) = (pos.floor() as usize, pos.ceil() as usize);
    sorted[lo] + (sorted[hi] - sorted[lo]) * (pos - lo as f64)
}

fn series_features(bins: &[&Bin], bin_ms: u64, row: &mut BTreeMap<String, Value>) {
    let seconds = bin_ms as f64 / 1000.0;
    for (dir, bytes_of) in [
        ("c2s", (|b: &Bin| b.c2s_bytes) as fn(&Bin) -> u64),
        ("s2c", |b: &Bin| b.s2c_bytes),
    ] {
        let bytes: Vec<u64> = bins.iter().map(|b| bytes_of(b)).collect();
        let mut rates: Vec<f64> = bytes.iter().map(|b| *b as f64 * 8.0 / seconds).collect();
        let put = |row: &mut BTreeMap<String, Value>, name: &str, v: f64| {
            row.insert(format!("{dir}_{name}"), finite(v));
        };
        if rates.is_empty() {
            for name in [
                "tput_mean_bps",
                "tput_std_bps",
                "tput_p10_bps",
                "tput_p50_bps",
                "tput_p90_bps",
            ] {
                row.insert(format!("{dir}_{name}"), Value::Null);
            }
        } else {
            let mean = rates.iter().sum::<f64>() / rates.len() as f64;
            let var = rates.iter().map(|r| (r - mean).powi(2)).sum::<f64>() / rates.len() as f64;
            rates.sort_by(f64::total_cmp);
            put(row, "tput_mean_bps", mean);
            put(row, "tput_std_bps", var.sqrt());
            put(row, "tput_p10_bps", quantile(&rates, 0.1));
            put(row, "tput_p50_bps", quantile(&rates, 0.5));
            put(row, "tput_p90_bps", quantile(&rates, 0.9));
        }
        // Bursts: maximal runs of non-idle bins; idle gaps: runs of idle bins between them.
        let mut bursts: Vec<(u64, u64)> = Vec::new(); // (bytes, bins)
        let mut gaps: Vec<u64> = Vec::new();
        let (mut run_bytes, mut run_bins, mut idle_run) = (0u64, 0u64, 0u64);
        for &b in &bytes {
            if b >= IDLE_BYTES {
                if idle_run > 0 && !bursts.is_empty() {
                    gaps.push(idle_run);
                }
                idle_run = 0;
                run_bytes += b;
                run_bins += 1;
            } else {
                if run_bins > 0 {
                    bursts.push((run_bytes, run_bins));
                }
                run_bytes = 0;
                run_bins = 0;
                idle_run += 1;
            }
        }
        if run_bins > 0 {
            bursts.push((run_bytes, run_bins));
        }
        let idle_bins = bytes.iter().filter(|b| **b < IDLE_BYTES).count();
        put(
            row,
            "idle_fraction",
            if bytes.is_empty() {
                f64::NAN
            } else {
                idle_bins as f64 / bytes.len() as f64
            },
        );
        put(row, "idle_gap_count", gaps.len() as f64);
        put(
            row,
            "idle_gap_max_s",
            gaps.iter().max().map_or(0.0, |g| *g as f64 * seconds),
        );
        put(row, "burst_count", bursts.len() as f64);
        let burst_mean = |f: fn(&(u64, u64)) -> f64| {
            if bursts.is_empty() {
                f64::NAN
            } else {
                bursts.iter().map(f).sum::<f64>() / bursts.len() as f64
            }
        };
        put(row, "burst_bytes_mean", burst_mean(|b| b.0 as f64));
        put(
            row,
            "burst_bytes_max",
            bursts.iter().map(|b| b.0 as f64).fold(f64::NAN, f64::max),
        );
        put(
            row,
            "burst_duration_mean_s",
            burst_mean(|b| b.1 as f64) * seconds,
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::campaign::{Profile, SessionStatus};
    use serde_json::json;

    fn session() -> Session {
        Session {
            id: 5,
            campaign_id: 2,
            seq: 0,
            profile: Profile {
                rate_bps: Some(1_000_000),
                delay_ms: None,
                loss: None,
            },
            workload: "video/buffer".into(),
            status: SessionStatus::Running,
            attempts: 1,
            started_ms: None,
            finished_ms: None,
            failure: None,
            capture_id: None,
        }
    }

    fn with_flows(flows: impl IntoIterator<Item = Value>) -> Results {
        Results {
            flows: flows
                .into_iter()
                .map(|f| f.as_object().unwrap().clone())
                .collect(),
            ..Results::default()
        }
    }

    fn bin(i: u32, s2c: u64) -> Bin {
        Bin {
            flow_idx: None,
            bin: i,
            start_ms: i64::from(i) * 1000,
            c2s_bytes: 100,
            s2c_bytes: s2c,
            c2s_pkts: 1,
            s2c_pkts: 1,
            c2s_retx: 0,
            s2c_retx: 0,
        }
    }

    #[test]
    fn flows_aggregate_by_column_name() {
        let flows = vec![
            json!({"protocol": "tcp", "client_port": 5000, "sack_permitted": true, "c2s_first_pkt_ms": 3.0, "c2s_ip_bytes": 1000, "s2c_ip_bytes": 9000,
                   "s2c_rtt_min_ms": 10.0, "s2c_rtt_max_ms": 30.0, "s2c_rtt_avg_ms": 20.0, "s2c_retx_pkts": 2,
                   "first_unix_s": 1.7e9, "duration_s": 4.0}),
            json!({"protocol": "tcp", "client_port": 5001, "sack_permitted": false, "c2s_first_pkt_ms": 1.0, "duration_s": 9.0, "c2s_ip_bytes": 1000, "s2c_ip_bytes": 1000,
                   "s2c_rtt_min_ms": 5.0, "s2c_rtt_max_ms": 50.0, "s2c_rtt_avg_ms": 40.0, "s2c_retx_pkts": 3}),
        ];
        let results = Results {
            application: Some(
                json!({"stall_count": 2, "stall": true, "qoe_class": "low", "segments": [1, 2]}),
            ),
            ..with_flows(flows)
        };
        let row = feature_row(&session(), &results);
        assert_eq!(row["flow_count"], json!(2));
        assert_eq!(row["s2c_ip_bytes"], json!(10000.0));
        assert_eq!(row["s2c_retx_pkts"], json!(5.0));
        assert_eq!(row["s2c_rtt_min_ms"], json!(5.0));
        assert_eq!(row["s2c_rtt_max_ms"], json!(50.0));
        // Byte-weighted: (20·9000 + 40·1000) / 10000.
        assert_eq!(row["s2c_rtt_avg_ms"], json!(22.0));
        assert!(!row.contains_key("client_port") && !row.contains_key("first_unix_s"));
        assert_eq!(
            row["sack_permitted"],
            json!(0.5),
            "flags become the share of flows"
        );
        assert_eq!(row["c2s_first_pkt_ms"], json!(1.0));
        assert_eq!(row["duration_s"], json!(9.0));
        assert_eq!(row["label_stall_count"], json!(2));
        assert_eq!(row["label_stall"], json!(1));
        assert_eq!(row["label_qoe_class"], json!("low"));
        assert!(!row.contains_key("label_segments"));
        assert_eq!(row["ctx_rate_bps"], json!(1_000_000));
    }

    #[test]
    fn flows_with_different_columns_aggregate_each_column_over_the_flows_having_it() {
        let flows = [
            json!({"a_max": 1.0, "b": 2, "c_min": 5.0}),
            json!({"b": 3, "c_min": 4.0}),
            json!({"a_max": 7.0, "aa": 1, "b": 4, "c_min": null, "d_min": 9.0}),
            json!({"a_max": 2.0, "b": 5}),
        ];
        let row = feature_row(&session(), &with_flows(flows));
        assert_eq!(row["a_max"], json!(7.0));
        assert_eq!(row["aa"], json!(1.0));
        assert_eq!(row["b"], json!(14.0));
        assert_eq!(row["c_min"], json!(4.0));
        assert_eq!(row["d_min"], json!(9.0));
    }

    #[test]
    fn series_reveal_bursts_and_idle_gaps() {
        // Two segment downloads (2 bins, then 1 bin) separated by 3 idle seconds.
        let bins = [
            bin(0, 100_000),
            bin(1, 80_000),
            bin(2, 0),
            bin(3, 500),
            bin(4, 0),
            bin(5, 60_000),
        ];
        let results = Results {
            bin_ms: 1000,
            series: bins.to_vec(),
            ..Results::default()
        };
        let row = feature_row(&session(), &results);
        assert_eq!(row["s2c_burst_count"], json!(2.0));
        assert_eq!(row["s2c_idle_gap_count"], json!(1.0));
        assert_eq!(row["s2c_idle_gap_max_s"], json!(3.0));
        assert_eq!(row["s2c_burst_bytes_max"], json!(180_000.0));
        assert_eq!(row["s2c_idle_fraction"], json!(0.5));
        let mean = (100_000.0 + 80_000.0 + 500.0 + 60_000.0) * 8.0 / 6.0;
        assert_eq!(row["s2c_tput_mean_bps"], json!(mean));
        assert_eq!(
            row["s2c_tput_p50_bps"],
            json!((500.0 + 60_000.0) * 8.0 / 2.0)
        );
    }

    #[test]
    fn warm_up_bins_are_left_out_of_the_series_features() {
        let bins = [
            bin(0, 900_000),
            bin(1, 900_000),
            bin(2, 10_000),
            bin(3, 10_000),
        ];
        let results = Results {
            bin_ms: 1000,
            warmup_ms: 2000,
            series: bins.to_vec(),
            ..Results::default()
        };
        let row = feature_row(&session(), &results);
        assert_eq!(row["s2c_tput_mean_bps"], json!(80_000.0));
        assert_eq!(row["s2c_burst_count"], json!(1.0));
    }

    #[test]
    fn handshake_rtts_are_a_mean_over_the_flows_that_have_one() {
        let flows = [
            json!({"c2s_rtt_handshake_ms": 10.0, "s2c_rtt_handshake_ms": 1.0, "c2s_ip_bytes": 90_000}),
            json!({"c2s_rtt_handshake_ms": 30.0, "s2c_rtt_handshake_ms": null, "c2s_ip_bytes": 100}),
            json!({"c2s_ip_bytes": 100}),
        ];
        let row = feature_row(&session(), &with_flows(flows));
        // Not 40 (a sum), not 10.04 (byte-weighted), and the flow without one left out.
        assert_eq!(row["c2s_rtt_handshake_ms"], json!(20.0));
        assert_eq!(row["s2c_rtt_handshake_ms"], json!(1.0));
        assert_eq!(
            aggregation_of("s2c_rtt_handshake_ms", false),
            Some("Mean over the flows that have one")
        );
    }

    /// A TCP flow from the client's `port` to the server's `server_port`.
    fn upload_flow(port: u16, server_port: u16, first_s: f64, last_s: f64, bytes: u64) -> Value {
        json!({"protocol": "tcp", "client_ip": "198.18.1.2", "client_port": port,
               "server_ip": "198.18.2.2", "server_port": server_port,
               "first_unix_s": first_s, "last_unix_s": last_s,
               "c2s_ip_bytes": bytes, "c2s_retx_pkts": 1, "c2s_rtt_avg_ms": bytes as f64 / 100.0})
    }

    #[test]
    fn a_flow_matches_a_rule_with_its_client_as_the_source() {
        let rule: Match =
            serde_json::from_value(json!({"protocol": "tcp", "dst_port": 9001})).unwrap();
        let flow = |f: Value| f.as_object().unwrap().clone();
        assert!(flow_matches(
            &rule,
            &flow(upload_flow(40000, 9001, 0.0, 1.0, 1))
        ));
        assert!(
            !flow_matches(&rule, &flow(upload_flow(9001, 40000, 0.0, 1.0, 1))),
            "reversed"
        );
        assert!(!flow_matches(
            &rule,
            &flow(upload_flow(40000, 9000, 0.0, 1.0, 1))
        ));
        let mut udp = flow(upload_flow(40000, 9001, 0.0, 1.0, 1));
        udp.insert("protocol".into(), json!("udp"));
        assert!(!flow_matches(&rule, &udp));
        udp.remove("server_ip");
        assert!(
            !flow_matches(&Match::default(), &udp),
            "no server address: no match"
        );
        assert_eq!(column_name("Object-Detection.0"), "object_detection_0");
    }

    #[test]
    fn iot_flows_are_attributed_to_their_analytics_by_match_rule() {
        use crate::workloads::{summarize, tests::analytic_record};
        let analytics = [
            analytic_record("cam-0", 9000),
            analytic_record("Mic.1", 9001),
            analytic_record("idle", 9002),
        ];
        let flows = [
            upload_flow(40000, 9000, 100.0, 102.0, 1000),
            upload_flow(40001, 9000, 101.0, 104.0, 3000),
            upload_flow(40002, 9001, 100.0, 105.0, 50_000),
            upload_flow(40003, 9003, 100.0, 101.0, 7),
            upload_flow(9001, 40004, 100.0, 101.0, 7),
        ];
        let results = Results {
            application: Some(summarize(&analytics)),
            ..with_flows(flows)
        };
        let row = feature_row(&session(), &results);
        assert_eq!(row["an_cam_0_flow_count"], json!(2));
        assert_eq!(row["an_cam_0_c2s_ip_bytes"], json!(4000.0));
        assert_eq!(row["an_cam_0_c2s_retx_pkts"], json!(2.0));
        // Byte-weighted: (10·1000 + 30·3000) / 4000.
        assert_eq!(row["an_cam_0_c2s_rtt_avg_ms"], json!(25.0));
        // 4000 bytes from 100 s to 104 s.
        assert_eq!(row["an_cam_0_c2s_throughput_bps"], json!(8000.0));
        assert_eq!(row["an_mic_1_flow_count"], json!(1));
        assert_eq!(row["an_mic_1_c2s_ip_bytes"], json!(50_000.0));
        assert_eq!(row["an_idle_flow_count"], json!(0));
        assert_eq!(row["an_idle_c2s_ip_bytes"], json!(0.0));
        assert_eq!(row["an_idle_c2s_rtt_avg_ms"], Value::Null);
        assert_eq!(row["an_idle_c2s_throughput_bps"], Value::Null);
        assert_eq!(row["unattributed_flow_count"], json!(2));
        let report = &analytics[1].report;
        assert_eq!(
            row["label_an_mic_1_expected_qos"],
            json!(report.expected_qos)
        );
        assert_eq!(
            row["label_an_mic_1_achieved_qos"],
            json!(report.achieved_qos)
        );
        assert_eq!(
            row["label_an_mic_1_on_time_ratio"],
            json!(report.on_time_ratio)
        );
        // The session's own aggregates still cover every flow.
        assert_eq!(row["flow_count"], json!(5));

        // A record without rules (and any other record) adds no analytic columns.
        let mut old = summarize(&analytics);
        for r in old["reports"].as_array_mut().unwrap() {
            r.as_object_mut().unwrap().remove("match");
        }
        let results = Results {
            application: Some(old),
            ..results
        };
        let row = feature_row(&session(), &results);
        let analytic_columns = ["an_", "label_an_", "unattributed_"];
        assert!(
            !row.keys()
                .any(|k| analytic_columns.iter().any(|p| k.starts_with(p)))
        );
    }

    #[test]
    fn an_empty_session_gives_nulls_not_nans() {
        let row = feature_row(&session(), &Results::default());
        assert_eq!(row["s2c_tput_mean_bps"], Value::Null);
        assert_eq!(row["flow_count"], json!(0));
        assert!(serde_json::to_string(&row).is_ok());
    }
}
