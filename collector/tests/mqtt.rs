//! QoS reports over a real MQTT broker (mosquitto): analytics of the workload crate upload to a
//! sink that publishes its reports; the collector subscribes and stores each once.

mod common;

use std::time::Duration;

use common::TestDb;
use qoelab_collector::ingest;
use qoelab_collector::mqtt::{self, Received};
use qoelab_workload::iot::{Reporter, SinkConfig, UploaderConfig, run_sink, upload};
use qoelab_workload::model::ModelSet;
use qoelab_workload::testing::Mosquitto;
use tokio_util::sync::CancellationToken;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn published_reports_are_stored_once() {
    let t = TestDb::sqlite().await;
    let broker = Mosquitto::start();
    let stop = CancellationToken::new();
    let subscriber = tokio::spawn(mqtt::run(t.db.clone(), broker.url(), stop.clone()));
    tokio::time::sleep(Duration::from_millis(500)).await;

    // A sink that publishes its reports, and one analytic uploading to it for 2 s.
    let reporter = Reporter::new(None, Some(&broker.url())).await.unwrap();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
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
    let mut stored = Vec::new();
    for _ in 0..100 {
        stored = ingest::qos_between(&t.db, "gw7", "cam1", 0, i64::MAX)
            .await
            .unwrap();
        if stored.iter().any(|r| r.ts_ms == last.report_unix_ms as i64) {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let final_row = stored
        .iter()
        .find(|r| r.ts_ms == last.report_unix_ms as i64)
        .expect("the final report is stored");
    assert_eq!(final_row.achieved_qos, last.achieved_qos);
    assert_eq!(final_row.kind, "object-detection");
    let count = stored.len();

    // The same report again, as the broker redelivers it: recognised and stored once.
    let payload = serde_json::to_vec(&last).unwrap();
    let again = mqtt::receive(&t.db, "qoelab/gw7/cam1/qos", &payload)
        .await
        .unwrap();
    assert_eq!(again, Received::Duplicate);
    // Published again through the broker: stored once.
    reporter.send(&last).await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(
        ingest::qos_between(&t.db, "gw7", "cam1", 0, i64::MAX)
            .await
            .unwrap()
            .len(),
        count
    );

    stop.cancel();
    sink_stop.cancel();
    subscriber.await.unwrap().unwrap();
    let _ = sink.await;
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
    assert!(
        ingest::qos_between(&t.db, "gw", "cam", 0, i64::MAX)
            .await
            .unwrap()
            .is_empty()
    );
}
