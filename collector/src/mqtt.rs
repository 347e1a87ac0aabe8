//! Ingest of QoS reports over MQTT: subscribes to `qoelab/+/+/qos` and stores every
//! `qoelab.iot-qos.v1` report published there (the format of the workload's analytics, see
//! `workload/FORMATS.md`). A report redelivered by the broker (QoS 1) is stored once: its
//! idempotency key is its analytic, session start and report time.

use std::time::Duration;

use rumqttc::{AsyncClient, Event, MqttOptions, Packet, QoS};
use tokio_util::sync::CancellationToken;

use crate::db::Db;
use crate::error::{Error, Result};
use crate::ingest::{self, Batch, QosReport};

/// The topic filter the collector subscribes to.
pub const TOPIC_FILTER: &str = "qoelab/+/+/qos";

/// What happened to one MQTT message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Received {
    /// Stored.
    Stored,
    /// Stored before (a redelivery).
    Duplicate,
    /// Refused, with the reason.
    Refused(String),
}

/// Parses a broker URL `mqtt://HOST[:PORT]` into host and port (default 1883).
pub fn parse_url(url: &str) -> Result<(String, u16)> {
    let invalid = || Error::invalid("mqtt", url, "mqtt://HOST or mqtt://HOST:PORT");
    let rest = url.strip_prefix("mqtt://").ok_or_else(invalid)?;
    let (host, port) = match rest.rsplit_once(':') {
        Some((host, port)) => (host, port.parse().map_err(|_| invalid())?),
        None => (rest, 1883),
    };
    if host.is_empty() || host.contains('/') {
        return Err(invalid());
    }
    Ok((host.to_string(), port))
}

/// Turns one MQTT message into a stored report.
pub async fn receive(db: &Db, topic: &str, payload: &[u8]) -> Result<Received> {
    let parts: Vec<&str> = topic.split('/').collect();
    let [_, gateway, analytic, _] = parts[..] else {
        return Ok(Received::Refused(format!(
            "topic '{topic}' is not qoelab/<gateway>/<analytic>/qos"
        )));
    };
    let report: qoelab_workload::iot::QosReport = match serde_json::from_slice(payload) {
        Ok(report) => report,
        Err(e) => {
            return Ok(Received::Refused(format!(
                "not a qoelab.iot-qos.v1 report: {e}"
            )));
        }
    };
    if report.schema != qoelab_workload::iot::QOS_SCHEMA {
        return Ok(Received::Refused(format!(
            "schema '{}' is not {}",
            report.schema,
            qoelab_workload::iot::QOS_SCHEMA
        )));
    }
    if report.spec.gateway != gateway || report.spec.analytic != analytic {
        return Ok(Received::Refused(format!(
            "topic '{topic}' names another analytic than the report ({}/{})",
            report.spec.gateway, report.spec.analytic
        )));
    }
    let key = format!(
        "mqtt:{gateway}/{analytic}/{}/{}",
        report.started_unix_ms, report.report_unix_ms
    );
    let batch = Batch {
        idempotency_key: Some(key),
        items: vec![QosReport::from(&report)],
    };
    match ingest::qos_reports(db, &batch).await {
        Ok(outcome) if outcome.duplicate => Ok(Received::Duplicate),
        Ok(_) => Ok(Received::Stored),
        Err(e @ Error::Invalid { .. }) => Ok(Received::Refused(e.to_string())),
        Err(e) => Err(e),
    }
}

/// Subscribes to [`TOPIC_FILTER`] on the broker at `url` and stores reports until `shutdown`,
/// reconnecting when the broker goes away. Refused messages are logged.
pub async fn run(db: Db, url: String, shutdown: CancellationToken) -> Result<()> {
    let (host, port) = parse_url(&url)?;
    let mut options = MqttOptions::new(
        format!("qoelab-collector-{}", std::process::id()),
        host,
        port,
    );
    options.set_keep_alive(Duration::from_secs(30));
    let (client, mut events) = AsyncClient::new(options, 256);
    loop {
        let event = tokio::select! {
            _ = shutdown.cancelled() => break,
            event = events.poll() => event,
        };
        match event {
            Ok(Event::Incoming(Packet::ConnAck(_))) => {
                // (Re)subscribe on every connection: the broker forgets clean sessions.
                if let Err(e) = client.subscribe(TOPIC_FILTER, QoS::AtLeastOnce).await {
                    tracing::warn!("MQTT subscribe to {TOPIC_FILTER} failed: {e}");
                }
            }
            Ok(Event::Incoming(Packet::Publish(message))) => {
                match receive(&db, &message.topic, &message.payload).await {
                    Ok(Received::Refused(why)) => {
                        tracing::warn!(topic = %message.topic, "QoS report refused: {why}")
                    }
                    Ok(_) => {}
                    Err(e) => tracing::error!(topic = %message.topic, "QoS report not stored: {e}"),
                }
            }
            Ok(_) => {}
            Err(e) => {
                tracing::warn!("MQTT broker {url}: {e}; reconnecting");
                tokio::select! {
                    _ = shutdown.cancelled() => break,
                    _ = tokio::time::sleep(Duration::from_secs(1)) => {}
                }
            }
        }
    }
    let _ = client.disconnect().await;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn broker_urls_are_parsed_with_a_default_port() {
        assert_eq!(parse_url("mqtt://broker").unwrap(), ("broker".into(), 1883));
        assert_eq!(
            parse_url("mqtt://127.0.0.1:11883").unwrap(),
            ("127.0.0.1".into(), 11883)
        );
        for bad in ["tcp://x", "mqtt://", "mqtt://h:port", "mqtt://h/x"] {
            assert!(
                parse_url(bad)
                    .unwrap_err()
                    .to_string()
                    .contains("mqtt://HOST"),
                "{bad}"
            );
        }
    }
}
