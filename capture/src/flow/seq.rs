//! TCP sequence-space bookkeeping of one direction, in bounded memory: which payload bytes are
//! new, retransmitted or fill a hole (out of sequence), and RTT samples by data→ACK matching
//! with Karn's rule.
//!
//! Sequence numbers wrap; every comparison here is modulo 2³².

use std::collections::VecDeque;

/// `a` before `b` in sequence space.
#[inline]
pub(crate) fn seq_lt(a: u32, b: u32) -> bool {
    (a.wrapping_sub(b) as i32) < 0
}

/// `a` at or before `b` in sequence space.
#[inline]
pub(crate) fn seq_le(a: u32, b: u32) -> bool {
    !seq_lt(b, a)
}

/// The most gaps ("holes") below the highest sequence number remembered per direction. When
/// more open, the oldest is forgotten: its bytes then count as retransmitted, not out of
/// sequence, if they show up later. Holes exist only after losses upstream of the capture
/// point; each takes 8 bytes of heap while open.
pub const MAX_HOLES: usize = 64;

/// How one segment's payload relates to what was seen before.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub(crate) struct SegmentClass {
    /// Bytes seen for the first time.
    pub new_bytes: u32,
    /// Bytes seen before.
    pub retx_bytes: u32,
    /// Whether the segment filled (part of) a hole below the highest byte seen.
    pub out_of_sequence: bool,
    /// Whether it extended the highest byte seen.
    pub advanced: bool,
}

/// Which payload bytes of one direction have been seen: everything below `high` except the
/// holes.
#[derive(Debug, Clone, Default)]
pub(crate) struct SeqSpace {
    init: bool,
    /// One past the highest sequence number seen.
    high: u32,
    /// Gaps `[start, end)` below `high`, in ascending order; no allocation while empty.
    holes: Vec<(u32, u32)>,
}

impl SeqSpace {
    /// Starts the space at `next` (ISN + 1 after a SYN) if nothing was seen yet.
    pub fn start(&mut self, next: u32) {
        if !self.init {
            self.init = true;
            self.high = next;
        }
    }

    /// One past the highest sequence number seen, if any.
    pub fn high(&self) -> Option<u32> {
        self.init.then_some(self.high)
    }

    /// Classifies the payload `[seq, seq + len)`, `len > 0`, and records it as seen.
    pub fn segment(&mut self, seq: u32, len: u32) -> SegmentClass {
        self.start(seq);
        let end = seq.wrapping_add(len);
        if seq_le(self.high, seq) {
            if seq != self.high {
                self.add_hole(self.high, seq);
            }
            self.high = end;
            return SegmentClass {
                new_bytes: len,
                advanced: true,
                ..SegmentClass::default()
            };
        }
        let below_end = if seq_lt(end, self.high) {
            end
        } else {
            self.high
        };
        let filled = self.fill(seq, below_end);
        let below = below_end.wrapping_sub(seq);
        let above = end.wrapping_sub(below_end);
        if above > 0 {
            self.high = end;
        }
        SegmentClass {
            new_bytes: filled + above,
            retx_bytes: below - filled,
            out_of_sequence: filled > 0,
            advanced: above > 0,
        }
    }

    fn add_hole(&mut self, start: u32, end: u32) {
        if self.holes.len() == MAX_HOLES {
            self.holes.remove(0);
        }
        self.holes.push((start, end));
    }

    /// Removes `[start, end)` from the holes; returns how many of its bytes were in holes.
    fn fill(&mut self, start: u32, end: u32) -> u32 {
        if self.holes.is_empty() {
            return 0;
        }
        let mut filled = 0;
        let mut kept = Vec::with_capacity(self.holes.len() + 1);
        for &(hs, he) in &self.holes {
            let lo = if seq_lt(hs, start) { start } else { hs };
            let hi = if seq_lt(end, he) { end } else { he };
            if !seq_lt(lo, hi) {
                kept.push((hs, he));
                continue;
            }
            filled += hi.wrapping_sub(lo);
            // What is left of the hole, below and above the filled part.
            kept.extend(
                [(hs, lo), (hi, he)]
                    .into_iter()
                    .filter(|p| seq_lt(p.0, p.1)),
            );
        }
        if kept.len() > MAX_HOLES {
            kept.drain(..kept.len() - MAX_HOLES);
        }
        // Free the memory once every hole is filled.
        self.holes = if kept.is_empty() { Vec::new() } else { kept };
        filled
    }
}

/// Most segments remembered per direction for RTT matching (8 bytes each, on the heap, only
/// while unacknowledged, except room for [`PENDING_KEPT`]). With more in flight, only every n-th new segment is remembered from
/// then on, n doubling each time the limit is hit and never shrinking: which segments are
/// sampled must not depend on how full the path is at the moment, or the samples would miss
/// exactly the segments that waited longest in queues.
pub const MAX_PENDING: usize = 256;

const MAX_STRIDE: u8 = 64;

/// Room for this many remembered segments (the smallest allocation) stays allocated once a
/// direction has sent data: 32 bytes.
pub const PENDING_KEPT: usize = 4;

/// A remembered segment: one past its last byte, and when it was sent (µs since the flow's
/// first packet, wrapping).
#[derive(Debug, Clone, Copy)]
pub(crate) struct Pending {
    end: u32,
    sent_us: u32,
}

/// Round-trip-time samples of one direction's data: the time from a segment to the ACK
/// (from the other side) that acknowledges exactly its last byte. Segments that were
/// retransmitted give no sample (Karn's rule), and neither does an ACK that also covers a
/// repair (a retransmission or gap fill) sent after the segment: such an ACK was released
/// by the repair, so its delay is recovery time, not round-trip time (tcptrace's rule too).
#[derive(Debug, Clone, Default)]
pub(crate) struct RttMatcher {
    /// Unacknowledged segments in sequence (= sending) order.
    pending: VecDeque<Pending>,
    /// Remember every `stride`-th new segment (0 is read as 1).
    stride: u8,
    /// New segments since the last one remembered.
    skipped: u8,
    /// A repair was sent and not yet acknowledged: its lowest start, highest end, last time.
    repair: Option<(u32, u32, u32)>,
    /// Samples taken.
    pub samples: u32,
    /// Smallest sample, µs.
    pub min_us: u32,
    /// Largest sample, µs.
    pub max_us: u32,
    /// Sum of samples, µs.
    pub sum_us: u64,
    /// Sum of squared samples, µs².
    pub sum_sq_us: f64,
}

impl RttMatcher {
    /// Remembers a segment that advanced the sequence space to `end`.
    pub fn sent(&mut self, end: u32, now_us: u32) {
        let stride = self.stride.max(1);
        self.skipped = self.skipped.saturating_add(1);
        if self.skipped < stride {
            return;
        }
        self.skipped = 0;
        if self.pending.len() == MAX_PENDING {
            self.stride = (stride * 2).min(MAX_STRIDE);
            return;
        }
        self.pending.push_back(Pending {
            end,
            sent_us: now_us,
        });
    }

    /// Forgets remembered segments that end inside the retransmitted range `(start, end]`:
    /// their ACK would be ambiguous.
    pub fn retransmitted(&mut self, start: u32, end: u32) {
        self.pending
            .retain(|p| !(seq_lt(start, p.end) && seq_le(p.end, end)));
    }

    /// Remembers a repair: payload `[start, end)` sent again or into a gap at `now_us`.
    pub fn repaired(&mut self, start: u32, end: u32, now_us: u32) {
        self.repair = Some(match self.repair {
            None => (start, end, now_us),
            Some((s, e, _)) => (
                if seq_lt(start, s) { start } else { s },
                if seq_lt(e, end) { end } else { e },
                now_us,
            ),
        });
    }

    /// Handles a cumulative ACK of `ack`: forgets the segments it covers and takes a sample
    /// from the one it acknowledges exactly, unless a repair it covers was sent later.
    pub fn acked(&mut self, ack: u32, now_us: u32) {
        let repair = self.repair.filter(|&(start, _, _)| seq_lt(start, ack));
        while let Some(&p) = self.pending.front() {
            if !seq_le(p.end, ack) {
                break;
            }
            self.pending.pop_front();
            let released_by_repair =
                repair.is_some_and(|(_, _, at)| (at.wrapping_sub(p.sent_us) as i32) > 0);
            if p.end == ack && !released_by_repair {
                self.sample(now_us.wrapping_sub(p.sent_us));
            }
        }
        if self.pending.is_empty() && self.pending.capacity() > PENDING_KEPT {
            // Give the memory of a deep flight back while nothing is in flight; the smallest
            // allocation stays, or a flow that sends a few segments per ACK would allocate
            // and free it again for every ACK.
            self.pending = VecDeque::new();
        }
        if let Some((_, end, _)) = repair
            && seq_le(end, ack)
        {
            self.repair = None;
        }
    }

    fn sample(&mut self, rtt_us: u32) {
        if self.samples == 0 || rtt_us < self.min_us {
            self.min_us = rtt_us;
        }
        self.max_us = self.max_us.max(rtt_us);
        self.samples += 1;
        self.sum_us += u64::from(rtt_us);
        self.sum_sq_us += f64::from(rtt_us) * f64::from(rtt_us);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn comparisons_wrap() {
        assert!(seq_lt(u32::MAX - 5, 3));
        assert!(!seq_lt(3, u32::MAX - 5));
        assert!(seq_le(7, 7));
    }

    #[test]
    fn in_order_data_is_new() {
        let mut s = SeqSpace::default();
        s.start(1001);
        let c = s.segment(1001, 100);
        assert_eq!(
            (c.new_bytes, c.retx_bytes, c.out_of_sequence),
            (100, 0, false)
        );
        assert_eq!(s.high(), Some(1101));
    }

    #[test]
    fn a_resent_segment_is_retransmitted() {
        let mut s = SeqSpace::default();
        s.segment(0, 100);
        s.segment(100, 100);
        let c = s.segment(0, 100);
        assert_eq!(
            (c.new_bytes, c.retx_bytes, c.out_of_sequence),
            (0, 100, false)
        );
    }

    #[test]
    fn filling_a_hole_is_out_of_sequence_not_retransmitted() {
        let mut s = SeqSpace::default();
        s.segment(0, 100);
        s.segment(200, 100); // 100..200 lost before the capture point
        let c = s.segment(100, 100);
        assert_eq!(
            (c.new_bytes, c.retx_bytes, c.out_of_sequence),
            (100, 0, true)
        );
        // Sent again: now it is a retransmission.
        let c = s.segment(100, 100);
        assert_eq!((c.new_bytes, c.retx_bytes), (0, 100));
    }

    #[test]
    fn partial_fill_and_overlap_are_split() {
        let mut s = SeqSpace::default();
        s.segment(0, 100);
        s.segment(300, 100); // hole 100..300
        let c = s.segment(50, 100); // 50..100 seen, 100..150 fills
        assert_eq!(
            (c.new_bytes, c.retx_bytes, c.out_of_sequence),
            (50, 50, true)
        );
        let c = s.segment(250, 200); // 250..300 fills, 300..400 seen, 400..450 new
        assert_eq!((c.new_bytes, c.retx_bytes, c.advanced), (100, 100, true));
        let c = s.segment(150, 100); // the middle of the old hole
        assert_eq!((c.new_bytes, c.retx_bytes), (100, 0));
    }

    #[test]
    fn holes_beyond_the_limit_forget_the_oldest() {
        let mut s = SeqSpace::default();
        s.segment(0, 10);
        for i in 1..=MAX_HOLES as u32 + 1 {
            s.segment(i * 20, 10); // hole (i*20-10 .. i*20)
        }
        assert_eq!(s.segment(10, 10).retx_bytes, 10, "oldest hole forgotten");
        assert_eq!(s.segment(30, 10).new_bytes, 10, "next hole remembered");
    }

    #[test]
    fn sequence_numbers_wrap() {
        let mut s = SeqSpace::default();
        s.segment(u32::MAX - 49, 100);
        assert_eq!(s.high(), Some(50));
        assert_eq!(s.segment(u32::MAX - 49, 100).retx_bytes, 100);
    }

    #[test]
    fn exact_acks_give_samples() {
        let mut r = RttMatcher::default();
        r.sent(100, 0);
        r.sent(200, 10);
        r.acked(200, 1010); // delayed ACK for both: sample from the second
        assert_eq!((r.samples, r.min_us, r.max_us), (1, 1000, 1000));
        let room = r.pending.capacity();
        assert!(
            room > 0 && room <= PENDING_KEPT,
            "a short flight keeps its room: {room}"
        );
        r.sent(300, 2000);
        r.acked(250, 2500); // not exact
        r.acked(300, 2600);
        assert_eq!((r.samples, r.max_us, r.sum_us), (2, 1000, 1600));
    }

    #[test]
    fn karns_rule_skips_retransmitted_segments() {
        let mut r = RttMatcher::default();
        r.sent(100, 0);
        r.retransmitted(0, 100);
        r.acked(100, 5000);
        assert_eq!(r.samples, 0);
    }

    #[test]
    fn an_ack_released_by_a_later_repair_gives_no_sample() {
        let mut r = RttMatcher::default();
        r.sent(100, 0);
        r.sent(300, 10); // 100..200 lost downstream
        r.repaired(100, 200, 500);
        r.acked(300, 510); // exact for the segment sent at 10, but released by the repair
        assert_eq!(r.samples, 0);
        r.sent(400, 600);
        r.acked(400, 650);
        assert_eq!(
            (r.samples, r.min_us),
            (1, 50),
            "repair acknowledged: sampling resumes"
        );
    }

    #[test]
    fn past_the_limit_every_second_segment_is_remembered() {
        let mut r = RttMatcher::default();
        for i in 0..=MAX_PENDING as u32 {
            r.sent((i + 1) * 100, i);
        }
        r.acked((MAX_PENDING as u32 + 1) * 100, 1000);
        assert_eq!(r.samples, 0, "the last segment was not remembered");
        assert!(r.pending.capacity() == 0, "memory given back");
        r.sent(50_000, 2000);
        r.sent(50_100, 2010);
        r.acked(50_000, 2100);
        assert_eq!(r.samples, 0, "50000 was skipped");
        r.acked(50_100, 2110);
        assert_eq!((r.samples, r.min_us), (1, 100));
    }
}
