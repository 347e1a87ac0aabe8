//! Export round-trips on real databases: what is read back from CSV, JSONL and Parquet equals
//! the stored feature rows.

mod common;

use std::collections::BTreeMap;

use arrow_array::{Array, Float64Array, StringArray};
use common::TestDb;
use qoelab_collector::Db;
use qoelab_collector::campaign::{self, CampaignSpec, Workload};
use qoelab_collector::export::{self, Format};
use qoelab_collector::session::{self, Bin, Results};
use qoelab_units::parse_limits;
use serde_json::{Value, json};

async fn campaign_with_results(db: &Db, sessions: u32) -> i64 {
    let spec = CampaignSpec {
        name: "export".into(),
        sessions,
        duration_s: 5.0,
        warmup_s: 0.0,
        limits: parse_limits("1, 8 mbit, unlimited").unwrap(),
        delays_ms: vec![],
        losses: vec![],
        workload: Workload::Video { abr: "mpc".into() },
        seed: 3,
        gateway: None,
    };
    let id = campaign::create(db, &spec).await.unwrap();
    while let Some(s) = session::claim_next(db, id).await.unwrap() {
        let n = s.seq as u64;
        let flow = json!({"protocol": "tcp", "client_ip": "198.18.1.2", "client_port": 40000 + n,
            "server_ip": "198.18.2.2", "server_port": 8080, "c2s_ip_bytes": 1000 + n, "s2c_ip_bytes": 50_000 * (n + 1),
            "s2c_rtt_avg_ms": 10.0 + n as f64 / 3.0, "s2c_retx_pkts": n % 4});
        let results = Results {
            warmup_ms: 0,
            capture_id: Some(format!("cap{n}")),
            bin_ms: 1000,
            flows: vec![flow.as_object().unwrap().clone()],
            series: (0..5)
                .map(|i| Bin {
                    flow_idx: None,
                    bin: i,
                    start_ms: i64::from(i) * 1000,
                    c2s_bytes: 200,
                    s2c_bytes: 10_000 * (n + 1),
                    c2s_pkts: 2,
                    s2c_pkts: 9,
                    c2s_retx: 0,
                    s2c_retx: n % 2,
                })
                .collect(),
            application: Some(
                json!({"stall_count": n % 3, "qoe_class": if n.is_multiple_of(2) { "high" } else { "low, or \"worse\"" }}),
            ),
        };
        session::store_results(db, &s, &results).await.unwrap();
    }
    id
}

async fn stored_rows(db: &Db, campaign_id: i64) -> Vec<BTreeMap<String, Value>> {
    let page = session::list(
        db,
        &session::SessionQuery {
            campaign_id: Some(campaign_id),
            per_page: Some(1000),
            ..Default::default()
        },
    )
    .await
    .unwrap();
    let mut rows = Vec::new();
    for s in page.sessions {
        rows.push(session::detail(db, s.id).await.unwrap().features);
    }
    rows
}

fn same(a: &Value, b: &Value) -> bool {
    match (a.as_f64(), b.as_f64()) {
        (Some(x), Some(y)) => (x - y).abs() <= 1e-9 * x.abs().max(1.0),
        _ => a == b,
    }
}

#[tokio::test]
async fn csv_jsonl_and_parquet_read_back_equal_the_database() {
    for t in TestDb::both().await {
        let id = campaign_with_results(&t.db, 9).await;
        let expected = stored_rows(&t.db, id).await;
        let dir = std::env::temp_dir().join(format!(
            "qlexport{}_{id}_{:?}",
            std::process::id(),
            t.db.backend()
        ));
        std::fs::create_dir_all(&dir).unwrap();

        // CSV: the header names every column; empty cells are missing values.
        let path = dir.join("d.csv");
        assert_eq!(
            export::to_file(&t.db, id, Format::Csv, &path)
                .await
                .unwrap(),
            9
        );
        let mut reader = csv::Reader::from_path(&path).unwrap();
        let header: Vec<String> = reader.headers().unwrap().iter().map(String::from).collect();
        assert_eq!(&header[..3], ["session_id", "campaign_id", "seq"]);
        let first_label = header.iter().position(|h| h.starts_with("label_")).unwrap();
        assert!(
            header[first_label..]
                .iter()
                .all(|h| h.starts_with("label_")),
            "labels come last: {header:?}"
        );
        for (record, want) in reader.records().zip(&expected) {
            let record = record.unwrap();
            for (name, cell) in header.iter().zip(record.iter()) {
                let want = want.get(name).unwrap_or(&Value::Null);
                let got = if cell.is_empty() {
                    Value::Null
                } else {
                    cell.parse::<f64>()
                        .map(Value::from)
                        .unwrap_or(Value::from(cell))
                };
                assert!(same(&got, want), "{name}: csv {got} vs db {want}");
            }
        }

        // JSON Lines.
        let path = dir.join("d.jsonl");
        export::to_file(&t.db, id, Format::Jsonl, &path)
            .await
            .unwrap();
        let lines: Vec<BTreeMap<String, Value>> = std::fs::read_to_string(&path)
            .unwrap()
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect();
        assert_eq!(lines.len(), 9);
        for (got, want) in lines.iter().zip(&expected) {
            for (name, w) in want {
                assert!(same(&got[name], w), "{name}: jsonl {} vs db {w}", got[name]);
            }
        }

        // Parquet.
        let path = dir.join("d.parquet");
        export::to_file(&t.db, id, Format::Parquet, &path)
            .await
            .unwrap();
        let file = std::fs::File::open(&path).unwrap();
        let reader = parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder::try_new(file)
            .unwrap()
            .build()
            .unwrap();
        let mut n = 0;
        for batch in reader {
            let batch = batch.unwrap();
            for row in 0..batch.num_rows() {
                let want = &expected[n + row];
                for (i, field) in batch.schema().fields().iter().enumerate() {
                    let col = batch.column(i);
                    let got = if col.is_null(row) {
                        Value::Null
                    } else if let Some(s) = col.as_any().downcast_ref::<StringArray>() {
                        Value::from(s.value(row))
                    } else {
                        Value::from(
                            col.as_any()
                                .downcast_ref::<Float64Array>()
                                .unwrap()
                                .value(row),
                        )
                    };
                    let w = want.get(field.name()).unwrap_or(&Value::Null);
                    assert!(same(&got, w), "{}: parquet {got} vs db {w}", field.name());
                }
            }
            n += batch.num_rows();
        }
        assert_eq!(n, 9);
        std::fs::remove_dir_all(&dir).unwrap();
    }
}

#[tokio::test]
async fn exporting_an_unknown_campaign_is_not_found() {
    let t = TestDb::sqlite().await;
    let err = export::to_file(
        &t.db,
        42,
        Format::Csv,
        &std::env::temp_dir().join("qlnever.csv"),
    )
    .await
    .unwrap_err();
    assert!(err.to_string().contains("no campaign with id 42"), "{err}");
}
