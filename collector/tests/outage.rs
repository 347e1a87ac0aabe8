//! PostgreSQL stops in the middle of a session and comes back: the session's results are
//! stored once it is back, the campaign completes, nothing is lost or duplicated. The test
//! runs its own PostgreSQL cluster so stopping it disturbs no other test.

mod common;

use std::net::TcpListener;
use std::path::PathBuf;
use std::process::Command;
use std::time::Duration;

use common::{SleepingDriver, one_flow};
use qoelab_collector::Db;
use qoelab_collector::campaign::{
    self, CampaignSpec, CampaignStatus, Profile, SessionStatus, Workload,
};
use qoelab_collector::events::{Event, Events};
use qoelab_collector::runner::{Network, Runner};
use qoelab_collector::session::{self, Results, SessionQuery};
use qoelab_units::parse_limits;
use tokio_util::sync::CancellationToken;

const PG_BIN: &str = "/usr/lib/postgresql/15/bin";

/// A throw-away PostgreSQL cluster run by the `postgres` user.
struct Cluster {
    dir: PathBuf,
    port: u16,
}

impl Cluster {
    fn create() -> Cluster {
        let port = TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let dir = std::env::temp_dir().join(format!("qlpg{}_{port}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        run(Command::new("chown").args(["postgres:postgres", dir.to_str().unwrap()]));
        let data = dir.join("data");
        run(Command::new("runuser").args([
            "-u",
            "postgres",
            "--",
            &format!("{PG_BIN}/initdb"),
            "-A",
            "trust",
            "-U",
            "qoelab",
            "-D",
            data.to_str().unwrap(),
        ]));
        let cluster = Cluster { dir, port };
        cluster.start();
        cluster
    }

    fn pg_ctl(&self, args: &[&str]) {
        let data = self.dir.join("data");
        let options = format!(
            "-p {} -k {} -c listen_addresses=127.0.0.1",
            self.port,
            self.dir.display()
        );
        let mut cmd = Command::new("runuser");
        cmd.args([
            "-u",
            "postgres",
            "--",
            &format!("{PG_BIN}/pg_ctl"),
            "-D",
            data.to_str().unwrap(),
            "-o",
            &options,
            "-l",
        ])
        .arg(self.dir.join("log"))
        .args(args);
        run(&mut cmd);
    }

    fn start(&self) {
        self.pg_ctl(&["-w", "start"]);
    }

    fn stop(&self) {
        self.pg_ctl(&["-w", "-m", "fast", "stop"]);
    }

    fn url(&self) -> String {
        format!("postgres://qoelab@127.0.0.1:{}/postgres", self.port)
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        let _ = std::panic::catch_unwind(|| self.stop());
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

fn run(cmd: &mut Command) {
    let out = cmd.output().unwrap();
    assert!(
        out.status.success(),
        "{cmd:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[derive(Clone)]
struct OneFlow;

impl Network for OneFlow {
    async fn apply(&self, _: &Profile) -> Result<(), String> {
        Ok(())
    }
    async fn clear(&self) -> Result<(), String> {
        Ok(())
    }
    async fn start_capture(&self) -> Result<String, String> {
        Ok("cap".into())
    }
    async fn stop_capture(&self, _: &str) -> Result<Results, String> {
        Ok(one_flow(100, 100_000))
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn results_wait_for_postgres_to_come_back() {
    let cluster = Cluster::create();
    let db = Db::connect(&cluster.url()).await.unwrap();
    let spec = CampaignSpec {
        name: "outage".into(),
        sessions: 2,
        duration_s: 2.0,
        warmup_s: 0.0,
        limits: parse_limits("2 mbit").unwrap(),
        delays_ms: vec![],
        losses: vec![],
        workload: Workload::Video { abr: "rate".into() },
        seed: 1,
        gateway: None,
    };
    let id = campaign::create(&db, &spec).await.unwrap();
    let events = Events::default();
    let mut listener = events.subscribe();
    let runner = Runner::new(db.clone(), OneFlow, SleepingDriver, events);
    let shutdown = CancellationToken::new();
    let task = tokio::spawn(runner.clone().run(shutdown.clone()));
    runner.start(id).await.unwrap();
    while campaign::progress(&db, id).await.unwrap().running == 0 {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    // The database goes away while the first session runs, for longer than the session.
    cluster.stop();
    let mut retried = false;
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    while !retried && tokio::time::Instant::now() < deadline {
        if let Ok(Ok(Event::StoreRetrying { .. })) =
            tokio::time::timeout(Duration::from_secs(1), listener.recv()).await
        {
            retried = true;
        }
    }
    assert!(
        retried,
        "the runner never reported waiting for the database"
    );
    cluster.start();
    for _ in 0..300 {
        if matches!(
            campaign::get(&db, id).await.map(|c| c.status),
            Ok(CampaignStatus::Done)
        ) {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    shutdown.cancel();
    task.await.unwrap().unwrap();
    let all = session::list(
        &db,
        &SessionQuery {
            campaign_id: Some(id),
            ..Default::default()
        },
    )
    .await
    .unwrap();
    assert!(
        all.sessions.iter().all(|s| s.status == SessionStatus::Done),
        "{:?}",
        all.sessions
    );
    for s in &all.sessions {
        assert_eq!(session::detail(&db, s.id).await.unwrap().flows.len(), 1);
    }
}
