//! Ingest over MQTT. The collector subscribes to
//!
//! - `qoelab/<gateway>/<analytic>/qos`: one `qoelab.iot-qos.v1` report (the format of the
//!   workload's analytics, see `workload/FORMATS.md`) or a JSON array of them;
//! - `qoelab/<gateway>/placements` and `qoelab/<gateway>/allocations`: a batch of placement or
//!   allocation decisions, the body of the HTTP ingest (`{"idempotency_key"?, "items": [...]}`),
//!   every item of the topic's gateway.
//!
//! Nothing accepted is lost: a message is acknowledged (QoS 1) only once it is stored, or
//! refused for good (a bad payload, logged with the reason). While the database is unavailable
//! messages wait, in order, and are retried every second; the broker keeps the collector's
//! session (a fixed client id, clean session off), so what was not acknowledged when the
//! collector stopped is delivered again when it comes back. A message without an idempotency key
//! gets one derived from its topic and content, so a redelivery is stored once.

use std::time::Duration;

use rumqttc::{AsyncClient, Event, MqttOptions, Outgoing, Packet, Publish, QoS};
use serde::de::DeserializeOwned;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use crate::db::Db;
use crate::error::{Error, Result};
use crate::ingest::{self, AllocationDecision, Batch, PlacementDecision, QosReport, sha256_hex};

/// The topic filters the collector subscribes to.
pub const TOPIC_FILTERS: [&str; 3] = [
    "qoelab/+/+/qos",
    "qoelab/+/placements",
    "qoelab/+/allocations",
];

/// The accepted form of a broker URL.
pub const URL_FORM: &str = "mqtt://HOST or mqtt://HOST:PORT (port 1883 if none)";

/// The collector's client id unless told otherwise. The broker keeps the session (messages not
/// acknowledged yet) under it: two collectors on one broker need two ids.
pub const DEFAULT_CLIENT_ID: &str = "qoelab-collector";

/// What happened to one MQTT message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Received {
    /// Stored.
    Stored,
    /// Stored before (a redelivery).
    Duplicate,
    /// Refused for good, with the reason.
    Refused(String),
}

/// Parses a broker URL `mqtt://HOST[:PORT]` into host and port (default 1883).
pub fn parse_url(url: &str) -> Result<(String, u16)> {
    let invalid = || Error::invalid("mqtt", url, URL_FORM);
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

/// The accepted form of a client id.
pub const CLIENT_ID_FORM: &str = "1 to 23 of A-Z a-z 0-9 - _ . (MQTT 3.1.1)";

/// Checks a client id: MQTT 3.1.1 brokers must accept 1 to 23 letters and digits; `-`, `_`
/// and `.` are accepted by every broker in use.
pub fn check_client_id(id: &str) -> Result<()> {
    let ok = (1..=23).contains(&id.len())
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"-_.".contains(&b));
    if !ok {
        return Err(Error::invalid("mqtt_client_id", id, CLIENT_ID_FORM));
    }
    Ok(())
}

/// A message read from its topic and payload.
enum Message {
    Qos(Batch<QosReport>),
    Placements(Batch<PlacementDecision>),
    Allocations(Batch<AllocationDecision>),
}

/// Reads one message; the error says why it is refused.
fn parse(topic: &str, payload: &[u8]) -> std::result::Result<Message, String> {
    let key = || format!("mqtt:{}", sha256_hex(&[topic.as_bytes(), payload]));
    let parts: Vec<&str> = topic.split('/').collect();
    match parts[..] {
        ["qoelab", gateway, analytic, "qos"] => Ok(Message::Qos(Batch {
            idempotency_key: Some(key()),
            items: qos_reports(gateway, analytic, payload)?,
        })),
        ["qoelab", gateway, "placements"] => {
            decisions(gateway, payload, |d: &PlacementDecision| &d.gateway, key)
                .map(Message::Placements)
        }
        ["qoelab", gateway, "allocations"] => {
            decisions(gateway, payload, |d: &AllocationDecision| &d.gateway, key)
                .map(Message::Allocations)
        }
        _ => Err(format!(
            "topic '{topic}' is none of qoelab/<gateway>/<analytic>/qos, \
             qoelab/<gateway>/placements, qoelab/<gateway>/allocations"
        )),
    }
}

/// The reports of a QoS message: one report or an array of them, all of the topic's analytic.
fn qos_reports(
    gateway: &str,
    analytic: &str,
    payload: &[u8],
) -> std::result::Result<Vec<QosReport>, String> {
    use qoelab_workload::iot::{QOS_SCHEMA, QosReport as Report};
    let reports: Vec<Report> = if payload.trim_ascii_start().starts_with(b"[") {
        serde_json::from_slice(payload)
            .map_err(|e| format!("not a JSON array of {QOS_SCHEMA} reports: {e}"))?
    } else {
        vec![
            serde_json::from_slice(payload)
                .map_err(|e| format!("not a {QOS_SCHEMA} report: {e}"))?,
        ]
    };
    for report in &reports {
        if report.schema != QOS_SCHEMA {
            return Err(format!("schema '{}' is not {QOS_SCHEMA}", report.schema));
        }
        if report.spec.gateway != gateway || report.spec.analytic != analytic {
            return Err(format!(
                "the topic names analytic {gateway}/{analytic}, the report {}/{}",
                report.spec.gateway, report.spec.analytic
            ));
        }
    }
    Ok(reports.iter().map(QosReport::from).collect())
}

/// A batch of decisions, every item of the topic's gateway; a key derived by `key` if it has
/// none.
fn decisions<T: DeserializeOwned>(
    topic_gateway: &str,
    payload: &[u8],
    gateway: fn(&T) -> &String,
    key: impl FnOnce() -> String,
) -> std::result::Result<Batch<T>, String> {
    let mut batch = ingest::parse_batch::<T>(payload).map_err(|e| e.to_string())?;
    if let Some((i, item)) = batch
        .items
        .iter()
        .enumerate()
        .find(|(_, item)| gateway(item) != topic_gateway)
    {
        return Err(format!(
            "items[{i}].gateway = '{}' is not the topic's gateway '{topic_gateway}'",
            gateway(item)
        ));
    }
    batch.idempotency_key.get_or_insert_with(key);
    Ok(batch)
}

/// Stores one MQTT message. `Ok(Refused)` when the message can never be stored (acknowledge
/// and log it); `Err` when the database failed (try again later).
pub async fn receive(db: &Db, topic: &str, payload: &[u8]) -> Result<Received> {
    let stored = match parse(topic, payload) {
        Ok(Message::Qos(batch)) => ingest::qos_reports(db, &batch).await,
        Ok(Message::Placements(batch)) => ingest::placement_decisions(db, &batch).await,
        Ok(Message::Allocations(batch)) => ingest::allocation_decisions(db, &batch).await,
        Err(why) => return Ok(Received::Refused(why)),
    };
    match stored {
        Ok(outcome) if outcome.duplicate => Ok(Received::Duplicate),
        Ok(_) => Ok(Received::Stored),
        Err(e @ (Error::Invalid { .. } | Error::Conflict(_))) => {
            Ok(Received::Refused(e.to_string()))
        }
        Err(e) => Err(e),
    }
}

/// Subscribes to [`TOPIC_FILTERS`] on the broker at `url` as `client_id` and stores what
/// arrives until `shutdown`, reconnecting when the broker goes away.
pub async fn run(
    db: Db,
    url: String,
    client_id: String,
    shutdown: CancellationToken,
) -> Result<()> {
    let (host, port) = parse_url(&url)?;
    check_client_id(&client_id)?;
    let mut options = MqttOptions::new(client_id, host, port);
    options.set_keep_alive(Duration::from_secs(30));
    // Acknowledged once stored; the broker keeps the rest for this client id.
    options.set_manual_acks(true);
    options.set_clean_session(false);
    let (client, mut events) = AsyncClient::new(options, 256);
    // The event loop keeps polling (keep-alive, acknowledgements) while the worker waits for
    // the database. Unbounded, yet bounded in practice: the broker sends at most its in-flight
    // window (mosquitto: 20) of QoS 1 messages that are not acknowledged yet.
    let (queue, messages) = mpsc::unbounded_channel();
    let worker = tokio::spawn(store_in_order(
        db,
        client.clone(),
        messages,
        shutdown.clone(),
    ));
    loop {
        let event = tokio::select! {
            _ = shutdown.cancelled() => break,
            event = events.poll() => event,
        };
        match event {
            Ok(Event::Incoming(Packet::ConnAck(_))) => {
                // Without waiting: only this loop makes room in the client's request queue.
                for filter in TOPIC_FILTERS {
                    if let Err(e) = client.try_subscribe(filter, QoS::AtLeastOnce) {
                        tracing::warn!("MQTT subscribe to {filter} failed: {e}");
                    }
                }
            }
            Ok(Event::Incoming(Packet::Publish(message))) => {
                let _ = queue.send(message);
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
    drop(queue);
    let _ = worker.await;
    // Send the acknowledgements still queued, then leave; what is not acknowledged stays with
    // the broker for the next start.
    let _ = client.try_disconnect();
    let _ = tokio::time::timeout(Duration::from_secs(2), async {
        while let Ok(event) = events.poll().await {
            if matches!(event, Event::Outgoing(Outgoing::Disconnect)) {
                break;
            }
        }
    })
    .await;
    Ok(())
}

/// Stores the messages in the order they arrived, each acknowledged once stored or refused.
async fn store_in_order(
    db: Db,
    client: AsyncClient,
    mut messages: mpsc::UnboundedReceiver<Publish>,
    shutdown: CancellationToken,
) {
    loop {
        let message = tokio::select! {
            biased;
            _ = shutdown.cancelled() => return,
            message = messages.recv() => match message {
                Some(message) => message,
                None => return,
            },
        };
        let Some(received) = store_until_done(&db, &message, &shutdown).await else {
            return;
        };
        if let Received::Refused(why) = received {
            tracing::warn!(topic = %message.topic, "MQTT message refused: {why}");
        }
        if let Err(e) = client.ack(&message).await {
            tracing::warn!(topic = %message.topic, "MQTT acknowledgement not sent: {e}");
        }
    }
}

/// Stores `message`, trying again every second while the database fails; `None` if `shutdown`
/// came first (the message stays unacknowledged, so the broker delivers it again).
async fn store_until_done(
    db: &Db,
    message: &Publish,
    shutdown: &CancellationToken,
) -> Option<Received> {
    let mut attempt = 0u64;
    loop {
        // A store cut short by the shutdown is not acknowledged: at worst it is stored and
        // delivered again, then recognised as a repeat.
        let stored = tokio::select! {
            _ = shutdown.cancelled() => return None,
            stored = receive(db, &message.topic, &message.payload) => stored,
        };
        match stored {
            Ok(received) => {
                if attempt > 0 {
                    tracing::info!(topic = %message.topic, "MQTT message stored after {attempt} retries");
                }
                return Some(received);
            }
            Err(e) => {
                if attempt.is_multiple_of(60) {
                    tracing::warn!(topic = %message.topic, "MQTT message waits for the database: {e}; retrying every second");
                }
                tokio::select! {
                    _ = shutdown.cancelled() => return None,
                    _ = tokio::time::sleep(Duration::from_secs(1)) => {}
                }
                attempt += 1;
            }
        }
    }
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

    #[test]
    fn client_ids_are_checked() {
        check_client_id(DEFAULT_CLIENT_ID).unwrap();
        for bad in ["", "has space", "x".repeat(24).as_str()] {
            let err = check_client_id(bad).unwrap_err().to_string();
            assert!(
                err.contains("mqtt_client_id") && err.contains("1 to 23"),
                "{err}"
            );
        }
    }

    #[test]
    fn messages_are_read_by_topic_with_a_key_from_their_content() {
        let batch = br#"{"items": [{"gateway": "gw1", "analytic": "cam1", "knob": 0.5,
            "rate_bps": 100000, "algorithm": "raa", "ts_ms": 1700000000000}]}"#;
        let Ok(Message::Allocations(first)) = parse("qoelab/gw1/allocations", batch) else {
            panic!("not read as allocations");
        };
        let Ok(Message::Allocations(again)) = parse("qoelab/gw1/allocations", batch) else {
            panic!("not read as allocations");
        };
        let key = first.idempotency_key.clone().unwrap();
        assert!(key.starts_with("mqtt:"), "{key}");
        assert_eq!(again.idempotency_key, Some(key.clone()));
        let Ok(Message::Allocations(other)) = parse("qoelab/gw1/allocations", b" { \"items\": []}")
        else {
            panic!("not read as allocations");
        };
        assert_ne!(other.idempotency_key, Some(key));
        let keyed = br#"{"idempotency_key": "mine", "items": []}"#;
        let Ok(Message::Placements(keyed)) = parse("qoelab/gw1/placements", keyed) else {
            panic!("not read as placements");
        };
        assert_eq!(keyed.idempotency_key.as_deref(), Some("mine"));

        let why = parse("qoelab/gw2/allocations", batch).err().unwrap();
        assert!(
            why.contains("items[0].gateway = 'gw1' is not the topic's gateway 'gw2'"),
            "{why}"
        );
        let why = parse("qoelab/gw1/decisions", batch).err().unwrap();
        assert!(why.contains("qoelab/<gateway>/placements"), "{why}");
        let why = parse("qoelab/gw1/cam1/qos", b"[{}]").err().unwrap();
        assert!(
            why.contains("not a JSON array of qoelab.iot-qos.v1"),
            "{why}"
        );
    }
}
