//! Whole campaigns over a real lab: the agent (in-process) shapes the router and captures on
//! it, the built-in workloads run through it, the runner stores every session — on PostgreSQL
//! and on SQLite.

mod common;

use std::collections::BTreeMap;
use std::time::Duration;

use common::TestDb;
use qoelab_collector::Db;
use qoelab_collector::appliance::LabAppliance;
use qoelab_collector::campaign::{
    self, CampaignSpec, CampaignStatus, IotAnalytic, SessionStatus, Workload,
};
use qoelab_collector::events::Events;
use qoelab_collector::session::{self, SessionDetail, SessionQuery};
use qoelab_lab::Lab;
use qoelab_units::parse_limits;
use tokio_util::sync::CancellationToken;

/// Runs `spec` to the end on an appliance over `db`; returns every session's details.
async fn run_campaign(db: &Db, spec: CampaignSpec) -> Vec<SessionDetail> {
    let dir = tempfile::tempdir().unwrap();
    let appliance = LabAppliance::start(
        db.clone(),
        Lab::standard(None).unwrap(),
        dir.path(),
        Events::default(),
    )
    .unwrap();
    let shutdown = CancellationToken::new();
    let task = tokio::spawn(appliance.runner().clone().run(shutdown.clone()));
    let id = campaign::create(db, &spec).await.unwrap();
    appliance.runner().start(id).await.unwrap();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(240);
    while campaign::get(db, id).await.unwrap().status != CampaignStatus::Done {
        let progress = campaign::progress(db, id).await.unwrap();
        assert!(
            tokio::time::Instant::now() < deadline,
            "campaign did not finish: {progress:?}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    shutdown.cancel();
    task.await.unwrap().unwrap();
    // The link is unshaped after the campaign, and stopping leaves nothing behind.
    let shaped = appliance.agent().interfaces().await.unwrap();
    assert!(shaped.is_empty(), "still shaped: {shaped:?}");
    assert!(appliance.stop().await.is_empty());

    let all = session::list(
        db,
        &SessionQuery {
            campaign_id: Some(id),
            ..Default::default()
        },
    )
    .await
    .unwrap();
    let mut details = Vec::new();
    for s in &all.sessions {
        assert_eq!(
            s.status,
            SessionStatus::Done,
            "session {} {:?}",
            s.id,
            s.failure
        );
        details.push(session::detail(db, s.id).await.unwrap());
    }
    details
}

fn spec(
    name: &str,
    sessions: u32,
    limits: &str,
    duration_s: f64,
    workload: Workload,
) -> CampaignSpec {
    CampaignSpec {
        name: name.into(),
        sessions,
        duration_s,
        warmup_s: 0.0,
        limits: parse_limits(limits).unwrap(),
        delays_ms: vec![],
        losses: vec![],
        workload,
        seed: 5,
        gateway: None,
    }
}

async fn video_campaign(db: &Db) {
    let details = run_campaign(
        db,
        spec(
            "lab video",
            6,
            "1, 8 mbit",
            8.0,
            Workload::Video { abr: "rate".into() },
        ),
    )
    .await;
    let mut throughput = BTreeMap::<u64, Vec<f64>>::new();
    for d in &details {
        let id = d.session.id;
        assert!(
            d.flows.iter().any(|f| f["server_port"] == 8080),
            "session {id} has the video flow"
        );
        assert!(
            d.series.len() >= 5,
            "session {id} has {} bins",
            d.series.len()
        );
        assert_eq!(
            d.application.as_ref().expect("a QoE record")["schema"],
            "qoelab.video-qoe.v1"
        );
        assert!(d.features.contains_key("label_qoe_class"));
        let rate = d.session.profile.rate_bps.unwrap();
        let measured = d.features["s2c_tput_mean_bps"].as_f64().unwrap();
        // Shaped: the download never exceeds its limit by more than bin-edge noise.
        assert!(
            measured < rate as f64 * 1.1,
            "session {id}: {measured} bit/s under a {rate} bit/s limit"
        );
        throughput.entry(rate).or_default().push(measured);
    }
    let mean = |r: u64| throughput[&r].iter().sum::<f64>() / throughput[&r].len() as f64;
    assert!(
        mean(1_000_000) < mean(8_000_000),
        "1 Mbit/s sessions moved less than 8 Mbit/s ones: {throughput:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_video_campaign_over_a_lab_on_postgres() {
    video_campaign(&TestDb::postgres().await.db).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_video_campaign_over_a_lab_on_sqlite() {
    video_campaign(&TestDb::sqlite().await.db).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_iot_campaign_measures_qos_under_each_limit() {
    let t = TestDb::sqlite().await;
    let analytics = vec![IotAnalytic {
        kind: "object-detection".into(),
        knob: 1.0,
    }];
    let details = run_campaign(
        &t.db,
        spec(
            "lab iot",
            2,
            "40kbit, 1mbit",
            6.0,
            Workload::Iot { analytics },
        ),
    )
    .await;
    let achieved = |rate: u64| {
        let d = details
            .iter()
            .find(|d| d.session.profile.rate_bps == Some(rate))
            .unwrap();
        assert!(
            d.flows.iter().any(|f| f["server_port"] == 9000),
            "the upload crossed the router"
        );
        d.features["label_achieved_qos_mean"].as_f64().unwrap()
    };
    // About 58 kbit/s of frames: late at 40 kbit/s, on time at 1 Mbit/s.
    assert!(
        achieved(40_000) < achieved(1_000_000),
        "{} vs {}",
        achieved(40_000),
        achieved(1_000_000)
    );
    assert!(achieved(1_000_000) > 0.9);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_analytic_of_an_iot_session_gets_its_own_flows() {
    let t = TestDb::sqlite().await;
    // About 345 kbit/s and 16 kbit/s of frames, each to its own sink port; unshaped, so that
    // no retransmission adds to what the sink received.
    let analytics = vec![
        IotAnalytic {
            kind: "audio-classification".into(),
            knob: 0.5,
        },
        IotAnalytic {
            kind: "object-detection".into(),
            knob: 0.2,
        },
    ];
    let details = run_campaign(
        &t.db,
        spec(
            "lab iot analytics",
            1,
            "unlimited",
            3.0,
            Workload::Iot { analytics },
        ),
    )
    .await;
    let d = &details[0];
    let features = &d.features;
    let reports = d.application.as_ref().expect("an IoT record")["reports"]
        .as_array()
        .unwrap()
        .clone();
    let mut bytes = Vec::new();
    for (i, (report, name)) in reports
        .iter()
        .zip(["audio_classification_0", "object_detection_1"])
        .enumerate()
    {
        assert_eq!(
            report["match"],
            serde_json::json!({"protocol": "tcp", "dst_port": 9000 + i}),
            "analytic {i}'s rule"
        );
        let column = |c: &str| features[&format!("an_{name}_{c}")].as_f64().unwrap();
        assert_eq!(column("flow_count"), 1.0, "{name}: one upload connection");
        // Its IP bytes are what the sink received (hello, frame headers and payloads) plus
        // TCP/IP headers and the acknowledgements of the final report.
        let received = report["bytes_received"].as_f64().unwrap();
        let ip_bytes = column("c2s_ip_bytes");
        assert!(
            received < ip_bytes && ip_bytes < received * 1.1 + 3000.0,
            "{name}: {ip_bytes} IP bytes for {received} bytes received"
        );
        assert!(column("c2s_throughput_bps") > 0.0);
        assert_eq!(
            features[&format!("label_an_{name}_achieved_qos")],
            report["achieved_qos"]
        );
        bytes.push(ip_bytes);
    }
    assert!(
        bytes[0] > 5.0 * bytes[1],
        "the higher-rate analytic moved more: {bytes:?}"
    );
    // Every other flow is no upload.
    let uploads = d
        .flows
        .iter()
        .filter(|f| {
            f["protocol"] == "tcp" && (f["server_port"] == 9000 || f["server_port"] == 9001)
        })
        .count();
    assert_eq!(uploads, 2);
    assert_eq!(
        features["unattributed_flow_count"].as_u64().unwrap(),
        d.flows.len() as u64 - 2,
        "{:?}",
        d.flows
    );
}
