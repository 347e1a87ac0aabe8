//! Storage against real PostgreSQL and SQLite: campaigns, sessions, results, recovery.

mod common;

use common::TestDb;
use qoelab_collector::campaign::{self, CampaignSpec, CampaignStatus, SessionStatus, Workload};
use qoelab_collector::session::{self, Bin, Results, SessionQuery};
use qoelab_units::parse_limits;
use serde_json::json;

fn spec(sessions: u32) -> CampaignSpec {
    CampaignSpec {
        name: "storage test".into(),
        sessions,
        duration_s: 10.0,
        warmup_s: 0.0,
        limits: parse_limits("1, 8 mbit, unlimited").unwrap(),
        delays_ms: vec![],
        losses: vec![],
        workload: Workload::Video {
            abr: "buffer".into(),
        },
        seed: 1,
        gateway: None,
    }
}

fn results() -> Results {
    let flow = json!({"protocol": "tcp", "client_ip": "198.18.1.2", "client_port": 40000,
        "server_ip": "198.18.2.2", "server_port": 80, "c2s_ip_bytes": 5000, "s2c_ip_bytes": 900000,
        "s2c_retx_pkts": 3, "s2c_rtt_avg_ms": 12.5});
    Results {
        warmup_ms: 0,
        capture_id: Some("cap-1".into()),
        bin_ms: 1000,
        flows: vec![flow.as_object().unwrap().clone()],
        series: (0..3)
            .map(|i| Bin {
                flow_idx: None,
                bin: i,
                start_ms: 1000 * i64::from(i),
                c2s_bytes: 10,
                s2c_bytes: 300_000,
                c2s_pkts: 1,
                s2c_pkts: 200,
                c2s_retx: 0,
                s2c_retx: 1,
            })
            .collect(),
        application: Some(json!({"stall_count": 0, "qoe_class": "high"})),
    }
}

#[tokio::test]
async fn a_campaign_runs_through_its_sessions_on_both_backends() {
    for t in TestDb::both().await {
        let db = &t.db;
        let id = campaign::create(db, &spec(6)).await.unwrap();
        let c = campaign::get(db, id).await.unwrap();
        assert_eq!(c.status, CampaignStatus::Pending);
        assert_eq!(c.progress.pending, 6);

        let s = session::claim_next(db, id).await.unwrap().unwrap();
        assert_eq!(
            (s.seq, s.status, s.attempts),
            (0, SessionStatus::Running, 1)
        );
        session::store_results(db, &s, &results()).await.unwrap();
        let detail = session::detail(db, s.id).await.unwrap();
        assert_eq!(detail.session.status, SessionStatus::Done);
        assert_eq!(detail.flows.len(), 1);
        assert_eq!(detail.series.len(), 3);
        assert_eq!(detail.features["label_qoe_class"], json!("high"));
        assert_eq!(detail.features["s2c_retx_pkts"], json!(3.0));

        let failed = session::claim_next(db, id).await.unwrap().unwrap();
        session::end_without_results(db, failed.id, SessionStatus::Failed, "agent unreachable")
            .await
            .unwrap();
        let again = session::get(db, failed.id).await.unwrap();
        assert_eq!(again.failure.as_deref(), Some("agent unreachable"));

        // A crash leaves a session running; recovery puts it back to pending.
        let stuck = session::claim_next(db, id).await.unwrap().unwrap();
        assert_eq!(campaign::recover(db).await.unwrap(), 1);
        assert_eq!(
            session::get(db, stuck.id).await.unwrap().status,
            SessionStatus::Pending
        );
        let p = campaign::progress(db, id).await.unwrap();
        assert_eq!((p.done, p.failed, p.pending, p.running), (1, 1, 4, 0));

        // Storing twice is refused and does not duplicate rows.
        let err = session::store_results(db, &s, &results())
            .await
            .unwrap_err();
        assert!(
            err.to_string().contains("duplicate")
                || err.to_string().contains("UNIQUE")
                || err.to_string().contains("not running"),
            "{err}"
        );
        assert_eq!(session::detail(db, s.id).await.unwrap().flows.len(), 1);
    }
}

#[tokio::test]
async fn session_lists_filter_sort_and_page() {
    for t in TestDb::both().await {
        let db = &t.db;
        let id = campaign::create(db, &spec(30)).await.unwrap();
        let all = session::list(
            db,
            &SessionQuery {
                campaign_id: Some(id),
                per_page: Some(7),
                ..Default::default()
            },
        )
        .await
        .unwrap();
        assert_eq!((all.total, all.sessions.len()), (30, 7));
        let unlimited = session::list(
            db,
            &SessionQuery {
                rate_bps: Some(0),
                ..Default::default()
            },
        )
        .await
        .unwrap();
        assert_eq!(unlimited.total, 10);
        assert!(
            unlimited
                .sessions
                .iter()
                .all(|s| s.profile.rate_bps.is_none())
        );
        let by_rate = session::list(
            db,
            &SessionQuery {
                campaign_id: Some(id),
                sort: Some("rate_bps".into()),
                desc: true,
                per_page: Some(30),
                ..Default::default()
            },
        )
        .await
        .unwrap();
        let rates: Vec<_> = by_rate
            .sessions
            .iter()
            .filter_map(|s| s.profile.rate_bps)
            .collect();
        assert!(rates.windows(2).all(|w| w[0] >= w[1]), "{rates:?}");
        let page2 = session::list(
            db,
            &SessionQuery {
                campaign_id: Some(id),
                page: 4,
                per_page: Some(7),
                ..Default::default()
            },
        )
        .await
        .unwrap();
        assert_eq!((page2.total, page2.sessions.len()), (30, 2));
        for (page, sort) in [(5, None), (9, Some("id"))] {
            let beyond = session::list(
                db,
                &SessionQuery {
                    campaign_id: Some(id),
                    sort: sort.map(str::to_string),
                    page,
                    per_page: Some(7),
                    ..Default::default()
                },
            )
            .await
            .unwrap();
            assert_eq!(
                (beyond.total, beyond.sessions.len()),
                (30, 0),
                "past the last page the total still counts"
            );
        }
        assert_eq!(
            page2.sessions.iter().map(|s| s.seq).collect::<Vec<_>>(),
            [28, 29],
            "a campaign's pages in seq order seek to their first seq"
        );
        let by_id = session::list(
            db,
            &SessionQuery {
                campaign_id: Some(id),
                sort: Some("id".into()),
                page: 2,
                per_page: Some(7),
                ..Default::default()
            },
        )
        .await
        .unwrap();
        assert_eq!(by_id.total, 30);
        assert_eq!(
            by_id.sessions[0].seq, 14,
            "ids follow seq within a campaign"
        );
        let err = session::list(
            db,
            &SessionQuery {
                sort: Some("id; DROP TABLE sessions".into()),
                ..Default::default()
            },
        )
        .await
        .unwrap_err();
        assert!(err.to_string().contains("sort"), "{err}");
    }
}

#[tokio::test]
async fn sessions_filter_by_label_and_report_labels_and_limits() {
    for t in TestDb::both().await {
        let db = &t.db;
        let id = campaign::create(db, &spec(6)).await.unwrap();
        let mut stored = Vec::new();
        for (i, class) in ["high", "low", "low_ish"].iter().enumerate() {
            let s = session::claim_next(db, id).await.unwrap().unwrap();
            let mut r = results();
            r.application = Some(json!({"stall_count": i, "qoe_class": class}));
            session::store_results(db, &s, &r).await.unwrap();
            stored.push(s.id);
        }
        let with = |label: &str| SessionQuery {
            label: Some(label.into()),
            ..Default::default()
        };
        let low = session::list(db, &with("qoe_class=low")).await.unwrap();
        assert_eq!(
            low.sessions.iter().map(|s| s.id).collect::<Vec<_>>(),
            [stored[1]],
            "an exact match: not low_ish, and _ is no wildcard"
        );
        assert_eq!(low.total, 1);
        let one = session::list(db, &with("label_stall_count=1"))
            .await
            .unwrap();
        assert_eq!(one.sessions[0].id, stored[1]);
        assert_eq!(
            session::list(db, &with("stall_count=2"))
                .await
                .unwrap()
                .total,
            1,
            "the last key of the row ends with }}"
        );
        let err = session::list(db, &with("qoe class")).await.unwrap_err();
        assert!(err.to_string().contains("label = 'qoe class'"), "{err}");

        let labels = session::labels(db, &[stored[0], stored[2], 999_999])
            .await
            .unwrap();
        assert_eq!(labels.len(), 2);
        assert_eq!(labels[&stored[2]]["qoe_class"], json!("low_ish"));

        let by_limit = campaign::progress_by_limit(db, id).await.unwrap();
        let rates: Vec<_> = by_limit.iter().map(|(r, _)| *r).collect();
        assert_eq!(rates, [Some(1_000_000), Some(8_000_000), None]);
        assert_eq!(by_limit.iter().map(|(_, p)| p.done).sum::<u64>(), 3);
        assert!(by_limit.iter().all(|(_, p)| p.total() == 2));
    }
}

/// A flow record as wide as a real one (~100 statistics, a few kB of JSON).
fn wide_flow(port: u16) -> serde_json::Map<String, serde_json::Value> {
    let mut flow = results().flows[0].clone();
    flow.insert("client_port".into(), json!(port));
    for k in 0..50 {
        flow.insert(format!("c2s_stat{k}_avg"), json!(f64::from(k) * 1.25));
        flow.insert(format!("s2c_stat{k}_max"), json!(k * 1000));
    }
    flow.insert("unset".into(), serde_json::Value::Null);
    flow
}

#[tokio::test]
async fn flow_records_are_lz4_compressed_on_postgres_and_pglz_ones_still_read_back() {
    let t = TestDb::postgres().await;
    let db = &t.db;
    let id = campaign::create(db, &spec(2)).await.unwrap();
    let mut stored = results();
    stored.flows = vec![wide_flow(40000), wide_flow(40001)];
    let s = session::claim_next(db, id).await.unwrap().unwrap();
    session::store_results(db, &s, &stored).await.unwrap();

    let lz4: Option<(String,)> = sqlx::query_as(
        "SELECT name FROM pg_settings WHERE name = 'default_toast_compression' AND 'lz4' = ANY(enumvals)",
    )
    .fetch_optional(db.pool())
    .await
    .unwrap();
    let methods: Vec<(Option<String>,)> =
        sqlx::query_as("SELECT pg_column_compression(stats) FROM flows ORDER BY idx")
            .fetch_all(db.pool())
            .await
            .unwrap();
    let want = lz4.map(|_| "lz4").unwrap_or("pglz");
    assert_eq!(methods, vec![(Some(want.to_string()),); 2]);

    // Rows stored before, compressed with PostgreSQL's default (pglz), read back alike.
    let mut tx = db.begin().await.unwrap();
    sqlx::query("SELECT set_config('default_toast_compression', 'pglz', true)")
        .execute(&mut *tx)
        .await
        .unwrap();
    sqlx::query("UPDATE flows SET stats = stats || '' WHERE idx = 1")
        .execute(&mut *tx)
        .await
        .unwrap();
    tx.commit().await.unwrap();
    let (old,): (String,) =
        sqlx::query_as("SELECT pg_column_compression(stats) FROM flows WHERE idx = 1")
            .fetch_one(db.pool())
            .await
            .unwrap();
    assert_eq!(old, "pglz");
    let detail = session::detail(db, s.id).await.unwrap();
    let mut expected = stored.flows.clone();
    for flow in &mut expected {
        flow.remove("unset");
    }
    assert_eq!(detail.flows, expected);
}
