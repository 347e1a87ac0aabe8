//! IoT uploads over real TCP: a sink with reports over HTTP and MQTT (a real mosquitto) on
//! loopback, and uploads through a lab router shaped to 40 kbit/s.

mod common;

use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::routing::post;
use axum::{Json, Router};
use common::{Background, background, closed_port, shape};
use qoelab_lab::{Lab, standard};
use qoelab_workload::iot::{
    QOS_SCHEMA, QosReport, Reporter, SinkConfig, UploaderConfig, run_sink, run_sinks, upload,
};
use qoelab_workload::model::ModelSet;
use qoelab_workload::testing::Mosquitto;
use rumqttc::{AsyncClient, Event, MqttOptions, Packet, QoS};

type Reports = Arc<Mutex<Vec<QosReport>>>;

/// A sink in the background; its final reports are collected.
fn sink(ns: Option<&qoelab_lab::NetNs>, addr: &str, reporter: Reporter) -> (Background, Reports) {
    let finals: Reports = Arc::default();
    let seen = finals.clone();
    let config = SinkConfig {
        reporter,
        report_interval: Duration::from_secs(1),
    };
    let server = background(ns, addr, move |listener, stop| async move {
        let on_final = move |r: &QosReport| seen.lock().unwrap().push(r.clone());
        run_sink(listener, config, async { drop(stop.await) }, on_final)
            .await
            .unwrap();
    });
    (server, finals)
}

/// An HTTP endpoint that stores the QoS reports POSTed to `/qos`.
fn report_receiver() -> (Background, Reports) {
    let received: Reports = Arc::default();
    let store = received.clone();
    let server = background(None, "127.0.0.1:0", move |listener, stop| async move {
        let app = Router::new().route(
            "/qos",
            post(move |Json(report): Json<QosReport>| async move {
                store.lock().unwrap().push(report);
            }),
        );
        axum::serve(listener, app)
            .with_graceful_shutdown(async { drop(stop.await) })
            .await
            .unwrap();
    });
    (server, received)
}

fn config(sink: &str, knob: f64, seconds: u64) -> UploaderConfig {
    let mut config =
        UploaderConfig::new(sink, "object-detection", knob, Duration::from_secs(seconds));
    config.gateway = "gw1".into();
    config.analytic = "cam1".into();
    config
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unshaped_upload_achieves_its_expected_qos_and_reports_over_http() {
    let (receiver, posted) = report_receiver();
    let url = format!("http://{}/qos", receiver.addr);
    let reporter = Reporter::new(Some(&url), None).await.unwrap();
    let (server, finals) = sink(None, "127.0.0.1:0", reporter);
    let mut config = config(&server.addr.to_string(), 0.5, 3);
    config.period = Duration::from_millis(250);

    let report = upload(&config, &ModelSet::builtin()).await.unwrap();
    assert_eq!(report.schema, QOS_SCHEMA);
    assert!(report.is_final);
    assert_eq!(
        (report.spec.gateway.as_str(), report.spec.analytic.as_str()),
        ("gw1", "cam1")
    );
    assert_eq!(report.frames_expected, 12);
    assert_eq!(report.frames_on_time, 12, "{report:?}");
    assert_eq!((report.frames_late, report.frames_missing), (0, 0));
    assert_eq!(report.achieved_qos, report.expected_qos);
    assert!((report.expected_qos - 0.865).abs() < 1e-9);
    // 31.7 kbit/s of payload plus 20-byte headers.
    assert_eq!(report.bytes_received, 12 * (991 + 20));
    assert!(report.latency_ms_max.unwrap() < 250.0, "{report:?}");

    drop(server);
    assert_eq!(
        finals.lock().unwrap().as_slice(),
        std::slice::from_ref(&report)
    );
    let posted = posted.lock().unwrap().clone();
    assert_eq!(posted.last(), Some(&report), "the final report was POSTed");
    let periodic: Vec<&QosReport> = posted.iter().filter(|r| !r.is_final).collect();
    assert!(periodic.len() >= 2, "{} periodic reports", periodic.len());
    assert!(
        periodic
            .windows(2)
            .all(|w| w[0].frames_due <= w[1].frames_due)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_sink_serves_every_port_it_listens_on() {
    let mut listeners = Vec::new();
    for _ in 0..2 {
        listeners.push(tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap());
    }
    let ports: Vec<String> = listeners
        .iter()
        .map(|l| l.local_addr().unwrap().to_string())
        .collect();
    let finals: Reports = Arc::default();
    let seen = finals.clone();
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let sink_config = SinkConfig {
        reporter: Reporter::none(),
        report_interval: Duration::from_secs(1),
    };
    let server = tokio::spawn(run_sinks(
        listeners,
        sink_config,
        async { drop(stopped.await) },
        move |r: &QosReport| seen.lock().unwrap().push(r.clone()),
    ));
    let uploaders: Vec<UploaderConfig> = ports
        .iter()
        .enumerate()
        .map(|(i, port)| {
            let mut c = config(port, 0.5, 1);
            c.analytic = format!("cam{i}");
            c.period = Duration::from_millis(250);
            c
        })
        .collect();
    let models = ModelSet::builtin();
    let (first, second) = tokio::try_join!(
        upload(&uploaders[0], &models),
        upload(&uploaders[1], &models)
    )
    .unwrap();
    for (report, name) in [(&first, "cam0"), (&second, "cam1")] {
        assert_eq!(report.spec.analytic, name);
        assert_eq!(report.frames_on_time, 4, "{report:?}");
    }
    stop.send(()).unwrap();
    server.await.unwrap().unwrap();
    let mut names: Vec<String> = finals
        .lock()
        .unwrap()
        .iter()
        .map(|r| r.spec.analytic.clone())
        .collect();
    names.sort();
    assert_eq!(names, ["cam0", "cam1"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_sink_refuses_bad_sessions_and_reporters_bad_destinations() {
    let (server, _) = sink(None, "127.0.0.1:0", Reporter::none());
    // A hello that names no analytic the sink accepts.
    let mut stream = tokio::net::TcpStream::connect(server.addr).await.unwrap();
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    stream.write_all(b"{\"version\": 1}\n").await.unwrap();
    let mut reply = String::new();
    stream.read_to_string(&mut reply).await.unwrap();
    assert!(
        reply.contains("\"error\"") && reply.contains("not a valid hello"),
        "{reply}"
    );

    let port = closed_port();
    let url = format!("mqtt://127.0.0.1:{port}");
    let err = Reporter::new(None, Some(&url))
        .await
        .unwrap_err()
        .to_string();
    assert!(err.contains(&url) && err.contains("refused"), "{err}");
    let err = Reporter::new(Some("localhost/qos"), None)
        .await
        .unwrap_err()
        .to_string();
    assert!(err.contains("'localhost/qos'"), "{err}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reports_are_published_to_mqtt_per_gateway_and_analytic() {
    let broker = Mosquitto::start();
    let mut options = MqttOptions::new("qoelab-test-subscriber", "127.0.0.1", broker.port);
    options.set_keep_alive(Duration::from_secs(5));
    let (subscriber, mut events) = AsyncClient::new(options, 16);
    subscriber
        .subscribe("qoelab/+/+/qos", QoS::AtLeastOnce)
        .await
        .unwrap();
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
    let (subscribed_tx, subscribed_rx) = tokio::sync::oneshot::channel();
    tokio::spawn(async move {
        let mut subscribed = Some(subscribed_tx);
        while let Ok(event) = events.poll().await {
            match event {
                Event::Incoming(Packet::SubAck(_)) => {
                    subscribed.take().map(|s| s.send(()));
                }
                Event::Incoming(Packet::Publish(p)) => {
                    let _ = tx.send((p.topic.clone(), p.payload.to_vec()));
                }
                _ => {}
            }
        }
    });
    subscribed_rx.await.unwrap();

    let url = format!("mqtt://127.0.0.1:{}", broker.port);
    let reporter = Reporter::new(None, Some(&url)).await.unwrap();
    let (server, _) = sink(None, "127.0.0.1:0", reporter.clone());
    let config = config(&server.addr.to_string(), 1.0, 2);
    let report = upload(&config, &ModelSet::builtin()).await.unwrap();

    let final_message = tokio::time::timeout(Duration::from_secs(10), async {
        loop {
            let (topic, payload) = rx.recv().await.unwrap();
            let received: QosReport = serde_json::from_slice(&payload).unwrap();
            assert_eq!(topic, "qoelab/gw1/cam1/qos");
            if received.is_final {
                return received;
            }
        }
    })
    .await
    .expect("the final report reaches the broker");
    assert_eq!(final_message, report);
    drop(server);
    reporter.close().await;
}

/// Uploads `knob` through the lab's uplink shaped to 40 kbit/s for 20 s.
fn upload_through_40_kbit(knob: f64) -> QosReport {
    let lab = Lab::standard(None).unwrap();
    shape(&lab, &lab.uplink(), 40_000);
    let (server, _) = sink(
        Some(lab.server().unwrap()),
        &format!("{}:0", standard::SERVER_ADDR),
        Reporter::none(),
    );
    let config = config(&server.addr.to_string(), knob, 20);
    let report = lab
        .client()
        .unwrap()
        .run_async(|| async { upload(&config, &ModelSet::builtin()).await })
        .unwrap()
        .unwrap();
    eprintln!(
        "K={knob}: {} bit/s expected QoS {} achieved {:.3}: on time {}/{} late {} missing {}, \
         latency mean {:?} ms max {:?} ms, throughput {} bit/s",
        report.spec.rate_bps,
        report.expected_qos,
        report.achieved_qos,
        report.frames_on_time,
        report.frames_due,
        report.frames_late,
        report.frames_missing,
        report.latency_ms_mean,
        report.latency_ms_max,
        report.throughput_bps
    );
    report
}

#[test]
fn above_the_link_rate_frames_miss_deadlines_and_qos_drops() {
    let report = upload_through_40_kbit(1.0);
    assert!(report.spec.rate_bps > 50_000);
    assert!(
        report.frames_late + report.frames_missing > report.frames_due / 2,
        "{report:?}"
    );
    assert!(
        report.achieved_qos < 0.5 * report.expected_qos,
        "{report:?}"
    );
    // The link, not the uploader, set the pace: at most 40 kbit/s arrived.
    assert!(report.throughput_bps <= 42_000, "{report:?}");
}

#[test]
fn below_the_link_rate_frames_are_on_time_and_qos_holds() {
    let report = upload_through_40_kbit(0.2);
    assert!(report.spec.rate_bps < 20_000);
    assert_eq!(report.frames_on_time, report.frames_due, "{report:?}");
    assert_eq!(report.achieved_qos, report.expected_qos);
    assert_eq!(report.frames_due, 20);
}
