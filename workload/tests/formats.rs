//! FORMATS.md documents every field the workloads serialize, in the right section.

use std::time::Duration;

use qoelab_workload::iot::UploaderConfig;
use qoelab_workload::iot::qos::Accounting;
use qoelab_workload::iot::wire::Hello;
use qoelab_workload::model::ModelSet;
use qoelab_workload::video::playback::Stall;
use qoelab_workload::video::qoe::SessionInfo;
use qoelab_workload::video::{AbrKind, QoeRecord, SegmentRecord, VideoSpec};
use serde_json::Value;

const FORMATS: &str = include_str!("../FORMATS.md");

/// The text of the section whose heading starts with `title`.
fn section(title: &str) -> &'static str {
    FORMATS
        .split("\n## ")
        .find(|s| s.starts_with(title))
        .unwrap_or_else(|| panic!("FORMATS.md has no section '{title}'"))
}

/// Every key of `value` (an object) has a table row in `section`.
fn documented(value: &Value, title: &str) {
    let text = section(title);
    for key in value.as_object().expect("an object").keys() {
        assert!(
            text.contains(&format!("| `{key}` |")),
            "FORMATS.md section '{title}' has no row for `{key}`"
        );
    }
}

fn hello() -> Hello {
    let config = UploaderConfig::new(
        "127.0.0.1:1",
        "object-detection",
        0.5,
        Duration::from_secs(2),
    );
    config.hello(&ModelSet::builtin()).unwrap()
}

#[test]
fn every_serialized_field_is_documented() {
    let segment = SegmentRecord {
        index: 0,
        level: 1,
        bitrate_bps: 750_000,
        bytes: 375_000,
        requested_s: 0.1,
        ttfb_s: 0.01,
        download_s: 1.0,
        throughput_bps: 3_000_000,
        buffer_s: 4.0,
        rebuffer_s: 0.0,
    };
    let info = SessionInfo {
        session: None,
        server: "http://198.18.2.2:8080".into(),
        abr: AbrKind::Mpc,
        started_unix_ms: 0,
        duration_s: 5.0,
        segment_duration_s: 4.0,
        ladder_bps: vec![300_000, 750_000],
        startup_delay_s: 1.1,
    };
    let stall = Stall {
        start_s: 1.0,
        duration_s: 0.5,
    };
    let record = serde_json::to_value(QoeRecord::new(info, vec![segment], vec![stall])).unwrap();
    documented(&record, "Video QoE record");
    documented(&record["segments"][0], "Video QoE record");
    let stall_keys = record["stalls"][0].as_object().unwrap();
    assert!(
        stall_keys
            .keys()
            .all(|k| section("Video QoE record").contains(&format!("`{k}`")))
    );

    let report = serde_json::to_value(Accounting::new(hello()).report(3_000_000, true)).unwrap();
    documented(&report, "IoT QoS report");
    documented(
        &serde_json::to_value(hello()).unwrap(),
        "Uploader → sink hello",
    );
    let manifest = serde_json::to_value(VideoSpec::default().manifest().unwrap()).unwrap();
    documented(&manifest, "Video manifest");
}
