//! Writes a synthetic pcap for benchmarks: many interleaved TCP flows of full-size frames with
//! handshakes, delayed ACKs, losses upstream of the capture point (the retransmission fills a
//! gap later), retransmissions of segments that were seen, reordering, and FIN teardown.
//!
//! `cargo run --release -p qoelab-capture --example synth_pcap -- OUT.pcap [PACKETS] [FLOWS]`
//! (defaults: 1,200,000 packets, 2,000 flows). Deterministic: the same arguments give the
//! same file.

use std::fs::File;
use std::io::{BufWriter, Write};

const MSS: u32 = 1448;

/// A tiny deterministic generator (xorshift64*).
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    /// True with probability `per_mille` / 1000.
    fn chance(&mut self, per_mille: u64) -> bool {
        self.next() % 1000 < per_mille
    }
}

struct Flow {
    client: [u8; 4],
    server: [u8; 4],
    cport: u16,
    sport: u16,
    seq: u32,
    ack_seq: u32,
    sent: u32,
    unacked: u32,
    /// Segments lost upstream, to be retransmitted later: (seq, delay in steps).
    lost: Vec<(u32, u32)>,
    state: u8,
}

struct Writer<W: Write> {
    out: W,
    ts_us: u64,
    frame: Vec<u8>,
    packets: u64,
}

impl<W: Write> Writer<W> {
    #[allow(clippy::too_many_arguments)]
    fn tcp(
        &mut self,
        src: [u8; 4],
        dst: [u8; 4],
        sport: u16,
        dport: u16,
        seq: u32,
        ack: u32,
        flags: u8,
        payload: u32,
    ) -> std::io::Result<()> {
        self.ts_us += 1;
        let f = &mut self.frame;
        f.clear();
        f.extend_from_slice(&[2, 0, 0, 0, 0, 2, 2, 0, 0, 0, 0, 1, 0x08, 0x00]);
        let total = 40 + payload as u16;
        f.extend_from_slice(&[0x45, 0]);
        f.extend_from_slice(&total.to_be_bytes());
        f.extend_from_slice(&(self.packets as u16).to_be_bytes());
        f.extend_from_slice(&[0x40, 0, 64, 6, 0, 0]);
        f.extend_from_slice(&src);
        f.extend_from_slice(&dst);
        f.extend_from_slice(&sport.to_be_bytes());
        f.extend_from_slice(&dport.to_be_bytes());
        f.extend_from_slice(&seq.to_be_bytes());
        f.extend_from_slice(&ack.to_be_bytes());
        f.extend_from_slice(&[0x50, flags, 0x01, 0xf6, 0, 0, 0, 0]);
        f.resize(f.len() + payload as usize, 0x5a);
        let len = f.len() as u32;
        let ts_s = 1_700_000_000 + self.ts_us / 1_000_000;
        let ts_frac = self.ts_us % 1_000_000;
        self.out.write_all(&(ts_s as u32).to_le_bytes())?;
        self.out.write_all(&(ts_frac as u32).to_le_bytes())?;
        self.out.write_all(&len.to_le_bytes())?;
        self.out.write_all(&len.to_le_bytes())?;
        self.out.write_all(f)?;
        self.packets += 1;
        Ok(())
    }
}

fn main() -> std::io::Result<()> {
    let args: Vec<String> = std::env::args().collect();
    let path = args
        .get(1)
        .expect("usage: synth_pcap OUT.pcap [PACKETS] [FLOWS]");
    let target: u64 = args
        .get(2)
        .map_or(1_200_000, |a| a.parse().expect("PACKETS"));
    let n_flows: usize = args.get(3).map_or(2_000, |a| a.parse().expect("FLOWS"));
    let mut out = BufWriter::with_capacity(1 << 20, File::create(path)?);
    // pcap header: microseconds, little endian, snaplen 65535, Ethernet.
    out.write_all(&[0xd4, 0xc3, 0xb2, 0xa1, 2, 0, 4, 0])?;
    out.write_all(&[0; 8])?;
    out.write_all(&65535u32.to_le_bytes())?;
    out.write_all(&1u32.to_le_bytes())?;
    let mut w = Writer {
        out,
        ts_us: 0,
        frame: Vec::with_capacity(1600),
        packets: 0,
    };
    let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
    let new_flow = |i: usize, rng: &mut Rng| Flow {
        client: [198, 18, (i >> 8) as u8 | 0x80, i as u8],
        server: [198, 19, (rng.next() % 256) as u8, 1],
        cport: 10_000 + (rng.next() % 50_000) as u16,
        sport: 443,
        seq: rng.next() as u32,
        ack_seq: rng.next() as u32,
        sent: 0,
        unacked: 0,
        lost: Vec::new(),
        state: 0,
    };
    let mut flows: Vec<Flow> = (0..n_flows).map(|i| new_flow(i, &mut rng)).collect();
    let mut next_id = n_flows;
    const SYN: u8 = 0x02;
    const ACK: u8 = 0x10;
    const FIN: u8 = 0x01;
    while w.packets < target {
        let i = (rng.next() % n_flows as u64) as usize;
        let f = &mut flows[i];
        let (c, s, cp, sp) = (f.client, f.server, f.cport, f.sport);
        match f.state {
            0 => {
                w.tcp(c, s, cp, sp, f.seq, 0, SYN, 0)?;
                w.tcp(s, c, sp, cp, f.ack_seq, f.seq.wrapping_add(1), SYN | ACK, 0)?;
                f.seq = f.seq.wrapping_add(1);
                f.ack_seq = f.ack_seq.wrapping_add(1);
                w.tcp(c, s, cp, sp, f.seq, f.ack_seq, ACK, 0)?;
                f.state = 1;
            }
            1 => {
                // Retransmit a segment lost upstream once its delay has passed.
                if let Some(pos) = f.lost.iter().position(|&(_, d)| d == 0) {
                    let (seq, _) = f.lost.remove(pos);
                    w.tcp(c, s, cp, sp, seq, f.ack_seq, ACK, MSS)?;
                }
                for l in &mut f.lost {
                    l.1 = l.1.saturating_sub(1);
                }
                let seq = f.seq;
                f.seq = f.seq.wrapping_add(MSS);
                f.sent += 1;
                if rng.chance(10) {
                    f.lost.push((seq, 3)); // lost before the capture point
                } else if rng.chance(5) && f.sent > 1 {
                    // Reordered: the next segment overtakes this one.
                    w.tcp(c, s, cp, sp, f.seq, f.ack_seq, ACK, MSS)?;
                    w.tcp(c, s, cp, sp, seq, f.ack_seq, ACK, MSS)?;
                    f.seq = f.seq.wrapping_add(MSS);
                    f.sent += 1;
                } else {
                    w.tcp(c, s, cp, sp, seq, f.ack_seq, ACK, MSS)?;
                    if rng.chance(5) {
                        // Seen, then lost downstream: a real retransmission.
                        w.tcp(c, s, cp, sp, seq, f.ack_seq, ACK, MSS)?;
                    }
                }
                f.unacked += 1;
                if f.unacked >= 2 && f.lost.is_empty() {
                    w.tcp(s, c, sp, cp, f.ack_seq, f.seq, ACK, 0)?;
                    f.unacked = 0;
                }
                if f.sent > 200 + (rng.next() % 800) as u32 && f.lost.is_empty() {
                    f.state = 2;
                }
            }
            _ => {
                w.tcp(c, s, cp, sp, f.seq, f.ack_seq, FIN | ACK, 0)?;
                w.tcp(s, c, sp, cp, f.ack_seq, f.seq.wrapping_add(1), FIN | ACK, 0)?;
                w.tcp(
                    c,
                    s,
                    cp,
                    sp,
                    f.seq.wrapping_add(1),
                    f.ack_seq.wrapping_add(1),
                    ACK,
                    0,
                )?;
                flows[i] = new_flow(next_id, &mut rng);
                next_id += 1;
            }
        }
    }
    w.out.flush()?;
    eprintln!("{path}: {} packets, {} flows started", w.packets, next_id);
    Ok(())
}
