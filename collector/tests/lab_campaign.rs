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
