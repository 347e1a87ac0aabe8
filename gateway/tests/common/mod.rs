//! What the gateway's lab tests share: the service on a lab's uplink with an in-process agent,
//! IoT sinks and uploaders across the lab, a small HTTP client, a knob receiver, a broker.
#![allow(dead_code)]

use std::net::{Ipv4Addr, SocketAddr};
use std::path::{Path, PathBuf};
use std::process::{Child, Command};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::Duration;

use http_body_util::{BodyExt, Full};
use hyper::body::Bytes;
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;
use qoelab_agent::client::AgentClient;
use qoelab_agent::local::LocalAgent;
use qoelab_gateway::knob::{KnobMessage, Publisher};
use qoelab_gateway::record::DecisionStore;
use qoelab_gateway::{Config, Service};
use qoelab_lab::{Lab, NetNs};
use qoelab_planner::allocate::{self, Algorithm};
use qoelab_planner::shaping::PlanOptions;
use qoelab_shaper::IfaceRef;
use qoelab_workload::iot::{self, Reporter, SinkConfig, UploaderConfig};
use qoelab_workload::model::{Location, ModelSet};
use serde_json::Value;
use tokio::net::{UnixListener, UnixStream};
use tokio::sync::{oneshot, watch};
use tokio::task::JoinHandle as Task;

/// The gateway's name in the tests.
pub const GATEWAY: &str = "lab-gw";

/// A Unix socket that forwards to the agent's and that a test can cut (connections dropped,
/// the socket gone) and restore, to see what the service does when the agent is unreachable.
pub struct AgentLink {
    path: PathBuf,
    agent: PathBuf,
    task: Option<Task<()>>,
}

impl AgentLink {
    pub fn start(path: PathBuf, agent: PathBuf) -> AgentLink {
        let mut link = AgentLink {
            path,
            agent,
            task: None,
        };
        link.restore();
        link
    }

    pub fn restore(&mut self) {
        let listener = UnixListener::bind(&self.path).unwrap();
        let agent = self.agent.clone();
        self.task = Some(tokio::spawn(async move {
            let mut forwards = tokio::task::JoinSet::new();
            while let Ok((mut conn, _)) = listener.accept().await {
                let agent = agent.clone();
                forwards.spawn(async move {
                    if let Ok(mut upstream) = UnixStream::connect(&agent).await {
                        let _ = tokio::io::copy_bidirectional(&mut conn, &mut upstream).await;
                    }
                });
            }
        }));
    }

    pub fn cut(&mut self) {
        if let Some(task) = self.task.take() {
            task.abort();
        }
        let _ = std::fs::remove_file(&self.path);
    }
}

/// A lab with the agent in-process and the service on the router's uplink (reaching the agent
/// through `link`).
pub struct Gateway {
    pub lab: Lab,
    pub agent: LocalAgent,
    pub link: AgentLink,
    pub service: Service,
    pub uplink: IfaceRef,
    /// The service's API, `http://127.0.0.1:PORT`.
    pub api: String,
    pub dir: tempfile::TempDir,
    stop_api: Option<oneshot::Sender<()>>,
}

impl Gateway {
    /// Builds the lab and starts the service with `budget_bps`, storing into `store`.
    pub async fn start(
        budget_bps: u64,
        publisher: Publisher,
        store: Option<DecisionStore>,
    ) -> Gateway {
        let lab = Lab::standard(None).unwrap();
        let dir = tempfile::tempdir().unwrap();
        let socket = dir.path().join("agent.sock");
        let agent = LocalAgent::start(&socket, &dir.path().join("state")).unwrap();
        let link = AgentLink::start(dir.path().join("link.sock"), socket);
        let uplink = IfaceRef::new(Some(lab.router().unwrap().name()), &lab.uplink());
        let config = Config {
            gateway: GATEWAY.into(),
            uplink: uplink.clone(),
            budget_bps,
            reserve_bps: None,
            algorithm: Algorithm::Raa,
            options: allocate::Options::default(),
            plan_options: PlanOptions::default(),
            models: ModelSet::builtin(),
        };
        let service = Service::start(config, AgentClient::new(&link.path), publisher, store)
            .await
            .unwrap();
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let api = format!("http://{}", listener.local_addr().unwrap());
        let (stop_api, stopped) = oneshot::channel();
        tokio::spawn(qoelab_gateway::api::serve(
            listener,
            service.clone(),
            async {
                let _ = stopped.await;
            },
        ));
        Gateway {
            lab,
            agent,
            link,
            service,
            uplink,
            api,
            dir,
            stop_api: Some(stop_api),
        }
    }

    /// Stops the API and the service, checks the uplink is unshaped again, stops the agent.
    pub async fn stop(mut self) {
        if let Some(stop) = self.stop_api.take() {
            let _ = stop.send(());
        }
        self.service.stop().await.unwrap();
        let shaped = self.agent.client().interfaces().await.unwrap();
        assert!(shaped.is_empty(), "the uplink is put back: {shaped:?}");
        assert!(self.agent.stop().await.is_empty());
    }
}

/// One HTTP request; the status and the JSON body (`null` when empty).
pub async fn call(method: &str, url: &str, body: Option<&str>) -> (u16, Value) {
    let client: Client<_, Full<Bytes>> = Client::builder(TokioExecutor::new()).build_http();
    let request = hyper::Request::builder()
        .method(method)
        .uri(url)
        .header("content-type", "application/json")
        .body(Full::new(Bytes::from(body.unwrap_or("").to_string())))
        .unwrap();
    let response = client.request(request).await.unwrap();
    let status = response.status().as_u16();
    let bytes = response.into_body().collect().await.unwrap().to_bytes();
    let value = if bytes.is_empty() {
        Value::Null
    } else {
        serde_json::from_slice(&bytes).unwrap_or_else(|e| {
            panic!(
                "{method} {url}: not JSON ({e}): {}",
                String::from_utf8_lossy(&bytes)
            )
        })
    };
    (status, value)
}

/// An HTTP endpoint on loopback that keeps every knob POSTed to it.
pub struct KnobReceiver {
    pub url: String,
    pub received: Arc<Mutex<Vec<KnobMessage>>>,
}

impl KnobReceiver {
    pub async fn start() -> KnobReceiver {
        let received: Arc<Mutex<Vec<KnobMessage>>> = Arc::default();
        let kept = received.clone();
        let app = axum::Router::new().route(
            "/knob",
            axum::routing::post(move |axum::Json(m): axum::Json<KnobMessage>| async move {
                kept.lock().unwrap().push(m);
            }),
        );
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}/knob", listener.local_addr().unwrap());
        tokio::spawn(async move { axum::serve(listener, app).await });
        KnobReceiver { url, received }
    }

    /// The knobs `analytic` was told, in order.
    pub fn of(&self, analytic: &str) -> Vec<KnobMessage> {
        let all = self.received.lock().unwrap();
        all.iter()
            .filter(|m| m.analytic == analytic)
            .cloned()
            .collect()
    }
}

/// IoT sinks on `ports` of `addr` in `ns`, until dropped.
pub struct Sinks {
    stop: watch::Sender<bool>,
    thread: Option<JoinHandle<std::io::Result<()>>>,
}

impl Sinks {
    pub fn start(ns: &NetNs, addr: Ipv4Addr, ports: &[u16]) -> Sinks {
        let listeners: Vec<std::net::TcpListener> = ports
            .iter()
            .map(|&port| {
                let l = ns
                    .run(|| std::net::TcpListener::bind(SocketAddr::from((addr, port))))
                    .unwrap()
                    .unwrap();
                l.set_nonblocking(true).unwrap();
                l
            })
            .collect();
        let (stop, stopped) = watch::channel(false);
        let thread = std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()?;
            runtime.block_on(async move {
                let sinks = listeners.into_iter().map(|l| {
                    let mut stopped = stopped.clone();
                    async move {
                        let listener = tokio::net::TcpListener::from_std(l).unwrap();
                        let config = SinkConfig {
                            reporter: Reporter::none(),
                            report_interval: Duration::from_secs(60),
                        };
                        let shutdown = async move {
                            let _ = stopped.changed().await;
                        };
                        iot::run_sink(listener, config, shutdown, |_| {}).await
                    }
                });
                for result in futures::future::join_all(sinks).await {
                    result.map_err(std::io::Error::other)?;
                }
                Ok(())
            })
        });
        Sinks {
            stop,
            thread: Some(thread),
        }
    }
}

impl Drop for Sinks {
    fn drop(&mut self) {
        let _ = self.stop.send(true);
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

/// An analytic uploading from `ns` to `sink` at `knob` until stopped (or 60 s).
pub struct Uploader {
    stop: Option<oneshot::Sender<()>>,
    thread: Option<JoinHandle<std::io::Result<()>>>,
}

impl Uploader {
    pub fn start(ns: &NetNs, sink: SocketAddr, analytic: &str, kind: &str, knob: f64) -> Uploader {
        let mut config =
            UploaderConfig::new(&sink.to_string(), kind, knob, Duration::from_secs(60));
        config.gateway = GATEWAY.into();
        config.analytic = analytic.into();
        config.location = Location::Cloud;
        config.period = Duration::from_millis(500);
        let (stop, stopped) = oneshot::channel::<()>();
        let thread = ns
            .spawn_thread(move || {
                let runtime = tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()
                    .unwrap();
                let models = ModelSet::builtin();
                runtime.block_on(async move {
                    tokio::select! {
                        result = iot::upload(&config, &models) => {
                            panic!("{} ended before it was stopped: {result:?}", config.analytic)
                        }
                        _ = stopped => {}
                    }
                })
            })
            .unwrap();
        Uploader {
            stop: Some(stop),
            thread: Some(thread),
        }
    }
}

impl Drop for Uploader {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(thread) = self.thread.take() {
            let outcome = thread.join();
            if !std::thread::panicking() {
                outcome
                    .expect("the uploader thread")
                    .expect("enter the namespace");
            }
        }
    }
}

/// A mosquitto broker on a free loopback port (local-only mode), stopped on drop.
pub struct Broker {
    pub url: String,
    pub port: u16,
    child: Child,
}

impl Broker {
    pub fn start() -> Broker {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let child = Command::new("mosquitto")
            .args(["-p", &port.to_string()])
            .stderr(std::process::Stdio::null())
            .spawn()
            .expect("mosquitto (Debian package mosquitto; .ci/run installs it)");
        let broker = Broker {
            url: format!("mqtt://127.0.0.1:{port}"),
            port,
            child,
        };
        for _ in 0..100 {
            if std::net::TcpStream::connect(("127.0.0.1", port)).is_ok() {
                return broker;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        panic!("mosquitto did not listen on port {port}");
    }
}

impl Drop for Broker {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A SQLite database in `dir`, migrated.
pub async fn sqlite(dir: &Path) -> qoelab_collector::Db {
    let url = format!("sqlite://{}", dir.join("decisions.sqlite").display());
    qoelab_collector::Db::connect(&url).await.unwrap()
}
