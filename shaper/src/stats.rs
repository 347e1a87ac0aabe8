//! Per-class statistics read back from the kernel, and rates from two reads.

use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::plan::Direction;
use crate::state::IfaceRef;
use crate::wire::Counters;

/// The counters of one class, with the rates the kernel has for it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ClassStats {
    /// The class name (`default` for the default class).
    pub name: String,
    /// The class handle, e.g. `7100:3`.
    pub classid: String,
    /// The guaranteed rate in the kernel.
    pub rate_bps: u64,
    /// The ceiling in the kernel.
    pub ceil_bps: u64,
    /// Bytes and packets sent (frames with their link-layer header), drops, overlimits, and
    /// what is queued now; in JSON, fields of the class itself.
    #[serde(flatten)]
    pub counters: Counters,
    /// Bits per second sent between two reads (`None` from a single read).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub measured_bps: Option<u64>,
    /// Packets per second sent between two reads.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub measured_pps: Option<u64>,
}

/// The classes of one direction.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DirectionStats {
    /// Which direction.
    pub direction: Direction,
    /// The device the classes live on (the interface, or its IFB for ingress).
    pub device: String,
    /// The classes: default first, then the analytics in plan order.
    pub classes: Vec<ClassStats>,
}

/// Statistics of one shaped interface.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct InterfaceStats {
    /// The interface.
    pub iface: IfaceRef,
    /// Milliseconds between the two reads the rates come from (0 for a single read).
    pub interval_ms: u64,
    /// Each shaped direction.
    pub directions: Vec<DirectionStats>,
}

impl InterfaceStats {
    /// Fills in the measured rates from an `earlier` read taken `elapsed` before this one.
    /// Classes absent from the earlier read (or whose counters went back) get no rate.
    pub fn with_rates_since(
        mut self,
        earlier: &InterfaceStats,
        elapsed: Duration,
    ) -> InterfaceStats {
        let secs = elapsed.as_secs_f64();
        self.interval_ms = elapsed.as_millis() as u64;
        for direction in &mut self.directions {
            let before = earlier
                .directions
                .iter()
                .find(|d| d.direction == direction.direction);
            for class in &mut direction.classes {
                let Some(old) =
                    before.and_then(|d| d.classes.iter().find(|c| c.classid == class.classid))
                else {
                    continue;
                };
                let (now, then) = (&class.counters, &old.counters);
                if secs > 0.0 && now.bytes >= then.bytes && now.packets >= then.packets {
                    class.measured_bps =
                        Some(((now.bytes - then.bytes) as f64 * 8.0 / secs).round() as u64);
                    class.measured_pps =
                        Some(((now.packets - then.packets) as f64 / secs).round() as u64);
                }
            }
        }
        self
    }

    /// The class `name` of `direction`.
    pub fn class(&self, direction: Direction, name: &str) -> Option<&ClassStats> {
        self.directions
            .iter()
            .find(|d| d.direction == direction)?
            .classes
            .iter()
            .find(|c| c.name == name)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn stats(bytes: u64, packets: u64) -> InterfaceStats {
        InterfaceStats {
            iface: IfaceRef::new(None, "eth0"),
            interval_ms: 0,
            directions: vec![DirectionStats {
                direction: Direction::Egress,
                device: "eth0".into(),
                classes: vec![ClassStats {
                    name: "cam".into(),
                    classid: "7100:3".into(),
                    rate_bps: 2_000_000,
                    ceil_bps: 2_000_000,
                    counters: Counters {
                        bytes,
                        packets,
                        ..Counters::default()
                    },
                    measured_bps: None,
                    measured_pps: None,
                }],
            }],
        }
    }

    #[test]
    fn counters_are_fields_of_the_class_in_json() {
        let json = serde_json::to_value(&stats(10, 1).directions[0].classes[0]).unwrap();
        assert_eq!(json["bytes"], 10);
        assert_eq!(json["backlog_bytes"], 0);
        let back: ClassStats = serde_json::from_value(json).unwrap();
        assert_eq!(back, stats(10, 1).directions[0].classes[0]);
    }

    #[test]
    fn rates_come_from_the_difference_of_two_reads() {
        let later = stats(1_250_000, 1000).with_rates_since(&stats(0, 0), Duration::from_secs(5));
        let cam = later.class(Direction::Egress, "cam").unwrap();
        assert_eq!(cam.measured_bps, Some(2_000_000));
        assert_eq!(cam.measured_pps, Some(200));
        assert_eq!(later.interval_ms, 5000);
        let reset = stats(10, 1).with_rates_since(&stats(1000, 5), Duration::from_secs(1));
        assert_eq!(
            reset.class(Direction::Egress, "cam").unwrap().measured_bps,
            None
        );
    }
}
