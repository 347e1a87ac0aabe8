//! Models in the database and campaigns as classifier frames, on PostgreSQL and SQLite.

mod common;

use common::TestDb;
use qoelab_classifier::{
    Dataset, DatasetSpec, EvalSpec, LabelSpec, ModelKind, ModelParams, TrainSpec,
};
use qoelab_collector::campaign::{self, CampaignSpec, Workload};
use qoelab_collector::session::{self, Bin, Results};
use qoelab_collector::{Db, Error, models};
use qoelab_units::parse_limits;
use serde_json::json;

/// A campaign of `n` stored sessions whose throughput follows the limit and whose label says
/// whether the limit was low.
async fn campaign(db: &Db, n: u32) -> i64 {
    let spec = CampaignSpec {
        name: "frames".into(),
        sessions: n,
        duration_s: 10.0,
        warmup_s: 0.0,
        limits: parse_limits("1, 8 mbit").unwrap(),
        delays_ms: vec![],
        losses: vec![],
        workload: Workload::Video {
            abr: "buffer".into(),
        },
        seed: 3,
        gateway: None,
    };
    let id = campaign::create(db, &spec).await.unwrap();
    while let Some(s) = session::claim_next(db, id).await.unwrap() {
        let rate = s.profile.rate_bps.unwrap();
        let bytes = rate / 8 + (s.seq as u64 % 7) * 1000;
        let flow = json!({"protocol": "tcp", "client_ip": "198.18.1.2", "client_port": 1,
            "server_ip": "198.18.2.2", "server_port": 80, "c2s_ip_bytes": bytes / 50, "s2c_ip_bytes": bytes});
        let results = Results {
            warmup_ms: 0,
            capture_id: None,
            bin_ms: 1000,
            flows: vec![flow.as_object().unwrap().clone()],
            series: vec![Bin {
                flow_idx: None,
                bin: 0,
                start_ms: 0,
                c2s_bytes: bytes / 50,
                s2c_bytes: bytes,
                c2s_pkts: 10,
                s2c_pkts: 100,
                c2s_retx: 0,
                s2c_retx: 0,
            }],
            application: Some(json!({
                "qoe_class": if rate < 2_000_000 { "low" } else { "high" },
                "stall_count": u64::from(rate < 2_000_000),
            })),
        };
        session::store_results(db, &s, &results).await.unwrap();
    }
    id
}

#[tokio::test]
async fn a_campaign_trains_a_model_that_is_stored_listed_read_and_deleted() {
    for t in TestDb::both().await {
        let db = &t.db;
        let id = campaign(db, 20).await;
        let frame = models::frame(db, &[id]).await.unwrap();
        assert_eq!(frame.nrows(), 20);
        assert_eq!(frame.source(), format!("campaign {id}"));
        // Several campaigns make one frame: every row under the same columns.
        let other = campaign(db, 6).await;
        let both = models::frame(db, &[id, other]).await.unwrap();
        assert_eq!(both.nrows(), 26);
        assert_eq!(both.source(), format!("campaigns {id}, {other}"));
        assert_eq!(both.columns().len(), frame.columns().len());
        let class = frame.find("label_qoe_class").unwrap();
        assert!(
            frame.columns()[class].text_at(0).is_some(),
            "text labels stay text"
        );
        let label = LabelSpec::parse("label_qoe_class", None, None).unwrap();
        let dataset = Dataset::from_frame(
            &frame,
            &DatasetSpec {
                label: label.clone(),
                features: Default::default(),
                missing: qoelab_classifier::MissingPolicy::Median,
                force: false,
            },
        )
        .unwrap();
        let spec = TrainSpec {
            params: ModelParams::new(ModelKind::DecisionTree),
            eval: EvalSpec {
                folds: 2,
                ..EvalSpec::default()
            },
        };
        let model = qoelab_classifier::train(&dataset, &label, &spec, &|_| {}).unwrap();

        let model_id = models::store(db, "tree", &model).await.unwrap();
        let err = models::store(db, "tree", &model).await.unwrap_err();
        assert!(matches!(err, Error::Conflict(_)), "{err}");
        let err = models::store(db, " ", &model).await.unwrap_err();
        assert!(err.to_string().contains("name"), "{err}");

        let listed = models::list(db).await.unwrap();
        assert_eq!(listed.len(), 1);
        assert_eq!(
            (listed[0].algorithm.as_str(), listed[0].label.as_str()),
            ("tree", model.label.describe().as_str())
        );
        assert!(listed[0].metrics["metrics"]["accuracy"].as_f64().unwrap() > 0.9);
        let (info, back) = models::get(db, model_id).await.unwrap();
        assert_eq!(info.name, "tree");
        assert_eq!(back, model);
        models::delete(db, model_id).await.unwrap();
        assert!(matches!(
            models::get(db, model_id).await.unwrap_err(),
            Error::NotFound(_)
        ));
        assert!(matches!(
            models::delete(db, model_id).await.unwrap_err(),
            Error::NotFound(_)
        ));
        assert!(matches!(
            models::frame(db, &[id, 4242]).await.unwrap_err(),
            Error::NotFound(_)
        ));
    }
}
