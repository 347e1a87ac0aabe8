use super::*;
use crate::requests::{self, Spec};

fn trace(seed: u64) -> Vec<Request> {
    let scenario = Scenario::builtin();
    requests::generate(&Spec {
        per_minute: 1.0,
        lifetime_min: 1,
        lifetime_max: 10,
        minutes: 40,
        mix: scenario
            .apps
            .iter()
            .map(|a| (a.name.clone(), 1.0))
            .collect(),
        seed,
    })
    .unwrap()
}

fn assert_rows_consistent(report: &Report) {
    let c = &report.config;
    for r in &report.rows {
        let at = format!("{} {} minute {}", c.raa, c.ida, r.minute);
        assert_eq!(r.running, r.edge + r.cloud, "{at}");
        assert!(r.admitted <= r.running, "{at}");
        assert!(r.edge <= c.edge_slots, "{at}");
        assert!(r.upload_bps <= c.upload_bps, "{at}");
        assert!(r.storage_bytes <= c.storage_bytes, "{at}");
        assert!(r.download_bytes <= c.download_bps * 60 / 8, "{at}");
        assert!((0.0..=1.0).contains(&r.weighted_qos), "{at}");
        assert!(r.saved_bps == 0 || r.edge > 0, "{at}");
    }
}

#[test]
fn every_combination_runs_the_same_trace_consistently() {
    let scenario = Scenario::builtin();
    let models = ModelSet::builtin();
    let requests = trace(1);
    for raa in Algorithm::ALL {
        for ida in Method::ALL {
            let config = Config {
                raa,
                ida,
                ..Config::reference()
            };
            let report = run(&scenario, &models, &requests, &config).unwrap();
            assert_rows_consistent(&report);
            assert!(report.summary.edge_share > 0.0, "{raa} {ida}");
            assert!(report.summary.mean_saved_bps > 0.0, "{raa} {ida}");
            let again = run(&scenario, &models, &requests, &config).unwrap();
            let strip = |r: &Report| -> Vec<(u32, u32, u64, u64)> {
                r.rows
                    .iter()
                    .map(|r| (r.edge, r.admitted, r.upload_bps, r.storage_bytes))
                    .collect()
            };
            assert_eq!(strip(&report), strip(&again), "{raa} {ida}: deterministic");
        }
    }
}

#[test]
fn a_small_store_evicts_and_never_breaks_its_capacity() {
    let config = Config {
        storage_bytes: 1_200_000_000,
        lrp: Policy::Mru,
        ..Config::reference()
    };
    let report = run(
        &Scenario::builtin(),
        &ModelSet::builtin(),
        &trace(2),
        &config,
    )
    .unwrap();
    assert_rows_consistent(&report);
    assert!(report.summary.evicted_bytes > 0);
}

#[test]
fn an_image_arrives_after_its_download_and_extraction() {
    let models = ModelSet::builtin();
    let scenario = Scenario::from_toml(
        r#"
        [[layer]]
        id = "all"
        size = "75mb"
        [[app]]
        name = "yolo"
        kind = "object-detection"
        image = ["all"]
        "#,
        "s",
        &models,
    )
    .unwrap();
    // 10 Mbit/s carries 75 MB in exactly 60 s; extraction adds 1.5 s: ready at minute 2.
    let config = Config {
        download_bps: 10_000_000,
        ..Config::reference()
    };
    let requests = requests::parse("yolo, 0, 10", "r").unwrap();
    let report = run(&scenario, &models, &requests, &config).unwrap();
    let edge: Vec<u32> = report.rows.iter().map(|r| r.edge).collect();
    assert_eq!(edge, [0, 0, 1, 1, 1, 1, 1, 1, 1, 1, 0]);
    assert_eq!(report.rows[0].download_bytes, 75_000_000);
    assert_eq!(report.rows[0].placed_images, 1);
    assert!(report.rows[0].place_us.is_some() && report.rows[1].place_us.is_none());
    assert_eq!(report.rows[1].download_bytes, 0);
    assert_eq!(report.rows[1].saved_bps, 0);
    // At the edge detection uploads 30.01·K + 4.17 kbit/s instead of 52.52·K + 5.449: at K = 1
    // (the budget is ample) that saves 23.789 kbit/s.
    assert_eq!(report.rows[2].saved_bps, 23_789);
    assert_eq!(report.rows[2].storage_bytes, 75_000_000);
    let csv = report.csv();
    assert!(csv.starts_with("minute,running,edge,cloud,admitted,weighted_qos,"));
    assert_eq!(csv.lines().count(), report.rows.len() + 1);
    let svg = plot::svg(&report, "test <1>");
    assert!(svg.starts_with("<svg ") && svg.trim_end().ends_with("</svg>"));
    assert!(svg.contains("test &lt;1&gt;") && svg.matches("<polyline").count() == 7);
    // Self-contained: no scripts, no links but the SVG namespace.
    assert!(!svg.contains("<script") && svg.matches("http").count() == 1);
}

#[test]
fn bad_configurations_and_traces_are_refused() {
    let scenario = Scenario::builtin();
    let models = ModelSet::builtin();
    let requests = requests::parse("lidar, 0, 3", "r").unwrap();
    let err = run(&scenario, &models, &requests, &Config::reference()).unwrap_err();
    assert!(
        err.to_string().starts_with("app = 'lidar' is not accepted"),
        "{err}"
    );
    let config = Config {
        upload_bps: 0,
        ..Config::reference()
    };
    let err = run(&scenario, &models, &[], &config)
        .unwrap_err()
        .to_string();
    assert_eq!(
        err,
        "upload rate = 0 is not accepted: a positive rate, e.g. 5mbit"
    );
    let config = Config {
        ida: Method::Fptas,
        epsilon: 1.5,
        ..Config::reference()
    };
    let err = run(&scenario, &models, &[], &config)
        .unwrap_err()
        .to_string();
    assert!(err.starts_with("epsilon = 1.5"), "{err}");
}
