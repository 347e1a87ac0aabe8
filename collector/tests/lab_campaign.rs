//! A whole campaign over a real lab: the agent (in-process) shapes the router and captures on
//! it, the built-in video player plays through it, the runner stores every session — on
//! PostgreSQL and on SQLite.

mod common;

use std::time::Duration;

use common::TestDb;
use qoelab_agent::local::LocalAgent;
use qoelab_collector::campaign::{self, CampaignSpec, CampaignStatus, SessionStatus, Workload};
use qoelab_collector::events::Events;
use qoelab_collector::lab_driver::LabDriver;
use qoelab_collector::network::{AgentNetwork, Link};
use qoelab_collector::runner::Runner;
use qoelab_collector::session::{self, SessionQuery};
use qoelab_lab::{Lab, standard};
use qoelab_units::parse_limits;
use tokio_util::sync::CancellationToken;

async fn video_campaign_over_a_lab(t: TestDb) {
    let lab = Lab::standard(None).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let agent =
        LocalAgent::start(&dir.path().join("agent.sock"), &dir.path().join("state")).unwrap();
    let router = lab.router().unwrap().name().to_string();
    let link = Link {
        netns: Some(router.clone()),
        upload_iface: lab.uplink(),
        download_iface: lab.downlink(),
        capture_iface: lab.downlink(),
        bin_ms: 1000,
        max_capture_s: 300,
    };
    let network = AgentNetwork::new(agent.client().clone(), link);
    let driver = LabDriver::start(
        lab.client().unwrap().try_clone().unwrap(),
        lab.server().unwrap(),
        standard::SERVER_ADDR,
    )
    .unwrap();
    let runner = Runner::new(t.db.clone(), network, driver, Events::default());
    let shutdown = CancellationToken::new();
    let task = tokio::spawn(runner.clone().run(shutdown.clone()));

    let spec = CampaignSpec {
        name: "lab video".into(),
        sessions: 6,
        duration_s: 8.0,
        warmup_s: 0.0,
        limits: parse_limits("1, 8 mbit").unwrap(),
        delays_ms: vec![],
        losses: vec![],
        workload: Workload::Video { abr: "rate".into() },
        seed: 5,
    };
    let id = campaign::create(&t.db, &spec).await.unwrap();
    runner.start(id).await.unwrap();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(240);
    while campaign::get(&t.db, id).await.unwrap().status != CampaignStatus::Done {
        assert!(
            tokio::time::Instant::now() < deadline,
            "campaign did not finish: {:?}",
            campaign::progress(&t.db, id).await.unwrap()
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    shutdown.cancel();
    task.await.unwrap().unwrap();

    let all = session::list(
        &t.db,
        &SessionQuery {
            campaign_id: Some(id),
            ..Default::default()
        },
    )
    .await
    .unwrap();
    let mut throughput = std::collections::BTreeMap::<u64, Vec<f64>>::new();
    for s in &all.sessions {
        assert_eq!(
            s.status,
            SessionStatus::Done,
            "session {} {:?}",
            s.id,
            s.failure
        );
        let d = session::detail(&t.db, s.id).await.unwrap();
        assert!(
            d.flows.iter().any(|f| f["server_port"] == 8080),
            "session {} has the video flow",
            s.id
        );
        assert!(
            d.series.len() >= 5,
            "session {} has {} bins",
            s.id,
            d.series.len()
        );
        let app = d.application.as_ref().expect("a QoE record");
        assert_eq!(app["schema"], "qoelab.video-qoe.v1");
        assert!(d.features.contains_key("label_qoe_class"));
        let rate = s.profile.rate_bps.unwrap();
        let measured = d.features["s2c_tput_mean_bps"].as_f64().unwrap();
        // Shaped: the download never exceeds its limit by more than bin-edge noise.
        assert!(
            measured < rate as f64 * 1.1,
            "session {}: {measured} bit/s under a {rate} bit/s limit",
            s.id
        );
        throughput.entry(rate).or_default().push(measured);
    }
    let mean = |r: u64| throughput[&r].iter().sum::<f64>() / throughput[&r].len() as f64;
    assert!(
        mean(1_000_000) < mean(8_000_000),
        "1 Mbit/s sessions moved less than 8 Mbit/s ones: {throughput:?}"
    );
    // The link is unshaped after the campaign.
    let shaped = agent.client().interfaces().await.unwrap();
    assert!(shaped.is_empty(), "still shaped: {shaped:?}");
    assert!(agent.stop().await.is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_video_campaign_over_a_lab_on_postgres() {
    video_campaign_over_a_lab(TestDb::postgres().await).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_video_campaign_over_a_lab_on_sqlite() {
    video_campaign_over_a_lab(TestDb::sqlite().await).await;
}
