//! Ingest against real PostgreSQL and SQLite: validation, idempotency, read-back.

mod common;

use common::TestDb;
use qoelab_collector::Error;
use qoelab_collector::ingest::{self, AllocationDecision, Batch, PlacementDecision, QosReport};

fn report(i: i64) -> QosReport {
    QosReport {
        gateway: "gw1".into(),
        analytic: "cam1".into(),
        kind: "object-detection".into(),
        ts_ms: 1_700_000_000_000 + i,
        knob: 0.5,
        expected_qos: 0.93,
        achieved_qos: 0.9,
        throughput_bps: Some(30_000.0),
        latency_ms: Some(12.0),
        extra: Some(serde_json::json!({"frames": 4})),
    }
}

#[tokio::test]
async fn a_retried_batch_is_stored_once() {
    for t in TestDb::both().await {
        let batch = Batch {
            idempotency_key: Some("gw1-000042".into()),
            items: (0..2500).map(report).collect(),
        };
        let first = ingest::qos_reports(&t.db, &batch).await.unwrap();
        assert_eq!((first.stored, first.duplicate), (2500, false));
        let again = ingest::qos_reports(&t.db, &batch).await.unwrap();
        assert_eq!((again.stored, again.duplicate), (0, true));
        let stored = ingest::qos_between(&t.db, "gw1", "cam1", 0, i64::MAX)
            .await
            .unwrap();
        assert_eq!(stored.len(), 2500);
        assert_eq!(stored[7], report(7));
        // Without a key every batch is stored.
        let unkeyed = Batch {
            idempotency_key: None,
            items: vec![report(9999)],
        };
        ingest::qos_reports(&t.db, &unkeyed).await.unwrap();
        ingest::qos_reports(&t.db, &unkeyed).await.unwrap();
        assert_eq!(
            ingest::qos_between(&t.db, "gw1", "cam1", 0, i64::MAX)
                .await
                .unwrap()
                .len(),
            2502
        );
    }
}

fn placement(analytic: &str) -> PlacementDecision {
    PlacementDecision {
        gateway: "gw1".into(),
        analytic: analytic.into(),
        location: "edge".into(),
        image: "yolo:1".into(),
        layers_fetched: vec!["sha256:a".into()],
        bytes_fetched: 1 << 20,
        ts_ms: 1_700_000_000_000,
    }
}

async fn placements_stored(db: &qoelab_collector::Db) -> i64 {
    let (n,): (i64,) = sqlx::query_as("SELECT COUNT(*) FROM placement_decisions")
        .fetch_one(db.pool())
        .await
        .unwrap();
    n
}

#[tokio::test]
async fn a_key_used_for_another_batch_is_refused_not_dropped() {
    for t in TestDb::both().await {
        let qos = Batch {
            idempotency_key: Some("k-1".into()),
            items: vec![report(1)],
        };
        ingest::qos_reports(&t.db, &qos).await.unwrap();

        // The same key on a batch of another kind: a conflict naming the key and its first use.
        let placements = Batch {
            idempotency_key: Some("k-1".into()),
            items: vec![placement("cam1")],
        };
        let err = ingest::placement_decisions(&t.db, &placements)
            .await
            .unwrap_err();
        assert!(matches!(err, Error::Conflict(_)), "{err:?}");
        let text = err.to_string();
        for part in [
            "idempotency_key = 'k-1'",
            "a batch of QoS reports, not of placement decisions",
            "new idempotency_key",
        ] {
            assert!(text.contains(part), "{part} in {text}");
        }
        assert_eq!(placements_stored(&t.db).await, 0);

        // The same key and kind with other items: refused too, the first batch kept.
        let other = Batch {
            idempotency_key: Some("k-1".into()),
            items: vec![report(2)],
        };
        let err = ingest::qos_reports(&t.db, &other).await.unwrap_err();
        assert!(
            err.to_string()
                .contains("a different batch of QoS reports (other items)"),
            "{err}"
        );
        let stored = ingest::qos_between(&t.db, "gw1", "cam1", 0, i64::MAX)
            .await
            .unwrap();
        assert_eq!(stored, vec![report(1)]);

        // The same batch again is a repeat, and a new key stores the other batches.
        assert!(ingest::qos_reports(&t.db, &qos).await.unwrap().duplicate);
        let fresh = Batch {
            idempotency_key: Some("k-2".into()),
            ..placements
        };
        assert_eq!(
            ingest::placement_decisions(&t.db, &fresh)
                .await
                .unwrap()
                .stored,
            1
        );
        assert_eq!(placements_stored(&t.db).await, 1);

        // A key stored before digests were kept (no digest): a repeat if the kind matches.
        sqlx::query(
            "INSERT INTO ingest_batches (idempotency_key, kind, items, received_ms) \
             VALUES ('old-1', 'placement', 1, 0)",
        )
        .execute(t.db.pool())
        .await
        .unwrap();
        let old = Batch {
            idempotency_key: Some("old-1".into()),
            items: vec![placement("cam2")],
        };
        assert!(
            ingest::placement_decisions(&t.db, &old)
                .await
                .unwrap()
                .duplicate
        );
        let err = ingest::qos_reports(
            &t.db,
            &Batch {
                idempotency_key: Some("old-1".into()),
                items: vec![report(3)],
            },
        )
        .await
        .unwrap_err();
        assert!(matches!(err, Error::Conflict(_)), "{err:?}");
        assert_eq!(placements_stored(&t.db).await, 1);
    }
}

#[tokio::test]
async fn a_bad_item_rejects_the_whole_batch_and_keeps_what_was_stored() {
    for t in TestDb::both().await {
        let good = Batch {
            idempotency_key: Some("a".into()),
            items: vec![report(1)],
        };
        ingest::qos_reports(&t.db, &good).await.unwrap();
        let mut items: Vec<QosReport> = (10..20).map(report).collect();
        items[4].achieved_qos = 1.7;
        let err = ingest::qos_reports(
            &t.db,
            &Batch {
                idempotency_key: Some("b".into()),
                items,
            },
        )
        .await
        .unwrap_err();
        assert!(
            err.to_string().contains("items[4].achieved_qos = '1.7'"),
            "{err}"
        );
        assert_eq!(
            ingest::qos_between(&t.db, "gw1", "cam1", 0, i64::MAX)
                .await
                .unwrap()
                .len(),
            1
        );
        // The rejected batch's key was not used up: the corrected batch is accepted.
        let fixed = Batch {
            idempotency_key: Some("b".into()),
            items: (10..20).map(report).collect(),
        };
        assert_eq!(ingest::qos_reports(&t.db, &fixed).await.unwrap().stored, 10);
    }
}

#[tokio::test]
async fn decisions_are_validated_and_stored() {
    for t in TestDb::both().await {
        let placement = placement("cam1");
        let ok = ingest::placement_decisions(
            &t.db,
            &Batch {
                idempotency_key: None,
                items: vec![placement.clone()],
            },
        )
        .await
        .unwrap();
        assert_eq!(ok.stored, 1);
        let bad = PlacementDecision {
            location: "fog".into(),
            ..placement
        };
        let err = ingest::placement_decisions(
            &t.db,
            &Batch {
                idempotency_key: None,
                items: vec![bad],
            },
        )
        .await
        .unwrap_err();
        assert!(
            err.to_string().contains("items[0].location = 'fog'"),
            "{err}"
        );
        let alloc = AllocationDecision {
            gateway: "gw1".into(),
            analytic: "cam1".into(),
            knob: 0.0,
            rate_bps: 30_000,
            algorithm: "raa".into(),
            ts_ms: 1_700_000_000_000,
        };
        let err = ingest::allocation_decisions(
            &t.db,
            &Batch {
                idempotency_key: None,
                items: vec![alloc],
            },
        )
        .await
        .unwrap_err();
        assert!(err.to_string().contains("items[0].knob"), "{err}");
    }
}

#[tokio::test]
async fn analytics_are_listed_from_reports_and_decisions() {
    for t in TestDb::both().await {
        let reports = Batch {
            idempotency_key: None,
            items: (0..3).map(report).collect(),
        };
        ingest::qos_reports(&t.db, &reports).await.unwrap();
        let decision = |analytic: &str, ts_ms| AllocationDecision {
            gateway: "gw1".into(),
            analytic: analytic.into(),
            knob: 0.7,
            rate_bps: 400_000,
            algorithm: "raa".into(),
            ts_ms,
        };
        let decisions = Batch {
            idempotency_key: None,
            items: vec![
                decision("cam1", 1_699_999_000_000),
                decision("mic2", 1_700_000_500_000),
            ],
        };
        ingest::allocation_decisions(&t.db, &decisions)
            .await
            .unwrap();
        let seen = ingest::analytics(&t.db).await.unwrap();
        assert_eq!(seen.len(), 2);
        assert_eq!(
            (
                seen[0].analytic.as_str(),
                seen[0].reports,
                seen[0].allocations
            ),
            ("cam1", 3, 1)
        );
        assert_eq!(seen[0].kind.as_deref(), Some("object-detection"));
        assert_eq!(
            (seen[0].first_ms, seen[0].last_ms),
            (1_699_999_000_000, 1_700_000_000_002)
        );
        assert_eq!((seen[1].kind.as_deref(), seen[1].reports), (None, 0));
        let between =
            ingest::allocations_between(&t.db, "gw1", "mic2", 1_700_000_000_000, i64::MAX)
                .await
                .unwrap();
        assert_eq!(between, vec![decision("mic2", 1_700_000_500_000)]);
        assert!(
            ingest::allocations_between(&t.db, "gw1", "cam1", 1_700_000_000_000, i64::MAX)
                .await
                .unwrap()
                .is_empty()
        );
    }
}
