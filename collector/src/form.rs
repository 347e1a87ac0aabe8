//! A campaign spec as people type it — command-line options or web form fields — parsed into
//! a [`CampaignSpec`] with every field's problem collected, each named by the field the person
//! typed into (`duration`, not `duration_s`), so a form can show all messages at once.

use serde::{Deserialize, Serialize};

use qoelab_units::{parse_duration, parse_limits, parse_percent};

use crate::campaign::{CampaignSpec, IotAnalytic, Workload};
use crate::error::Error;

/// The text of each field of a campaign, as typed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct SpecText {
    /// Campaign name.
    pub name: String,
    /// Number of sessions, e.g. `100`.
    pub sessions: String,
    /// Measured length of each session, e.g. `60s` or `2min`.
    pub duration: String,
    /// Warm-up before measurement, e.g. `5s`; empty for none.
    pub warmup: String,
    /// Bandwidth limits, e.g. `0.75, 1.25, 2, 3, 5 mbit, unlimited`.
    pub limits: String,
    /// Added delays, e.g. `0ms, 50ms`; empty for none.
    pub delays: String,
    /// Packet losses, e.g. `0%, 1%`; empty for none.
    pub losses: String,
    /// `video`, `iot` or `external`.
    pub workload: String,
    /// ABR algorithm of the video workload: `buffer`, `rate` or `mpc`.
    pub abr: String,
    /// IoT analytics as `KIND:KNOB`, comma separated.
    pub analytics: String,
    /// Seed of the session order; empty for 1.
    pub seed: String,
    /// The gateway the sessions run on; empty for the server's first.
    pub gateway: String,
}

impl Default for SpecText {
    /// The defaults a new form starts with.
    fn default() -> SpecText {
        SpecText {
            name: String::new(),
            sessions: String::new(),
            duration: "60s".into(),
            warmup: "0s".into(),
            limits: String::new(),
            delays: String::new(),
            losses: String::new(),
            workload: "video".into(),
            abr: "buffer".into(),
            analytics: String::new(),
            seed: "1".into(),
            gateway: String::new(),
        }
    }
}

/// The typed field a spec field comes from, for messages.
fn typed_field(spec_field: &str) -> &str {
    match spec_field {
        "duration_s" => "duration",
        "warmup_s" => "warmup",
        "delays_ms" => "delays",
        "workload.abr" => "abr",
        f if f.starts_with("workload.analytics") => "analytics",
        f => f,
    }
}

fn items(text: &str) -> impl Iterator<Item = &str> {
    text.split(',').map(str::trim).filter(|s| !s.is_empty())
}

/// Collects the problems of one field while parsing the others.
#[derive(Default)]
struct Problems(Vec<Error>);

impl Problems {
    fn check<T>(&mut self, parsed: Result<T, Error>) -> Option<T> {
        parsed.map_err(|e| self.0.push(e)).ok()
    }
}

impl SpecText {
    /// The spec, or every problem found (at least one), each an [`Error::Invalid`] whose field
    /// is one of this struct's field names.
    pub fn parse(&self) -> Result<CampaignSpec, Vec<Error>> {
        let mut p = Problems::default();
        let sessions =
            p.check(self.sessions.trim().parse::<u32>().map_err(|_| {
                Error::invalid("sessions", &self.sessions, "a whole number, e.g. 100")
            }));
        let seconds = |field: &str, text: &str, empty_ok: bool| {
            if empty_ok && text.trim().is_empty() {
                return Ok(0.0);
            }
            parse_duration(text.trim())
                .map(|d| d.as_secs_f64())
                .map_err(|e| Error::invalid(field, text, e.hint))
        };
        let duration_s = p.check(seconds("duration", &self.duration, false));
        let warmup_s = p.check(seconds("warmup", &self.warmup, true));
        let limits = p.check(
            parse_limits(&self.limits)
                .map_err(|e| Error::invalid("limits", &self.limits, e.to_string())),
        );
        let delays_ms = p.check(
            items(&self.delays)
                .map(|d| {
                    parse_duration(d)
                        .map(|d| d.as_secs_f64() * 1000.0)
                        .map_err(|e| Error::invalid("delays", d, e.hint))
                })
                .collect(),
        );
        let losses = p.check(
            items(&self.losses)
                .map(|l| parse_percent(l).map_err(|e| Error::invalid("losses", l, e.hint)))
                .collect(),
        );
        let workload = p.check(self.workload());
        let seed = p.check(match self.seed.trim() {
            "" => Ok(1),
            s => s
                .parse::<u64>()
                .map_err(|_| Error::invalid("seed", s, "a whole number ≥ 0")),
        });
        let (
            Some(sessions),
            Some(duration_s),
            Some(warmup_s),
            Some(limits),
            Some(delays_ms),
            Some(losses),
            Some(workload),
            Some(seed),
        ) = (
            sessions, duration_s, warmup_s, limits, delays_ms, losses, workload, seed,
        )
        else {
            return Err(p.0);
        };
        let spec = CampaignSpec {
            name: self.name.clone(),
            sessions,
            duration_s,
            warmup_s,
            limits,
            delays_ms,
            losses,
            workload,
            seed,
            gateway: Some(self.gateway.trim())
                .filter(|g| !g.is_empty())
                .map(str::to_string),
        };
        let problems: Vec<Error> = spec
            .problems()
            .into_iter()
            .map(|e| match e {
                Error::Invalid {
                    field,
                    value,
                    accepted,
                } => Error::Invalid {
                    field: typed_field(&field).to_string(),
                    value,
                    accepted,
                },
                other => other,
            })
            .collect();
        if problems.is_empty() {
            Ok(spec)
        } else {
            Err(problems)
        }
    }

    fn workload(&self) -> Result<Workload, Error> {
        let abr = match self.abr.trim() {
            "" => "buffer",
            abr => abr,
        };
        match self.workload.trim() {
            "video" | "" => Ok(Workload::Video { abr: abr.into() }),
            "external" => Ok(Workload::External),
            "iot" => Ok(Workload::Iot {
                analytics: items(&self.analytics)
                    .map(|item| {
                        let (kind, knob) = item.split_once(':').ok_or_else(|| {
                            Error::invalid(
                                "analytics",
                                item,
                                "KIND:KNOB, e.g. object-detection:0.5",
                            )
                        })?;
                        let knob = knob.trim().parse().map_err(|_| {
                            Error::invalid("analytics", item, "a knob number after ':'")
                        })?;
                        Ok(IotAnalytic {
                            kind: kind.trim().to_string(),
                            knob,
                        })
                    })
                    .collect::<Result<_, Error>>()?,
            }),
            other => Err(Error::invalid("workload", other, "video, iot or external")),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn valid() -> SpecText {
        SpecText {
            name: "ladder".into(),
            sessions: "10".into(),
            limits: "0.75, 1.25, 2, 3, 5 mbit, unlimited".into(),
            ..SpecText::default()
        }
    }

    fn fields(errors: &[Error]) -> Vec<String> {
        errors
            .iter()
            .map(|e| match e {
                Error::Invalid { field, .. } => field.clone(),
                other => panic!("not a field error: {other}"),
            })
            .collect()
    }

    #[test]
    fn typed_text_becomes_a_spec() {
        let mut text = valid();
        text.delays = "0ms, 50ms".into();
        text.losses = "0%, 1%".into();
        text.warmup = "5s".into();
        let spec = text.parse().unwrap();
        assert_eq!(spec.sessions, 10);
        assert_eq!(spec.duration_s, 60.0);
        assert_eq!(spec.warmup_s, 5.0);
        assert_eq!(spec.limits.len(), 6);
        assert_eq!(spec.delays_ms, vec![0.0, 50.0]);
        assert_eq!(spec.losses, vec![0.0, 0.01]);
        assert_eq!(spec.seed, 1);
        assert_eq!(spec.gateway, None, "no gateway typed: the server's first");
        text.gateway = " gw-2 ".into();
        assert_eq!(text.parse().unwrap().gateway.as_deref(), Some("gw-2"));
    }

    #[test]
    fn every_bad_field_is_reported_under_its_typed_name() {
        let text = SpecText {
            name: " ".into(),
            sessions: "ten".into(),
            duration: "60".into(),
            limits: "5 furlongs".into(),
            losses: "2".into(),
            ..valid()
        };
        let errors = text.parse().unwrap_err();
        assert_eq!(
            fields(&errors),
            ["sessions", "duration", "limits", "losses"],
            "parse errors come first, all of them"
        );
        // Once they parse, the range checks speak with the typed names too.
        let text = SpecText {
            name: " ".into(),
            duration: "48h".into(),
            abr: "bola".into(),
            ..valid()
        };
        let errors = text.parse().unwrap_err();
        assert_eq!(fields(&errors), ["name", "duration", "abr"]);
        let text = SpecText {
            gateway: "Gw 1".into(),
            ..valid()
        };
        assert_eq!(fields(&text.parse().unwrap_err()), ["gateway"]);
        assert!(errors[1].to_string().contains("172800"), "{}", errors[1]);
    }

    #[test]
    fn iot_analytics_are_kind_and_knob() {
        let text = SpecText {
            workload: "iot".into(),
            analytics: "object-detection:1, audio:0.5".into(),
            ..valid()
        };
        match text.parse().unwrap().workload {
            Workload::Iot { analytics } => assert_eq!(analytics[1].knob, 0.5),
            other => panic!("{other:?}"),
        }
        let text = SpecText {
            workload: "iot".into(),
            analytics: "audio:2".into(),
            ..valid()
        };
        assert_eq!(fields(&text.parse().unwrap_err()), ["analytics"]);
    }
}
