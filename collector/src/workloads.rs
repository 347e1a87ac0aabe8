//! The built-in workloads as the runner's [`Driver`]: each session's video player or IoT
//! uploaders run against a video server and an IoT sink — in a lab, [`LabServers`] keeps those
//! in the server namespace and the driver runs its clients in the client namespace, so their
//! traffic crosses the router where it is shaped and captured; against real hosts, the driver
//! runs its clients in its own namespace towards servers given by URL.

use std::net::{Ipv4Addr, SocketAddr, TcpListener};
use std::ops::Range;
use std::thread::JoinHandle;
use std::time::Duration;

use qoelab_lab::NetNs;
use qoelab_shaper::classify::{Match, PortRange, Protocol};
use qoelab_workload::iot::{self, QosReport, Reporter, SinkConfig, UploaderConfig};
use qoelab_workload::model::ModelSet;
use qoelab_workload::video::{self, AbrKind, PlayerConfig, VideoSpec};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use tokio_util::sync::CancellationToken;

use crate::campaign::{MAX_ANALYTICS, Workload};
use crate::runner::Driver;

/// Port of the video server in the server namespace.
pub const VIDEO_PORT: u16 = 8080;
/// First port of the IoT sink in the server namespace; it listens on [`MAX_ANALYTICS`] ports
/// from here, analytic i of a session uploading to `SINK_PORT + i`.
pub const SINK_PORT: u16 = 9000;

/// The `schema` of an IoT session's application record.
pub const IOT_SESSION_SCHEMA: &str = "qoelab.iot-session.v1";

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

/// Binds `ports` on `addr` inside `ns` and serves `serve` there on a runtime of its own until
/// `stop` fires.
fn serve_in<F, Fut>(
    ns: &NetNs,
    addr: Ipv4Addr,
    ports: Range<u16>,
    stop: CancellationToken,
    serve: F,
) -> std::io::Result<JoinHandle<std::io::Result<()>>>
where
    F: FnOnce(Vec<tokio::net::TcpListener>, CancellationToken) -> Fut + Send + 'static,
    Fut: Future<Output = ()>,
{
    let listeners = ns.run(|| {
        ports
            .map(|port| {
                let listener = TcpListener::bind(SocketAddr::from((addr, port)))?;
                listener.set_nonblocking(true)?;
                Ok(listener)
            })
            .collect::<std::io::Result<Vec<_>>>()
    })??;
    Ok(std::thread::spawn(move || {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .enable_all()
            .build()?;
        runtime.block_on(async move {
            let listeners = listeners
                .into_iter()
                .map(tokio::net::TcpListener::from_std)
                .collect::<std::io::Result<_>>()?;
            serve(listeners, stop).await;
            Ok(())
        })
    }))
}

impl LabServers {
    /// Starts the video server (port [`VIDEO_PORT`]) and the IoT sink (ports [`SINK_PORT`] to
    /// `SINK_PORT + MAX_ANALYTICS − 1`) on `addr` in `server`.
    pub fn start(server: &NetNs, addr: Ipv4Addr) -> std::io::Result<LabServers> {
        let stop = CancellationToken::new();
        let video = serve_in(
            server,
            addr,
            VIDEO_PORT..VIDEO_PORT + 1,
            stop.clone(),
            |mut listeners, stop| async move {
                let listener = listeners.remove(0);
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
            SINK_PORT..SINK_PORT + MAX_ANALYTICS as u16,
            stop.clone(),
            |listeners, stop| async move {
                let config = SinkConfig {
                    reporter: Reporter::none(),
                    report_interval: Duration::from_secs(5),
                };
                if let Err(e) =
                    iot::run_sinks(listeners, config, stop.cancelled_owned(), |_| {}).await
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
    /// `video_url` (e.g. `http://198.18.2.2:8080`) and the IoT sink at `sink` (`host:port`,
    /// listening on that port and the [`MAX_ANALYTICS`] − 1 after it: analytic i of a session
    /// uploads to port + i); sessions of a workload whose server is `None` fail, saying so.
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
        let mut configs = Vec::new();
        let mut rules = Vec::new();
        for (i, a) in analytics.iter().enumerate() {
            let (addr, rule) = analytic_sink(&sink, i)?;
            let mut c = UploaderConfig::new(&addr, &a.kind, a.knob, total);
            c.analytic = format!("{}-{i}", a.kind);
            configs.push(c);
            rules.push(rule);
        }
        let models = self.models.clone();
        let reports = self
            .in_client(cancel, move || async move {
                let uploads = configs.iter().map(|c| iot::upload(c, &models));
                futures::future::try_join_all(uploads).await
            })
            .await?
            .map_err(|e| e.to_string())?;
        let analytics = reports
            .into_iter()
            .zip(rules)
            .map(|(report, rule)| AnalyticRecord { report, rule })
            .collect::<Vec<_>>();
        Ok(summarize(&analytics))
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

/// Where analytic `i` of a session uploads, given the sink's `HOST:PORT`, and the match rule
/// of its flows: TCP to the sink's port + `i`.
fn analytic_sink(sink: &str, i: usize) -> Result<(String, Match), String> {
    let port = sink
        .rsplit_once(':')
        .and_then(|(host, port)| Some((host, port.parse::<u16>().ok()?.checked_add(i as u16)?)));
    let Some((host, port)) = port else {
        return Err(format!(
            "the IoT sink '{sink}' is not HOST:PORT with PORT + {i} at most 65535 (analytic {i} \
             of the session uploads to PORT + {i}), e.g. 198.18.2.2:9000"
        ));
    };
    let rule = Match {
        protocol: Some(Protocol(6)), // TCP
        dst_port: Some(PortRange {
            first: port,
            last: port,
        }),
        ..Match::default()
    };
    Ok((format!("{host}:{port}"), rule))
}

/// One analytic of an IoT session's record: its final report, and the match rule that tells
/// its flows from the others' (the client sends to the rule's `dst`/`dst_port`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AnalyticRecord {
    /// The sink's final report.
    #[serde(flatten)]
    pub report: QosReport,
    /// Which flows are the analytic's.
    #[serde(rename = "match")]
    pub rule: Match,
}

/// The application record of an IoT session (`qoelab.iot-session.v1`): means over its
/// analytics (the labels), and every analytic's final report with the match rule of its flows.
pub fn summarize(analytics: &[AnalyticRecord]) -> Value {
    let reports: Vec<&QosReport> = analytics.iter().map(|a| &a.report).collect();
    let mean = |f: fn(&QosReport) -> f64| {
        if reports.is_empty() {
            0.0
        } else {
            reports.iter().map(|r| f(r)).sum::<f64>() / reports.len() as f64
        }
    };
    json!({
        "schema": IOT_SESSION_SCHEMA,
        "analytics": reports.len(),
        "expected_qos_mean": mean(|r| r.expected_qos),
        "achieved_qos_mean": mean(|r| r.achieved_qos),
        "on_time_ratio_mean": mean(|r| r.on_time_ratio),
        "completeness_mean": mean(|r| r.completeness),
        "qos_shortfall": mean(|r| r.expected_qos - r.achieved_qos),
        "reports": analytics,
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

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use qoelab_workload::iot::qos::Accounting;

    /// The record of analytic `name` uploading to sink port `port`, as the driver makes it:
    /// its final report (object detection at K = 1, all frames on time) and its match rule.
    pub(crate) fn analytic_record(name: &str, port: u16) -> AnalyticRecord {
        let mut config = UploaderConfig::new(
            "198.18.2.2:9000",
            "object-detection",
            1.0,
            Duration::from_secs(2),
        );
        config.analytic = name.into();
        let hello = config.hello(&ModelSet::builtin()).unwrap();
        let (_, rule) = analytic_sink(&format!("198.18.2.2:{port}"), 0).unwrap();
        AnalyticRecord {
            report: Accounting::new(hello).report(3_000_000, true),
            rule,
        }
    }

    #[test]
    fn analytic_i_uploads_to_the_sink_port_plus_i_and_its_rule_says_so() {
        let (addr, rule) = analytic_sink("198.18.2.2:9000", 3).unwrap();
        assert_eq!(addr, "198.18.2.2:9003");
        assert_eq!(
            serde_json::to_value(&rule).unwrap(),
            json!({"protocol": "tcp", "dst_port": 9003})
        );
        let (addr, _) = analytic_sink("[2001:db8::1]:9000", 1).unwrap();
        assert_eq!(addr, "[2001:db8::1]:9001");
        for bad in ["198.18.2.2", "sink:http", "198.18.2.2:65535"] {
            let err = analytic_sink(bad, 1).unwrap_err();
            assert!(
                err.contains(&format!("'{bad}'")) && err.contains("HOST:PORT"),
                "{err}"
            );
        }
    }

    #[test]
    fn the_session_record_keeps_each_report_with_its_rule() {
        let analytics = [
            analytic_record("cam-0", 9000),
            analytic_record("cam-1", 9001),
        ];
        let record = summarize(&analytics);
        assert_eq!(record["schema"], IOT_SESSION_SCHEMA);
        assert_eq!(record["analytics"], 2);
        assert_eq!(record["reports"][1]["analytic"], "cam-1");
        assert_eq!(
            record["reports"][1]["match"],
            json!({"protocol": "tcp", "dst_port": 9001})
        );
        let back: Vec<AnalyticRecord> = serde_json::from_value(record["reports"].clone()).unwrap();
        assert_eq!(back, analytics, "the record reads back as it was written");
    }

    #[test]
    fn formats_md_documents_the_session_record() {
        let formats = include_str!("../../workload/FORMATS.md");
        let section = formats
            .split("\n## ")
            .find(|s| s.starts_with("IoT session record"))
            .expect("FORMATS.md has a section 'IoT session record'");
        let analytic = analytic_record("cam", 9000);
        let report = serde_json::to_value(&analytic.report).unwrap();
        let record = summarize(&[analytic]);
        // The report's own fields are documented in its section; the record adds the rest.
        let added = record["reports"][0]
            .as_object()
            .unwrap()
            .keys()
            .filter(|k| report.get(k.as_str()).is_none());
        for key in record.as_object().unwrap().keys().chain(added) {
            assert!(
                section.contains(&format!("| `{key}` |")),
                "FORMATS.md section 'IoT session record' has no row for `{key}`"
            );
        }
    }
}
