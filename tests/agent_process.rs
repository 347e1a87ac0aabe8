//! The real `qoelab agent` process shaping a lab: capabilities after start-up, adoption after a
//! SIGKILL without duplicates, and exact restoration on SIGTERM.

#[path = "../shaper/tests/common/mod.rs"]
mod common;

use std::fs::File;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output};
use std::time::{Duration, Instant};

use common::{in_ns, tc_show};
use qoelab_agent::caps::TaskCaps;
use qoelab_agent::client::AgentClient;
use qoelab_lab::Lab;
use qoelab_shaper::{IfaceRef, RateChange, RateChanges};
use qoelab_units::Rate;

/// A running agent, killed (SIGKILL) if the test ends while it runs.
struct Agent {
    child: Child,
    log: PathBuf,
}

impl Agent {
    fn start(dir: &Path) -> Agent {
        let log = dir.join(format!("agent-{}.log", Instant::now().elapsed().as_nanos()));
        let child = Command::new(env!("CARGO_BIN_EXE_qoelab"))
            .args(["agent", "--socket"])
            .arg(dir.join("agent.sock"))
            .arg("--state-dir")
            .arg(dir.join("state"))
            .env("RUST_LOG", "info")
            .stderr(File::create(&log).unwrap())
            .spawn()
            .unwrap();
        let agent = Agent { child, log };
        let deadline = Instant::now() + Duration::from_secs(20);
        while std::os::unix::net::UnixStream::connect(dir.join("agent.sock")).is_err() {
            assert!(Instant::now() < deadline, "no socket: {}", agent.log_text());
            std::thread::sleep(Duration::from_millis(20));
        }
        agent
    }

    fn pid(&self) -> u32 {
        self.child.id()
    }

    fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    fn signal(&self, signal: i32) {
        // SAFETY: kill(2) with our own child's pid.
        assert_eq!(unsafe { libc::kill(self.pid() as i32, signal) }, 0);
    }

    /// Waits for the process to end; its exit status.
    fn wait(mut self) -> std::process::ExitStatus {
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                return status;
            }
            assert!(
                Instant::now() < deadline,
                "still running: {}",
                self.log_text()
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

impl Drop for Agent {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn qoelab(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_qoelab"))
        .args(args)
        .output()
        .unwrap()
}

/// Everything tc shows on the uplink and on the IFB devices of the router, and its links.
fn router_state(lab: &Lab) -> String {
    let router = lab.router().unwrap().name();
    let links = in_ns(router, &["ip", "-o", "link", "show"]);
    let mut state = tc_show(router, &lab.uplink());
    for ifb in links
        .lines()
        .filter_map(|l| l.split(": ").nth(1))
        .filter(|name| name.starts_with("qlifb"))
    {
        state.push_str(&tc_show(router, ifb));
    }
    let names: Vec<&str> = links
        .lines()
        .filter_map(|l| l.split(": ").nth(1))
        .map(|n| n.split('@').next().unwrap_or(n))
        .collect();
    format!("{state}links: {names:?}\n")
}

fn count(haystack: &str, needle: &str) -> usize {
    haystack.matches(needle).count()
}

#[test]
fn the_agent_adopts_after_sigkill_restores_on_sigterm_and_keeps_only_its_capabilities() {
    let lab = Lab::standard(None).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let socket = dir.path().join("agent.sock");
    let socket_arg = socket.to_str().unwrap();
    let router = lab.router().unwrap().name().to_string();
    let iface = IfaceRef::new(Some(&router), &lab.uplink());
    let plan_file = dir.path().join("plan.toml");
    std::fs::write(
        &plan_file,
        format!(
            r#"
[[interface]]
netns = "{router}"
name = "{wan}"

[interface.egress]
rate_bps = "100mbit"
default = {{ rate_bps = "1mbit", ceil_bps = "100mbit" }}

[[interface.egress.classes]]
name = "cam"
rate_bps = "2mbit"
match = {{ protocol = "tcp", dst_port = 5001 }}

[[interface.egress.classes]]
name = "lidar"
rate_bps = "8mbit"
match = {{ dst = "198.18.2.2", protocol = "udp", dst_port = "5002-5003" }}

[interface.ingress]
rate_bps = "100mbit"
default = {{ rate_bps = "1mbit", ceil_bps = "100mbit" }}

[[interface.ingress.classes]]
name = "down"
rate_bps = "5mbit"
match = {{ protocol = "tcp", src_port = 5001 }}
"#,
            wan = lab.uplink()
        ),
    )
    .unwrap();
    let apply = || {
        let out = qoelab(&[
            "shape",
            "apply",
            plan_file.to_str().unwrap(),
            "--socket",
            socket_arg,
        ]);
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8(out.stdout).unwrap()
    };
    let original = router_state(&lab);

    let agent = Agent::start(dir.path());
    // Every thread keeps exactly the documented capabilities.
    let tasks: Vec<String> = std::fs::read_dir(format!("/proc/{}/task", agent.pid()))
        .unwrap()
        .map(|t| t.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    assert!(!tasks.is_empty());
    for tid in &tasks {
        let task = format!("{}/task/{tid}", agent.pid());
        assert_eq!(TaskCaps::of(&task), Some(TaskCaps::kept()), "thread {tid}");
    }

    let first = apply();
    assert!(first.contains(&lab.uplink()), "{first}");
    let shaped = router_state(&lab);
    assert_eq!(
        count(&shaped, "qdisc htb 7100: root"),
        2,
        "wan and its IFB: {shaped}"
    );
    assert_eq!(count(&shaped, "qdisc ingress ffff:"), 1, "{shaped}");
    assert_eq!(count(&shaped, "Redirect to device qlifb0"), 1, "{shaped}");
    let links = shaped.lines().last().unwrap();
    assert_eq!(count(links, "qlifb"), 1, "one IFB: {links}");
    let show = qoelab(&[
        "shape",
        "show",
        "--socket",
        socket_arg,
        "--interval-ms",
        "0",
    ]);
    let show = String::from_utf8_lossy(&show.stdout).into_owned();
    assert!(show.contains("cam") && show.contains("down"), "{show}");

    // A rate change, then SIGKILL: nothing is restored, and the new rate is what gets adopted.
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let client = AgentClient::new(&socket);
    let changes = RateChanges {
        egress: [(
            "cam".to_string(),
            RateChange {
                rate_bps: Rate::from_bps(3_000_000),
                ceil_bps: None,
            },
        )]
        .into(),
        ..RateChanges::default()
    };
    runtime
        .block_on(client.set_rates(&iface, &changes))
        .unwrap();
    let changed = router_state(&lab);
    agent.signal(libc::SIGKILL);
    assert!(!agent.wait().success());
    assert_eq!(
        router_state(&lab),
        changed,
        "a killed agent leaves everything"
    );

    let agent = Agent::start(dir.path());
    let adopted = runtime.block_on(client.plan(&iface)).unwrap();
    let cam = &adopted.egress.as_ref().unwrap().classes[0];
    assert_eq!(
        cam.rate_bps,
        Rate::from_bps(3_000_000),
        "the rate change was kept"
    );
    let report = runtime.block_on(client.apply(&iface, &adopted)).unwrap();
    assert_eq!(report.requests(), 0, "adopted as it was: {report:?}");
    assert_eq!(router_state(&lab), changed, "nothing duplicated");
    let again = apply();
    let row: Vec<&str> = again.lines().nth(1).unwrap().split_whitespace().collect();
    assert_eq!(
        row[2..],
        ["0", "2", "0"],
        "only cam and its queue change: {again}"
    );
    assert_eq!(router_state(&lab), shaped, "as after the first apply");

    // SIGTERM puts back exactly what was there, removes the socket and the state.
    agent.signal(libc::SIGTERM);
    let log = agent.log_text();
    assert!(agent.wait().success(), "{log}");
    assert_eq!(router_state(&lab), original, "restored exactly");
    assert!(!socket.exists(), "socket removed");
    let records = std::fs::read_dir(dir.path().join("state/shaper"))
        .unwrap()
        .count();
    assert_eq!(records, 0, "no state left");
}
