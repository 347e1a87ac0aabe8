//! Telling analytics their knobs: a JSON [`KnobMessage`] POSTed to the URL an analytic
//! registered, and/or published on MQTT `qoelab/<gateway>/<analytic>/knob` (QoS 1, retained, so
//! an analytic that subscribes later still gets its latest knob; cleared when it deregisters).
//!
//! A message that cannot be delivered is reported with the decision and logged; the decision
//! goes on (an analytic that misses a lower knob keeps sending at its old rate into a class
//! that now limits it, which is what the class is for).

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use qoelab_workload::http::HttpClient;
use qoelab_workload::iot::MqttPublisher;
use serde::{Deserialize, Serialize};

use crate::ServiceError;

/// The `schema` of a knob message.
pub const KNOB_SCHEMA: &str = "qoelab.knob.v1";
/// How long one HTTP delivery may take: a slow analytic delays the decision by at most this.
const HTTP_TIMEOUT: Duration = Duration::from_secs(2);

/// What an analytic is told.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct KnobMessage {
    /// Always [`KNOB_SCHEMA`].
    pub schema: String,
    /// The gateway's name.
    pub gateway: String,
    /// The analytic's id.
    pub analytic: String,
    /// The decision this comes from (counts up; ignore older ones).
    pub sequence: u64,
    /// True when the analytic is not admitted and must stop uploading.
    pub paused: bool,
    /// The knob to run at (0 when paused).
    pub knob: f64,
    /// The upload rate its class allows, bit/s (0 when paused).
    pub rate_bps: u64,
    /// The QoS expected at that knob.
    pub expected_qos: f64,
    /// When the decision was made, Unix ms.
    pub ts_ms: i64,
}

impl KnobMessage {
    /// The MQTT topic of `analytic`'s knob on `gateway`.
    pub fn topic(gateway: &str, analytic: &str) -> String {
        format!("qoelab/{gateway}/{analytic}/knob")
    }
}

/// Delivers knob messages by HTTP and, when a broker is configured, MQTT.
#[derive(Debug)]
pub struct Publisher {
    http: HttpClient,
    mqtt: Option<MqttPublisher>,
}

impl Publisher {
    /// HTTP only.
    pub fn http_only() -> Publisher {
        Publisher {
            http: HttpClient::new(HTTP_TIMEOUT),
            mqtt: None,
        }
    }

    /// HTTP, and MQTT through the broker at `mqtt_url` (connected now).
    pub async fn connect(mqtt_url: Option<&str>) -> Result<Publisher, ServiceError> {
        let mqtt = match mqtt_url {
            None => None,
            Some(url) => Some(
                MqttPublisher::connect(url, "qoelab-allocate")
                    .await
                    .map_err(|e| ServiceError::Setup {
                        what: "connect to the MQTT broker".into(),
                        reason: e.to_string(),
                    })?,
            ),
        };
        Ok(Publisher {
            mqtt,
            ..Publisher::http_only()
        })
    }

    /// Sends `message` to `url` (if the analytic gave one) and to MQTT; returns what failed.
    pub async fn send(&self, url: Option<&str>, message: &KnobMessage) -> Vec<String> {
        let mut failed = Vec::new();
        if let Some(url) = url
            && let Err(err) = self.http.post_json(url, message).await
        {
            failed.push(err.to_string());
        }
        if let Some(mqtt) = &self.mqtt {
            let topic = KnobMessage::topic(&message.gateway, &message.analytic);
            let payload = serde_json::to_vec(message).expect("knob messages serialize");
            if let Err(err) = mqtt.publish(&topic, payload, true).await {
                failed.push(err.to_string());
            }
        }
        for failure in &failed {
            tracing::warn!(analytic = %message.analytic, "knob not delivered: {failure}");
        }
        failed
    }

    /// Clears the retained knob of an analytic that left.
    pub async fn forget(&self, gateway: &str, analytic: &str) {
        if let Some(mqtt) = &self.mqtt
            && let Err(err) = mqtt
                .publish(&KnobMessage::topic(gateway, analytic), Vec::new(), true)
                .await
        {
            tracing::warn!(analytic, "retained knob not cleared: {err}");
        }
    }

    /// Disconnects from the broker after pending messages are sent.
    pub async fn close(&self) {
        if let Some(mqtt) = &self.mqtt {
            mqtt.close().await;
        }
    }
}

/// Now, Unix ms.
pub fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as i64)
}
