//! Ingest over a real MQTT broker (mosquitto): analytics of the workload crate upload to a sink
//! that publishes its reports, gateways publish decision batches; the collector subscribes,
//! stores each message once, refuses bad ones, and keeps what arrives while the database is
//! unreachable until it is back (also across a restart of the collector).

mod common;

use std::future::Future;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use common::TestDb;
use qoelab_collector::Db;
use qoelab_collector::ingest::{self, QosReport};
use qoelab_collector::mqtt::{self, Received};
use qoelab_workload::iot::{Reporter, SinkConfig, UploaderConfig, run_sink, upload};
use qoelab_workload::model::ModelSet;
use qoelab_workload::testing::Mosquitto;
use rumqttc::{AsyncClient, Event, MqttOptions, Packet, QoS};
use serde_json::{Value, json};
use tokio::net::{TcpListener, TcpStream};
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

/// A subscriber running until its token is cancelled.
struct Subscriber {
    stop: CancellationToken,
    task: JoinHandle<qoelab_collector::Result<()>>,
}

impl Subscriber {
    fn start(db: &Db, broker: &Mosquitto, client_id: &str) -> Subscriber {
        let stop = CancellationToken::new();
        let task = tokio::spawn(mqtt::run(
            db.clone(),
            broker.url(),
            client_id.into(),
            stop.clone(),
        ));
        Subscriber { stop, task }
    }

    async fn stop(self) {
        self.stop.cancel();
        tokio::time::timeout(Duration::from_secs(10), self.task)
            .await
            .expect("the subscriber stops at once")
            .unwrap()
            .unwrap();
    }
}

/// Publishes `payload` on `topic` with QoS 1 and waits for the broker's acknowledgement.
async fn publish(broker: &Mosquitto, topic: &str, payload: &Value) {
    static N: AtomicUsize = AtomicUsize::new(0);
    let id = format!("test-pub-{}", N.fetch_add(1, Ordering::Relaxed));
    let (client, mut events) = AsyncClient::new(MqttOptions::new(id, "127.0.0.1", broker.port), 10);
    let payload = serde_json::to_vec(payload).unwrap();
    client
        .publish(topic, QoS::AtLeastOnce, false, payload)
        .await
        .unwrap();
    tokio::time::timeout(Duration::from_secs(10), async {
        while !matches!(events.poll().await, Ok(Event::Incoming(Packet::PubAck(_)))) {}
    })
    .await
    .expect("the broker acknowledges");
}

/// Waits up to `secs` for `check` to give `Some`.
async fn eventually<T, F, Fut>(what: &str, secs: u64, mut check: F) -> T
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Option<T>>,
{
    for _ in 0..secs * 10 {
        if let Some(found) = check().await {
            return found;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("{what} did not happen within {secs} s");
}

/// A `qoelab.iot-qos.v1` report of analytic gw7/`analytic` made at `report_ms`.
fn report(analytic: &str, report_ms: u64) -> Value {
    let report = json!({"schema": "qoelab.iot-qos.v1", "gateway": "gw7", "analytic": analytic,
        "kind": "object-detection", "location": "cloud", "knob": 0.5, "rate_bps": 400_000,
        "frame_bytes": 50_000, "period_ms": 1000, "deadline_ms": 500,
        "started_unix_ms": 1_700_000_000_000u64, "report_unix_ms": report_ms, "elapsed_s": 10.0,
        "final": false, "frames_expected": 60, "frames_due": 10, "frames_received": 10,
        "frames_on_time": 9, "frames_late": 1, "frames_missing": 0, "bytes_received": 500_200,
        "throughput_bps": 400_160, "latency_ms_mean": 120.0, "latency_ms_p95": 480.0,
        "latency_ms_max": 510.0, "lateness_ms_mean": 10.0, "completeness": 1.0,
        "on_time_ratio": 0.9, "expected_qos": 0.9, "achieved_qos": 0.81});
    // The fixture is a valid report.
    serde_json::from_value::<qoelab_workload::iot::QosReport>(report.clone()).unwrap();
    report
}

async fn qos_of(db: &Db, analytic: &str) -> Vec<QosReport> {
    ingest::qos_between(db, "gw7", analytic, 0, i64::MAX)
        .await
        .unwrap()
}

/// Publishes probe reports until one is stored: the subscription is in place.
async fn wait_subscribed(db: &Db, broker: &Mosquitto) {
    for i in 0..100u64 {
        publish(
            broker,
            "qoelab/gw7/probe/qos",
            &report("probe", 1_700_000_100_000 + i),
        )
        .await;
        tokio::time::sleep(Duration::from_millis(200)).await;
        if !qos_of(db, "probe").await.is_empty() {
            return;
        }
    }
    panic!("the subscriber never stored a probe");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn published_reports_are_stored_once() {
    let t = TestDb::sqlite().await;
    let broker = Mosquitto::start();
    let subscriber = Subscriber::start(&t.db, &broker, mqtt::DEFAULT_CLIENT_ID);
    wait_subscribed(&t.db, &broker).await;

    // A sink that publishes its reports, and one analytic uploading to it for 2 s.
    let reporter = Reporter::new(None, Some(&broker.url())).await.unwrap();
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let sink_addr = listener.local_addr().unwrap().to_string();
    let (finals_tx, mut finals) = tokio::sync::mpsc::unbounded_channel();
    let sink_stop = CancellationToken::new();
    let config = SinkConfig {
        reporter: reporter.clone(),
        report_interval: Duration::from_millis(500),
    };
    let sink = tokio::spawn(run_sink(
        listener,
        config,
        sink_stop.clone().cancelled_owned(),
        move |r| {
            let _ = finals_tx.send(r.clone());
        },
    ));
    let mut uploader =
        UploaderConfig::new(&sink_addr, "object-detection", 0.5, Duration::from_secs(2));
    uploader.gateway = "gw7".into();
    uploader.analytic = "cam1".into();
    upload(&uploader, &ModelSet::builtin()).await.unwrap();
    let last = tokio::time::timeout(Duration::from_secs(10), finals.recv())
        .await
        .unwrap()
        .unwrap();

    // The final report (and the periodic ones) arrive in the database.
    let stored = eventually("the final report stored", 10, || async {
        let stored = qos_of(&t.db, "cam1").await;
        stored
            .iter()
            .any(|r| r.ts_ms == last.report_unix_ms as i64)
            .then_some(stored)
    })
    .await;
    let final_row = stored
        .iter()
        .find(|r| r.ts_ms == last.report_unix_ms as i64)
        .unwrap();
    assert_eq!(final_row.achieved_qos, last.achieved_qos);
    assert_eq!(final_row.kind, "object-detection");
    let count = stored.len();

    // The same report again, as the broker redelivers it: recognised and stored once.
    let payload = serde_json::to_vec(&last).unwrap();
    let again = mqtt::receive(&t.db, "qoelab/gw7/cam1/qos", &payload)
        .await
        .unwrap();
    assert_eq!(again, Received::Duplicate);
    // Published again through the broker, then a probe behind it: stored once.
    reporter.send(&last).await;
    publish(
        &broker,
        "qoelab/gw7/cam2/qos",
        &report("cam2", 1_700_000_200_000),
    )
    .await;
    eventually("the message behind the repeat stored", 10, || async {
        (qos_of(&t.db, "cam2").await.len() == 1).then_some(())
    })
    .await;
    assert_eq!(qos_of(&t.db, "cam1").await.len(), count);

    subscriber.stop().await;
    sink_stop.cancel();
    let _ = sink.await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn decision_batches_and_report_arrays_are_stored_and_mismatches_refused() {
    let t = TestDb::sqlite().await;
    let broker = Mosquitto::start();
    let subscriber = Subscriber::start(&t.db, &broker, mqtt::DEFAULT_CLIENT_ID);
    wait_subscribed(&t.db, &broker).await;

    let placement = |analytic: &str| {
        json!({"gateway": "gw7", "analytic": analytic, "location": "edge", "image": "yolo:1",
            "layers_fetched": ["sha256:a"], "bytes_fetched": 1_048_576, "ts_ms": 1_700_000_000_000i64})
    };
    let allocation = json!({"gateway": "gw7", "analytic": "cam1", "knob": 0.6, "rate_bps": 500_000,
        "algorithm": "raa", "ts_ms": 1_700_000_030_000i64});
    // A batch without a key, published twice (as a gateway retrying after a lost
    // acknowledgement would): stored once.
    let placements = json!({"items": [placement("cam1"), placement("cam2")]});
    publish(&broker, "qoelab/gw7/placements", &placements).await;
    publish(&broker, "qoelab/gw7/placements", &placements).await;
    // Items of another gateway than the topic's: refused, nothing of the batch stored.
    let foreign = json!({"items": [placement("cam3"), {"gateway": "gw8", "analytic": "cam3",
        "location": "cloud", "image": "yolo:1", "ts_ms": 1_700_000_000_000i64}]});
    publish(&broker, "qoelab/gw7/placements", &foreign).await;
    publish(
        &broker,
        "qoelab/gw7/allocations",
        &json!({"idempotency_key": "gw7-alloc-1", "items": [allocation]}),
    )
    .await;
    // An array of reports on a QoS topic: one batch.
    let reports = json!([
        report("cam1", 1_700_000_010_000),
        report("cam1", 1_700_000_020_000)
    ]);
    publish(&broker, "qoelab/gw7/cam1/qos", &reports).await;

    // Messages are stored in order: once the last is there, the others have been handled.
    eventually("the array of reports stored", 10, || async {
        (qos_of(&t.db, "cam1").await.len() == 2).then_some(())
    })
    .await;
    let allocations = ingest::allocations_between(&t.db, "gw7", "cam1", 0, i64::MAX)
        .await
        .unwrap();
    assert_eq!(allocations.len(), 1);
    assert_eq!(allocations[0].rate_bps, 500_000);
    let placed: Vec<(String,)> =
        sqlx::query_as("SELECT analytic FROM placement_decisions ORDER BY analytic")
            .fetch_all(t.db.pool())
            .await
            .unwrap();
    assert_eq!(placed, vec![("cam1".into(),), ("cam2".into(),)]);

    // The refusals say why.
    let bytes = serde_json::to_vec(&foreign).unwrap();
    let Received::Refused(why) = mqtt::receive(&t.db, "qoelab/gw7/placements", &bytes)
        .await
        .unwrap()
    else {
        panic!("a foreign gateway's decision was accepted");
    };
    assert!(
        why.contains("items[1].gateway = 'gw8' is not the topic's gateway 'gw7'"),
        "{why}"
    );
    let bytes = serde_json::to_vec(&report("cam1", 1_700_000_030_000)).unwrap();
    let Received::Refused(why) = mqtt::receive(&t.db, "qoelab/gw7/cam9/qos", &bytes)
        .await
        .unwrap()
    else {
        panic!("a report of another analytic than the topic's was accepted");
    };
    assert!(why.contains("the topic names analytic gw7/cam9"), "{why}");
    subscriber.stop().await;
}

#[tokio::test]
async fn bad_messages_are_refused_and_nothing_is_stored() {
    let t = TestDb::sqlite().await;
    let refused = |r: Received| match r {
        Received::Refused(why) => why,
        other => panic!("accepted: {other:?}"),
    };
    let why = refused(
        mqtt::receive(&t.db, "qoelab/gw/cam/qos", b"{not json")
            .await
            .unwrap(),
    );
    assert!(why.contains("not a qoelab.iot-qos.v1 report"), "{why}");
    let why = refused(mqtt::receive(&t.db, "qoelab/qos", b"{}").await.unwrap());
    assert!(why.contains("qoelab/<gateway>/<analytic>/qos"), "{why}");
    let why = refused(
        mqtt::receive(
            &t.db,
            "qoelab/gw/allocations",
            br#"{"items": [{"gateway": "gw"}]}"#,
        )
        .await
        .unwrap(),
    );
    assert!(
        why.contains("items[0]") && why.contains("analytic"),
        "{why}"
    );
    assert!(
        ingest::qos_between(&t.db, "gw", "cam", 0, i64::MAX)
            .await
            .unwrap()
            .is_empty()
    );
}

/// A TCP relay to the test PostgreSQL that can be cut: while cut, relayed connections are
/// closed and new ones are closed as soon as they arrive, as when the server is unreachable.
/// (The test PostgreSQL itself is shared with other tests and keeps running.)
struct Relay {
    port: u16,
    state: Arc<std::sync::Mutex<RelayState>>,
    task: JoinHandle<()>,
}

struct RelayState {
    /// Cancelled when the relay is cut; a fresh token while it relays.
    open: CancellationToken,
    /// Connections refused while cut.
    refused: usize,
}

impl Relay {
    async fn start(target: String) -> Relay {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let state = Arc::new(std::sync::Mutex::new(RelayState {
            open: CancellationToken::new(),
            refused: 0,
        }));
        let shared = state.clone();
        let task = tokio::spawn(async move {
            while let Ok((mut inbound, _)) = listener.accept().await {
                let open = {
                    let mut state = shared.lock().unwrap();
                    if state.open.is_cancelled() {
                        state.refused += 1;
                        continue;
                    }
                    state.open.clone()
                };
                let target = target.clone();
                tokio::spawn(async move {
                    let Ok(mut outbound) = TcpStream::connect(&target).await else {
                        return;
                    };
                    tokio::select! {
                        _ = open.cancelled() => {}
                        _ = tokio::io::copy_bidirectional(&mut inbound, &mut outbound) => {}
                    }
                });
            }
        });
        Relay { port, state, task }
    }

    fn cut(&self) {
        let mut state = self.state.lock().unwrap();
        state.open.cancel();
        state.refused = 0;
    }

    fn restore(&self) {
        self.state.lock().unwrap().open = CancellationToken::new();
    }

    fn refused(&self) -> usize {
        self.state.lock().unwrap().refused
    }
}

impl Drop for Relay {
    fn drop(&mut self) {
        self.task.abort();
        self.state.lock().unwrap().open.cancel();
    }
}

/// `url` with its host and port replaced by 127.0.0.1:`port`; also returns the old HOST:PORT.
fn through(url: &str, port: u16) -> (String, String) {
    let (head, rest) = url.split_once('@').unwrap();
    let (server, path) = rest.split_once('/').unwrap();
    let server = if server.contains(':') {
        server.to_string()
    } else {
        format!("{server}:5432")
    };
    (format!("{head}@127.0.0.1:{port}/{path}"), server)
}

/// Cuts the database off, publishes a report of cam1 made at `ts_ms`, and waits until the
/// collector has tried to store it.
async fn publish_while_cut(relay: &Relay, broker: &Mosquitto, ts_ms: u64) {
    relay.cut();
    publish(broker, "qoelab/gw7/cam1/qos", &report("cam1", ts_ms)).await;
    eventually(
        "a store attempt on the unreachable database",
        30,
        || async { (relay.refused() > 0).then_some(()) },
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn messages_wait_for_an_unreachable_database_also_across_a_restart() {
    let t = TestDb::postgres().await;
    let (_, server) = through(&t.url, 0);
    let relay = Relay::start(server).await;
    let (url, _) = through(&t.url, relay.port);
    let db = Db::connect(&url).await.unwrap();
    let broker = Mosquitto::start();
    let subscriber = Subscriber::start(&db, &broker, "collector-a");
    wait_subscribed(&t.db, &broker).await;

    // The database becomes unreachable; a report arrives and waits for it.
    publish_while_cut(&relay, &broker, 1_700_000_001_000).await;
    assert!(qos_of(&t.db, "cam1").await.is_empty());
    relay.restore();
    eventually(
        "the report stored once the database is back",
        60,
        || async { (qos_of(&t.db, "cam1").await.len() == 1).then_some(()) },
    )
    .await;

    // Unreachable again; this time the collector stops before the database is back. The
    // report was not acknowledged, so the broker delivers it again to the collector's next
    // start (same client id).
    publish_while_cut(&relay, &broker, 1_700_000_002_000).await;
    subscriber.stop().await;
    relay.restore();
    let restarted = Subscriber::start(&db, &broker, "collector-a");
    let stored = eventually("the report stored after the restart", 60, || async {
        let stored = qos_of(&t.db, "cam1").await;
        (stored.len() >= 2).then_some(stored)
    })
    .await;
    // Each report once, the first one not again.
    let times: Vec<i64> = stored.iter().map(|r| r.ts_ms).collect();
    assert_eq!(times, vec![1_700_000_001_000, 1_700_000_002_000]);
    tokio::time::sleep(Duration::from_secs(1)).await;
    assert_eq!(qos_of(&t.db, "cam1").await.len(), 2);
    restarted.stop().await;
    db.close().await;
}
