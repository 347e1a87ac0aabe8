//! Live predicted QoE end to end over the real appliance: a model trained through the API on
//! stored sessions predicts a session while it runs through the lab, from the agent's capture
//! so far; once finished, from its stored features.
//!
//! Needs root (the lab).

mod common;

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

use serde_json::json;

use common::lab::Appliance;
use common::{Client, TestDb, serve, trained_model, video_campaign, wait_for_status};
use qoelab_lab::standard::SERVER_ADDR;

/// Downloads video segments from the lab's server for `seconds`; the bytes received.
fn download(seconds: u64) -> std::io::Result<u64> {
    let end = Instant::now() + Duration::from_secs(seconds);
    let mut received = 0u64;
    for index in 0.. {
        if Instant::now() >= end {
            break;
        }
        let mut stream = TcpStream::connect((SERVER_ADDR, 8080))?;
        stream.set_read_timeout(Some(Duration::from_secs(10)))?;
        write!(
            stream,
            "GET /segments/5/{} HTTP/1.1\r\nHost: video\r\nConnection: close\r\n\r\n",
            index % 48
        )?;
        let mut body = Vec::new();
        stream.read_to_end(&mut body)?;
        received += body.len() as u64;
    }
    Ok(received)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_session_running_through_the_lab_is_predicted_from_its_capture_so_far() {
    let t = TestDb::sqlite().await;
    // Labeled sessions from the scripted runner, stored in the same database, train a model.
    let scripted = serve(&t.db, None, None);
    let c = Client::new(&scripted.router);
    let training = video_campaign(&c, 8, 0.3, &["0.75mbit", "1.25mbit", "3mbit", "5mbit"]).await;
    wait_for_status(&c, training, "done").await;
    let job = trained_model(&c, training, "tree-live").await;
    let model_id = job["model_id"].as_i64().unwrap();

    let appliance = Appliance::start(&t.db);
    let c = Client::new(&qoelab_web::router(appliance.app.clone()));
    let campaign = c
        .post_json(
            "/api/v1/campaigns",
            &json!({"name": "live", "sessions": 1, "duration_s": 30, "limits": ["8 mbit"],
                "workload": {"kind": "external"}, "start": true}),
        )
        .await
        .expect(201)
        .json();
    let session = c
        .post_json(
            &format!("/api/v1/campaigns/{}/next", campaign["id"]),
            &json!({}),
        )
        .await
        .expect(200)
        .json();
    let id = session["id"].as_i64().unwrap();
    let started = c
        .post_json(&format!("/api/v1/sessions/{id}/start"), &json!({}))
        .await
        .expect(200)
        .json();
    assert_eq!(started["profile"]["rate_bps"], 8_000_000);

    let client_ns = appliance
        .appliance
        .lab()
        .client()
        .unwrap()
        .try_clone()
        .unwrap();
    let received = tokio::task::spawn_blocking(move || client_ns.run(|| download(3)))
        .await
        .unwrap()
        .unwrap()
        .unwrap();
    assert!(received > 500_000, "the player got {received} bytes");

    // The agent's capture so far holds the download, and the model predicts from it.
    let capture_id = c.api(&format!("/api/v1/sessions/{id}")).await["session"]["capture_id"]
        .as_str()
        .expect("a running session names its capture")
        .to_string();
    let so_far = appliance
        .app
        .agent("default")
        .unwrap()
        .capture(&capture_id)
        .await
        .unwrap();
    let served: u64 = so_far["flows"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|f| f["server_port"] == 8080)
        .map(|f| f["s2c_ip_bytes"].as_u64().unwrap())
        .sum();
    assert!(
        served >= received,
        "the capture saw {served} bytes of the {received} received"
    );
    let live = c.api(&format!("/api/v1/sessions/{id}/prediction")).await;
    assert_eq!(live["source"], "live", "{live}");
    let prediction = &live["predictions"][0];
    assert_eq!(prediction["model"]["id"], model_id);
    assert!(
        prediction["error"].is_null(),
        "every feature of the model is in the live row: {prediction}"
    );
    let class = prediction["prediction"]["class"].as_str().unwrap();
    assert!(["high", "low"].contains(&class), "{prediction}");

    // Finished, the session is predicted from its stored features, the label beside.
    c.post_json(
        &format!("/api/v1/sessions/{id}/finish"),
        &json!({"stall_count": 0, "qoe_class": "high"}),
    )
    .await
    .expect(200);
    let stored = c.api(&format!("/api/v1/sessions/{id}/prediction")).await;
    assert_eq!(stored["source"], "stored", "{stored}");
    assert_eq!(stored["predictions"][0]["actual"], "high");
    assert!(stored["predictions"][0]["error"].is_null(), "{stored}");
    appliance.stop().await;
}
