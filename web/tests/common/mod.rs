//! Shared test parts: a scripted runner that produces realistic sessions (throughput that
//! follows the limit in 1 s bins, a video QoE record with stalls at low limits), a fake agent
//! view, and an HTTP client for the router.
#![allow(dead_code)]

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::Router;
use axum::body::Body;
use axum::http::{Request, StatusCode, header};
use http_body_util::BodyExt;
use serde_json::{Value, json};
use tokio_util::sync::CancellationToken;
use tower::ServiceExt;

use qoelab_collector::Db;
use qoelab_collector::campaign::{Profile, Workload};
use qoelab_collector::db::now_ms;
use qoelab_collector::events::Events;
use qoelab_collector::runner::{BoxFuture, Driver, Network, Runner};
use qoelab_collector::session::{Bin, Results};
use qoelab_web::{AgentView, App};

pub use qoelab_collector::testing::TestDb;

pub mod lab;

/// The link as a scripted lab sees it: the limit in force and when the capture started.
#[derive(Clone, Default)]
pub struct ScriptedLink {
    rate_bps: Arc<Mutex<Option<u64>>>,
    capture_started: Arc<Mutex<Option<(Instant, i64)>>>,
}

/// What a video session would carry over a link shaped to `rate_bps` for `seconds`: the
/// player fills its buffer at the link's rate, then fetches a segment every few seconds.
pub fn scripted_results(rate_bps: Option<u64>, start_ms: i64, seconds: u64, seed: u64) -> Results {
    let link = rate_bps.unwrap_or(20_000_000) as f64;
    let series: Vec<Bin> = (0..seconds.max(1))
        .map(|i| {
            let wobble = 0.9 + 0.1 * (((i + seed) * 7919 % 13) as f64 / 13.0);
            let idle = rate_bps.is_none_or(|r| r >= 3_000_000) && i % 4 == 3;
            let s2c = if idle {
                600
            } else {
                (link * 0.955 * wobble / 8.0) as u64
            };
            Bin {
                flow_idx: None,
                bin: i as u32,
                start_ms: start_ms + 1000 * i as i64,
                c2s_bytes: s2c / 40,
                s2c_bytes: s2c,
                c2s_pkts: s2c / 1448 / 2 + 1,
                s2c_pkts: s2c / 1448 + 1,
                c2s_retx: 0,
                s2c_retx: u64::from(!idle && rate_bps.is_some_and(|r| r < 2_000_000)) * 3,
            }
        })
        .collect();
    let s2c: u64 = series.iter().map(|b| b.s2c_bytes).sum();
    let flow = json!({"protocol": "tcp", "client_ip": "198.18.1.2", "client_port": 40000 + seed % 1000,
        "server_ip": "198.18.2.2", "server_port": 8000, "c2s_ip_bytes": s2c / 40, "s2c_ip_bytes": s2c,
        "c2s_pkts": s2c / 2896, "s2c_pkts": s2c / 1448, "s2c_retx_pkts": series.iter().map(|b| b.s2c_retx).sum::<u64>(),
        "s2c_rtt_avg_ms": 20.0 + 8e7 / link});
    Results {
        warmup_ms: 0,
        capture_id: None,
        bin_ms: 1000,
        flows: vec![flow.as_object().unwrap().clone()],
        series,
        application: None,
    }
}

/// The video QoE record of a session at `rate_bps` (the workload's format): a stall after
/// two seconds below 1.5 Mbit/s.
pub fn scripted_qoe(rate_bps: Option<u64>, started_unix_ms: i64, duration_s: f64) -> Value {
    let rate = rate_bps.unwrap_or(20_000_000);
    let stalls: Vec<Value> = if rate < 1_500_000 {
        vec![json!({"start_s": 2.0_f64.min(duration_s / 2.0), "duration_s": 1.0})]
    } else {
        vec![]
    };
    let class = match rate {
        r if r < 1_500_000 => "low",
        r if r < 3_000_000 => "medium",
        _ => "high",
    };
    json!({
        "schema": "qoelab.video-qoe.v1",
        "started_unix_ms": started_unix_ms,
        "duration_s": duration_s,
        "startup_delay_s": if rate < 1_500_000 { 2.5 } else { 0.8 },
        "stall_count": stalls.len(),
        "stall_time_s": stalls.len() as f64,
        "avg_bitrate_bps": (rate as f64 * 0.8) as u64,
        "stall": !stalls.is_empty(),
        "qoe_class": class,
        "stalls": stalls,
    })
}

impl Network for ScriptedLink {
    async fn apply(&self, profile: &Profile) -> Result<(), String> {
        *self.rate_bps.lock().unwrap() = profile.rate_bps;
        Ok(())
    }
    async fn clear(&self) -> Result<(), String> {
        Ok(())
    }
    async fn start_capture(&self) -> Result<String, String> {
        *self.capture_started.lock().unwrap() = Some((Instant::now(), now_ms()));
        Ok(format!("cap-{}", now_ms()))
    }
    async fn stop_capture(&self, id: &str) -> Result<Results, String> {
        let (started, start_ms) = self
            .capture_started
            .lock()
            .unwrap()
            .take()
            .ok_or("no capture runs")?;
        let seconds = started.elapsed().as_secs_f64().ceil() as u64;
        let seed = id.bytes().map(u64::from).sum();
        Ok(scripted_results(
            *self.rate_bps.lock().unwrap(),
            start_ms,
            seconds,
            seed,
        ))
    }
}

impl Driver for ScriptedLink {
    async fn run(
        &self,
        _: &Workload,
        total: Duration,
        cancel: CancellationToken,
    ) -> Result<Option<Value>, String> {
        let started = now_ms();
        tokio::select! {
            _ = tokio::time::sleep(total) => {}
            _ = cancel.cancelled() => return Err("cancelled".into()),
        }
        let rate = *self.rate_bps.lock().unwrap();
        Ok(Some(scripted_qoe(rate, started, total.as_secs_f64())))
    }
}

/// An agent view with one shaped interface and, for live predictions, a capture so far.
pub struct FakeAgent;

impl AgentView for FakeAgent {
    fn status(&self) -> BoxFuture<'_, Result<Value, String>> {
        Box::pin(async {
            Ok(
                json!({"version": "0.1.0", "capabilities": ["CAP_NET_ADMIN", "CAP_NET_RAW"],
                "features": {"htb": true, "netem": false}, "interfaces": [{"netns": "qlt-router", "name": "qlt-wan"}]}),
            )
        })
    }
    fn stats(&self) -> BoxFuture<'_, Result<Value, String>> {
        Box::pin(async {
            Ok(
                json!([{"iface": {"netns": "qlt-router", "name": "qlt-wan"}, "interval_ms": 1000,
                "directions": [{"direction": "egress", "device": "qlt-wan", "classes": [
                    {"name": "default", "classid": "7100:1", "rate_bps": 1000000, "ceil_bps": 1000000,
                     "bytes": 5000, "packets": 5, "drops": 0, "overlimits": 0, "backlog_bytes": 0, "qlen": 0},
                    {"name": "cam-1", "classid": "7100:3", "rate_bps": 2000000, "ceil_bps": 2000000,
                     "bytes": 123456, "packets": 99, "drops": 4, "overlimits": 7, "backlog_bytes": 1514,
                     "qlen": 1, "measured_bps": 1934000}]}],
                "plan": {"egress": {"classes": [{"name": "cam-1", "rate_bps": 2000000}]}}}]),
            )
        })
    }
    fn capture(&self, _: &str) -> BoxFuture<'_, Result<Value, String>> {
        Box::pin(async {
            Ok(
                serde_json::to_value(scripted_results(Some(750_000), now_ms() - 4000, 4, 1))
                    .unwrap(),
            )
        })
    }
}

/// A running scripted runner with its app.
pub struct Served {
    pub app: App,
    pub router: Router,
    pub db: Db,
    shutdown: CancellationToken,
}

impl Drop for Served {
    fn drop(&mut self) {
        self.shutdown.cancel();
    }
}

/// The app over `db` with a scripted runner running, an optional agent and token.
pub fn serve(db: &Db, agent: Option<Arc<dyn AgentView>>, token: Option<&str>) -> Served {
    let link = ScriptedLink::default();
    let runner = Runner::new(db.clone(), link.clone(), link, Events::default());
    let shutdown = CancellationToken::new();
    tokio::spawn(runner.clone().run(shutdown.clone()));
    let app = App::new(runner, agent, token.map(str::to_string));
    Served {
        router: qoelab_web::router(app.clone()),
        app,
        db: db.clone(),
        shutdown,
    }
}

/// The CSRF token the test browser holds.
pub const CSRF: &str = "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";

/// A response, read whole.
pub struct Reply {
    pub status: StatusCode,
    pub headers: axum::http::HeaderMap,
    pub body: Vec<u8>,
}

impl Reply {
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }
    pub fn json(&self) -> Value {
        serde_json::from_slice(&self.body)
            .unwrap_or_else(|e| panic!("not JSON ({e}): {}", self.text()))
    }
    pub fn header(&self, name: &str) -> &str {
        self.headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("")
    }
    /// Asserts the status, showing the body if it differs.
    #[track_caller]
    pub fn expect(self, status: u16) -> Reply {
        assert_eq!(self.status.as_u16(), status, "{}", self.text());
        self
    }
    /// The problem's field (API errors).
    pub fn field(&self) -> String {
        self.json()["field"]
            .as_str()
            .unwrap_or_default()
            .to_string()
    }
}

/// Requests against the router, as a browser with cookies or an API client with a token.
#[derive(Clone)]
pub struct Client {
    pub router: Router,
    pub cookies: Vec<String>,
    pub bearer: Option<String>,
}

impl Client {
    pub fn new(router: &Router) -> Client {
        Client {
            router: router.clone(),
            cookies: vec![format!("qoelab_csrf={CSRF}")],
            bearer: None,
        }
    }

    pub async fn send(&self, request: Request<Body>) -> Reply {
        let mut request = request;
        let h = request.headers_mut();
        h.insert(header::COOKIE, self.cookies.join("; ").parse().unwrap());
        if let Some(token) = &self.bearer {
            h.insert(
                header::AUTHORIZATION,
                format!("Bearer {token}").parse().unwrap(),
            );
        }
        let response = self.router.clone().oneshot(request).await.unwrap();
        let (parts, body) = response.into_parts();
        Reply {
            status: parts.status,
            headers: parts.headers,
            body: body.collect().await.unwrap().to_bytes().to_vec(),
        }
    }

    pub async fn get(&self, path: &str) -> Reply {
        self.send(Request::get(path).body(Body::empty()).unwrap())
            .await
    }

    /// GET that must answer 200; the body as text.
    pub async fn page(&self, path: &str) -> String {
        self.get(path).await.expect(200).text()
    }

    /// GET that must answer 200; the body as JSON.
    pub async fn api(&self, path: &str) -> Value {
        self.get(path).await.expect(200).json()
    }

    pub async fn post_json(&self, path: &str, body: &Value) -> Reply {
        self.post_raw(path, "application/json", body.to_string())
            .await
    }

    pub async fn post_raw(&self, path: &str, content_type: &str, body: impl Into<Body>) -> Reply {
        let request = Request::post(path)
            .header(header::CONTENT_TYPE, content_type)
            .body(body.into())
            .unwrap();
        self.send(request).await
    }

    pub async fn delete(&self, path: &str) -> Reply {
        self.send(Request::delete(path).body(Body::empty()).unwrap())
            .await
    }

    /// A form post with this browser's CSRF token.
    pub async fn post_form(&self, path: &str, fields: &[(&str, &str)]) -> Reply {
        let mut form = form_urlencoded::Serializer::new(String::new());
        form.append_pair("csrf", CSRF);
        for (k, v) in fields {
            form.append_pair(k, v);
        }
        self.post_raw(path, "application/x-www-form-urlencoded", form.finish())
            .await
    }
}

/// Waits until campaign `id` is `status` (via the API), at most 30 s.
pub async fn wait_for_status(client: &Client, id: i64, status: &str) -> Value {
    for _ in 0..600 {
        let c = client.get(&format!("/api/v1/campaigns/{id}")).await.json();
        if c["status"] == status {
            return c;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("campaign {id} never became {status}");
}

/// Creates and starts a video campaign through the API; returns its id.
pub async fn video_campaign(
    client: &Client,
    sessions: u32,
    duration_s: f64,
    limits: &[&str],
) -> i64 {
    let limits: Vec<Value> = limits
        .iter()
        .map(|l| {
            if *l == "unlimited" {
                json!("unlimited")
            } else {
                json!({"rate": l})
            }
        })
        .collect();
    let body = json!({"name": "scripted", "sessions": sessions, "duration_s": duration_s,
        "limits": limits, "workload": {"kind": "video", "abr": "buffer"}, "seed": 5, "start": true});
    client
        .post_json("/api/v1/campaigns", &body)
        .await
        .expect(201)
        .json()["id"]
        .as_i64()
        .unwrap()
}

/// Trains a decision tree on `campaign`'s stored sessions (label `label_qoe_class`, 2 folds)
/// through the API and waits for the job; the finished job.
pub async fn trained_model(c: &Client, campaign: i64, name: &str) -> Value {
    let request = json!({"name": name, "campaign_id": campaign, "label": "label_qoe_class", "model": "tree", "folds": 2});
    let job = c
        .post_json("/api/v1/models", &request)
        .await
        .expect(202)
        .json();
    for _ in 0..400 {
        let j = c.api(&format!("/api/v1/models/jobs/{}", job["id"])).await;
        match j["state"].as_str() {
            Some("done") => return j,
            Some("failed") => panic!("training failed: {j}"),
            _ => tokio::time::sleep(Duration::from_millis(50)).await,
        }
    }
    panic!("training never ended");
}
