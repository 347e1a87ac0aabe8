//! The uploader ↔ sink protocol over one TCP connection per analytic:
//!
//! 1. uploader → sink: a [`Hello`] as one JSON line;
//! 2. uploader → sink: frames, each a 20-byte header (sequence number u64, capture time in µs
//!    since the Unix epoch u64, payload length u32; big-endian) and the payload; the uploader
//!    half-closes the connection after the last frame;
//! 3. sink → uploader: the final [`QosReport`](super::QosReport) as one JSON line, or
//!    `{"error": "..."}` if the sink refused the session; then the sink closes.

use serde::{Deserialize, Serialize};

use super::IotError;
use crate::model::Location;

/// The protocol version in [`Hello::version`].
pub const PROTOCOL_VERSION: u32 = 1;
/// Bytes of a frame header.
pub const HEADER_BYTES: usize = 20;
/// Longest hello line accepted.
pub const MAX_HELLO_BYTES: usize = 4096;
/// Most frames in one session.
pub const MAX_FRAMES: u64 = 10_000_000;
/// Largest frame payload accepted (64 MiB).
pub const MAX_FRAME_BYTES: u64 = 64 << 20;

/// An analytic's upload: who it is and how it uploads. Announced in the [`Hello`] and repeated
/// in every [`QosReport`](super::QosReport) (flattened: its fields sit at the top level).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct UploadSpec {
    /// The gateway's name.
    pub gateway: String,
    /// The analytic's name on the gateway.
    pub analytic: String,
    /// The analytic's kind, e.g. `object-detection`.
    pub kind: String,
    /// Where the analytic runs.
    pub location: Location,
    /// The QoS knob K.
    pub knob: f64,
    /// Upload bitrate the model gives for K, bit/s.
    pub rate_bps: u64,
    /// Payload bytes of each frame.
    pub frame_bytes: u64,
    /// Time between frame captures, ms.
    pub period_ms: u64,
    /// A frame is on time if it is complete at the sink within this time of its capture, ms.
    pub deadline_ms: u64,
}

/// What an uploader announces before its frames.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Hello {
    /// [`PROTOCOL_VERSION`].
    pub version: u32,
    /// The upload.
    #[serde(flatten)]
    pub spec: UploadSpec,
    /// Frames in the session.
    pub frames: u64,
    /// Frame `n` is captured at `start_unix_us + n · period_ms`, µs since the Unix epoch.
    pub start_unix_us: u64,
    /// QoS the model expects at K.
    pub expected_qos: f64,
}

impl Hello {
    /// Checks what a sink must rely on.
    pub fn validate(&self) -> Result<(), IotError> {
        let invalid = |field, value: String, accepted| {
            Err(IotError::Invalid {
                field,
                value,
                accepted,
            })
        };
        if self.version != PROTOCOL_VERSION {
            return invalid("protocol version", self.version.to_string(), "1");
        }
        let spec = &self.spec;
        check_name("gateway", &spec.gateway)?;
        check_name("analytic", &spec.analytic)?;
        if spec.period_ms == 0 || spec.deadline_ms == 0 {
            return invalid(
                "period/deadline",
                format!("{} ms / {} ms", spec.period_ms, spec.deadline_ms),
                "at least 1 ms each",
            );
        }
        if self.frames == 0 || self.frames > MAX_FRAMES {
            return invalid(
                "frames",
                self.frames.to_string(),
                "1 to 10000000 frames per session",
            );
        }
        if spec.frame_bytes > MAX_FRAME_BYTES {
            return invalid(
                "frame size",
                format!("{} bytes", spec.frame_bytes),
                "at most 64 MiB per frame",
            );
        }
        if !(0.0..=1.0).contains(&self.expected_qos) {
            return invalid(
                "expected QoS",
                self.expected_qos.to_string(),
                "a value in [0, 1]",
            );
        }
        Ok(())
    }

    /// The scheduled capture time of frame `seq`, µs since the Unix epoch.
    pub fn capture_us(&self, seq: u64) -> u64 {
        self.start_unix_us + seq * self.spec.period_ms * 1000
    }
}

/// A frame header.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FrameHeader {
    /// Sequence number, from 0.
    pub seq: u64,
    /// Capture time, µs since the Unix epoch.
    pub capture_us: u64,
    /// Payload bytes that follow.
    pub len: u32,
}

impl FrameHeader {
    /// The header's bytes.
    pub fn encode(&self) -> [u8; HEADER_BYTES] {
        let mut out = [0u8; HEADER_BYTES];
        out[0..8].copy_from_slice(&self.seq.to_be_bytes());
        out[8..16].copy_from_slice(&self.capture_us.to_be_bytes());
        out[16..20].copy_from_slice(&self.len.to_be_bytes());
        out
    }

    /// Reads a header from its bytes.
    pub fn decode(bytes: &[u8; HEADER_BYTES]) -> FrameHeader {
        let u64_at = |at: usize| u64::from_be_bytes(bytes[at..at + 8].try_into().expect("8 bytes"));
        FrameHeader {
            seq: u64_at(0),
            capture_us: u64_at(8),
            len: u32::from_be_bytes(bytes[16..20].try_into().expect("4 bytes")),
        }
    }
}

/// Checks a gateway or analytic name: it becomes an MQTT topic level.
pub fn check_name(field: &'static str, name: &str) -> Result<(), IotError> {
    let ok = !name.is_empty()
        && name.len() <= 64
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"._-".contains(&b));
    if ok {
        Ok(())
    } else {
        Err(IotError::Invalid {
            field,
            value: format!("'{name}'"),
            accepted: "1 to 64 letters, digits, '.', '_' or '-' (it is an MQTT topic level)",
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn headers_round_trip_big_endian() {
        let header = FrameHeader {
            seq: 3,
            capture_us: 0x0102_0304_0506_0708,
            len: 7244,
        };
        let bytes = header.encode();
        assert_eq!(&bytes[0..8], &[0, 0, 0, 0, 0, 0, 0, 3]);
        assert_eq!(bytes[8], 1);
        assert_eq!(&bytes[16..20], &7244u32.to_be_bytes());
        assert_eq!(FrameHeader::decode(&bytes), header);
    }

    #[test]
    fn names_must_be_topic_levels() {
        assert!(check_name("gateway", "gw-1.lab_2").is_ok());
        for bad in ["", "a/b", "cam+", "#", "with space"] {
            let err = check_name("analytic", bad).unwrap_err().to_string();
            assert!(
                err.contains("analytic") && err.contains(&format!("'{bad}'")),
                "{err}"
            );
        }
    }
}
