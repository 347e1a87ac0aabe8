//! `qoelab up` end to end, as a newcomer runs it: it refuses without root; with root it builds
//! its lab, runs the demo campaign through the real agent, serves the pages and the dataset,
//! refuses a second appliance on the same lab, and on Ctrl-C stops cleanly, leaving no
//! namespace, link or qdisc behind and the database consistent; killed (SIGKILL) in the middle
//! of a session and started again, it completes the campaign losing and repeating nothing.

mod http;

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use http::{Server, free_port, http};
use qoelab_lab::registry::LabRecord;

fn qoelab() -> Command {
    Command::new(env!("CARGO_BIN_EXE_qoelab"))
}

/// The host's own qdiscs, as `tc` lists them (devices of other tests' labs left out: they come
/// and go while tests run in parallel).
fn host_qdiscs() -> Vec<String> {
    let out = Command::new("tc").args(["qdisc", "show"]).output().unwrap();
    String::from_utf8(out.stdout)
        .unwrap()
        .lines()
        .filter(|l| !l.contains(" dev ql"))
        .map(str::to_string)
        .collect()
}

/// Everything of lab `lab` that exists: namespaces and links with its prefix, its record.
fn lab_remains(lab: &str) -> Vec<String> {
    let prefix = format!("ql{lab}-");
    let mut found: Vec<String> = qoelab_lab::netns::list()
        .unwrap()
        .into_iter()
        .filter(|n| n.starts_with(&prefix))
        .collect();
    let links = Command::new("ip").args(["-o", "link"]).output().unwrap();
    found.extend(
        String::from_utf8_lossy(&links.stdout)
            .lines()
            .filter(|l| l.contains(&prefix))
            .map(str::to_string),
    );
    if LabRecord::load(lab).unwrap().is_some() {
        found.push(format!("the record of lab {lab}"));
    }
    found
}

/// `qoelab up` with a demo campaign of three sessions of `demo_duration` on lab `lab`, port
/// `port`, its database and run directory in `dir`.
fn up(port: u16, lab: &str, dir: &std::path::Path, demo_duration: &str) -> Command {
    let mut command = qoelab();
    command
        .args(["up", "--listen", &format!("127.0.0.1:{port}"), "--lab", lab])
        .arg("--database")
        .arg(format!("sqlite://{}", dir.join("qoelab.db").display()))
        .args(["--demo-sessions", "3", "--demo-duration", demo_duration])
        .arg("--run-dir")
        .arg(dir.join("run"));
    command
}

/// The demo campaign's sessions in `status`, as the API lists them.
fn demo_sessions(port: u16, status: &str) -> Vec<serde_json::Value> {
    let path = format!("/api/v1/sessions?campaign_id=1&status={status}");
    let (_, body) = http(port, "GET", &path, "").unwrap();
    let page: serde_json::Value = serde_json::from_str(&body).unwrap();
    page["sessions"].as_array().unwrap().clone()
}

#[test]
fn up_refuses_clearly_without_root() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("qoelab.db");
    // Root without any capability, as an unprivileged user would be.
    let out = Command::new("setpriv")
        .args(["--bounding-set=-all", "--inh-caps=-all", "--"])
        .arg(env!("CARGO_BIN_EXE_qoelab"))
        .args(["up", "--listen", "127.0.0.1:0", "--lab", "qlnone"])
        .arg("--database")
        .arg(format!("sqlite://{}", db.display()))
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("need root") && err.contains("CAP_NET_ADMIN"),
        "{err}"
    );
    assert!(!db.exists(), "nothing is created before the check");
}

#[test]
fn up_runs_the_demo_serves_its_dataset_and_stops_cleanly_on_ctrl_c() {
    let dir = tempfile::tempdir().unwrap();
    let lab = format!("u{}", std::process::id() % 100_000);
    let db_url = format!("sqlite://{}", dir.path().join("qoelab.db").display());
    let run_dir = dir.path().join("run");
    let qdiscs_before = host_qdiscs();
    let port = free_port();
    let mut up = Server(
        up(port, &lab, dir.path(), "6s")
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap(),
    );
    up.wait_healthy(port, Duration::from_secs(60));
    let (_, dashboard) = http(port, "GET", "/", "").unwrap();
    assert!(dashboard.contains("agent connected"), "{dashboard}");

    // A second appliance on the same lab is refused, naming the process that holds it.
    let second = qoelab()
        .args([
            "up",
            "--listen",
            "127.0.0.1:0",
            "--lab",
            &lab,
            "--demo-sessions",
            "0",
        ])
        .arg("--database")
        .arg(format!(
            "sqlite://{}",
            dir.path().join("second.db").display()
        ))
        .arg("--run-dir")
        .arg(&run_dir)
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&second.stderr);
    assert!(!second.status.success());
    assert!(
        err.contains(&format!("in use by process {}", up.0.id())),
        "{err}"
    );

    // The demo campaign's sessions run through the lab: wait for the first to be stored and
    // the next to be running.
    let started = Instant::now();
    loop {
        let (done, running) = (demo_sessions(port, "done"), demo_sessions(port, "running"));
        if !done.is_empty() && running.len() == 1 {
            break;
        }
        assert!(
            started.elapsed() < Duration::from_secs(120),
            "the demo did not store a session and start the next: {} done, {} running",
            done.len(),
            running.len()
        );
        std::thread::sleep(Duration::from_millis(200));
    }

    let (status, csv) = http(port, "GET", "/api/v1/campaigns/1/export?format=csv", "").unwrap();
    assert!(status.contains("200"), "{status}");
    let mut reader = csv::Reader::from_reader(csv.as_bytes());
    let header = reader.headers().unwrap().clone();
    let column = |name: &str| {
        header
            .iter()
            .position(|h| h == name)
            .unwrap_or_else(|| panic!("no column {name} in {header:?}"))
    };
    let rows: Vec<csv::StringRecord> = reader.records().map(Result::unwrap).collect();
    // The session running meanwhile may have been stored since: read the list afterwards.
    let sessions = demo_sessions(port, "done");
    assert!(!rows.is_empty(), "a row per done session");
    assert!(
        rows.len() <= sessions.len(),
        "only done sessions are exported"
    );
    for row in &rows {
        let id: i64 = row[column("session_id")].parse().unwrap();
        let session = sessions.iter().find(|s| s["id"] == id).unwrap();
        // The limit in the row is the session's, and traffic of the player was captured.
        let limit = session["profile"]["rate_bps"]
            .as_u64()
            .map(|r| r.to_string());
        assert_eq!(
            Some(&row[column("ctx_rate_bps")]),
            limit.as_deref().or(Some(""))
        );
        assert!(row[column("s2c_ip_bytes")].parse::<f64>().unwrap() > 100_000.0);
        assert!(["low", "medium", "high"].contains(&&row[column("label_qoe_class")]));
        assert!(["0", "1"].contains(&&row[column("label_stall")]));
    }

    // Ctrl-C in the middle of a session: it goes back to pending (it runs again at the next
    // start), the stored ones stay, and everything the appliance created is removed.
    let running = demo_sessions(port, "running")[0]["id"]
        .as_i64()
        .expect("a session runs");
    let exit = up.stop("-INT", Duration::from_secs(60));
    let mut out = String::new();
    std::io::Read::read_to_string(up.0.stdout.as_mut().unwrap(), &mut out).unwrap();
    assert!(exit.success(), "{exit}: {out}");
    assert!(
        out.contains(&format!("qoelab is up: http://127.0.0.1:{port}/")),
        "{out}"
    );
    let show = qoelab()
        .args(["campaign", "show", "1", "--database", &db_url])
        .output()
        .unwrap();
    let show = String::from_utf8_lossy(&show.stdout);
    let interrupted = show
        .lines()
        .find(|l| l.split_whitespace().nth(1) == Some(running.to_string().as_str()))
        .unwrap_or_else(|| panic!("session {running} in {show}"));
    assert!(interrupted.contains("pending"), "{show}");
    assert!(show.contains("failed 0, discarded 0, running 0"), "{show}");
    assert_eq!(lab_remains(&lab), Vec::<String>::new());
    assert_eq!(
        host_qdiscs(),
        qdiscs_before,
        "the host's qdiscs are untouched"
    );
}

#[test]
fn up_killed_in_the_middle_of_a_session_resumes_the_campaign_when_started_again() {
    let dir = tempfile::tempdir().unwrap();
    let lab = format!("k{}", std::process::id() % 100_000);
    let port = free_port();
    let start = || {
        Server(
            up(port, &lab, dir.path(), "4s")
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .spawn()
                .unwrap(),
        )
    };
    let mut up = start();
    up.wait_healthy(port, Duration::from_secs(60));
    let started = Instant::now();
    let killed = loop {
        let running = demo_sessions(port, "running");
        if !demo_sessions(port, "done").is_empty() && running.len() == 1 {
            break running[0]["id"].as_i64().unwrap();
        }
        assert!(
            started.elapsed() < Duration::from_secs(120),
            "no second session ran"
        );
        std::thread::sleep(Duration::from_millis(200));
    };
    // A crash: no chance to restore anything or to put the session back.
    assert!(!up.stop("-KILL", Duration::from_secs(10)).success());

    // Started again on the same database and lab name: the leftovers of the killed process are
    // removed, the interrupted session runs again, and the campaign completes.
    let mut up = start();
    up.wait_healthy(port, Duration::from_secs(60));
    let started = Instant::now();
    let done = loop {
        let done = demo_sessions(port, "done");
        if done.len() == 3 {
            break done;
        }
        assert!(
            started.elapsed() < Duration::from_secs(120),
            "the campaign did not complete after the restart: {} done",
            done.len()
        );
        std::thread::sleep(Duration::from_millis(300));
    };
    let mut seqs: Vec<i64> = done.iter().map(|s| s["seq"].as_i64().unwrap()).collect();
    seqs.sort();
    assert_eq!(seqs, [0, 1, 2], "no session lost or duplicated");
    let again = done.iter().find(|s| s["id"] == killed).unwrap();
    assert_eq!(
        again["attempts"], 2,
        "the killed session ran again: {again}"
    );
    let (_, csv) = http(port, "GET", "/api/v1/campaigns/1/export?format=csv", "").unwrap();
    assert_eq!(
        csv.lines().count(),
        4,
        "a header and a row per session:\n{csv}"
    );
    assert!(up.stop("-INT", Duration::from_secs(60)).success());
    assert_eq!(lab_remains(&lab), Vec::<String>::new());
}
