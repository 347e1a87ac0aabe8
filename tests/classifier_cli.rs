//! `qoelab train`, `predict` and `models` as a user runs them, including bad input.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

/// A scratch directory removed at the end of the test.
struct Scratch(PathBuf);

impl Scratch {
    fn new(name: &str) -> Scratch {
        let dir = std::env::temp_dir().join(format!("qoelab-cli-{name}-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        Scratch(dir)
    }

    fn file(&self, name: &str, text: &str) -> PathBuf {
        let path = self.0.join(name);
        std::fs::write(&path, text).unwrap();
        path
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn qoelab(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_qoelab"))
        .args(args)
        .output()
        .unwrap()
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

/// Runs `qoelab train` on a CSV and returns the error message of a failure.
fn train_error(csv: &Path, extra: &[&str]) -> String {
    let mut args = vec!["train", "--csv", csv.to_str().unwrap(), "--folds", "2"];
    args.extend_from_slice(extra);
    let out = qoelab(&args);
    assert!(
        !out.status.success(),
        "expected a failure: {}",
        text(&out.stdout)
    );
    text(&out.stderr)
}

#[test]
fn train_predict_and_list_a_model() {
    let dir = Scratch::new("train");
    let csv = dir.file(
        "sessions.csv",
        &qoelab_classifier::synthetic::sessions_csv(400, 1),
    );
    let models = dir.0.join("models");
    std::fs::create_dir_all(&models).unwrap();
    let model = models.join("stall-rf.json");
    let out = qoelab(&[
        "train",
        "--csv",
        csv.to_str().unwrap(),
        "--label",
        "stall:label_stall_count>0",
        "--model",
        "rf",
        "--trees",
        "20",
        "--folds",
        "5",
        "--holdout",
        "0.2",
        "--seed",
        "3",
        "-o",
        model.to_str().unwrap(),
    ]);
    let stdout = text(&out.stdout);
    assert!(out.status.success(), "{}", text(&out.stderr));
    for expected in [
        "classes   no_stall",
        "5-fold stratified cross-validation on 320 rows",
        "held-out 20% on 80 rows",
        "macro-F1",
        "true \\ predicted  no_stall  stall",
        "label_stall_count (the label)",
        "session_id (identifier",
    ] {
        assert!(
            stdout.contains(expected),
            "missing {expected:?} in:\n{stdout}"
        );
    }
    assert!(text(&out.stderr).contains("model saved to"));

    let out = qoelab(&[
        "predict",
        "--model",
        model.to_str().unwrap(),
        "--format",
        "csv",
        csv.to_str().unwrap(),
    ]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let predictions = text(&out.stdout);
    let mut lines = predictions.lines();
    assert_eq!(lines.next(), Some("line,predicted,p_no_stall,p_stall,true"));
    assert_eq!(lines.count(), 400);

    let out = qoelab(&["models", "list", "--dir", models.to_str().unwrap()]);
    let listing = text(&out.stdout);
    assert!(
        listing.contains("stall-rf") && listing.contains("held-out 20%"),
        "{listing}"
    );
    let out = qoelab(&[
        "models",
        "show",
        "stall-rf",
        "--dir",
        models.to_str().unwrap(),
    ]);
    assert!(
        text(&out.stdout).contains("data      sha256 "),
        "{}",
        text(&out.stderr)
    );
}

#[test]
fn malformed_csvs_are_refused_with_their_place() {
    let dir = Scratch::new("malformed");
    let ragged = dir.file("ragged.csv", "a,b,y\n1,2,0\n3,1\n5,6,0\n");
    let err = train_error(&ragged, &["--label", "y"]);
    assert!(
        err.contains("ragged.csv line 3: 2 fields, but the header has 3"),
        "{err}"
    );

    let bad = dir.file("bad.csv", "a,b,y\n1,2,0\n3,4,1\n5,x6,0\n7,8,1\n");
    let err = train_error(&bad, &["--label", "y"]);
    assert!(
        err.contains("bad.csv line 4, column 'b': 'x6' is not a finite number"),
        "{err}"
    );

    let one = dir.file("one.csv", "a,y\n1,1\n2,1\n3,1\n4,1\n");
    let err = train_error(&one, &["--label", "y"]);
    assert!(
        err.contains("only one class") && err.contains("1: 4 rows"),
        "{err}"
    );

    let empty = dir.file("empty.csv", "");
    let err = train_error(&empty, &["--label", "y"]);
    assert!(err.contains("empty.csv is empty: no header"), "{err}");
    let header_only = dir.file("header.csv", "a,y\n");
    let err = train_error(&header_only, &["--label", "y"]);
    assert!(err.contains("a header but no data rows"), "{err}");

    let missing = dir.file("missing.csv", "a,b,y\n1,,0\n2,3,1\n4,5,0\n6,7,1\n");
    let err = train_error(&missing, &["--label", "y"]);
    assert!(
        err.contains("column 'b' has 1 missing cell(s), the first at") && err.contains("line 2"),
        "{err}"
    );
    assert!(err.contains("--missing drop"), "{err}");

    let err = train_error(&missing, &["--label", "nope"]);
    assert!(
        err.contains("no column 'nope'; its columns are: a, b, y"),
        "{err}"
    );
}

#[test]
fn the_label_as_a_feature_needs_force() {
    let dir = Scratch::new("leak");
    let rows: String = (0..40).map(|i| format!("{},{}\n", i % 7, i % 2)).collect();
    let csv = dir.file("leak.csv", &format!("a,y\n{rows}"));
    let err = train_error(&csv, &["--label", "y", "--features", "a,y"]);
    assert!(
        err.contains("label leakage: 'y' is the label column and also a feature"),
        "{err}"
    );
    let out = qoelab(&[
        "train",
        "--csv",
        csv.to_str().unwrap(),
        "--label",
        "y",
        "--features",
        "a,y",
        "--force",
        "--model",
        "tree",
        "--folds",
        "2",
    ]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    // With its label as input the tree is perfect: exactly the trap the guard is for.
    assert!(text(&out.stdout).contains("accuracy           1.000"));
}

#[test]
fn bad_flags_name_the_accepted_values() {
    let out = qoelab(&["train", "--csv", "x.csv", "--label", "y", "--model", "svm"]);
    assert!(text(&out.stderr).contains("one of rf, tree, logreg, nb"));
    let out = qoelab(&[
        "train",
        "--csv",
        "x.csv",
        "--label",
        "y",
        "--missing",
        "zero",
    ]);
    assert!(text(&out.stderr).contains("one of error, drop, median"));
    let out = qoelab(&["train", "--csv", "/nonexistent.csv", "--label", "y"]);
    assert!(text(&out.stderr).contains("cannot read /nonexistent.csv"));
}

/// Stores a finished 30-session campaign in the SQLite file `db_url`: sessions at 1 Mbit/s
/// moved little and were rated low, sessions at 8 Mbit/s moved much and were rated high.
/// Returns the ids of a low and a high session.
fn stored_campaign(db_url: &str) -> (i64, i64) {
    use qoelab_collector::campaign::{self, CampaignSpec, Workload};
    use qoelab_collector::session::{self, Results};
    let runtime = tokio::runtime::Runtime::new().unwrap();
    runtime.block_on(async {
        let db = qoelab_collector::Db::connect(db_url).await.unwrap();
        let spec = CampaignSpec {
            name: "stored".into(),
            sessions: 30,
            duration_s: 10.0,
            warmup_s: 0.0,
            limits: qoelab_units::parse_limits("1, 8 mbit").unwrap(),
            delays_ms: vec![],
            losses: vec![],
            workload: Workload::Video { abr: "mpc".into() },
            seed: 3,
            gateway: None,
        };
        let id = campaign::create(&db, &spec).await.unwrap();
        let (mut low, mut high) = (0, 0);
        let mut n = 0u64;
        while let Some(s) = session::claim_next(&db, id).await.unwrap() {
            n += 1;
            let slow = s.profile.rate_bps == Some(1_000_000);
            let bytes = if slow { 1_200_000 } else { 9_000_000 } + 37_000 * (n % 7);
            let flow = serde_json::json!({"protocol": "tcp", "client_ip": "198.18.1.2",
                "client_port": 40000 + n, "server_ip": "198.18.2.2", "server_port": 8080,
                "c2s_ip_bytes": bytes / 40, "s2c_ip_bytes": bytes, "s2c_pkts": bytes / 1448});
            let results = Results {
                bin_ms: 1000,
                flows: vec![flow.as_object().unwrap().clone()],
                application: Some(serde_json::json!({
                    "schema": "qoelab.video-qoe.v1",
                    "qoe_class": if slow { "low" } else { "high" },
                    "stall_count": u8::from(slow),
                })),
                ..Results::default()
            };
            session::store_results(&db, &s, &results).await.unwrap();
            *(if slow { &mut low } else { &mut high }) = s.id;
        }
        (low, high)
    })
}

#[test]
fn a_model_trained_on_a_stored_campaign_predicts_stored_sessions() {
    let dir = Scratch::new("stored");
    let db_url = format!("sqlite://{}", dir.0.join("qoelab.db").display());
    let (low, high) = stored_campaign(&db_url);
    let db = ["--database", db_url.as_str()];

    let out = qoelab(
        &[
            &["train", "--campaign", "1", "--label", "label_qoe_class"][..],
            &["--folds", "3", "--trees", "10", "--store", "by-volume"],
            &db,
        ]
        .concat(),
    );
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert!(
        text(&out.stdout).contains("campaign 1"),
        "{}",
        text(&out.stdout)
    );
    assert!(text(&out.stderr).contains("as #1"), "{}", text(&out.stderr));

    for (session, class) in [(low, "low"), (high, "high")] {
        let id = session.to_string();
        let out = qoelab(
            &[
                &[
                    "predict",
                    "--model",
                    "1",
                    "--session",
                    &id,
                    "--format",
                    "json",
                ][..],
                &db,
            ]
            .concat(),
        );
        assert!(out.status.success(), "{}", text(&out.stderr));
        let json: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
        assert_eq!(json["predictions"][0]["class"], class, "{json}");
        assert_eq!(json["predictions"][0]["session"], id, "{json}");
        assert_eq!(
            json["metrics"]["accuracy"], 1.0,
            "scored against its label: {json}"
        );
    }

    // The stored model is listed and shown from the database.
    let out = qoelab(&[&["models", "list"][..], &db].concat());
    assert!(out.status.success(), "{}", text(&out.stderr));
    let listed = text(&out.stdout);
    assert!(
        listed.contains("#1 by-volume") && listed.contains("label_qoe_class"),
        "{listed}"
    );
    let out = qoelab(&[&["models", "show", "1", "--json"][..], &db].concat());
    assert!(out.status.success(), "{}", text(&out.stderr));
    let shown: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(shown["dataset"]["rows"], 30, "{shown}");

    // Bad references say what is wrong.
    let fails = |args: &[&str], expected: &str| {
        let out = qoelab(&[args, &db].concat());
        assert!(!out.status.success());
        let err = text(&out.stderr);
        assert!(err.contains(expected), "{err}");
    };
    fails(
        &["predict", "--model", "1", "--session", "999"],
        "no session with id 999",
    );
    fails(
        &["predict", "--model", "77", "--session", "1"],
        "no model with id 77",
    );
    fails(
        &["predict", "--model", "nosuch.json", "--session", "1"],
        "no such file, and not a model id",
    );
    fails(
        &["train", "--campaign", "5", "--label", "label_qoe_class"],
        "no campaign with id 5",
    );
}
