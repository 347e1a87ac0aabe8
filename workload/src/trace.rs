//! Bandwidth traces: a rate that changes over a session.
//!
//! The text format has one step per line, `time_s rate_mbps` (seconds since the session
//! started, Mbit/s with M = 10⁶, separated by spaces or tabs), times strictly increasing from 0
//! or later; blank lines and lines starting with `#` are ignored. A step's rate holds until the
//! next step, and the last one until the session ends. A rate of 0 means the link is down; the
//! [`RateSetter`] decides how to enforce that.
//!
//! [`play`] walks a trace in real time and hands each new rate to a [`RateSetter`] (the agent's
//! shaper in production, a recording fake in tests). [`Trace::generate`] makes seeded synthetic
//! traces of the [`Shape`]s steady, step, random walk and on/off.

use std::future::Future;
use std::time::Duration;

use crate::random::Seeded;

/// The accepted line format, for error messages.
pub const LINE_FORM: &str = "'time_s rate_mbps', e.g. '4.5 2.25'";

/// One step of a trace.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct TraceStep {
    /// When the rate takes effect, seconds since the session started.
    pub time_s: f64,
    /// The rate, bit/s.
    pub rate_bps: u64,
}

/// A bandwidth trace: steps with strictly increasing times.
#[derive(Debug, Clone, PartialEq)]
pub struct Trace {
    steps: Vec<TraceStep>,
}

/// A synthetic trace's shape.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Shape {
    /// One rate throughout.
    Steady {
        /// The rate, bit/s.
        rate_bps: u64,
    },
    /// One rate, then another from `at_s` on.
    Step {
        /// The first rate, bit/s.
        from_bps: u64,
        /// The second rate, bit/s.
        to_bps: u64,
        /// When the second rate starts, seconds.
        at_s: f64,
    },
    /// Every interval the rate is multiplied by e^(σ·N(0,1)) and kept within [min, max].
    RandomWalk {
        /// The first rate, bit/s.
        start_bps: u64,
        /// The lowest rate, bit/s.
        min_bps: u64,
        /// The highest rate, bit/s.
        max_bps: u64,
        /// σ of the log-rate change per interval.
        sigma: f64,
    },
    /// Alternating on and off periods of exponentially distributed lengths, starting on.
    OnOff {
        /// The rate while on, bit/s.
        on_bps: u64,
        /// The rate while off, bit/s (0 = link down).
        off_bps: u64,
        /// Mean length of an on period, seconds.
        mean_on_s: f64,
        /// Mean length of an off period, seconds.
        mean_off_s: f64,
    },
}

/// A trace that cannot be read, made or played.
#[derive(Debug, thiserror::Error)]
pub enum TraceError {
    /// A line of a trace file is malformed.
    #[error("trace line {line} '{text}': {reason}; lines are {LINE_FORM}")]
    Line {
        /// Line number, from 1.
        line: usize,
        /// The line as written.
        text: String,
        /// What is wrong with it.
        reason: String,
    },
    /// The trace has no step.
    #[error("the trace has no step: give at least one line {LINE_FORM}")]
    Empty,
    /// A generator setting is out of range.
    #[error("{field} {value} is not accepted: use {accepted}")]
    Invalid {
        /// The setting.
        field: &'static str,
        /// The value given.
        value: String,
        /// What is accepted.
        accepted: &'static str,
    },
    /// The rate setter failed.
    #[error("setting the rate to {rate_bps} bit/s at {time_s} s of the trace failed: {source}")]
    Setter {
        /// The step's time.
        time_s: f64,
        /// The rate that was being set.
        rate_bps: u64,
        /// The setter's error.
        source: Box<dyn std::error::Error + Send + Sync>,
    },
}

impl Trace {
    /// A trace of these steps (times strictly increasing, from 0 or later).
    pub fn new(steps: Vec<TraceStep>) -> Result<Trace, TraceError> {
        if steps.is_empty() {
            return Err(TraceError::Empty);
        }
        let ordered = steps.windows(2).all(|w| w[0].time_s < w[1].time_s);
        let valid = |t: f64| t.is_finite() && t >= 0.0;
        if !ordered || !steps.iter().all(|s| valid(s.time_s)) {
            return Err(TraceError::Invalid {
                field: "trace steps",
                value: format!("{} steps", steps.len()),
                accepted: "finite times from 0 s on, strictly increasing",
            });
        }
        Ok(Trace { steps })
    }

    /// Reads the text format (see the module documentation).
    pub fn parse(text: &str) -> Result<Trace, TraceError> {
        let mut steps: Vec<TraceStep> = Vec::new();
        for (i, raw) in text.lines().enumerate() {
            let line = raw.trim();
            if line.is_empty() || line.starts_with('#') {
                continue;
            }
            let bad = |reason: String| TraceError::Line {
                line: i + 1,
                text: line.to_string(),
                reason,
            };
            let fields: Vec<&str> = line.split_whitespace().collect();
            let [time, rate] = fields[..] else {
                return Err(bad(format!("expected 2 fields, found {}", fields.len())));
            };
            let time_s: f64 = time
                .parse()
                .ok()
                .filter(|t: &f64| t.is_finite() && *t >= 0.0)
                .ok_or_else(|| bad(format!("the time '{time}' is not a number of seconds ≥ 0")))?;
            let rate_mbps: f64 = rate
                .parse()
                .ok()
                .filter(|r: &f64| r.is_finite() && *r >= 0.0)
                .ok_or_else(|| bad(format!("the rate '{rate}' is not a number of Mbit/s ≥ 0")))?;
            if let Some(prev) = steps.last()
                && time_s <= prev.time_s
            {
                return Err(bad(format!(
                    "the time {time_s} s is not after the previous step's {} s",
                    prev.time_s
                )));
            }
            steps.push(TraceStep {
                time_s,
                rate_bps: (rate_mbps * 1e6).round() as u64,
            });
        }
        Trace::new(steps)
    }

    /// The trace in the text format, with a header comment.
    pub fn to_text(&self) -> String {
        let mut out = String::from("# time_s rate_mbps\n");
        for step in &self.steps {
            out.push_str(&format!(
                "{} {}\n",
                round3(step.time_s),
                step.rate_bps as f64 / 1e6
            ));
        }
        out
    }

    /// The steps.
    pub fn steps(&self) -> &[TraceStep] {
        &self.steps
    }

    /// The rate in effect at `time_s` (the first step's before it starts).
    pub fn rate_at(&self, time_s: f64) -> u64 {
        let i = self.steps.partition_point(|s| s.time_s <= time_s);
        self.steps[i.saturating_sub(1)].rate_bps
    }

    /// A seeded synthetic trace of `shape` over [0, `duration_s`), changing at most every
    /// `interval_s` (the random walk changes exactly then).
    pub fn generate(
        shape: &Shape,
        duration_s: f64,
        interval_s: f64,
        seed: u64,
    ) -> Result<Trace, TraceError> {
        check_positive("duration", duration_s)?;
        check_positive("interval", interval_s)?;
        let mut rng = Seeded::new(seed);
        let steps: Vec<TraceStep> = match *shape {
            Shape::Steady { rate_bps } => vec![step(0.0, rate_bps)],
            Shape::Step {
                from_bps,
                to_bps,
                at_s,
            } => {
                if !(at_s > 0.0 && at_s < duration_s) {
                    return Err(TraceError::Invalid {
                        field: "step time",
                        value: format!("{at_s} s"),
                        accepted: "a time after 0 s and before the trace's end",
                    });
                }
                vec![step(0.0, from_bps), step(at_s, to_bps)]
            }
            Shape::RandomWalk {
                start_bps,
                min_bps,
                max_bps,
                sigma,
            } => {
                if !(0 < min_bps && min_bps <= start_bps && start_bps <= max_bps) {
                    return Err(TraceError::Invalid {
                        field: "random walk rates",
                        value: format!("start {start_bps}, min {min_bps}, max {max_bps} bit/s"),
                        accepted: "0 < min ≤ start ≤ max",
                    });
                }
                check_positive("random walk sigma", sigma)?;
                let mut rate = start_bps as f64;
                let count = (duration_s / interval_s).ceil() as usize;
                (0..count)
                    .map(|i| {
                        if i > 0 {
                            rate = (rate * (sigma * rng.normal()).exp())
                                .clamp(min_bps as f64, max_bps as f64);
                        }
                        // Whole kbit/s: the walk's precision is not worth more digits.
                        step(i as f64 * interval_s, (rate / 1e3).round() as u64 * 1000)
                    })
                    .collect()
            }
            Shape::OnOff {
                on_bps,
                off_bps,
                mean_on_s,
                mean_off_s,
            } => {
                check_positive("mean on time", mean_on_s)?;
                check_positive("mean off time", mean_off_s)?;
                let mut steps = Vec::new();
                let (mut time, mut on) = (0.0, true);
                while time < duration_s {
                    steps.push(step(time, if on { on_bps } else { off_bps }));
                    let mean = if on { mean_on_s } else { mean_off_s };
                    // Whole intervals, at least one.
                    time += (rng.exponential(mean) / interval_s).ceil().max(1.0) * interval_s;
                    on = !on;
                }
                steps
            }
        };
        Trace::new(steps)
    }
}

/// Changes a link's rate; what [`play`] drives.
///
/// In production the agent's client implements it (changing the shaper's class in place); in
/// tests a fake records the calls.
pub trait RateSetter {
    /// The setter's error.
    type Error: std::error::Error + Send + Sync + 'static;

    /// Sets the rate to `rate_bps` bit/s (0 = link down).
    fn set_rate(&mut self, rate_bps: u64) -> impl Future<Output = Result<(), Self::Error>> + Send;
}

/// Plays `trace` in real time from now: at each step's time, hands its rate to `setter`
/// (consecutive equal rates are set once). Returns after the last step; drop the future to stop
/// early.
pub async fn play<S: RateSetter>(trace: &Trace, setter: &mut S) -> Result<(), TraceError> {
    let start = tokio::time::Instant::now();
    let mut current = None;
    for step in &trace.steps {
        if current == Some(step.rate_bps) {
            continue;
        }
        tokio::time::sleep_until(start + Duration::from_secs_f64(step.time_s)).await;
        setter
            .set_rate(step.rate_bps)
            .await
            .map_err(|e| TraceError::Setter {
                time_s: step.time_s,
                rate_bps: step.rate_bps,
                source: Box::new(e),
            })?;
        current = Some(step.rate_bps);
    }
    Ok(())
}

fn step(time_s: f64, rate_bps: u64) -> TraceStep {
    TraceStep { time_s, rate_bps }
}

fn round3(x: f64) -> f64 {
    (x * 1000.0).round() / 1000.0
}

fn check_positive(field: &'static str, value: f64) -> Result<(), TraceError> {
    if value > 0.0 && value.is_finite() {
        Ok(())
    } else {
        Err(TraceError::Invalid {
            field,
            value: value.to_string(),
            accepted: "a number greater than 0",
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn traces_parse_with_comments_and_name_bad_lines() {
        let trace = Trace::parse("# cellular\n0 5\n\n2.5\t0.75\n10 0\n").unwrap();
        assert_eq!(
            trace.steps(),
            &[step(0.0, 5_000_000), step(2.5, 750_000), step(10.0, 0)]
        );
        assert_eq!(trace.rate_at(3.0), 750_000);
        assert_eq!(trace.rate_at(100.0), 0);
        assert_eq!(Trace::parse(&trace.to_text()).unwrap(), trace);
        for (text, line, needle) in [
            ("0 5\n1 fast\n", 2, "'fast'"),
            ("0 5\n\n# x\n1 2 3\n", 4, "2 fields, found 3"),
            ("0 5\n2 1\n1 1\n", 3, "not after"),
            ("-1 5\n", 1, "'-1'"),
            ("0 -5\n", 1, "'-5'"),
        ] {
            let err = Trace::parse(text).unwrap_err().to_string();
            assert!(
                err.contains(&format!("line {line} "))
                    && err.contains(needle)
                    && err.contains(LINE_FORM),
                "{err}"
            );
        }
        assert!(matches!(
            Trace::parse("# nothing\n"),
            Err(TraceError::Empty)
        ));
    }

    #[test]
    fn generated_shapes_are_seeded_and_within_bounds() {
        let walk = Shape::RandomWalk {
            start_bps: 3_000_000,
            min_bps: 1_000_000,
            max_bps: 6_000_000,
            sigma: 0.3,
        };
        let a = Trace::generate(&walk, 60.0, 1.0, 42).unwrap();
        assert_eq!(a, Trace::generate(&walk, 60.0, 1.0, 42).unwrap());
        assert_ne!(a, Trace::generate(&walk, 60.0, 1.0, 43).unwrap());
        assert_eq!(a.steps().len(), 60);
        assert!(
            a.steps()
                .iter()
                .all(|s| (1_000_000..=6_000_000).contains(&s.rate_bps))
        );
        let distinct: std::collections::HashSet<_> = a.steps().iter().map(|s| s.rate_bps).collect();
        assert!(distinct.len() > 30, "the walk moves");

        let onoff = Shape::OnOff {
            on_bps: 5_000_000,
            off_bps: 0,
            mean_on_s: 5.0,
            mean_off_s: 2.0,
        };
        let t = Trace::generate(&onoff, 120.0, 0.5, 1).unwrap();
        assert!(t.steps().len() >= 6);
        for (i, s) in t.steps().iter().enumerate() {
            assert_eq!(s.rate_bps, if i % 2 == 0 { 5_000_000 } else { 0 });
            assert_eq!(s.time_s % 0.5, 0.0);
        }

        let stepped = Shape::Step {
            from_bps: 10_000_000,
            to_bps: 1_000_000,
            at_s: 20.0,
        };
        let t = Trace::generate(&stepped, 40.0, 1.0, 0).unwrap();
        assert_eq!(t.steps(), &[step(0.0, 10_000_000), step(20.0, 1_000_000)]);
        let steady = Trace::generate(&Shape::Steady { rate_bps: 7 }, 1.0, 1.0, 0).unwrap();
        assert_eq!(steady.steps(), &[step(0.0, 7)]);

        let late = Shape::Step {
            from_bps: 1,
            to_bps: 2,
            at_s: 50.0,
        };
        let err = Trace::generate(&late, 40.0, 1.0, 0)
            .unwrap_err()
            .to_string();
        assert!(err.contains("step time 50 s"), "{err}");
        let bad_walk = Shape::RandomWalk {
            start_bps: 1,
            min_bps: 2,
            max_bps: 3,
            sigma: 0.1,
        };
        assert!(Trace::generate(&bad_walk, 10.0, 1.0, 0).is_err());
        assert!(
            Trace::generate(&walk, 10.0, 0.0, 0)
                .unwrap_err()
                .to_string()
                .contains("interval")
        );
    }

    /// Records each call with the (paused, virtual) time it came at.
    struct Recorder {
        start: tokio::time::Instant,
        calls: Vec<(Duration, u64)>,
        fail_at: Option<u64>,
    }

    #[derive(Debug, thiserror::Error)]
    #[error("agent said no")]
    struct No;

    impl Recorder {
        fn new(fail_at: Option<u64>) -> Recorder {
            Recorder {
                start: tokio::time::Instant::now(),
                calls: vec![],
                fail_at,
            }
        }
    }

    impl RateSetter for Recorder {
        type Error = No;

        async fn set_rate(&mut self, rate_bps: u64) -> Result<(), No> {
            if self.fail_at == Some(rate_bps) {
                return Err(No);
            }
            self.calls.push((self.start.elapsed(), rate_bps));
            Ok(())
        }
    }

    #[tokio::test(start_paused = true)]
    async fn the_player_sets_each_new_rate_at_its_time() {
        let trace = Trace::parse("0 10\n1.5 10\n2 1\n4.25 0\n").unwrap();
        let mut rec = Recorder::new(None);
        play(&trace, &mut rec).await.unwrap();
        let ms = |ms| Duration::from_millis(ms);
        assert_eq!(
            rec.calls,
            vec![(ms(0), 10_000_000), (ms(2000), 1_000_000), (ms(4250), 0)]
        );
        let mut failing = Recorder::new(Some(1_000_000));
        let err = play(&trace, &mut failing).await.unwrap_err().to_string();
        assert!(
            err.contains("1000000 bit/s at 2 s") && err.contains("agent said no"),
            "{err}"
        );
    }
}
