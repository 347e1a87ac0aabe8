//! Collector throughput on a real PostgreSQL (and SQLite for comparison):
//! QoS-report ingest, CSV export, and storing one big session.
//!
//! Run: `cargo bench -p qoelab-collector --bench collector` (PostgreSQL from `QOELAB_TEST_PG`,
//! default `postgres://qoelab:qoelab@127.0.0.1/postgres`; a scratch database is created and
//! dropped).

use std::time::{Duration, Instant};

use qoelab_collector::campaign::{self, CampaignSpec, Workload};
use qoelab_collector::export::{self, Format};
use qoelab_collector::ingest::{self, Batch, QosReport};
use qoelab_collector::session::{self, Bin, Results};
use qoelab_collector::{Backend, Db};
use serde_json::{Map, Value, json};

fn report(i: i64) -> QosReport {
    QosReport {
        gateway: format!("gw{}", i % 4),
        analytic: format!("cam{}", i % 16),
        kind: "object-detection".into(),
        ts_ms: 1_700_000_000_000 + i,
        knob: 0.5,
        expected_qos: 0.93,
        achieved_qos: 0.9,
        throughput_bps: Some(30_000.0),
        latency_ms: Some(12.0),
        extra: None,
    }
}

/// A flow record with the width of a real one (~100 statistics).
fn flow(i: usize) -> Map<String, Value> {
    let mut m = json!({"protocol": "tcp", "client_ip": "198.18.1.2", "client_port": 30000 + i,
        "server_ip": "198.18.2.2", "server_port": 443, "c2s_ip_bytes": 1000 + i, "s2c_ip_bytes": 90000 + i})
    .as_object()
    .unwrap()
    .clone();
    for k in 0..48 {
        m.insert(format!("c2s_stat{k}_avg"), json!(i as f64 * 0.5 + k as f64));
        m.insert(format!("s2c_stat{k}_max"), json!(i * k));
    }
    m
}

async fn ingest_rate(db: &Db, total: usize, batch: usize) -> f64 {
    let start = Instant::now();
    for b in 0..total / batch {
        let items = (0..batch).map(|i| report((b * batch + i) as i64)).collect();
        let key = format!("bench-{batch}-{b}");
        let outcome = ingest::qos_reports(
            db,
            &Batch {
                idempotency_key: Some(key),
                items,
            },
        )
        .await
        .unwrap();
        assert!(!outcome.duplicate);
    }
    total as f64 / start.elapsed().as_secs_f64()
}

async fn bench(db: &Db, label: &str) {
    // Ingest: 200,000 reports in batches of 1,000 and 5,000.
    for batch in [1000, 5000] {
        let rate = ingest_rate(db, 200_000, batch).await;
        println!(
            "{label:<10} ingest QoS reports, batches of {batch:>5}: {rate:>10.0} reports/s (target ≥ 50,000)"
        );
    }

    // Store one session of 1,000 flows and 60 bins; median of 5.
    let spec = CampaignSpec {
        name: "bench".into(),
        sessions: 20_005,
        duration_s: 60.0,
        warmup_s: 0.0,
        limits: qoelab_units::parse_limits("1, 2, 5 mbit").unwrap(),
        delays_ms: vec![],
        losses: vec![],
        workload: Workload::Video {
            abr: "buffer".into(),
        },
        seed: 1,
        gateway: None,
    };
    let id = campaign::create(db, &spec).await.unwrap();
    let big = Results {
        warmup_ms: 0,
        capture_id: Some("bench".into()),
        bin_ms: 1000,
        flows: (0..1000).map(flow).collect(),
        series: (0..60)
            .map(|i| Bin {
                flow_idx: None,
                bin: i,
                start_ms: i64::from(i) * 1000,
                c2s_bytes: 1,
                s2c_bytes: 2,
                c2s_pkts: 3,
                s2c_pkts: 4,
                c2s_retx: 0,
                s2c_retx: 0,
            })
            .collect(),
        application: Some(json!({"stall_count": 1, "qoe_class": "medium"})),
    };
    let mut times = Vec::new();
    for _ in 0..5 {
        let s = session::claim_next(db, id).await.unwrap().unwrap();
        let start = Instant::now();
        session::store_results(db, &s, &big).await.unwrap();
        times.push(start.elapsed());
    }
    times.sort();
    println!(
        "{label:<10} store a session of 1,000 flows + 60 bins: median {:>6.1} ms (target < 50 ms)",
        ms(times[2])
    );

    // Export: fill the rest of the campaign with small sessions, then export CSV.
    let small = Results {
        flows: (0..3).map(flow).collect(),
        ..big.clone()
    };
    while let Some(s) = session::claim_next(db, id).await.unwrap() {
        session::store_results(db, &s, &small).await.unwrap();
    }
    let path = std::env::temp_dir().join(format!("qlbench{}.csv", std::process::id()));
    let start = Instant::now();
    let rows = export::to_file(db, id, Format::Csv, &path).await.unwrap();
    let elapsed = start.elapsed();
    let bytes = std::fs::metadata(&path).unwrap().len();
    std::fs::remove_file(&path).unwrap();
    println!(
        "{label:<10} export CSV: {rows} rows, {:.1} MB in {:.0} ms = {:>6.1} MB/s (target ≥ 50 MB/s)",
        bytes as f64 / 1e6,
        ms(elapsed),
        bytes as f64 / 1e6 / elapsed.as_secs_f64()
    );
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    let admin = std::env::var("QOELAB_TEST_PG")
        .unwrap_or_else(|_| "postgres://qoelab:qoelab@127.0.0.1/postgres".into());
    sqlx::any::install_default_drivers();
    let name = format!("qlbench_{}", std::process::id());
    let mut conn = <sqlx::AnyConnection as sqlx::Connection>::connect(&admin)
        .await
        .unwrap();
    sqlx::query(sqlx::AssertSqlSafe(format!("CREATE DATABASE {name}")))
        .execute(&mut conn)
        .await
        .unwrap();
    let url = format!("{}/{name}", admin.rsplit_once('/').unwrap().0);
    let pg = Db::connect(&url).await.unwrap();
    assert_eq!(pg.backend(), Backend::Postgres);
    bench(&pg, "postgres").await;
    pg.close().await;
    sqlx::query(sqlx::AssertSqlSafe(format!(
        "DROP DATABASE {name} WITH (FORCE)"
    )))
    .execute(&mut conn)
    .await
    .unwrap();

    let path = std::env::temp_dir().join(format!("qlbench{}.db", std::process::id()));
    let lite = Db::connect(&format!("sqlite://{}", path.display()))
        .await
        .unwrap();
    bench(&lite, "sqlite").await;
    lite.close().await;
    for suffix in ["", "-wal", "-shm"] {
        let _ = std::fs::remove_file(format!("{}{suffix}", path.display()));
    }
}
