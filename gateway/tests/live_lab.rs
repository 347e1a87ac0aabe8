//! Live allocation over a real lab: analytics of the workload crate upload from the client
//! namespace through the router to sinks in the server namespace; the service shapes the
//! router's uplink through an in-process agent; measured rates come from the agent's per-class
//! counters (frame bytes).
//!
//! Every uploader runs at knob 1 (raw audio at 688.6 kbit/s, detection frames at 58 kbit/s),
//! more than any share of the 1 Mbit/s uplink, so each class is full and what it carries is its
//! shaped rate.

mod common;

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use common::{Broker, Gateway, KnobReceiver, Sinks, Uploader, call};
use qoelab_agent::client::AgentClient;
use qoelab_gateway::knob::{KnobMessage, Publisher, now_ms};
use qoelab_gateway::record::DecisionStore;
use qoelab_lab::standard::SERVER_ADDR;
use qoelab_shaper::{Direction, IfaceRef, InterfaceStats};
use rumqttc::{AsyncClient, Event, MqttOptions, Packet, QoS};
use serde_json::{Value, json};

const BUDGET_BPS: u64 = 1_000_000;
/// How far a class's measured rate may be from its allocation.
const TOLERANCE: f64 = 0.05;

fn sink(i: u16) -> SocketAddr {
    SocketAddr::from((SERVER_ADDR, 9100 + i))
}

/// The registration of analytic `id` uploading to sink `i`.
fn registration(id: &str, kind: &str, weight: f64, i: u16, knob_url: &str) -> String {
    json!({
        "id": id, "kind": kind, "weight": weight, "location": "cloud",
        "port": sink(i).port(), "knob_url": knob_url,
    })
    .to_string()
}

/// Each analytic's allocated rate in a decision.
fn allocated(decision: &Value) -> HashMap<String, u64> {
    decision["allocation"]["shares"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|s| s["admitted"] == true)
        .map(|s| {
            (
                s["id"].as_str().unwrap().to_string(),
                s["rate_bps"].as_u64().unwrap(),
            )
        })
        .collect()
}

/// Measures every class over `window_ms` and checks each analytic's rate against its
/// allocation; returns (analytic, allocated, measured) rows. A window's edges may cut one
/// frame (12 kbit) either way: at 47 kbit/s (the camera) that is 2.6% over 10 s.
async fn measure(
    agent: &AgentClient,
    uplink: &IfaceRef,
    allocation: &HashMap<String, u64>,
    window_ms: u64,
) -> Vec<(String, u64, u64)> {
    let stats = agent.stats(uplink, window_ms).await.unwrap();
    let mut rows = Vec::new();
    for (id, &rate) in allocation {
        let class = stats
            .class(Direction::Egress, id)
            .expect("a class per analytic");
        let measured = class.measured_bps.unwrap();
        eprintln!("{id}: allocated {rate} bit/s, measured {measured} bit/s");
        assert!(
            (measured as f64 - rate as f64).abs() <= TOLERANCE * rate as f64,
            "{id}: measured {measured} bit/s, allocated {rate} bit/s (±{TOLERANCE})"
        );
        rows.push((id.clone(), rate, measured));
    }
    rows
}

/// Reads the uplink's classes every 50 ms until told to stop.
fn sample(
    agent: AgentClient,
    uplink: IfaceRef,
) -> (
    Arc<Mutex<Vec<InterfaceStats>>>,
    tokio::sync::oneshot::Sender<()>,
) {
    let samples: Arc<Mutex<Vec<InterfaceStats>>> = Arc::default();
    let (stop, mut stopped) = tokio::sync::oneshot::channel();
    let kept = samples.clone();
    tokio::spawn(async move {
        loop {
            if let Ok(stats) = agent.stats(&uplink, 0).await {
                kept.lock().unwrap().push(stats);
            }
            tokio::select! {
                _ = tokio::time::sleep(Duration::from_millis(50)) => {}
                _ = &mut stopped => return,
            }
        }
    });
    (samples, stop)
}

/// Messages seen on a broker: (topic, payload).
type Seen = Arc<Mutex<Vec<(String, Vec<u8>)>>>;

/// Subscribes to every knob topic of the broker.
async fn subscribe(broker: &Broker) -> Seen {
    let mut options = MqttOptions::new("qoelab-knob-watcher", "127.0.0.1", broker.port);
    options.set_keep_alive(Duration::from_secs(5));
    let (client, mut events) = AsyncClient::new(options, 64);
    client
        .subscribe("qoelab/+/+/knob", QoS::AtLeastOnce)
        .await
        .unwrap();
    let seen: Seen = Arc::default();
    let kept = seen.clone();
    let (subscribed, acked) = tokio::sync::oneshot::channel();
    tokio::spawn(async move {
        let _client = client;
        let mut subscribed = Some(subscribed);
        while let Ok(event) = events.poll().await {
            match event {
                Event::Incoming(Packet::SubAck(_)) => {
                    subscribed.take().map(|s| s.send(()));
                }
                Event::Incoming(Packet::Publish(p)) => {
                    kept.lock()
                        .unwrap()
                        .push((p.topic.clone(), p.payload.to_vec()));
                }
                _ => {}
            }
        }
    });
    acked.await.unwrap();
    seen
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn analytics_get_their_allocated_rates_and_an_arrival_reallocates_in_place() {
    let broker = Broker::start();
    let mqtt = subscribe(&broker).await;
    let db_dir = tempfile::tempdir().unwrap();
    let db = common::sqlite(db_dir.path()).await;
    let store = DecisionStore::new(db.clone(), common::GATEWAY, now_ms());
    let publisher = Publisher::connect(Some(&broker.url)).await.unwrap();
    let gw = Gateway::start(BUDGET_BPS, publisher, Some(store)).await;
    let agent = gw.agent.client().clone();
    let knobs = KnobReceiver::start().await;
    let _sinks = Sinks::start(
        gw.lab.server().unwrap(),
        SERVER_ADDR,
        &[9101, 9102, 9103, 9104],
    );
    let analytics = format!("{}/v1/analytics", gw.api);
    let (samples, stop_sampling) = sample(agent.clone(), gw.uplink.clone());

    // Three raw-audio analytics register; each starts uploading once its knob arrived.
    let mut uploaders = HashMap::new();
    let mut decision = Value::Null;
    for (i, weight) in [(1, 1.0), (2, 2.0), (3, 3.0)] {
        let id = format!("mic-{i}");
        let body = registration(&id, "audio-classification", weight, i, &knobs.url);
        let (status, answer) = call("POST", &analytics, Some(&body)).await;
        assert_eq!(status, 201, "{answer}");
        assert!(!knobs.of(&id).is_empty(), "{id} was told its knob");
        let client = gw.lab.client().unwrap();
        uploaders.insert(
            id.clone(),
            Uploader::start(client, sink(i), &id, "audio-classification", 1.0),
        );
        decision = answer;
    }
    let three = allocated(&decision);
    assert_eq!(three.len(), 3);
    assert!(three.values().sum::<u64>() <= BUDGET_BPS);
    tokio::time::sleep(Duration::from_secs(3)).await;
    let before_rows = measure(&agent, &gw.uplink, &three, 5000).await;
    let before = agent.stats(&gw.uplink, 0).await.unwrap();

    // A fourth analytic arrives: a detection camera.
    let body = registration("cam-4", "object-detection", 2.0, 4, &knobs.url);
    let posted = std::time::Instant::now();
    let (status, fourth) = call("POST", &analytics, Some(&body)).await;
    assert_eq!(status, 201, "{fourth}");
    eprintln!(
        "the arrival's decision, carried out and answered: {:.1} ms, {} steps",
        posted.elapsed().as_secs_f64() * 1e3,
        fourth["steps"].as_array().unwrap().len()
    );
    let four = allocated(&fourth);
    assert_eq!(four.len(), 4, "all four fit: {four:?}");
    let steps = fourth["steps"].as_array().unwrap();
    let position = |action: &str, analytic: &str| {
        steps
            .iter()
            .position(|s| s["action"] == action && s["analytic"] == analytic)
    };
    let mut shrunk = 0;
    for step in steps {
        eprintln!(
            "  {} {} {} {}",
            step["action"], step["analytic"], step["rate_bps"], step["shaping"]
        );
        let report = &step["shaping"];
        if report.is_null() {
            continue;
        }
        assert_eq!(report["deleted"], 0, "nothing deleted: {step}");
        if step["analytic"] == "cam-4" {
            assert!(report["created"].as_u64().unwrap() >= 1, "{step}");
        } else {
            // An existing class: changed in place (class and queue), never re-created.
            assert_eq!(report["created"], 0, "{step}");
            assert!(report["changed"].as_u64().unwrap() >= 1, "{step}");
            let id = step["analytic"].as_str().unwrap();
            let lowered = position("publish_knob", id).expect("a lower knob first");
            assert!(
                lowered < position("set_class", id).unwrap(),
                "knob before class"
            );
            assert!(four[id] < three[id]);
            shrunk += 1;
        }
    }
    assert!(shrunk >= 1, "someone made room for cam-4: {fourth}");
    assert!(
        position("set_class", "cam-4").unwrap() < position("publish_knob", "cam-4").unwrap(),
        "cam-4's class exists before it is told to send"
    );
    uploaders.insert(
        "cam-4".into(),
        Uploader::start(
            gw.lab.client().unwrap(),
            sink(4),
            "cam-4",
            "object-detection",
            1.0,
        ),
    );
    tokio::time::sleep(Duration::from_secs(3)).await;
    let after_rows = measure(&agent, &gw.uplink, &four, 10_000).await;
    let after = agent.stats(&gw.uplink, 0).await.unwrap();

    // The first three classes kept their handles and their counters never went back; no
    // sample missed one of them; the classes never exceeded the budget; their traffic never
    // fell into the default class.
    stop_sampling.send(()).unwrap();
    let samples = samples.lock().unwrap().clone();
    assert!(samples.len() > 50, "{} samples", samples.len());
    for id in three.keys() {
        let handle = |s: &InterfaceStats| s.class(Direction::Egress, id).unwrap().classid.clone();
        assert_eq!(handle(&before), handle(&after), "{id} kept its class");
        let mut last = (0, 0);
        let created = samples
            .iter()
            .position(|s| s.class(Direction::Egress, id).is_some())
            .unwrap();
        for s in &samples[created..] {
            let class = s
                .class(Direction::Egress, id)
                .unwrap_or_else(|| panic!("{id} lost its class in a sample"));
            assert_eq!(class.classid, handle(&before));
            assert!(
                (class.counters.bytes, class.counters.packets) >= last,
                "{id}'s counters went back: {last:?} → {:?}",
                (class.counters.bytes, class.counters.packets)
            );
            last = (class.counters.bytes, class.counters.packets);
        }
        eprintln!(
            "{id}: class {} before and after, in all {} samples since its creation, counters \
             rising to {} bytes",
            handle(&before),
            samples.len() - created,
            last.0
        );
    }
    for s in &samples {
        let classes = &s.directions[0].classes;
        let analytics: u64 = classes
            .iter()
            .filter(|c| c.name != "default")
            .map(|c| c.rate_bps)
            .sum();
        assert!(analytics <= BUDGET_BPS, "classes of {analytics} bit/s");
    }
    let default_bytes = |s: &InterfaceStats| {
        s.class(Direction::Egress, "default")
            .unwrap()
            .counters
            .bytes
    };
    let unclassified = default_bytes(samples.last().unwrap()) - default_bytes(&samples[0]);
    assert!(
        unclassified < 20_000,
        "{unclassified} bytes went unclassified"
    );
    eprintln!("{unclassified} bytes went to the default class");

    // Knobs: each analytic's last HTTP and retained MQTT knob is its allocation's.
    let (_, view) = call("GET", &format!("{}/v1/allocation", gw.api), None).await;
    for share in view["allocation"]["shares"].as_array().unwrap() {
        let id = share["id"].as_str().unwrap();
        let told = knobs.of(id);
        let last = told.last().unwrap();
        assert_eq!(last.knob, share["knob"].as_f64().unwrap(), "{id}");
        assert!(told.windows(2).all(|w| w[0].sequence < w[1].sequence));
    }
    let published = mqtt.lock().unwrap().clone();
    let last_mqtt = |id: &str| {
        published
            .iter()
            .rev()
            .find(|(topic, _)| *topic == KnobMessage::topic(common::GATEWAY, id))
            .map(|(_, payload)| payload.clone())
            .unwrap_or_else(|| panic!("no MQTT knob for {id}"))
    };
    let cam: KnobMessage = serde_json::from_slice(&last_mqtt("cam-4")).unwrap();
    assert_eq!((cam.rate_bps, cam.paused), (four["cam-4"], false));

    // The lightest leaves: its class goes, the others grow in place.
    drop(uploaders.remove("mic-1"));
    let (status, left) = call("DELETE", &format!("{analytics}/mic-1"), None).await;
    assert_eq!(status, 200, "{left}");
    let removed = left["steps"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["action"] == "remove_class")
        .unwrap();
    assert!(removed["shaping"]["deleted"].as_u64().unwrap() >= 1);
    let now = agent.stats(&gw.uplink, 0).await.unwrap();
    assert!(now.class(Direction::Egress, "mic-1").is_none());
    tokio::time::sleep(Duration::from_millis(500)).await;
    let cleared = mqtt.lock().unwrap().clone();
    assert!(
        cleared
            .iter()
            .any(|(t, p)| *t == KnobMessage::topic(common::GATEWAY, "mic-1") && p.is_empty()),
        "mic-1's retained knob is cleared"
    );

    // Every decision is stored: 1 + 2 + 3 + 4 + 3 allocation decisions.
    let rows: Vec<(String, f64, i64)> = sqlx::query_as(
        "SELECT analytic, knob, rate_bps FROM allocation_decisions WHERE gateway = $1 \
         ORDER BY ts_ms, analytic",
    )
    .bind(common::GATEWAY)
    .fetch_all(db.pool())
    .await
    .unwrap();
    assert_eq!(rows.len(), 13, "{rows:?}");
    let cam_row = rows.iter().find(|r| r.0 == "cam-4").unwrap();
    assert_eq!(cam_row.2 as u64, four["cam-4"]);

    eprintln!("before the arrival: {before_rows:?}\nafter it: {after_rows:?}");
    drop(uploaders);
    gw.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_registrations_are_refused_by_field_and_change_nothing() {
    let mut gw = Gateway::start(BUDGET_BPS, Publisher::http_only(), None).await;
    let analytics = format!("{}/v1/analytics", gw.api);
    let good = registration(
        "mic-1",
        "audio-classification",
        1.0,
        1,
        "http://127.0.0.1:9/knob",
    );
    assert_eq!(call("POST", &analytics, Some(&good)).await.0, 201);
    let (_, before) = call("GET", &format!("{}/v1/allocation", gw.api), None).await;
    let plan = gw.agent.client().plan(&gw.uplink).await.unwrap();

    let with = |field: &str, value: Value| {
        let mut body: Value = serde_json::from_str(&registration(
            "cam-2",
            "object-detection",
            1.0,
            2,
            "http://127.0.0.1:9/knob",
        ))
        .unwrap();
        body[field] = value;
        body.to_string()
    };
    for (body, status, field, needle) in [
        (with("weight", json!(-1)), 422, "weight", "positive"),
        (with("k_min", json!(1.5)), 422, "k_min", "[0.2, 1]"),
        (
            with("kind", json!("lidar")),
            422,
            "kind",
            "object-detection",
        ),
        (
            with("location", json!("moon")),
            422,
            "location",
            "`edge` or `cloud`",
        ),
        (with("port", json!(9101)), 422, "port", "'mic-1' uses 9101"),
        (with("port", json!(70000)), 422, "port", "u16"),
        (with("id", json!("cam 2")), 422, "id", "letters, digits"),
        (
            with("knob_url", json!("cam:80")),
            422,
            "knob_url",
            "http://HOST:PORT/PATH",
        ),
        (with("colour", json!("red")), 422, "colour", "unknown field"),
        ("{\"id\": ".to_string(), 400, "body", "JSON"),
    ] {
        let (got, answer) = call("POST", &analytics, Some(&body)).await;
        assert_eq!(got, status, "{body}: {answer}");
        assert_eq!(answer["field"], field, "{answer}");
        assert!(
            answer["error"].as_str().unwrap().contains(needle),
            "{answer}"
        );
        assert!(answer["accepted"].is_string(), "{answer}");
    }
    let budget = format!("{}/v1/budget", gw.api);
    for (body, field) in [
        (r#"{"budget_bps": "0bit"}"#, "budget"),
        (r#"{"budget_bps": "5Mbps"}"#, "budget_bps"),
        (
            r#"{"budget_bps": "1mbit", "reserve_bps": "2mbit"}"#,
            "budget",
        ),
    ] {
        let (got, answer) = call("PUT", &budget, Some(body)).await;
        assert_eq!(got, 422, "{body}: {answer}");
        assert_eq!(answer["field"], field, "{answer}");
    }
    let (got, answer) = call("DELETE", &format!("{analytics}/cam-9"), None).await;
    assert_eq!((got, answer["value"].as_str()), (404, Some("cam-9")));

    // Nothing changed: same allocation, same plan in the agent.
    let (_, after) = call("GET", &format!("{}/v1/allocation", gw.api), None).await;
    assert_eq!(before, after);
    assert_eq!(gw.agent.client().plan(&gw.uplink).await.unwrap(), plan);

    // The agent unreachable: the registration is refused with 502 and nothing changes.
    gw.link.cut();
    let (got, answer) = call("POST", &analytics, Some(&with("port", json!(9102)))).await;
    gw.link.restore();
    assert_eq!(got, 502, "{answer}");
    assert!(
        answer["error"]
            .as_str()
            .unwrap()
            .contains("cannot reach the qoelab agent"),
        "{answer}"
    );
    let (_, after) = call("GET", &format!("{}/v1/allocation", gw.api), None).await;
    assert_eq!(before, after, "a refused decision leaves the allocation");
    let (got, answer) = call("POST", &analytics, Some(&with("port", json!(9102)))).await;
    assert_eq!(
        (got, answer["sequence"].as_u64()),
        (201, Some(2)),
        "{answer}"
    );

    // A budget change reshapes in place: the link and the class follow.
    let (got, answer) = call("PUT", &budget, Some(r#"{"budget_bps": "2mbit"}"#)).await;
    assert_eq!(got, 200, "{answer}");
    assert_eq!(answer["link"]["rate_bps"], 2_000_000);
    let egress = gw
        .agent
        .client()
        .plan(&gw.uplink)
        .await
        .unwrap()
        .egress
        .unwrap();
    assert_eq!(egress.rate_bps.bps(), 2_000_000);
    assert_eq!(egress.default.rate_bps.bps(), 20_000);
    let steps = answer["steps"].as_array().unwrap();
    assert_eq!(
        steps[0]["action"], "set_link",
        "the link grows before the classes"
    );
    assert!(
        steps
            .iter()
            .all(|s| s["shaping"]["deleted"].as_u64().unwrap_or(0) == 0)
    );

    // A second allocator cannot take an uplink this one shapes.
    let config = qoelab_gateway::Config {
        gateway: "other".into(),
        uplink: gw.uplink.clone(),
        budget_bps: BUDGET_BPS,
        reserve_bps: None,
        algorithm: qoelab_planner::allocate::Algorithm::Raa,
        options: Default::default(),
        plan_options: Default::default(),
        models: qoelab_workload::model::ModelSet::builtin(),
    };
    let err = qoelab_gateway::Service::start(
        config,
        gw.agent.client().clone(),
        Publisher::http_only(),
        None,
    )
    .await
    .unwrap_err()
    .to_string();
    assert!(err.contains("is shaped already"), "{err}");
    gw.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_analytic_that_no_longer_fits_is_paused_and_told() {
    let gw = Gateway::start(BUDGET_BPS, Publisher::http_only(), None).await;
    let knobs = KnobReceiver::start().await;
    let analytics = format!("{}/v1/analytics", gw.api);
    // Four raw-audio analytics need 4 × 262 kbit/s at their lowest knob: more than 990 kbit/s.
    for (i, weight) in [(1, 1.0), (2, 2.0), (3, 3.0), (4, 4.0)] {
        let body = registration(
            &format!("mic-{i}"),
            "audio-classification",
            weight,
            i,
            &knobs.url,
        );
        assert_eq!(call("POST", &analytics, Some(&body)).await.0, 201);
    }
    let told = knobs.of("mic-1");
    let last = told.last().unwrap();
    assert!(
        last.paused && last.knob == 0.0 && last.rate_bps == 0,
        "{last:?}"
    );
    assert!(
        told.len() >= 2 && !told[0].paused,
        "mic-1 ran before: {told:?}"
    );
    let stats = gw.agent.client().stats(&gw.uplink, 0).await.unwrap();
    assert!(
        stats.class(Direction::Egress, "mic-1").is_none(),
        "its class is gone"
    );
    assert!(stats.class(Direction::Egress, "mic-4").is_some());
    // The heaviest leaves: mic-1 fits again and is told to resume.
    let (status, _) = call("DELETE", &format!("{analytics}/mic-4"), None).await;
    assert_eq!(status, 200);
    let last = knobs.of("mic-1").last().cloned().unwrap();
    assert!(!last.paused && last.knob >= 0.38, "{last:?}");
    gw.stop().await;
}
