//! The pages in a real browser: headless Chromium driven over WebDriver (chromedriver), over
//! the real appliance (a lab, the agent shaping and capturing on its router, the built-in video
//! workload). Open the form, submit an invalid value and see the message, submit a valid
//! 2-session campaign, watch the progress page reach done without reloading, open a session and
//! find its chart and flows, see the dashboard's agent panel. Screenshots go to
//! `target/browser/`.
//!
//! Needs root (the lab) and Debian's `chromium` and `chromium-driver` (`.ci/run` installs them).

mod common;

use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use base64::Engine;
use serde_json::{Value, json};

use common::TestDb;
use common::lab::Appliance;

const ELEMENT: &str = "element-6066-11e4-a52e-4f735466cecf";

/// A headless Chromium behind chromedriver, ended on drop.
struct Browser {
    http: ureq::Agent,
    session: String,
    driver: Child,
    profile: PathBuf,
    shots: PathBuf,
}

impl Browser {
    fn start() -> Browser {
        for binary in ["/usr/bin/chromium", "/usr/bin/chromedriver"] {
            assert!(
                std::path::Path::new(binary).exists(),
                "{binary} is missing: apt-get install -y chromium chromium-driver"
            );
        }
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let driver = Command::new("/usr/bin/chromedriver")
            .arg(format!("--port={port}"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("chromedriver starts");
        let profile = std::env::temp_dir().join(format!("qlchrome-{}-{port}", std::process::id()));
        let http: ureq::Agent = ureq::Agent::config_builder()
            .http_status_as_error(false)
            .timeout_global(Some(Duration::from_secs(60)))
            .build()
            .into();
        let base = format!("http://127.0.0.1:{port}");
        let ready = Instant::now();
        while http.get(format!("{base}/status")).call().is_err() {
            assert!(
                ready.elapsed() < Duration::from_secs(20),
                "chromedriver did not start"
            );
            std::thread::sleep(Duration::from_millis(100));
        }
        let args = [
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--no-first-run",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--window-size=1280,1000",
            &format!("--user-data-dir={}", profile.display()),
        ];
        let capabilities = json!({"capabilities": {"alwaysMatch": {"browserName": "chrome",
            "goog:chromeOptions": {"binary": "/usr/bin/chromium", "args": args}}}});
        let mut r = http
            .post(format!("{base}/session"))
            .send_json(&capabilities)
            .unwrap();
        let reply: Value = r.body_mut().read_json().unwrap();
        let session = reply["value"]["sessionId"]
            .as_str()
            .unwrap_or_else(|| panic!("no browser session: {reply}"))
            .to_string();
        let shots = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("../browser");
        std::fs::create_dir_all(&shots).unwrap();
        let browser = Browser {
            http,
            session: format!("{base}/session/{session}"),
            driver,
            profile,
            shots,
        };
        // Element lookups wait for the element (a page may still be loading).
        browser.call("POST", "/timeouts", Some(json!({"implicit": 15_000})));
        browser
    }

    fn call(&self, method: &str, path: &str, body: Option<Value>) -> Value {
        self.try_call(method, path, body)
            .unwrap_or_else(|error| panic!("{method} {path}: {error}"))
    }

    /// A WebDriver command; its error (e.g. a stale element while a page loads) as `Err`.
    fn try_call(&self, method: &str, path: &str, body: Option<Value>) -> Result<Value, Value> {
        let url = format!("{}{path}", self.session);
        let mut r = match method {
            "GET" => self.http.get(&url).call(),
            "DELETE" => self.http.delete(&url).call(),
            _ => self.http.post(&url).send_json(body.unwrap_or(json!({}))),
        }
        .unwrap();
        let reply: Value = r.body_mut().read_json().unwrap();
        if reply["value"]["error"].is_null() {
            Ok(reply["value"].clone())
        } else {
            Err(reply["value"].clone())
        }
    }

    fn goto(&self, url: &str) {
        self.call("POST", "/url", Some(json!({"url": url})));
    }

    fn find(&self, css: &str) -> String {
        let v = self.call(
            "POST",
            "/element",
            Some(json!({"using": "css selector", "value": css})),
        );
        v[ELEMENT]
            .as_str()
            .unwrap_or_else(|| panic!("{css}: {v}"))
            .to_string()
    }

    fn count(&self, css: &str) -> usize {
        let v = self.call(
            "POST",
            "/elements",
            Some(json!({"using": "css selector", "value": css})),
        );
        v.as_array().map_or(0, Vec::len)
    }

    fn text(&self, css: &str) -> String {
        let id = self.find(css);
        self.call("GET", &format!("/element/{id}/text"), None)
            .as_str()
            .unwrap_or_default()
            .to_string()
    }

    fn value(&self, css: &str) -> String {
        let id = self.find(css);
        self.call("GET", &format!("/element/{id}/property/value"), None)
            .as_str()
            .unwrap_or_default()
            .to_string()
    }

    fn fill(&self, css: &str, text: &str) {
        let id = self.find(css);
        self.call("POST", &format!("/element/{id}/clear"), None);
        self.call(
            "POST",
            &format!("/element/{id}/value"),
            Some(json!({"text": text})),
        );
    }

    fn click(&self, css: &str) {
        let id = self.find(css);
        self.call("POST", &format!("/element/{id}/click"), None);
    }

    fn script(&self, js: &str) -> Value {
        self.call(
            "POST",
            "/execute/sync",
            Some(json!({"script": js, "args": []})),
        )
    }

    fn url(&self) -> String {
        self.call("GET", "/url", None).as_str().unwrap().to_string()
    }

    /// Waits until `css`'s text satisfies `ok`, at most `limit`.
    fn wait_text(&self, css: &str, limit: Duration, ok: impl Fn(&str) -> bool) -> String {
        let start = Instant::now();
        loop {
            let text = self
                .try_call(
                    "POST",
                    "/element",
                    Some(json!({"using": "css selector", "value": css})),
                )
                .ok()
                .and_then(|e| e[ELEMENT].as_str().map(str::to_string))
                .and_then(|id| {
                    self.try_call("GET", &format!("/element/{id}/text"), None)
                        .ok()
                })
                .and_then(|t| t.as_str().map(str::to_string))
                .unwrap_or_default();
            if ok(&text) {
                return text;
            }
            assert!(start.elapsed() < limit, "{css} stayed '{text}'");
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    fn screenshot(&self, name: &str) {
        let png = self.call("GET", "/screenshot", None);
        let bytes = base64::engine::general_purpose::STANDARD
            .decode(png.as_str().unwrap())
            .unwrap();
        std::fs::write(self.shots.join(format!("{name}.png")), bytes).unwrap();
    }
}

impl Drop for Browser {
    fn drop(&mut self) {
        let _ = self.http.delete(&self.session).call();
        let _ = self.driver.kill();
        let _ = self.driver.wait();
        let _ = std::fs::remove_dir_all(&self.profile);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_person_runs_a_campaign_in_the_browser() {
    let t = TestDb::sqlite().await;
    let appliance = Appliance::start(&t.db);
    let addr = appliance.listen().await;
    let base = format!("http://{addr}");
    tokio::task::spawn_blocking(move || {
        let b = Browser::start();
        b.goto(&format!("{base}/campaigns/new"));
        b.screenshot("01-new-campaign");
        b.fill("#name", "browser ladder");
        b.fill("#sessions", "2");
        b.fill("#duration", "5s");
        b.fill("#limits", "0.75, 5 furlongs");
        b.click("button[type=submit]");

        // The server's message stands next to the field; what was typed is still there.
        let message = b.text("[data-error-for=limits]");
        assert!(
            message.contains("furlongs") && message.contains("mbit"),
            "{message}"
        );
        assert_eq!(b.value("#limits"), "0.75, 5 furlongs");
        assert_eq!(b.value("#name"), "browser ladder");
        assert_eq!(
            b.count("[data-error-for]"),
            1,
            "only the bad field complains"
        );
        b.screenshot("02-invalid-limits");

        b.fill("#limits", "0.75, 5 mbit");
        b.click("button[type=submit]");
        b.wait_text("h1", Duration::from_secs(15), |t| {
            t.starts_with("Campaign #")
        });
        assert!(b.url().contains("/campaigns/"), "{}", b.url());
        // Progress arrives over server-sent events: the page is never reloaded.
        b.script("window.notReloaded = true;");
        b.wait_text("[data-field=current]", Duration::from_secs(30), |t| {
            t.contains("of 2")
        });
        b.screenshot("03-progress");
        b.wait_text("[data-field=status]", Duration::from_secs(60), |t| {
            t == "done"
        });
        assert_eq!(b.script("return window.notReloaded === true;"), json!(true));
        assert_eq!(b.text("[data-field=done]"), "2");
        assert_eq!(b.text("[data-field=ended]"), "2");
        b.screenshot("04-done");

        b.click("a[href^='/sessions?campaign_id=']");
        b.wait_text("h1", Duration::from_secs(10), |t| t == "Sessions");
        b.click("tbody a[href^='/sessions/']");
        b.wait_text("h1", Duration::from_secs(10), |t| {
            t.starts_with("Session #")
        });
        assert_eq!(b.count("svg[data-chart=throughput]"), 1);
        assert_eq!(b.count("svg[data-chart=throughput] line.limit"), 1);
        assert_eq!(
            b.count("svg[data-chart=throughput] polyline"),
            2,
            "both directions"
        );
        // The flow table lists the player's connection to the lab's video server.
        let flows = b.text("main");
        assert!(flows.contains("198.18.2.2:8080"), "{flows}");
        b.screenshot("05-session");

        b.goto(&format!("{base}/"));
        b.wait_text("body", Duration::from_secs(10), |t| {
            t.contains("agent connected")
        });
        b.screenshot("06-dashboard");
    })
    .await
    .unwrap();
    appliance.stop().await;
}
