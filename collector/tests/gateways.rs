//! Several gateways over one database: each runner runs its own gateway's campaigns on its own
//! link, side by side with the others; calls go to the runner of the campaign's gateway; a
//! crash is recovered once for all of them; a campaign naming a gateway the server does not
//! have is refused when started through the server, and fails (saying why) when started
//! behind its back.

mod common;

use std::sync::{Arc, Mutex};
use std::time::Duration;

use common::{SleepingDriver, TestDb, one_flow, wait_for};
use qoelab_collector::campaign::{
    self, CampaignSpec, CampaignStatus, Profile, SessionStatus, Workload,
};
use qoelab_collector::events::Events;
use qoelab_collector::gateways::{Gateways, Multiplexer};
use qoelab_collector::runner::{Control, Network, Runner};
use qoelab_collector::session::{self, Results, SessionQuery};
use qoelab_collector::{Db, Error};
use qoelab_units::parse_limits;
use serde_json::json;
use tokio_util::sync::CancellationToken;

/// A link that remembers the limits it was shaped to and carries traffic at that rate.
#[derive(Clone, Default)]
struct Link {
    applied: Arc<Mutex<Vec<Option<u64>>>>,
}

impl Network for Link {
    async fn apply(&self, profile: &Profile) -> Result<(), String> {
        self.applied.lock().unwrap().push(profile.rate_bps);
        Ok(())
    }
    async fn clear(&self) -> Result<(), String> {
        Ok(())
    }
    async fn start_capture(&self) -> Result<String, String> {
        Ok("cap".into())
    }
    async fn stop_capture(&self, _: &str) -> Result<Results, String> {
        let bytes = self
            .applied
            .lock()
            .unwrap()
            .last()
            .copied()
            .flatten()
            .unwrap_or(1)
            / 8;
        Ok(one_flow(1, bytes))
    }
}

fn spec(limits: &str, sessions: u32, gateway: Option<&str>) -> CampaignSpec {
    CampaignSpec {
        name: "gateways".into(),
        sessions,
        duration_s: 0.3,
        warmup_s: 0.0,
        limits: parse_limits(limits).unwrap(),
        delays_ms: vec![],
        losses: vec![],
        workload: Workload::Video {
            abr: "buffer".into(),
        },
        seed: 1,
        gateway: gateway.map(str::to_string),
    }
}

/// Two gateways, `gw-a` and `gw-b`, with their links and runners (not running yet).
struct Two {
    gateways: Gateways,
    links: [Link; 2],
    runners: [Arc<Runner<Link, SleepingDriver>>; 2],
}

impl Two {
    fn new(db: &Db) -> Two {
        let gateways = Gateways::new(
            db.clone(),
            Events::default(),
            vec!["gw-a".into(), "gw-b".into()],
        );
        let links = [Link::default(), Link::default()];
        let runners =
            [0, 1].map(|at| Runner::on_gateway(&gateways, at, links[at].clone(), SleepingDriver));
        Two {
            gateways,
            links,
            runners,
        }
    }

    /// The server's control over both runners.
    fn control(&self) -> Multiplexer {
        let runners = self.runners.iter().map(|r| r.clone() as Arc<dyn Control>);
        Multiplexer::new(self.gateways.clone(), runners.collect())
    }

    /// Runs both runners until `shutdown`.
    fn run(
        &self,
        shutdown: &CancellationToken,
    ) -> Vec<tokio::task::JoinHandle<qoelab_collector::Result<()>>> {
        self.runners
            .iter()
            .map(|r| tokio::spawn(r.clone().run(shutdown.clone())))
            .collect()
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_gateway_runs_its_campaigns_on_its_link_side_by_side() {
    for t in TestDb::both().await {
        let two = Two::new(&t.db);
        let control = two.control();
        assert_eq!(control.gateways(), ["gw-a", "gw-b"]);
        let a = campaign::create(&t.db, &spec("1 mbit", 3, Some("gw-a")))
            .await
            .unwrap();
        let b = campaign::create(&t.db, &spec("8 mbit", 3, Some("gw-b")))
            .await
            .unwrap();
        let first = campaign::create(&t.db, &spec("2 mbit", 1, None))
            .await
            .unwrap();
        let shutdown = CancellationToken::new();
        let tasks = two.run(&shutdown);
        for id in [a, b, first] {
            control.start(id).await.unwrap();
        }
        let mut side_by_side = false;
        for _ in 0..400 {
            let (pa, pb) = (
                campaign::progress(&t.db, a).await.unwrap(),
                campaign::progress(&t.db, b).await.unwrap(),
            );
            side_by_side |= pa.running == 1 && pb.running == 1;
            if side_by_side || pb.done == 3 {
                break;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        assert!(
            side_by_side,
            "the two gateways ran sessions at the same time"
        );
        for id in [a, b, first] {
            wait_for(&t.db, id, CampaignStatus::Done).await;
        }
        shutdown.cancel();
        for task in tasks {
            task.await.unwrap().unwrap();
        }
        let applied = |at: usize| two.links[at].applied.lock().unwrap().clone();
        assert_eq!(
            applied(0),
            [Some(1_000_000); 3]
                .into_iter()
                .chain([Some(2_000_000)])
                .collect::<Vec<_>>(),
            "gw-a ran its campaign, then the one naming no gateway (the first's)"
        );
        assert_eq!(applied(1), vec![Some(8_000_000); 3]);
        for id in [a, b, first] {
            let p = campaign::progress(&t.db, id).await.unwrap();
            assert_eq!(p.done, p.total(), "campaign {id}: {p:?}");
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_campaign_for_a_gateway_the_server_lacks_is_refused_or_fails_saying_so() {
    let t = TestDb::sqlite().await;
    let two = Two::new(&t.db);
    let control = two.control();
    let lost = campaign::create(&t.db, &spec("1 mbit", 2, Some("gw-z")))
        .await
        .unwrap();
    let refused = control.start(lost).await.unwrap_err();
    assert!(
        matches!(&refused, Error::Invalid { field, value, .. } if field == "gateway" && value == "gw-z"),
        "{refused}"
    );
    assert!(
        refused.to_string().contains("gw-a, gw-b"),
        "names the gateways accepted: {refused}"
    );
    assert_eq!(
        campaign::get(&t.db, lost).await.unwrap().status,
        CampaignStatus::Pending
    );
    let mut external = spec("1 mbit", 1, Some("gw-z"));
    external.workload = Workload::External;
    let external = campaign::create(&t.db, &external).await.unwrap();
    let refused = control.external_next(external).await.unwrap_err();
    assert!(
        refused.to_string().starts_with("gateway = 'gw-z'"),
        "{refused}"
    );

    // Started behind the server's back (the CLI writes the database): the first gateway's
    // runner fails its sessions, naming the gateway.
    campaign::set_status(
        &t.db,
        lost,
        &[CampaignStatus::Pending],
        CampaignStatus::Running,
    )
    .await
    .unwrap();
    let shutdown = CancellationToken::new();
    let tasks = two.run(&shutdown);
    wait_for(&t.db, lost, CampaignStatus::Done).await;
    shutdown.cancel();
    for task in tasks {
        task.await.unwrap().unwrap();
    }
    let sessions = session::list(
        &t.db,
        &SessionQuery {
            campaign_id: Some(lost),
            ..Default::default()
        },
    )
    .await
    .unwrap();
    assert_eq!(sessions.total, 2);
    for s in sessions.sessions {
        assert_eq!(s.status, SessionStatus::Failed);
        let why = s.failure.unwrap();
        assert!(
            why.contains(
                "gateway = 'gw-z' is not accepted: one of this server's gateways: gw-a, gw-b"
            ),
            "{why}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_crash_is_recovered_once_however_many_gateways_share_the_database() {
    let t = TestDb::sqlite().await;
    let two = Two::new(&t.db);
    let control = two.control();
    let mut ext = spec("1 mbit", 2, Some("gw-b"));
    ext.workload = Workload::External;
    let id = campaign::create(&t.db, &ext).await.unwrap();
    control.start(id).await.unwrap();
    // A previous process handed out a session and died.
    let orphan = session::claim_next(&t.db, id).await.unwrap().unwrap();

    // gw-b hands out a session first: the orphan comes back, once.
    let handed = control.external_next(id).await.unwrap().unwrap();
    assert_eq!(handed.id, orphan.id, "the orphan went back to pending");
    control.external_start(handed.id).await.unwrap();
    // gw-a's runner starts only now: it must not take the session back.
    let shutdown = CancellationToken::new();
    let task = tokio::spawn(two.runners[0].clone().run(shutdown.clone()));
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(
        session::get(&t.db, handed.id).await.unwrap().status,
        SessionStatus::Running,
        "a second recovery took a handed-out session back"
    );
    control
        .external_finish(handed.id, json!({"stall_count": 0}))
        .await
        .unwrap();
    assert_eq!(
        session::get(&t.db, handed.id).await.unwrap().status,
        SessionStatus::Done
    );
    shutdown.cancel();
    task.await.unwrap().unwrap();
}
