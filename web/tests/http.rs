//! Every route over HTTP against real PostgreSQL and SQLite, with a scripted runner behind the
//! app: the happy path and bad input (4xx naming the field, never 500).

mod common;

use std::sync::Arc;
use std::time::Duration;

use common::{Client, FakeAgent, TestDb, serve, trained_model, video_campaign, wait_for_status};
use http_body_util::BodyExt;
use serde_json::{Value, json};
use tower::ServiceExt;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_campaign_runs_and_its_sessions_show_charts_tables_and_exports() {
    for t in TestDb::both().await {
        let s = serve(&t.db, None, None);
        let c = Client::new(&s.router);
        let id = video_campaign(&c, 4, 1.2, &["0.75mbit", "5mbit"]).await;
        let done = wait_for_status(&c, id, "done").await;
        assert_eq!(done["progress"]["done"], 4, "{done}");
        assert_eq!(done["by_limit"].as_array().unwrap().len(), 2);

        // The campaign page shows progress and the downloads.
        let page = c.page(&format!("/campaigns/{id}")).await;
        assert!(
            page.contains(r#"data-campaign-events="/campaigns/"#),
            "{page}"
        );
        assert!(page.contains("Download Parquet"));

        // The sessions table: filter by limit and label, sort, paginate.
        let low = c
            .page(&format!("/sessions?campaign_id={id}&limit=750kbit"))
            .await;
        assert!(low.contains(r#"data-total="2""#), "{low}");
        assert!(low.contains("qoe_class=low"));
        let high = c.page("/sessions?label=qoe_class%3Dhigh").await;
        assert!(high.contains(r#"data-total="2""#), "{high}");
        let page2 = c
            .page(&format!(
                "/sessions?campaign_id={id}&per_page=100&page=1&sort=rate_bps&desc=1"
            ))
            .await;
        assert!(
            page2.find("5mbit").unwrap() < page2.find("750kbit").unwrap(),
            "descending by limit"
        );
        let api = c
            .api(&format!(
                "/api/v1/sessions?campaign_id={id}&per_page=3&page=1"
            ))
            .await;
        assert_eq!(
            (
                api["total"].as_u64(),
                api["sessions"].as_array().unwrap().len()
            ),
            (Some(4), 1)
        );

        // A slow session's detail: the chart with the limit drawn and its stall shaded.
        let slow = c
            .api(&format!(
                "/api/v1/sessions?campaign_id={id}&rate_bps=750000"
            ))
            .await;
        let sid = slow["sessions"][0]["id"].as_i64().unwrap();
        let detail = c.page(&format!("/sessions/{sid}")).await;
        assert!(detail.contains(r#"data-chart="throughput""#), "{detail}");
        assert!(
            detail.contains(r#"data-limit="750000""#),
            "the limit line is drawn"
        );
        assert!(
            detail.contains(r#"<rect class="stall""#),
            "the stall is shaded"
        );
        assert!(detail.contains("198.18.2.2:8000"), "the flow table");
        assert!(detail.contains("qoelab.video-qoe.v1"), "the QoE figures");
        let json = c.api(&format!("/api/v1/sessions/{sid}")).await;
        assert!(json["series"].as_array().unwrap().len() >= 2);

        // Exports: every format, streamed, one row per stored session.
        for (format, kind) in [
            ("csv", "text/csv"),
            ("jsonl", "application/x-ndjson"),
            ("parquet", "application/vnd.apache.parquet"),
        ] {
            let r = c
                .get(&format!("/campaigns/{id}/export/{format}"))
                .await
                .expect(200);
            assert!(r.header("content-type").starts_with(kind), "{format}");
            assert!(
                r.header("content-disposition")
                    .contains(&format!("campaign-{id}-scripted.{format}"))
            );
            match format {
                "csv" => assert_eq!(r.text().lines().count(), 5, "header and 4 rows"),
                "jsonl" => assert_eq!(r.text().lines().count(), 4),
                _ => assert_eq!(&r.body[..4], b"PAR1"),
            }
        }
        let r = c
            .get(&format!("/api/v1/campaigns/{id}/export?format=xlsx"))
            .await
            .expect(422);
        assert_eq!(r.field(), "format");
        c.get("/api/v1/campaigns/999/export?format=csv")
            .await
            .expect(404);
        c.get(&format!("/api/v1/campaigns/{id}/export"))
            .await
            .expect(400);

        // Stopping a finished campaign is a conflict, as is starting it.
        c.post_json(&format!("/api/v1/campaigns/{id}/stop"), &json!({}))
            .await
            .expect(409);
        c.post_json(&format!("/api/v1/campaigns/{id}/start"), &json!({}))
            .await
            .expect(409);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_campaign_form_keeps_what_was_typed_and_says_what_is_wrong() {
    for t in TestDb::both().await {
        let s = serve(&t.db, None, None);
        let c = Client::new(&s.router);
        let form = c.page("/campaigns/new").await;
        assert!(form.contains(r#"name="csrf""#) && form.contains(r#"name="limits""#));
        let bad = [
            ("name", "ladder"),
            ("sessions", "ten"),
            ("duration", "60"),
            ("warmup", "0s"),
            ("limits", "0.75, 1.25, 5 furlongs"),
            ("workload", "video"),
            ("abr", "buffer"),
            ("seed", "1"),
        ];
        let r = c.post_form("/campaigns", &bad).await.expect(422);
        let page = r.text();
        for field in ["sessions", "duration", "limits"] {
            assert!(
                page.contains(&format!(r#"data-error-for="{field}""#)),
                "{field}: {page}"
            );
        }
        assert!(!page.contains(r#"data-error-for="name""#));
        assert!(
            page.contains(r#"value="0.75, 1.25, 5 furlongs""#),
            "typed values survive"
        );
        assert!(page.contains(r#"value="ten""#));
        assert!(
            page.contains("a unit is required"),
            "the duration's message says why"
        );
        assert_eq!(
            c.api("/api/v1/campaigns").await,
            json!([]),
            "nothing stored"
        );

        // Without the CSRF token (another site's form) nothing happens.
        let mut stranger = c.clone();
        stranger.cookies.clear();
        let r = stranger.post_form("/campaigns", &bad).await.expect(403);
        assert!(r.text().contains("<html"), "a page, not JSON: {}", r.text());
        let r = c
            .post_raw(
                "/campaigns",
                "application/x-www-form-urlencoded",
                "csrf=wrong&name=x",
            )
            .await
            .expect(403);
        assert!(r.text().contains("security token"));

        let good = [
            ("name", "ladder"),
            ("sessions", "3"),
            ("duration", "1s"),
            ("warmup", "0s"),
            ("limits", "1, 2 mbit, unlimited"),
            ("workload", "video"),
            ("abr", "mpc"),
            ("seed", "9"),
        ];
        let r = c.post_form("/campaigns", &good).await.expect(303);
        let location = r.header("location").to_string();
        assert!(location.starts_with("/campaigns/"), "{location}");
        let id: i64 = location.rsplit('/').next().unwrap().parse().unwrap();
        let c_json = c.api(&format!("/api/v1/campaigns/{id}")).await;
        assert_eq!(
            c_json["status"], "pending",
            "not started without the checkbox"
        );
        assert_eq!(c_json["spec"]["workload"]["abr"], "mpc");
        // Start, stop and resume from the page's buttons.
        c.post_form(&format!("/campaigns/{id}/start"), &[])
            .await
            .expect(303);
        c.post_form(&format!("/campaigns/{id}/stop"), &[])
            .await
            .expect(303);
        assert_eq!(
            c.api(&format!("/api/v1/campaigns/{id}")).await["status"],
            "stopped"
        );
        let page = c.page(&format!("/campaigns/{id}")).await;
        assert!(page.contains("Resume"), "{page}");
        let r = c
            .post_form(&format!("/campaigns/{id}/stop"), &[])
            .await
            .expect(409);
        assert!(r.text().contains("cannot become stopped"));
        c.post_form(&format!("/campaigns/{id}/start"), &[])
            .await
            .expect(303);
        wait_for_status(&c, id, "done").await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn live_progress_streams_from_snapshot_to_done() {
    let t = TestDb::sqlite().await;
    let s = serve(&t.db, None, None);
    let c = Client::new(&s.router);
    let id = video_campaign(&c, 2, 0.6, &["2mbit"]).await;
    let request = axum::http::Request::get(format!("/api/v1/campaigns/{id}/events"))
        .body(axum::body::Body::empty())
        .unwrap();
    let response = s.router.clone().oneshot(request).await.unwrap();
    assert_eq!(response.headers()["content-type"], "text/event-stream");
    let mut body = response.into_body();
    let mut seen: Vec<Value> = Vec::new();
    let mut text = String::new();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    while !seen
        .iter()
        .any(|e| e["type"] == "campaign_status" && e["status"] == "done")
    {
        let frame = tokio::time::timeout_at(deadline, body.frame())
            .await
            .expect("the campaign finishes within 20 s")
            .unwrap()
            .unwrap();
        if let Ok(data) = frame.into_data() {
            text.push_str(std::str::from_utf8(&data).unwrap());
        }
        while let Some(end) = text.find("\n\n") {
            let event: String = text.drain(..end + 2).collect();
            if let Some(data) = event.lines().find_map(|l| l.strip_prefix("data: ")) {
                seen.push(serde_json::from_str(data).unwrap());
            }
        }
    }
    assert_eq!(seen[0]["type"], "snapshot", "{seen:?}");
    let started: Vec<&Value> = seen
        .iter()
        .filter(|e| e["type"] == "session_started")
        .collect();
    assert!(
        !started.is_empty()
            && started
                .iter()
                .all(|e| e["total"] == 2 && e["rate_bps"] == 2_000_000)
    );
    assert!(started.iter().all(|e| e["eta_s"].as_f64().is_some()));
    let ended = seen.iter().rfind(|e| e["type"] == "session_ended").unwrap();
    assert_eq!(ended["progress"]["done"], 2);
    c.get("/api/v1/campaigns/777/events").await.expect(404);
    c.get("/campaigns/777/events").await.expect(404);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn api_bad_input_gets_4xx_naming_the_field() {
    for t in TestDb::both().await {
        let s = serve(&t.db, None, None);
        let c = Client::new(&s.router);
        let spec = json!({"name": "x", "sessions": 2, "duration_s": 1, "limits": ["unlimited"],
            "workload": {"kind": "video", "abr": "buffer"}});
        let with = |key: &str, value: Value| {
            let mut s = spec.clone();
            s[key] = value;
            s
        };
        let cases: Vec<(Value, u16, &str)> = vec![
            (with("sessions", json!(0)), 422, "sessions"),
            (with("sessions", json!("two")), 400, "sessions"),
            (
                with("limits", json!([{"rate": "5 furlongs"}])),
                400,
                "limits[0].rate",
            ),
            (with("limits", json!([])), 422, "limits"),
            (
                with("workload", json!({"kind": "video", "abr": "bola"})),
                422,
                "workload.abr",
            ),
            (with("duration_s", json!(-1)), 422, "duration_s"),
        ];
        for (body, status, field) in cases {
            let r = c.post_json("/api/v1/campaigns", &body).await.expect(status);
            assert_eq!(r.field(), field, "{}", r.text());
        }
        let r = c
            .post_raw("/api/v1/campaigns", "application/json", "{not json")
            .await
            .expect(400);
        assert!(
            r.json()["error"]
                .as_str()
                .unwrap()
                .contains("key must be a string"),
            "{}",
            r.text()
        );
        c.post_raw("/api/v1/campaigns", "text/plain", spec.to_string())
            .await
            .expect(415);
        let huge = "x".repeat(qoelab_web::BODY_LIMIT_BYTES + 10);
        let r = c
            .post_raw("/api/v1/campaigns", "application/json", huge)
            .await
            .expect(413);
        assert!(r.json()["error"].as_str().unwrap().contains("too large"));

        c.get("/api/v1/campaigns/abc").await.expect(400);
        c.get("/api/v1/campaigns/42").await.expect(404);
        c.post_json("/api/v1/campaigns/42/start", &json!({}))
            .await
            .expect(404);
        c.get("/api/v1/sessions/42").await.expect(404);
        let r = c.get("/api/v1/sessions?per_page=0").await.expect(422);
        assert_eq!(r.field(), "per_page");
        let r = c.get("/api/v1/sessions?status=bogus").await.expect(400);
        assert_eq!(r.field(), "status");
        let r = c.get("/api/v1/sessions?sort=evil").await.expect(422);
        assert_eq!(r.field(), "sort");
        let r = c.get("/api/v1/sessions?label=oops").await.expect(422);
        assert_eq!(r.field(), "label");
        c.get("/api/v1/nothing").await.expect(404);
        let r = c.get("/no/such/page").await.expect(404);
        assert!(r.text().contains("<html"));

        // Pages answer bad input with a page, not a 500.
        c.get("/campaigns/abc").await.expect(400);
        c.get("/sessions/99").await.expect(404);
        let page = c.page("/sessions?campaign_id=x&limit=fast").await;
        assert!(
            page.contains(r#"data-error-for="campaign_id""#)
                && page.contains(r#"data-error-for="limit""#)
        );

        // Nothing was stored by any of this.
        assert_eq!(c.api("/api/v1/campaigns").await, json!([]));
        c.get("/healthz").await.expect(200);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn exports_unknown_ids_and_out_of_range_decisions_get_4xx() {
    for t in TestDb::both().await {
        let s = serve(&t.db, None, None);
        let c = Client::new(&s.router);
        let id = video_campaign(&c, 1, 1.0, &["2mbit"]).await;
        wait_for_status(&c, id, "done").await;
        let r = c
            .get(&format!("/api/v1/campaigns/{id}/export?format=xls"))
            .await
            .expect(422);
        assert_eq!(r.field(), "format", "{}", r.text());
        let r = c
            .get(&format!("/campaigns/{id}/export/xls"))
            .await
            .expect(422);
        assert!(r.text().contains("xls"), "{}", r.text());
        c.get(&format!("/api/v1/campaigns/{id}/export?format=csv"))
            .await
            .expect(200);
        for missing in [
            "/api/v1/campaigns/42/export?format=csv",
            "/campaigns/42/export/csv",
            "/api/v1/sessions/42/prediction",
            "/sessions/42/prediction",
            "/api/v1/models/42",
            "/api/v1/models/42/file",
            "/api/v1/models/jobs/42",
            "/models/42",
        ] {
            c.get(missing).await.expect(404);
        }
        c.delete("/api/v1/models/42").await.expect(404);

        // A rate the database could not hold is refused by name, not stored negative.
        let decision = |rate_bps: u64| {
            json!({"items": [{"gateway": "gw-1", "analytic": "cam-1", "knob": 0.5,
                "rate_bps": rate_bps, "algorithm": "raa", "ts_ms": 1_795_000_000_000_i64}]})
        };
        let r = c
            .post_json(
                "/api/v1/ingest/allocations",
                &decision(10_000_000_000_000_000_000),
            )
            .await
            .expect(422);
        assert_eq!(r.field(), "items[0].rate_bps", "{}", r.text());
        c.post_json("/api/v1/ingest/allocations", &decision(250_000))
            .await
            .expect(201);
        let placement = json!({"items": [{"gateway": "gw-1", "analytic": "cam-1",
            "location": "edge", "image": "det:1", "layers_fetched": ["a"],
            "bytes_fetched": 10_000_000_000_000_000_000_u64, "ts_ms": 1_795_000_000_000_i64}]});
        let r = c
            .post_json("/api/v1/ingest/placements", &placement)
            .await
            .expect(422);
        assert_eq!(r.field(), "items[0].bytes_fetched", "{}", r.text());
    }
}

fn qos(analytic: &str, i: i64, knob: Value) -> Value {
    json!({"gateway": "gw1", "analytic": analytic, "kind": "object-detection", "ts_ms": 1_700_000_000_000i64 + i * 60_000,
        "knob": knob, "expected_qos": 0.9, "achieved_qos": 0.85, "throughput_bps": 400000.0 + i as f64})
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ingest_is_idempotent_counted_and_shown_as_analytics() {
    for t in TestDb::both().await {
        let s = serve(&t.db, None, None);
        let c = Client::new(&s.router);
        let batch = json!({"idempotency_key": "gw1-1", "items": (0..5).map(|i| qos("cam-1", i, json!(0.5))).collect::<Vec<_>>()});
        let r = c.post_json("/api/v1/ingest/qos", &batch).await.expect(201);
        assert_eq!(r.json(), json!({"stored": 5, "duplicate": false}));
        let r = c.post_json("/api/v1/ingest/qos", &batch).await.expect(200);
        assert_eq!(r.json()["duplicate"], true);
        // The key again on another batch, of another kind or with other items: 409, and
        // nothing of it is taken for a repeat.
        let other = json!({"idempotency_key": "gw1-1", "items": [qos("cam-1", 7, json!(0.5))]});
        let r = c.post_json("/api/v1/ingest/qos", &other).await.expect(409);
        assert!(
            r.text().contains(
                "idempotency_key = 'gw1-1' was already used for a different batch of QoS reports"
            ),
            "{}",
            r.text()
        );
        let placements = json!({"idempotency_key": "gw1-1", "items": [{"gateway": "gw1", "analytic": "cam-1",
            "location": "edge", "image": "yolo:1", "ts_ms": 1_700_000_000_000i64}]});
        let r = c
            .post_json("/api/v1/ingest/placements", &placements)
            .await
            .expect(409);
        assert!(
            r.text()
                .contains("a batch of QoS reports, not of placement decisions")
        );
        let bad = json!({"items": [qos("cam-1", 9, json!(0.5)), qos("cam-1", 10, json!(1.5))]});
        let r = c.post_json("/api/v1/ingest/qos", &bad).await.expect(422);
        assert_eq!(r.field(), "items[1].knob");
        let r = c
            .post_json(
                "/api/v1/ingest/qos",
                &json!({"items": [qos("cam-1", 9, json!("high"))]}),
            )
            .await
            .expect(422);
        assert_eq!(r.field(), "items[0].knob");
        let alloc = json!({"items": [{"gateway": "gw1", "analytic": "cam-1", "knob": 0.6, "rate_bps": 500000,
            "algorithm": "raa", "ts_ms": 1_700_000_030_000i64}]});
        c.post_json("/api/v1/ingest/allocations", &alloc)
            .await
            .expect(201);
        let placement = json!({"items": [{"gateway": "gw1", "analytic": "cam-1", "location": "edge", "image": "yolo:1",
            "ts_ms": 1_700_000_000_000i64}]});
        c.post_json("/api/v1/ingest/placements", &placement)
            .await
            .expect(201);
        let r = c
            .post_json(
                "/api/v1/ingest/placements",
                &json!({"items": [{"gateway": "gw1", "analytic": "a",
            "location": "moon", "image": "i", "ts_ms": 1_700_000_000_000i64}]}),
            )
            .await
            .expect(422);
        assert_eq!(r.field(), "items[0].location");
        let many = json!({"items": vec![qos("cam-1", 1, json!(0.5)); 10_001]});
        let r = c.post_json("/api/v1/ingest/qos", &many).await.expect(422);
        assert_eq!(r.field(), "items");
        let huge = format!("{{\"items\": [\"{}\"]}}", "x".repeat(17 << 20));
        c.post_raw("/api/v1/ingest/qos", "application/json", huge)
            .await
            .expect(413);

        let metrics = c.page("/metrics").await;
        for line in [
            r#"qoelab_ingest_items_total{kind="qos"} 5"#,
            r#"qoelab_ingest_duplicate_batches_total{kind="qos"} 1"#,
            r#"qoelab_ingest_rejected_batches_total{kind="qos"} 4"#,
            r#"qoelab_ingest_items_total{kind="allocation"} 1"#,
            r#"qoelab_ingest_rejected_batches_total{kind="placement"} 2"#,
            r#"qoelab_agent_up{gateway="default"} 0"#,
        ] {
            assert!(metrics.contains(line), "{line} in\n{metrics}");
        }

        let list = c.api("/api/v1/analytics").await;
        assert_eq!(list[0]["reports"], 5);
        let series = c.api("/api/v1/analytics/gw1/cam-1").await;
        assert_eq!(series["qos"].as_array().unwrap().len(), 5);
        assert_eq!(series["allocations"][0]["rate_bps"], 500000);
        let r = c
            .get("/api/v1/analytics/gw1/cam-1?from_ms=5&to_ms=1")
            .await
            .expect(422);
        assert_eq!(r.field(), "from_ms");
        c.get("/api/v1/analytics/gw1/nobody").await.expect(404);
        c.get("/api/v1/analytics/gw1/cam-1?from_ms=soon")
            .await
            .expect(400);
        let page = c.page("/analytics").await;
        assert!(page.contains(r#"href="/analytics/gw1/cam-1""#), "{page}");
        let page = c.page("/analytics/gw1/cam-1").await;
        for chart in ["knob", "rates", "qos"] {
            assert!(
                page.contains(&format!(r#"data-chart="{chart}""#)),
                "{chart}"
            );
        }
        assert!(page.contains("500 kbit/s"), "the allocated rate");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn external_clients_take_start_and_finish_sessions() {
    for t in TestDb::both().await {
        let s = serve(&t.db, None, None);
        let c = Client::new(&s.router);
        let body = json!({"name": "ext", "sessions": 2, "duration_s": 1, "limits": [{"rate": 3000000}],
            "workload": {"kind": "external"}, "start": true});
        let id = c
            .post_json("/api/v1/campaigns", &body)
            .await
            .expect(201)
            .json()["id"]
            .as_i64()
            .unwrap();
        for _ in 0..2 {
            let session = c
                .post_json(&format!("/api/v1/campaigns/{id}/next"), &json!({}))
                .await
                .expect(200)
                .json();
            let sid = session["id"].as_i64().unwrap();
            assert_eq!(session["profile"]["rate_bps"], 3_000_000);
            let r = c
                .post_json(
                    &format!("/api/v1/sessions/{sid}/finish"),
                    &json!({"stall_count": 0}),
                )
                .await
                .expect(409);
            assert!(r.text().contains("call start first"));
            c.post_json(&format!("/api/v1/sessions/{sid}/start"), &json!({}))
                .await
                .expect(200);
            tokio::time::sleep(Duration::from_millis(1100)).await;
            // Records outside qoelab.app-qoe.v1: 422 naming the field; the session keeps
            // running, so the client can send the record again.
            for (record, field) in [
                (json!({"stall_count": "none"}), "application.stall_count"),
                (json!({"stall_count": -1}), "application.stall_count"),
                (json!({"stall_time_s": -0.5}), "application.stall_time_s"),
                (json!({"qoe_class": "great"}), "application.qoe_class"),
                (json!({"buffer": {"mean_s": 2}}), "application.buffer"),
                (json!({"Player-Name": "exo"}), "application.Player-Name"),
                (
                    json!({"stalls": [{"start_s": 1, "duration_s": 0}]}),
                    "application.stalls[0].duration_s",
                ),
                (json!([1, 2]), "application"),
            ] {
                let r = c
                    .post_json(&format!("/api/v1/sessions/{sid}/finish"), &record)
                    .await
                    .expect(422);
                assert_eq!(r.field(), field, "{record}");
                assert!(!r.json()["accepted"].as_str().unwrap().is_empty());
            }
            let session = c.api(&format!("/api/v1/sessions/{sid}")).await;
            assert_eq!(session["session"]["status"], "running");
            let record = json!({"schema": "qoelab.app-qoe.v1", "stall_count": 1, "stall_time_s": 0.4,
                "stall": true, "qoe_class": "medium", "stalls": [{"start_s": 0.2, "duration_s": 0.4}],
                "player": "exoplayer", "cdn_hit": false});
            let done = c
                .post_json(&format!("/api/v1/sessions/{sid}/finish"), &record)
                .await
                .expect(200)
                .json();
            assert_eq!(done["status"], "done");
            let features = &c.api(&format!("/api/v1/sessions/{sid}")).await["features"];
            for (column, value) in [
                ("label_stall_count", json!(1)),
                ("label_stall_time_s", json!(0.4)),
                ("label_stall", json!(1)),
                ("label_qoe_class", json!("medium")),
                ("label_player", json!("exoplayer")),
                ("label_cdn_hit", json!(0)),
            ] {
                assert_eq!(features[column], value, "{column} in {features}");
            }
            assert!(
                features.get("label_stalls").is_none() && features.get("label_schema").is_none()
            );
        }
        let export = c
            .get(&format!("/api/v1/campaigns/{id}/export?format=jsonl"))
            .await
            .expect(200)
            .text();
        assert_eq!(export.lines().count(), 2);
        for line in export.lines() {
            let row: Value = serde_json::from_str(line).unwrap();
            assert_eq!(row["label_player"], "exoplayer", "{row}");
        }
        c.post_json(&format!("/api/v1/campaigns/{id}/next"), &json!({}))
            .await
            .expect(204);
        assert_eq!(
            c.api(&format!("/api/v1/campaigns/{id}")).await["status"],
            "done"
        );
        let video = video_campaign(&c, 1, 0.2, &["1mbit"]).await;
        c.post_json(&format!("/api/v1/campaigns/{video}/next"), &json!({}))
            .await
            .expect(409);
        c.post_json("/api/v1/sessions/999/start", &json!({}))
            .await
            .expect(404);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn models_train_predict_show_and_delete() {
    for t in TestDb::both().await {
        let s = serve(&t.db, Some(Arc::new(FakeAgent)), None);
        let c = Client::new(&s.router);
        let id = video_campaign(&c, 8, 0.3, &["0.75mbit", "1.25mbit", "3mbit", "5mbit"]).await;
        wait_for_status(&c, id, "done").await;

        // Bad requests are refused before any training, naming the field.
        let base = json!({"name": "m", "campaign_id": id, "label": "label_qoe_class", "model": "tree", "folds": 2});
        let with = |k: &str, v: Value| {
            let mut b = base.clone();
            b[k] = v;
            b
        };
        for (body, status, field) in [
            (with("label", json!("label_nothing")), 422, "label"),
            (with("model", json!("svm")), 422, "model"),
            (with("folds", json!(1)), 422, "folds"),
            (with("campaign_id", json!(999)), 422, "campaign_id"),
            (with("missing", json!("guess")), 422, "missing"),
            (with("trees", json!(-3)), 400, "trees"),
            (with("bogus", json!(1)), 400, "bogus"),
        ] {
            let r = c.post_json("/api/v1/models", &body).await.expect(status);
            assert_eq!(r.field(), field, "{}", r.text());
        }
        assert!(
            c.api("/api/v1/models/jobs")
                .await
                .as_array()
                .unwrap()
                .is_empty()
        );

        let job = trained_model(&c, id, "tree-1").await;
        let model_id = job["model_id"].as_i64().unwrap();
        let r = c
            .post_json("/api/v1/models", &with("name", json!("tree-1")))
            .await
            .expect(409);
        assert_eq!(r.field(), "name");
        let listed = c.api("/api/v1/models").await;
        assert_eq!(listed[0]["name"], "tree-1");
        let m = c.api(&format!("/api/v1/models/{model_id}")).await;
        assert_eq!(m["model"]["class_names"], json!(["high", "low"]));
        let file = c
            .get(&format!("/api/v1/models/{model_id}/file"))
            .await
            .expect(200);
        assert!(qoelab_classifier::SavedModel::from_bytes(&file.body).is_ok());

        let page = c.page(&format!("/models/{model_id}")).await;
        assert!(page.contains(r#"data-chart="confusion""#), "{page}");
        assert_eq!(page.matches("data-count=").count(), 4, "2 × 2 cells");
        assert!(page.contains(r#"data-chart="impurity-importance""#));
        assert!(c.page("/models").await.contains("tree-1"));
        assert!(c.page("/models?fragment=jobs").await.contains("tree-1"));

        // Stored sessions get predictions from their features, with the actual label beside.
        let sessions = c
            .api(&format!(
                "/api/v1/sessions?campaign_id={id}&rate_bps=750000"
            ))
            .await;
        let sid = sessions["sessions"][0]["id"].as_i64().unwrap();
        let p = c.api(&format!("/api/v1/sessions/{sid}/prediction")).await;
        assert_eq!(p["source"], "stored");
        assert_eq!(p["predictions"][0]["prediction"]["class"], "low", "{p}");
        assert_eq!(p["predictions"][0]["actual"], "low");
        assert!(
            c.get(&format!("/sessions/{sid}"))
                .await
                .text()
                .contains(r#"data-predicted="low""#)
        );

        // A running session gets live predictions from the agent's capture so far.
        let ext = c
            .post_json(
                "/api/v1/campaigns",
                &json!({"name": "live", "sessions": 1, "duration_s": 5,
            "limits": [{"rate": 750000}], "workload": {"kind": "external"}, "start": true}),
            )
            .await
            .expect(201)
            .json();
        let next = c
            .post_json(&format!("/api/v1/campaigns/{}/next", ext["id"]), &json!({}))
            .await
            .expect(200)
            .json();
        let live_id = next["id"].as_i64().unwrap();
        let p = c
            .api(&format!("/api/v1/sessions/{live_id}/prediction"))
            .await;
        assert_eq!(
            (p["source"].as_str(), p["note"].as_str()),
            (Some("none"), Some("the capture has not started yet"))
        );
        c.post_json(&format!("/api/v1/sessions/{live_id}/start"), &json!({}))
            .await
            .expect(200);
        let p = c
            .api(&format!("/api/v1/sessions/{live_id}/prediction"))
            .await;
        assert_eq!(p["source"], "live", "{p}");
        assert_eq!(p["predictions"][0]["prediction"]["class"], "low", "{p}");
        let fragment = c.page(&format!("/sessions/{live_id}/prediction")).await;
        assert!(fragment.contains("refreshes"), "{fragment}");

        // The page form reports field problems next to the fields.
        let campaign = id.to_string();
        let train_form = |name: &'static str, label: &'static str, folds: &'static str| {
            let c = c.clone();
            let campaign = campaign.clone();
            async move {
                let fields = [
                    ("name", name),
                    ("campaign_id", campaign.as_str()),
                    ("label", label),
                    ("model", "tree"),
                    ("folds", folds),
                    ("trees", "10"),
                    ("missing", "median"),
                    ("seed", "0"),
                ];
                c.post_form("/models", &fields).await
            }
        };
        let r = train_form("x", "label_qoe_class", "two").await.expect(422);
        assert!(
            r.text().contains(r#"data-error-for="folds""#),
            "{}",
            r.text()
        );
        let r = train_form("x", "label_nothing", "2").await.expect(422);
        assert!(
            r.text().contains(r#"data-error-for="label""#),
            "{}",
            r.text()
        );
        train_form("form-tree", "stall:label_stall_count>0", "2")
            .await
            .expect(303);

        c.post_form(&format!("/models/{model_id}/delete"), &[])
            .await
            .expect(303);
        c.get(&format!("/api/v1/models/{model_id}"))
            .await
            .expect(404);
        c.delete(&format!("/api/v1/models/{model_id}"))
            .await
            .expect(404);
        c.get("/api/v1/models/jobs/999").await.expect(404);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_dashboard_and_metrics_show_the_agent_or_its_absence() {
    let t = TestDb::sqlite().await;
    let with = serve(&t.db, Some(Arc::new(FakeAgent)), None);
    let c = Client::new(&with.router);
    let page = c.page("/").await;
    assert!(
        page.contains("agent connected") && page.contains("cam-1"),
        "{page}"
    );
    assert!(page.contains("1.93 Mbit/s"), "the live class rate");
    assert!(page.contains("qlt-wan@qlt-router"));
    assert!(c.page("/agent").await.contains("7100:3"));
    let metrics = c.get("/metrics").await.expect(200);
    assert!(
        metrics
            .header("content-type")
            .starts_with("text/plain; version=0.0.4")
    );
    let metrics = metrics.text();
    for line in [
        r#"qoelab_agent_up{gateway="default"} 1"#,
        r#"qoelab_class_drops_total{gateway="default",iface="qlt-wan",netns="qlt-router",direction="egress",class="cam-1",classid="7100:3"} 4"#,
        r#"qoelab_class_measured_bps{gateway="default",iface="qlt-wan",netns="qlt-router",direction="egress",class="cam-1",classid="7100:3"} 1934000"#,
        r#"qoelab_sessions{status="done"} 0"#,
    ] {
        assert!(metrics.contains(line), "{line} in\n{metrics}");
    }
    assert!(!metrics.contains(r#"qoelab_class_measured_bps{gateway="default",iface="qlt-wan",netns="qlt-router",direction="egress",class="default""#),
        "no measured rate, no sample");
    let agent = c.api("/api/v1/agent").await;
    assert_eq!(agent["connected"], true);
    drop(with);

    let without = serve(&t.db, None, None);
    let c = Client::new(&without.router);
    assert!(c.page("/").await.contains("agent not connected"));
    assert_eq!(c.api("/api/v1/agent").await["connected"], false);
    assert!(
        c.get("/metrics")
            .await
            .text()
            .contains(r#"qoelab_agent_up{gateway="default"} 0"#)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_token_guards_the_api_and_the_pages() {
    let t = TestDb::sqlite().await;
    let s = serve(&t.db, None, Some("s3cret"));
    let anonymous = Client::new(&s.router);
    let r = anonymous.get("/api/v1/campaigns").await.expect(401);
    assert_eq!(r.header("www-authenticate"), "Bearer");
    anonymous.get("/metrics").await.expect(401);
    let r = anonymous.get("/sessions?status=done").await.expect(303);
    assert_eq!(
        r.header("location"),
        "/login?next=%2Fsessions%3Fstatus%3Ddone"
    );
    anonymous
        .post_form("/campaigns", &[("name", "x")])
        .await
        .expect(401);
    anonymous.get("/healthz").await.expect(200);
    anonymous.get("/api/openapi.json").await.expect(200);
    anonymous.get("/static/app.js").await.expect(200);
    anonymous.get("/login").await.expect(200);

    let mut api = anonymous.clone();
    api.bearer = Some("wrong".into());
    api.get("/api/v1/campaigns").await.expect(401);
    api.bearer = Some("s3cret".into());
    api.get("/api/v1/campaigns").await.expect(200);
    api.get("/metrics").await.expect(200);

    let r = anonymous
        .post_form("/login", &[("token", "nope"), ("next", "/sessions")])
        .await
        .expect(401);
    assert!(r.text().contains("not this server"));
    let r = anonymous
        .post_form(
            "/login",
            &[("token", "s3cret"), ("next", "https://evil.example/")],
        )
        .await
        .expect(303);
    assert_eq!(r.header("location"), "/", "no redirect off the server");
    let cookie = r.header("set-cookie").to_string();
    assert!(
        cookie.contains("HttpOnly") && cookie.contains("SameSite=Strict"),
        "{cookie}"
    );
    let mut browser = anonymous.clone();
    browser
        .cookies
        .push(cookie.split(';').next().unwrap().to_string());
    let page = browser.page("/sessions").await;
    assert!(page.contains("Log out"));
    browser.get("/api/v1/campaigns").await.expect(401);
    browser.post_form("/logout", &[]).await.expect(303);
    browser.get("/sessions").await.expect(303);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pages_and_static_files_render() {
    let t = TestDb::postgres().await;
    let s = serve(&t.db, None, None);
    let c = Client::new(&s.router);
    for (path, text) in [
        ("/", "Dashboard"),
        ("/campaigns", "New campaign"),
        ("/sessions", "0 sessions"),
        ("/models", "Train a model"),
        ("/analytics", "No QoS reports"),
        ("/login", "Log in"),
    ] {
        let r = c.get(path).await.expect(200);
        assert!(r.text().contains(text), "{path}: {}", r.text());
        assert!(
            !r.text().contains("http://") && !r.text().contains("https://"),
            "{path} loads nothing from elsewhere"
        );
    }
    let first = Client {
        cookies: vec![],
        ..c.clone()
    }
    .get("/")
    .await;
    assert!(
        first.header("set-cookie").starts_with("qoelab_csrf="),
        "a new browser gets a CSRF cookie"
    );
    let css = c.get("/static/app.css").await.expect(200);
    assert!(css.header("content-type").starts_with("text/css"));
    c.get("/static/evil.js").await.expect(404);
    c.get("/models/5").await.expect(404);
    c.get("/analytics/a/b").await.expect(404);
    assert_eq!(c.page("/healthz").await, "ok\n");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_documented_operation_is_routed() {
    let t = TestDb::sqlite().await;
    let s = serve(&t.db, None, None);
    let c = Client::new(&s.router);
    let doc = c.api("/api/openapi.json").await;
    let mut operations = 0;
    for (path, item) in doc["paths"].as_object().unwrap() {
        let concrete = path
            .replace("{id}", "1")
            .replace("{gateway}", "gw")
            .replace("{analytic}", "a");
        for method in item.as_object().unwrap().keys() {
            let request = axum::http::Request::builder()
                .method(method.to_uppercase().as_str())
                .uri(&concrete)
                .header("content-type", "application/json")
                .body(axum::body::Body::from("{}"))
                .unwrap();
            let r = c.send(request).await;
            assert_ne!(
                r.status, 405,
                "{method} {path} is documented but not routed"
            );
            assert!(
                !r.text().contains("nothing at"),
                "{method} {path} is documented but not routed"
            );
            assert!(r.status.as_u16() < 500, "{method} {path}: {}", r.text());
            operations += 1;
        }
    }
    assert!(operations >= 28, "{operations}");
    // The document is valid OpenAPI (CI installs the validator; see .ci/run).
    let file = std::env::temp_dir().join(format!("qoelab-openapi-{}.json", std::process::id()));
    std::fs::write(&file, doc.to_string()).unwrap();
    let out = std::process::Command::new("python3")
        .args(["-m", "openapi_spec_validator"])
        .arg(&file)
        .output()
        .expect("python3 runs");
    let _ = std::fs::remove_file(&file);
    assert!(
        out.status.success(),
        "openapi-spec-validator (pip install openapi-spec-validator):\n{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn list_totals_follow_writes_here_at_once_and_elsewhere_within_a_second() {
    let t = TestDb::sqlite().await;
    let s = serve(&t.db, None, None);
    let c = Client::new(&s.router);
    let total = |c: Client| async move {
        c.api("/api/v1/sessions?status=pending").await["total"]
            .as_u64()
            .unwrap()
    };
    assert_eq!(total(c.clone()).await, 0);
    let body = json!({"name": "ext", "sessions": 3, "duration_s": 1, "limits": ["unlimited"],
        "workload": {"kind": "external"}});
    let id = c
        .post_json("/api/v1/campaigns", &body)
        .await
        .expect(201)
        .json()["id"]
        .as_i64()
        .unwrap();
    assert_eq!(
        total(c.clone()).await,
        3,
        "a write through this server shows at once"
    );
    // Another process (the CLI) writes to the same database.
    let mut spec: qoelab_collector::campaign::CampaignSpec = serde_json::from_value(body).unwrap();
    spec.sessions = 2;
    qoelab_collector::campaign::create(&t.db, &spec)
        .await
        .unwrap();
    tokio::time::sleep(Duration::from_millis(1100)).await;
    assert_eq!(
        total(c.clone()).await,
        5,
        "another process's write shows within a second"
    );
    c.post_json(&format!("/api/v1/campaigns/{id}/start"), &json!({}))
        .await
        .expect(200);
    c.post_json(&format!("/api/v1/campaigns/{id}/next"), &json!({}))
        .await
        .expect(200);
    assert_eq!(total(c).await, 4);
}
