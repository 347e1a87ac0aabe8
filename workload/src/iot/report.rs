//! Where QoS reports go: POSTed as JSON to an HTTP URL (the collector's ingest endpoint) and/or
//! published as JSON to an MQTT broker on `qoelab/<gateway>/<analytic>/qos` (QoS 1, not
//! retained).
//!
//! A report that cannot be delivered is logged as a warning; the measurement goes on.
//!
//! [`MqttPublisher`] is the broker connection on its own, for other messages (e.g. the knobs a
//! live allocator publishes).

use std::sync::Arc;
use std::time::Duration;

use rumqttc::{AsyncClient, Event, EventLoop, MqttOptions, Outgoing, Packet, QoS};
use tokio::task::JoinHandle;

use super::{IotError, QosReport};
use crate::http::{self, HttpClient};

/// Time limit for delivering one report over HTTP, and for connecting to a broker.
const DELIVERY_TIMEOUT: Duration = Duration::from_secs(10);
/// The MQTT port when the URL has none.
const MQTT_PORT: u16 = 1883;

/// Delivers reports to the configured destinations. Cheap to clone.
#[derive(Debug, Clone, Default)]
pub struct Reporter {
    http: Option<(HttpClient, String)>,
    mqtt: Option<Arc<MqttPublisher>>,
}

/// A connection to an MQTT broker that publishes JSON messages (QoS 1) and reconnects after
/// errors.
#[derive(Debug)]
pub struct MqttPublisher {
    url: String,
    client: AsyncClient,
    events: tokio::sync::Mutex<Option<JoinHandle<()>>>,
}

impl Reporter {
    /// A reporter that delivers nowhere.
    pub fn none() -> Reporter {
        Reporter::default()
    }

    /// Delivers to `http_url` (POST) and/or the broker at `mqtt_url` (`mqtt://HOST[:PORT]`).
    /// Connects to the broker now, so an unreachable one is an error here, not later.
    pub async fn new(http_url: Option<&str>, mqtt_url: Option<&str>) -> Result<Reporter, IotError> {
        let http = match http_url {
            Some(url) => {
                http::parse_url(url)?;
                Some((HttpClient::new(DELIVERY_TIMEOUT), url.to_string()))
            }
            None => None,
        };
        let mqtt = match mqtt_url {
            Some(url) => Some(Arc::new(MqttPublisher::connect(url, "qoelab-sink").await?)),
            None => None,
        };
        Ok(Reporter { http, mqtt })
    }

    /// Delivers `report` to every destination; failures are logged.
    pub async fn send(&self, report: &QosReport) {
        if let Some((client, url)) = &self.http
            && let Err(err) = client.post_json(url, report).await
        {
            tracing::warn!(
                "QoS report of {} not delivered: {err}",
                report.spec.analytic
            );
        }
        if let Some(mqtt) = &self.mqtt {
            let payload = serde_json::to_vec(report).expect("reports serialize");
            if let Err(err) = mqtt.publish(&report.topic(), payload, false).await {
                tracing::warn!("QoS report not published: {err}");
            }
        }
    }

    /// Disconnects from the broker after the reports handed to it have been sent.
    pub async fn close(&self) {
        if let Some(mqtt) = &self.mqtt {
            mqtt.close().await;
        }
    }
}

impl MqttPublisher {
    /// Connects to the broker at `url` (`mqtt://HOST[:PORT]`) as a client whose id starts with
    /// `client_prefix`; an unreachable broker is an error here, not later.
    pub async fn connect(url: &str, client_prefix: &str) -> Result<MqttPublisher, IotError> {
        let (host, port) = parse_mqtt_url(url)?;
        let client_id = format!("{client_prefix}-{}-{}", std::process::id(), unique());
        let mut options = MqttOptions::new(client_id, host, port);
        options.set_keep_alive(Duration::from_secs(30));
        let (client, mut events) = AsyncClient::new(options, 64);
        let unreachable = |reason: String| IotError::Mqtt {
            url: url.to_string(),
            reason,
        };
        let connected = tokio::time::timeout(DELIVERY_TIMEOUT, async {
            loop {
                match events.poll().await {
                    Ok(Event::Incoming(Packet::ConnAck(_))) => return Ok(()),
                    Ok(_) => {}
                    Err(err) => return Err(err.to_string()),
                }
            }
        })
        .await
        .map_err(|_| unreachable(format!("no answer within {DELIVERY_TIMEOUT:?}")))?;
        connected.map_err(unreachable)?;
        let events = tokio::spawn(drive(events, url.to_string()));
        Ok(MqttPublisher {
            url: url.to_string(),
            client,
            events: tokio::sync::Mutex::new(Some(events)),
        })
    }

    /// Hands `payload` to the connection for `topic` (QoS 1); `retain` keeps it on the broker
    /// for later subscribers (an empty retained payload clears the topic).
    pub async fn publish(
        &self,
        topic: &str,
        payload: Vec<u8>,
        retain: bool,
    ) -> Result<(), IotError> {
        self.client
            .publish(topic, QoS::AtLeastOnce, retain, payload)
            .await
            .map_err(|e| IotError::Mqtt {
                url: self.url.clone(),
                reason: format!("publish to {topic}: {e}"),
            })
    }

    /// Disconnects after the messages handed to the connection have been sent.
    pub async fn close(&self) {
        let _ = self.client.disconnect().await;
        if let Some(events) = self.events.lock().await.take() {
            let _ = tokio::time::timeout(DELIVERY_TIMEOUT, events).await;
        }
    }
}

/// Runs the MQTT connection until it is disconnected; reconnects after errors.
async fn drive(mut events: EventLoop, url: String) {
    loop {
        match events.poll().await {
            Ok(Event::Outgoing(Outgoing::Disconnect)) => return,
            Ok(_) => {}
            Err(err) => {
                tracing::warn!("MQTT broker {url}: {err}; reconnecting");
                tokio::time::sleep(Duration::from_secs(1)).await;
            }
        }
    }
}

/// `mqtt://HOST[:PORT]` → host and port.
fn parse_mqtt_url(url: &str) -> Result<(String, u16), IotError> {
    let bad = || IotError::Invalid {
        field: "MQTT broker URL",
        value: format!("'{url}'"),
        accepted: "mqtt://HOST or mqtt://HOST:PORT (e.g. mqtt://127.0.0.1:1883)",
    };
    let rest = url.strip_prefix("mqtt://").ok_or_else(bad)?;
    let rest = rest.trim_end_matches('/');
    let (host, port) = match rest.rsplit_once(':') {
        Some((host, port)) => (host, port.parse().map_err(|_| bad())?),
        None => (rest, MQTT_PORT),
    };
    if host.is_empty() || host.contains('/') {
        return Err(bad());
    }
    Ok((host.to_string(), port))
}

/// A number that differs between calls (client ids must be unique per broker).
fn unique() -> u64 {
    use std::sync::atomic::{AtomicU64, Ordering};
    static NEXT: AtomicU64 = AtomicU64::new(0);
    NEXT.fetch_add(1, Ordering::Relaxed)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mqtt_urls_are_checked() {
        assert_eq!(
            parse_mqtt_url("mqtt://127.0.0.1:1884").unwrap(),
            ("127.0.0.1".to_string(), 1884)
        );
        assert_eq!(parse_mqtt_url("mqtt://broker").unwrap().1, 1883);
        for bad in ["tcp://x:1", "mqtt://", "mqtt://h:port", "mqtt://h:1/x"] {
            let err = parse_mqtt_url(bad).unwrap_err().to_string();
            assert!(err.contains(bad) && err.contains("mqtt://HOST"), "{err}");
        }
    }
}
