//! The runner's state machine with a scripted network and workload (the real agent and lab are
//! exercised in the end-to-end test): sessions run in order, the link is unshaped between
//! them, stop and crash recovery lose and duplicate nothing, external clients follow the
//! protocol.

mod common;

use std::sync::{Arc, Mutex};
use std::time::Duration;

use common::{SleepingDriver, TestDb, wait_for};
use qoelab_collector::Error;
use qoelab_collector::campaign::{
    self, CampaignSpec, CampaignStatus, Profile, SessionStatus, Workload,
};
use qoelab_collector::events::{Event, Events};
use qoelab_collector::runner::{Network, Runner};
use qoelab_collector::session::{self, Bin, Results, SessionQuery};
use qoelab_units::parse_limits;
use serde_json::json;
use tokio_util::sync::CancellationToken;

#[derive(Clone, Default)]
struct ScriptedNetwork {
    log: Arc<Mutex<Vec<String>>>,
    rate: Arc<Mutex<Option<u64>>>,
    silent: bool,
}

impl Network for ScriptedNetwork {
    async fn apply(&self, profile: &Profile) -> Result<(), String> {
        *self.rate.lock().unwrap() = profile.rate_bps;
        self.log
            .lock()
            .unwrap()
            .push(format!("apply {:?}", profile.rate_bps));
        Ok(())
    }
    async fn clear(&self) -> Result<(), String> {
        self.log.lock().unwrap().push("clear".into());
        Ok(())
    }
    async fn start_capture(&self) -> Result<String, String> {
        self.log.lock().unwrap().push("start".into());
        Ok(format!("cap{}", self.log.lock().unwrap().len()))
    }
    async fn stop_capture(&self, id: &str) -> Result<Results, String> {
        self.log.lock().unwrap().push(format!("stop {id}"));
        let bytes = if self.silent {
            0
        } else {
            self.rate.lock().unwrap().unwrap_or(100_000_000) / 8
        };
        let flow = json!({"protocol": "tcp", "client_ip": "198.18.1.2", "client_port": 1, "server_ip": "198.18.2.2",
            "server_port": 2, "c2s_ip_bytes": bytes / 50, "s2c_ip_bytes": bytes});
        Ok(Results {
            warmup_ms: 0,
            capture_id: None,
            bin_ms: 1000,
            flows: vec![flow.as_object().unwrap().clone()],
            series: vec![Bin {
                flow_idx: None,
                bin: 0,
                start_ms: 0,
                c2s_bytes: bytes / 50,
                s2c_bytes: bytes,
                c2s_pkts: 1,
                s2c_pkts: 1,
                c2s_retx: 0,
                s2c_retx: 0,
            }],
            application: None,
        })
    }
}

fn spec(sessions: u32, duration_s: f64, workload: Workload) -> CampaignSpec {
    CampaignSpec {
        name: "runner".into(),
        sessions,
        duration_s,
        warmup_s: 0.01,
        limits: parse_limits("1, 8 mbit").unwrap(),
        delays_ms: vec![],
        losses: vec![],
        workload,
        seed: 11,
        gateway: None,
    }
}

fn video() -> Workload {
    Workload::Video {
        abr: "buffer".into(),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_campaign_completes_with_the_link_unshaped_between_sessions() {
    for t in TestDb::both().await {
        let network = ScriptedNetwork::default();
        let events = Events::default();
        let mut listener = events.subscribe();
        let runner = Runner::new(t.db.clone(), network.clone(), SleepingDriver, events);
        let shutdown = CancellationToken::new();
        let task = tokio::spawn(runner.clone().run(shutdown.clone()));
        let id = campaign::create(&t.db, &spec(6, 0.05, video()))
            .await
            .unwrap();
        runner.start(id).await.unwrap();
        wait_for(&t.db, id, CampaignStatus::Done).await;
        shutdown.cancel();
        task.await.unwrap().unwrap();

        let p = campaign::progress(&t.db, id).await.unwrap();
        assert_eq!(p.done, 6);
        let log = network.log.lock().unwrap().clone();
        // Every apply is followed by start, stop and clear before the next apply.
        let applies: Vec<usize> = log
            .iter()
            .enumerate()
            .filter(|(_, l)| l.starts_with("apply"))
            .map(|(i, _)| i)
            .collect();
        assert_eq!(applies.len(), 6);
        for w in applies.windows(2) {
            assert_eq!(
                &log[w[0] + 1..w[1]]
                    .iter()
                    .map(|l| l.split(' ').next().unwrap())
                    .collect::<Vec<_>>(),
                &["start", "stop", "clear"],
                "{log:?}"
            );
        }
        let mut started = 0;
        while let Ok(event) = listener.try_recv() {
            if let Event::SessionStarted { total, eta_s, .. } = event {
                assert_eq!(total, 6);
                assert!(eta_s.unwrap() > 0.0);
                started += 1;
            }
        }
        assert_eq!(started, 6);
        // The measured throughput follows the limit.
        let s = session::list(
            &t.db,
            &SessionQuery {
                campaign_id: Some(id),
                per_page: Some(10),
                ..Default::default()
            },
        )
        .await
        .unwrap();
        for s in s.sessions {
            let f = session::detail(&t.db, s.id).await.unwrap().features;
            assert_eq!(
                f["s2c_ip_bytes"].as_f64().unwrap() as u64,
                s.profile.rate_bps.unwrap() / 8
            );
            assert_eq!(f["label_qoe_class"], json!("high"));
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_crash_mid_campaign_loses_and_duplicates_nothing() {
    for t in TestDb::both().await {
        let id = campaign::create(&t.db, &spec(5, 0.3, video()))
            .await
            .unwrap();
        // First runner: killed while a session runs.
        let first = Runner::new(
            t.db.clone(),
            ScriptedNetwork::default(),
            SleepingDriver,
            Events::default(),
        );
        let task = tokio::spawn(first.clone().run(CancellationToken::new()));
        first.start(id).await.unwrap();
        loop {
            let p = campaign::progress(&t.db, id).await.unwrap();
            if p.done >= 2 && p.running == 1 {
                break;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        task.abort();
        let _ = task.await;
        let p = campaign::progress(&t.db, id).await.unwrap();
        assert_eq!(p.running, 1, "the crash left a session running");

        // Second runner: recovers and finishes.
        let second = Runner::new(
            t.db.clone(),
            ScriptedNetwork::default(),
            SleepingDriver,
            Events::default(),
        );
        let shutdown = CancellationToken::new();
        let task = tokio::spawn(second.run(shutdown.clone()));
        wait_for(&t.db, id, CampaignStatus::Done).await;
        shutdown.cancel();
        task.await.unwrap().unwrap();

        let all = session::list(
            &t.db,
            &SessionQuery {
                campaign_id: Some(id),
                per_page: Some(10),
                ..Default::default()
            },
        )
        .await
        .unwrap();
        assert_eq!(all.total, 5);
        assert!(all.sessions.iter().all(|s| s.status == SessionStatus::Done));
        assert_eq!(
            all.sessions.iter().map(|s| s.attempts).sum::<i64>(),
            6,
            "exactly one session ran twice"
        );
        for s in &all.sessions {
            assert_eq!(
                session::detail(&t.db, s.id).await.unwrap().flows.len(),
                1,
                "session {} stored once",
                s.id
            );
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stop_requeues_the_running_session_and_resume_finishes() {
    let t = TestDb::sqlite().await;
    let network = ScriptedNetwork::default();
    let runner = Runner::new(
        t.db.clone(),
        network.clone(),
        SleepingDriver,
        Events::default(),
    );
    let shutdown = CancellationToken::new();
    let task = tokio::spawn(runner.clone().run(shutdown.clone()));
    let id = campaign::create(&t.db, &spec(3, 0.4, video()))
        .await
        .unwrap();
    runner.start(id).await.unwrap();
    while campaign::progress(&t.db, id).await.unwrap().running == 0 {
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    runner.stop(id).await.unwrap();
    while campaign::progress(&t.db, id).await.unwrap().running > 0 {
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let p = campaign::progress(&t.db, id).await.unwrap();
    assert_eq!((p.pending, p.done), (3, 0));
    assert_eq!(
        network.log.lock().unwrap().last().unwrap(),
        "clear",
        "the link is unshaped after a stop"
    );
    let err = runner.stop(id).await.unwrap_err();
    assert!(matches!(err, Error::Conflict(_)), "{err}");
    runner.start(id).await.unwrap();
    wait_for(&t.db, id, CampaignStatus::Done).await;
    shutdown.cancel();
    task.await.unwrap().unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sessions_without_traffic_are_discarded() {
    let t = TestDb::sqlite().await;
    let network = ScriptedNetwork {
        silent: true,
        ..Default::default()
    };
    let runner = Runner::new(t.db.clone(), network, SleepingDriver, Events::default());
    let shutdown = CancellationToken::new();
    let task = tokio::spawn(runner.clone().run(shutdown.clone()));
    let id = campaign::create(&t.db, &spec(2, 0.05, video()))
        .await
        .unwrap();
    runner.start(id).await.unwrap();
    wait_for(&t.db, id, CampaignStatus::Done).await;
    shutdown.cancel();
    task.await.unwrap().unwrap();
    assert_eq!(campaign::progress(&t.db, id).await.unwrap().discarded, 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn external_clients_follow_next_start_finish() {
    let t = TestDb::sqlite().await;
    let network = ScriptedNetwork::default();
    let runner = Runner::new(
        t.db.clone(),
        network.clone(),
        SleepingDriver,
        Events::default(),
    );
    let id = campaign::create(&t.db, &spec(2, 1.0, Workload::External))
        .await
        .unwrap();
    let err = runner.external_next(id).await.unwrap_err();
    assert!(err.to_string().contains("start it first"), "{err}");
    runner.start(id).await.unwrap();

    let a = runner.external_next(id).await.unwrap().unwrap();
    let err = runner
        .external_finish(a.id, json!({"stall_count": 1}))
        .await
        .unwrap_err();
    assert!(err.to_string().contains("call start first"), "{err}");
    runner.external_start(a.id).await.unwrap();
    let b = runner.external_next(id).await.unwrap().unwrap();
    let err = runner.external_start(b.id).await.unwrap_err();
    assert!(err.to_string().contains("busy"), "{err}");
    let err = runner
        .external_finish(a.id, json!({"stall_count": "many"}))
        .await
        .unwrap_err();
    assert!(err.to_string().contains("application.stall_count"), "{err}");
    runner
        .external_finish(a.id, json!({"stall_count": 1, "startup_delay_s": 2.5}))
        .await
        .unwrap();
    let detail = session::detail(&t.db, a.id).await.unwrap();
    assert_eq!(detail.session.status, SessionStatus::Done);
    assert_eq!(detail.features["label_stall_count"], json!(1));

    runner.external_start(b.id).await.unwrap();
    runner
        .external_finish(b.id, json!({"stall_count": 0}))
        .await
        .unwrap();
    assert!(runner.external_next(id).await.unwrap().is_none());
    assert_eq!(
        campaign::get(&t.db, id).await.unwrap().status,
        CampaignStatus::Done
    );
    let log = network.log.lock().unwrap();
    assert_eq!(log.iter().filter(|l| *l == "clear").count(), 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_session_handed_out_before_the_runner_loop_starts_stays_handed_out() {
    let t = TestDb::sqlite().await;
    let network = ScriptedNetwork::default();
    let id = campaign::create(&t.db, &spec(2, 1.0, Workload::External))
        .await
        .unwrap();
    // A previous process handed out a session and died.
    let runner = Runner::new(
        t.db.clone(),
        network.clone(),
        SleepingDriver,
        Events::default(),
    );
    runner.start(id).await.unwrap();
    let orphan = session::claim_next(&t.db, id).await.unwrap().unwrap();

    // This process hands out a session before its loop has started: the orphan comes back first.
    let handed = runner.external_next(id).await.unwrap().unwrap();
    assert_eq!(handed.id, orphan.id, "the orphan went back to pending");
    let shutdown = CancellationToken::new();
    let task = tokio::spawn(runner.clone().run(shutdown.clone()));
    while !network.log.lock().unwrap().iter().any(|l| l == "clear") {
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    let session = session::get(&t.db, handed.id).await.unwrap();
    assert_eq!(
        session.status,
        SessionStatus::Running,
        "the loop took it back"
    );
    runner.external_start(handed.id).await.unwrap();
    shutdown.cancel();
    task.await.unwrap().unwrap();
}
