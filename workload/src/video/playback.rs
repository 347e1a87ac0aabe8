//! The playback buffer as a clocked state machine: media arrives segment by segment and drains
//! in real time while playing.
//!
//! - Playback starts once the buffer holds the startup threshold; the time until then is the
//!   startup delay.
//! - If the buffer runs dry while playing, playback stalls; it resumes as soon as the next
//!   segment has arrived (the rule of Pensieve's simulator). Stalls are only counted after
//!   startup.
//! - The player waits before requesting a segment that would not fit under the cap.
//!
//! Times are seconds since the session started, given by the caller, so the rules can be tested
//! without a clock.

use serde::{Deserialize, Serialize};

/// One interruption of playback after startup.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Stall {
    /// When it began, seconds since the session started.
    pub start_s: f64,
    /// How long it lasted, seconds.
    pub duration_s: f64,
}

#[derive(Debug, Clone, Copy, PartialEq)]
enum State {
    /// Not started yet.
    Starting,
    Playing,
    /// Stalled since this time.
    Stalled(f64),
}

/// The buffer of one session.
#[derive(Debug, Clone)]
pub struct Playback {
    startup_s: f64,
    cap_s: f64,
    buffer_s: f64,
    state: State,
    /// Time of the last update.
    now_s: f64,
    startup_delay_s: Option<f64>,
    stalls: Vec<Stall>,
}

impl Playback {
    /// A buffer that starts playing at `startup_s` of media and holds at most `cap_s`.
    pub fn new(startup_s: f64, cap_s: f64) -> Playback {
        Playback {
            startup_s,
            cap_s,
            buffer_s: 0.0,
            state: State::Starting,
            now_s: 0.0,
            startup_delay_s: None,
            stalls: Vec::new(),
        }
    }

    /// Lets the clock run to `now_s`: playing drains the buffer, an empty buffer stalls.
    pub fn advance(&mut self, now_s: f64) {
        let elapsed = (now_s - self.now_s).max(0.0);
        if self.state == State::Playing {
            if self.buffer_s >= elapsed {
                self.buffer_s -= elapsed;
            } else {
                self.state = State::Stalled(self.now_s + self.buffer_s);
                self.buffer_s = 0.0;
            }
        }
        self.now_s = self.now_s.max(now_s);
    }

    /// A segment of `media_s` arrived at `now_s`; returns the stall that this arrival ended,
    /// if any.
    pub fn add(&mut self, now_s: f64, media_s: f64) -> Option<Stall> {
        self.advance(now_s);
        self.buffer_s += media_s;
        match self.state {
            State::Starting if self.buffer_s >= self.startup_s - 1e-9 => {
                self.state = State::Playing;
                self.startup_delay_s = Some(now_s);
                None
            }
            State::Stalled(since) => {
                self.state = State::Playing;
                let stall = Stall {
                    start_s: since,
                    duration_s: self.now_s - since,
                };
                self.stalls.push(stall);
                Some(stall)
            }
            _ => None,
        }
    }

    /// How long to wait before a segment of `media_s` fits under the cap.
    pub fn wait_for_room_s(&self, media_s: f64) -> f64 {
        match self.state {
            State::Playing => (self.buffer_s + media_s - self.cap_s).max(0.0),
            _ => 0.0,
        }
    }

    /// Media buffered, in seconds.
    pub fn buffer_s(&self) -> f64 {
        self.buffer_s
    }

    /// When playback started, if it has.
    pub fn startup_delay_s(&self) -> Option<f64> {
        self.startup_delay_s
    }

    /// The stalls so far.
    pub fn stalls(&self) -> &[Stall] {
        &self.stalls
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn startup_waits_for_the_threshold() {
        let mut p = Playback::new(8.0, 60.0);
        assert_eq!(p.add(1.0, 4.0), None);
        assert_eq!(p.startup_delay_s(), None);
        p.advance(5.0);
        assert_eq!(p.buffer_s(), 4.0, "no drain before startup");
        p.add(5.0, 4.0);
        assert_eq!(p.startup_delay_s(), Some(5.0));
        p.advance(7.0);
        assert_eq!(p.buffer_s(), 6.0);
        assert!(p.stalls().is_empty());
    }

    #[test]
    fn an_empty_buffer_stalls_until_the_next_segment() {
        let mut p = Playback::new(4.0, 60.0);
        p.add(1.0, 4.0); // playing from 1 s with 4 s of media: dry at 5 s
        p.advance(6.0);
        assert_eq!(p.buffer_s(), 0.0);
        let stall = p.add(7.5, 4.0).unwrap();
        assert_eq!(
            stall,
            Stall {
                start_s: 5.0,
                duration_s: 2.5
            }
        );
        p.advance(9.5);
        assert_eq!(p.buffer_s(), 2.0);
        assert_eq!(p.stalls().len(), 1);
    }

    #[test]
    fn the_cap_makes_the_player_wait() {
        let mut p = Playback::new(4.0, 10.0);
        p.add(0.0, 4.0);
        p.add(0.0, 4.0);
        assert_eq!(p.wait_for_room_s(4.0), 2.0);
        p.advance(2.0);
        assert_eq!(p.wait_for_room_s(4.0), 0.0);
    }
}
