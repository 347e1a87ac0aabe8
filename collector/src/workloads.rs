//! The built-in workloads as the runner's [`Driver`]: each session's video player or IoT
//! uploaders run against a video server and an IoT sink — in a lab, [`LabServers`] keeps those
//! in the server namespace and the driver runs its clients in the client namespace, so their
//! traffic crosses the router where it is shaped and captured; against real hosts, the driver
//! runs its clients in its own namespace towards servers given by URL.

use std::net::{Ipv4Addr, SocketAddr, TcpListener};
use std::thread::JoinHandle;
use std::time::Duration;

use qoelab_lab::NetNs;
use qoelab_workload::iot::{self, QosReport, Reporter, SinkConfig, UploaderConfig};
use qoelab_workload::model::ModelSet;
use qoelab_workload::video::{self, AbrKind, PlayerConfig, VideoSpec};
use serde_json::{Value, json};
use tokio_util::sync::CancellationToken;

use crate::campaign::Workload;
use crate::runner::Driver;

/// Port of the video server in the server namespace.
pub const VIDEO_PORT: u16 = 8080;
/// Port of the IoT sink in the server namespace.
pub const SINK_PORT: u16 = 9000;

/// Runs the built-in workloads' clients (in `client`'s namespace, if given).
pub struct WorkloadDriver {
    client: Option<NetNs>,
    video_url: Option<String>,
    sink: Option<String>,
    models: ModelSet,
}

impl std::fmt::Debug for WorkloadDriver {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WorkloadDriver")
            .field("client", &self.client.as_ref().map(NetNs::name))
            .field("video_url", &self.video_url)
            .field("sink", &self.sink)
            .finish()
    }
}

/// The video server and IoT sink of a lab, in its server namespace, until dropped.
pub struct LabServers {
    stop: CancellationToken,
    servers: Vec<JoinHandle<std::io::Result<()>>>,
}

/// Binds `port` on `addr` inside `ns` and serves `serve` there on a runtime of its own until
/// `stop` fires.
fn serve_in<F, Fut>(
    ns: &NetNs,
    addr: Ipv4Addr,
    port: u16,
    stop: CancellationToken,
    serve: F,
) -> std::io::Result<JoinHandle<std::io::Result<()>>>
where
    F: FnOnce(tokio::net::TcpListener, CancellationToken) -> Fut + Send + 'static,
    Fut: Future<Output = ()>,
{
    let listener = ns.run(|| TcpListener::bind(SocketAddr::from((addr, port))))??;
    listener.set_nonblocking(true)?;
    Ok(std::thread::spawn(move || {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .enable_all()
            .build()?;
        runtime.block_on(async move {
            let listener = tokio::net::TcpListener::from_std(listener)?;
            serve(listener, stop).await;
            Ok(())
        })
    }))
}

impl LabServers {
    /// Starts the video server (port [`VIDEO_PORT`]) and the IoT sink (port [`SINK_PORT`]) on
    /// `addr` in `server`.
    pub fn start(server: &NetNs, addr: Ipv4Addr) -> std::io::Result<LabServers> {
        let stop = CancellationToken::new();
        let video = serve_in(
            server,
            addr,
            VIDEO_PORT,
            stop.clone(),
            |listener, stop| async move {
                if let Err(e) =
                    video::server::serve(listener, &VideoSpec::default(), stop.cancelled_owned())
                        .await
                {
                    tracing::error!("the lab's video server failed: {e}");
                }
            },
        )?;
        let sink = serve_in(
            server,
            addr,
            SINK_PORT,
            stop.clone(),
            |listener, stop| async move {
                let config = SinkConfig {
                    reporter: Reporter::none(),
                    report_interval: Duration::from_secs(5),
                };
                if let Err(e) =
                    iot::run_sink(listener, config, stop.cancelled_owned(), |_| {}).await
                {
                    tracing::error!("the lab's IoT sink failed: {e}");
                }
            },
        )?;
        Ok(LabServers {
            stop,
            servers: vec![video, sink],
        })
    }
}

impl Drop for LabServers {
    fn drop(&mut self) {
        self.stop.cancel();
        for server in self.servers.drain(..) {
            if let Ok(Err(e)) = server.join() {
                tracing::warn!("a lab workload server ended with an error: {e}");
            }
        }
    }
}

impl WorkloadDriver {
    /// Clients run in `client` (`None`: this process's namespace) against the video server at
    /// `video_url` (e.g. `http://198.18.2.2:8080`) and the IoT sink at `sink` (`host:port`);
    /// sessions of a workload whose server is `None` fail, saying so.
    pub fn new(
        client: Option<NetNs>,
        video_url: Option<&str>,
        sink: Option<&str>,
    ) -> WorkloadDriver {
        WorkloadDriver {
            client,
            video_url: video_url.map(|u| u.trim_end_matches('/').to_string()),
            sink: sink.map(str::to_string),
            models: ModelSet::builtin(),
        }
    }

    /// The driver of a lab whose servers ([`LabServers`]) listen on `server_addr`.
    pub fn for_lab(client: NetNs, server_addr: Ipv4Addr) -> WorkloadDriver {
        WorkloadDriver::new(
            Some(client),
            Some(&format!("http://{server_addr}:{VIDEO_PORT}")),
            Some(&format!("{server_addr}:{SINK_PORT}")),
        )
    }

    async fn video(
        &self,
        abr: &str,
        total: Duration,
        cancel: CancellationToken,
    ) -> Result<Value, String> {
        let abr: AbrKind = abr.parse().map_err(|e: video::VideoError| e.to_string())?;
        let url = self.video_url.as_deref().ok_or(
            "no video server is configured for this runner (qoelab serve --video-server URL)",
        )?;
        let config = PlayerConfig::new(url, abr, total.as_secs_f64());
        let record = self
            .in_client(
                cancel,
                move || async move { video::play(&config, |_| {}).await },
            )
            .await?;
        serde_json::to_value(record.map_err(|e| e.to_string())?).map_err(|e| e.to_string())
    }

    async fn iot(
        &self,
        analytics: &[crate::campaign::IotAnalytic],
        total: Duration,
        cancel: CancellationToken,
    ) -> Result<Value, String> {
        let sink = self.sink.clone().ok_or(
            "no IoT sink is configured for this runner (qoelab serve --iot-sink HOST:PORT)",
        )?;
        let configs: Vec<UploaderConfig> = analytics
            .iter()
            .enumerate()
            .map(|(i, a)| {
                let mut c = UploaderConfig::new(&sink, &a.kind, a.knob, total);
                c.analytic = format!("{}-{i}", a.kind);
                c
            })
            .collect();
        let models = self.models.clone();
        let reports = self
            .in_client(cancel, move || async move {
                let uploads = configs.iter().map(|c| iot::upload(c, &models));
                futures::future::try_join_all(uploads).await
            })
            .await?
            .map_err(|e| e.to_string())?;
        Ok(summarize(&reports))
    }

    /// Runs `work` on a blocking thread (inside the client namespace, if any), until it ends or
    /// `cancel` fires.
    async fn in_client<F, Fut, T>(&self, cancel: CancellationToken, work: F) -> Result<T, String>
    where
        F: FnOnce() -> Fut + Send + 'static,
        Fut: Future<Output = T>,
        T: Send + 'static,
    {
        let client = self
            .client
            .as_ref()
            .map(NetNs::try_clone)
            .transpose()
            .map_err(|e| e.to_string())?;
        let run = || async move {
            tokio::select! {
                out = work() => Some(out),
                _ = cancel.cancelled() => None,
            }
        };
        let outcome = match client {
            Some(ns) => tokio::task::spawn_blocking(move || ns.run_async(run))
                .await
                .map_err(|e| format!("the workload task failed: {e}"))?
                .map_err(|e| format!("cannot enter the client namespace: {e}"))?,
            None => run().await,
        };
        outcome.ok_or_else(|| "cancelled".to_string())
    }
}

/// The application record of an IoT session: means over its analytics (the labels), and every
/// analytic's final report.
pub fn summarize(reports: &[QosReport]) -> Value {
    let mean = |f: fn(&QosReport) -> f64| {
        if reports.is_empty() {
            0.0
        } else {
            reports.iter().map(f).sum::<f64>() / reports.len() as f64
        }
    };
    json!({
        "analytics": reports.len(),
        "expected_qos_mean": mean(|r| r.expected_qos),
        "achieved_qos_mean": mean(|r| r.achieved_qos),
        "on_time_ratio_mean": mean(|r| r.on_time_ratio),
        "completeness_mean": mean(|r| r.completeness),
        "qos_shortfall": mean(|r| r.expected_qos - r.achieved_qos),
        "reports": reports,
    })
}

impl Driver for WorkloadDriver {
    async fn run(
        &self,
        workload: &Workload,
        total: Duration,
        cancel: CancellationToken,
    ) -> Result<Option<Value>, String> {
        match workload {
            Workload::Video { abr } => self.video(abr, total, cancel).await.map(Some),
            Workload::Iot { analytics } => self.iot(analytics, total, cancel).await.map(Some),
            Workload::External => {
                Err("external sessions are played by their client, not by the runner".into())
            }
        }
    }
}
