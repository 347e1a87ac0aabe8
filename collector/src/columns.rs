//! The dataset's columns, documented in one table (`collector/COLUMNS.md`, generated here and
//! kept in sync by a test): what each exported column is, its unit, and how it is derived.

use std::fmt::Write;

use qoelab_capture::record::{Column, DirectionRecord, FlowColumns};

use crate::features::{ANALYTIC_COLUMNS, IDLE_BYTES, aggregation_of};

/// Columns of the session row other than flow aggregates: (name, unit, definition).
const SESSION_COLUMNS: [(&str, &str, &str); 7] = [
    (
        "session_id",
        "-",
        "The session's id (identity: not a feature)",
    ),
    ("campaign_id", "-", "Its campaign's id (identity)"),
    (
        "seq",
        "-",
        "Its position in the campaign, from 0, in the seeded shuffled order (identity)",
    ),
    (
        "ctx_rate_bps",
        "bit/s",
        "Context: the bandwidth limit of the session, both directions; empty for unlimited",
    ),
    (
        "ctx_delay_ms",
        "ms",
        "Context: added one-way delay (netem), if any",
    ),
    (
        "ctx_loss",
        "fraction",
        "Context: added packet loss (netem), if any",
    ),
    (
        "ctx_workload",
        "-",
        "Context: the workload, e.g. `video/buffer`, `iot`, `external`",
    ),
];

const COUNT_COLUMNS: [(&str, &str, &str); 3] = [
    ("flow_count", "flows", "Flows captured in the session"),
    ("tcp_flow_count", "flows", "TCP flows"),
    ("udp_flow_count", "flows", "UDP flows"),
];

/// Series features, per direction (`c2s_`, `s2c_`), from the whole capture's time bins after
/// the warm-up.
const SERIES_COLUMNS: [(&str, &str, &str); 12] = [
    (
        "tput_mean_bps",
        "bit/s",
        "Mean throughput over the session's bins (IP bytes × 8 / bin length)",
    ),
    (
        "tput_std_bps",
        "bit/s",
        "Standard deviation of the per-bin throughput (population)",
    ),
    (
        "tput_p10_bps",
        "bit/s",
        "10th percentile of the per-bin throughput (linear between bins)",
    ),
    ("tput_p50_bps", "bit/s", "Median per-bin throughput"),
    (
        "tput_p90_bps",
        "bit/s",
        "90th percentile of the per-bin throughput",
    ),
    (
        "idle_fraction",
        "fraction",
        "Share of bins that are idle (fewer than IDLE bytes)",
    ),
    (
        "idle_gap_count",
        "gaps",
        "Idle stretches between two bursts (e.g. a video player waiting with a full buffer)",
    ),
    (
        "idle_gap_max_s",
        "s",
        "Longest idle stretch between two bursts",
    ),
    (
        "burst_count",
        "bursts",
        "Maximal runs of non-idle bins (e.g. segment downloads)",
    ),
    ("burst_bytes_mean", "bytes", "Mean IP bytes of a burst"),
    ("burst_bytes_max", "bytes", "Largest burst"),
    ("burst_duration_mean_s", "s", "Mean length of a burst"),
];

/// Columns of each analytic of an IoT session other than its flow aggregates, after
/// `an_<name>_`.
const ANALYTIC_EXTRA_COLUMNS: [(&str, &str, &str); 2] = [
    (
        "flow_count",
        "flows",
        "Flows matching the analytic's rule (its uploads)",
    ),
    (
        "c2s_throughput_bps",
        "bit/s",
        "Its flows' c2s IP bytes × 8 / the time from their first packet to their last",
    ),
];

/// Labels of each analytic of an IoT session, after `label_an_<name>_`: from its final report.
const ANALYTIC_LABELS: [(&str, &str, &str); 3] = [
    ("expected_qos", "-", "QoS its model expects at its knob"),
    (
        "achieved_qos",
        "-",
        "its achieved QoS (expected QoS × on-time frames / due frames)",
    ),
    (
        "on_time_ratio",
        "fraction",
        "share of its frames complete at the sink within their deadline",
    ),
];

fn row(md: &mut String, name: &str, unit: &str, definition: &str) {
    let _ = writeln!(md, "| `{name}` | {unit} | {definition} |");
}

fn flow_rows(md: &mut String, prefix: &str, columns: &[Column]) {
    for c in columns {
        let name = format!("{prefix}{}", c.name);
        if let Some(rule) = aggregation_of(&name, c.unit == "flag") {
            row(md, &name, c.unit, &format!("{} — {}", rule, c.definition));
        }
    }
}

/// The column documentation as markdown (the content of `COLUMNS.md`).
pub fn columns_markdown() -> String {
    let mut md = String::from(
        "# qoelab datasets: columns\n\n\
         Generated from `collector/src/columns.rs` (a test keeps this file in sync:\n\
         `QOELAB_WRITE_COLUMNS=1 cargo test -p qoelab-collector columns_md` rewrites it).\n\n\
         One row per stored session, in this order: identity, context (`ctx_…`), features, labels\n\
         (`label_…`). **Context and label columns must not be used as features**: context is what\n\
         the experimenter set (a classifier in the field does not know the limit), labels are what\n\
         is predicted. `qoelab train` leaves both out by default. Empty cells (JSON `null`) mean\n\
         \"not defined\" (e.g. RTT of a session without RTT samples).\n\n\
         Flow features aggregate the session's flow records — each defined in\n\
         [`capture/COLUMNS.md`](../capture/COLUMNS.md) — over all its flows, by the rule in front\n\
         of the definition; byte-weighted means weigh each flow by its IP bytes in that\n\
         direction. The handshake RTTs are a plain mean over the flows that have one: each flow\n\
         has one sample, so a sum grows with the number of connections and a byte weight lets one\n\
         bulk flow speak for all; the minimum would repeat `rtt_min_ms`, while the mean keeps the\n\
         queueing met by connections opened under load. Series features come from the capture's\n\
         1-second bins of the whole session after the campaign's warm-up.\n\n\
         ## Identity and context\n\n| column | unit | definition |\n|---|---|---|\n",
    );
    for (name, unit, definition) in SESSION_COLUMNS {
        row(&mut md, name, unit, definition);
    }
    md.push_str("\n## Flow features\n\n| column | unit | definition |\n|---|---|---|\n");
    for (name, unit, definition) in COUNT_COLUMNS {
        row(&mut md, name, unit, definition);
    }
    flow_rows(&mut md, "", FlowColumns::COLUMNS);
    for prefix in ["c2s_", "s2c_"] {
        flow_rows(&mut md, prefix, DirectionRecord::COLUMNS);
    }
    md.push_str("\n## Series features\n\n| column | unit | definition |\n|---|---|---|\n");
    for prefix in ["c2s_", "s2c_"] {
        for (name, unit, definition) in SERIES_COLUMNS {
            let definition = definition.replace("IDLE", &IDLE_BYTES.to_string());
            row(&mut md, &format!("{prefix}{name}"), unit, &definition);
        }
    }
    md.push_str(
        "\n## Per-analytic features (IoT sessions)\n\n\
         An IoT session's record (`qoelab.iot-session.v1`, see\n\
         [`workload/FORMATS.md`](../workload/FORMATS.md)) gives each analytic the match rule of its\n\
         flows. The built-in uploaders send analytic i to the sink's port + i, so its rule is\n\
         `{\"protocol\": \"tcp\", \"dst_port\": PORT+i}`, in the form of a shaping class's match (a\n\
         flow's client is the source, its server the destination). The flows a rule selects are\n\
         aggregated again, by the rules above, into the analytic's columns; `<name>` is the\n\
         analytic's name with anything but `a-z`, `0-9` and `_` turned into `_`, e.g.\n\
         `an_object_detection_0_c2s_ip_bytes`. Other sessions have none of these columns.\n\n\
         | column | unit | definition |\n|---|---|---|\n",
    );
    for (name, unit, definition) in ANALYTIC_EXTRA_COLUMNS {
        row(&mut md, &format!("an_<name>_{name}"), unit, definition);
    }
    for name in ANALYTIC_COLUMNS {
        let (prefix, bare) = name.split_at(4);
        let c = DirectionRecord::COLUMNS
            .iter()
            .find(|c| c.name == bare)
            .expect("analytic columns are direction columns");
        let rule = aggregation_of(name, false).expect("analytic columns are features");
        let definition = format!("{rule} of the analytic — {}", c.definition);
        row(
            &mut md,
            &format!("an_<name>_{prefix}{bare}"),
            c.unit,
            &definition,
        );
    }
    row(
        &mut md,
        "unattributed_flow_count",
        "flows",
        "Flows of the IoT session matching no analytic's rule",
    );
    for (name, unit, definition) in ANALYTIC_LABELS {
        let definition = format!("Label from the analytic's final report — {definition}");
        row(
            &mut md,
            &format!("label_an_<name>_{name}"),
            unit,
            &definition,
        );
    }
    md.push_str(
        "\n## Labels\n\n\
         Every top-level number, flag (as 0/1) or text of the session's application record, prefixed\n\
         `label_` (the record's `schema`, `session`, `server` and `started_unix_ms` excepted).\n\
         The records are documented in [`workload/FORMATS.md`](../workload/FORMATS.md):\n\n\
         - video sessions (`qoelab.video-qoe.v1`): e.g. `label_stall` (0/1: any stall after startup),\n  \
           `label_stall_count`, `label_stall_time_s`, `label_startup_delay_s`, `label_avg_bitrate_bps`,\n  \
           `label_qoe_lin`, `label_qoe_log`, `label_qoe_class` (`low`, `medium`, `high`);\n\
         - IoT sessions: `label_analytics`, `label_expected_qos_mean`, `label_achieved_qos_mean`,\n  \
           `label_on_time_ratio_mean`, `label_completeness_mean`, `label_qos_shortfall` (means over the\n  \
           session's analytics of their final `qoelab.iot-qos.v1` reports);\n\
         - external clients: the fields of their application data, format `qoelab.app-qoe.v1`\n  \
           ([`workload/FORMATS.md`](../workload/FORMATS.md#external-client-application-data--qoelabapp-qoev1)):\n  \
           the video record's fields under the same names and units, and labels of their own\n  \
           (`label_NAME`, NAME of lowercase letters, digits and `_`).\n",
    );
    md
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn columns_md_is_in_sync() {
        let path = concat!(env!("CARGO_MANIFEST_DIR"), "/COLUMNS.md");
        let generated = columns_markdown();
        if std::env::var_os("QOELAB_WRITE_COLUMNS").is_some() {
            std::fs::write(path, &generated).unwrap();
        }
        let on_disk = std::fs::read_to_string(path).unwrap_or_default();
        assert!(
            on_disk == generated,
            "COLUMNS.md is stale: QOELAB_WRITE_COLUMNS=1 cargo test -p qoelab-collector columns_md"
        );
    }

    #[test]
    fn every_feature_of_a_real_record_is_documented() {
        let record = qoelab_capture::FlowRecord::default();
        let flow = serde_json::to_value(&record).unwrap();
        let analytic = crate::workloads::tests::analytic_record("Cam-1", 9000);
        let results = crate::session::Results {
            flows: vec![flow.as_object().unwrap().clone()],
            // An IoT session's record: its analytic gets its own columns.
            application: Some(crate::workloads::summarize(&[analytic])),
            ..Default::default()
        };
        let session = crate::session::Session {
            id: 1,
            campaign_id: 1,
            seq: 0,
            profile: crate::campaign::Profile {
                rate_bps: None,
                delay_ms: None,
                loss: None,
            },
            workload: "video/buffer".into(),
            status: crate::campaign::SessionStatus::Running,
            attempts: 1,
            started_ms: None,
            finished_ms: None,
            failure: None,
            capture_id: None,
        };
        let md = columns_markdown();
        let row = crate::features::feature_row(&session, &results);
        assert!(row.contains_key("an_cam_1_c2s_ip_bytes"));
        // The record's own labels are described in prose; everything else has a row.
        let prose = |k: &str| k.starts_with("label_") && !k.starts_with("label_an_");
        for name in row.keys().filter(|k| !prose(k)) {
            let name = name.replace("an_cam_1_", "an_<name>_");
            assert!(
                md.contains(&format!("| `{name}` |")),
                "{name} is not documented"
            );
        }
    }
}
