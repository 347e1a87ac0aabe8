//! TCP headers (RFC 9293) and the options flow statistics use: MSS, window scale, SACK
//! permitted, SACK blocks, timestamps.

use super::{Result, WireError, be16, be32, need};

mod field {
    pub const SRC_PORT: usize = 0;
    pub const DST_PORT: usize = 2;
    pub const SEQ: usize = 4;
    pub const ACK: usize = 8;
    pub const DATA_OFF: usize = 12;
    pub const FLAGS: usize = 13;
    pub const WINDOW: usize = 14;
    pub const MIN_LEN: usize = 20;
}

/// TCP flag bits.
pub mod flags {
    /// FIN.
    pub const FIN: u8 = 0x01;
    /// SYN.
    pub const SYN: u8 = 0x02;
    /// RST.
    pub const RST: u8 = 0x04;
    /// PSH.
    pub const PSH: u8 = 0x08;
    /// ACK.
    pub const ACK: u8 = 0x10;
}

mod kind {
    pub const END: u8 = 0;
    pub const NOP: u8 = 1;
    pub const MSS: u8 = 2;
    pub const WSCALE: u8 = 3;
    pub const SACK_PERMITTED: u8 = 4;
    pub const SACK: u8 = 5;
    pub const TIMESTAMPS: u8 = 8;
}

/// A TCP header with at least its 20 fixed bytes captured. Options may be cut by a snaplen;
/// [`TcpSegment::options`] reads what was captured.
#[derive(Debug, Clone, Copy)]
pub struct TcpSegment<'a> {
    buf: &'a [u8],
}

/// The options of one segment.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct TcpOptions {
    /// Maximum segment size.
    pub mss: Option<u16>,
    /// Window scale shift.
    pub wscale: Option<u8>,
    /// SACK permitted.
    pub sack_permitted: bool,
    /// Number of SACK blocks.
    pub sack_blocks: u8,
    /// Timestamp value and echo reply.
    pub timestamps: Option<(u32, u32)>,
    /// Whether an option was malformed (parsing stopped there).
    pub malformed: bool,
}

impl<'a> TcpSegment<'a> {
    /// Checks that the fixed header is present and the data offset is at least 5 words.
    pub fn new_checked(buf: &'a [u8]) -> Result<Self> {
        need(buf, field::MIN_LEN, "TCP")?;
        let s = TcpSegment { buf };
        if s.header_len() < field::MIN_LEN {
            return Err(WireError::Invalid("TCP data offset below 5 words"));
        }
        Ok(s)
    }

    /// Source port.
    #[inline]
    pub fn src_port(&self) -> u16 {
        be16(self.buf, field::SRC_PORT)
    }

    /// Destination port.
    #[inline]
    pub fn dst_port(&self) -> u16 {
        be16(self.buf, field::DST_PORT)
    }

    /// Sequence number.
    #[inline]
    pub fn seq(&self) -> u32 {
        be32(self.buf, field::SEQ)
    }

    /// Acknowledgment number.
    #[inline]
    pub fn ack(&self) -> u32 {
        be32(self.buf, field::ACK)
    }

    /// Header length in bytes, options included.
    #[inline]
    pub fn header_len(&self) -> usize {
        usize::from(self.buf[field::DATA_OFF] >> 4) * 4
    }

    /// The flag bits (FIN, SYN, RST, PSH, ACK, URG, ECE, CWR).
    #[inline]
    pub fn flags(&self) -> u8 {
        self.buf[field::FLAGS]
    }

    /// The raw (unscaled) window field.
    #[inline]
    pub fn window(&self) -> u16 {
        be16(self.buf, field::WINDOW)
    }

    /// Parses the captured part of the options.
    #[inline]
    pub fn options(&self) -> TcpOptions {
        let end = self.header_len().min(self.buf.len());
        parse_options(&self.buf[field::MIN_LEN..end])
    }
}

fn parse_options(mut b: &[u8]) -> TcpOptions {
    let mut o = TcpOptions::default();
    while let Some(&k) = b.first() {
        match k {
            kind::END => break,
            kind::NOP => {
                b = &b[1..];
                continue;
            }
            _ => {}
        }
        let Some(&len) = b.get(1) else {
            o.malformed = true;
            break;
        };
        let len = usize::from(len);
        if len < 2 || len > b.len() {
            o.malformed = true;
            break;
        }
        let body = &b[2..len];
        match (k, body.len()) {
            (kind::MSS, 2) => o.mss = Some(be16(body, 0)),
            (kind::WSCALE, 1) => o.wscale = Some(body[0]),
            (kind::SACK_PERMITTED, 0) => o.sack_permitted = true,
            (kind::SACK, n) if n % 8 == 0 && n > 0 => o.sack_blocks = (n / 8) as u8,
            (kind::TIMESTAMPS, 8) => o.timestamps = Some((be32(body, 0), be32(body, 4))),
            (
                kind::MSS | kind::WSCALE | kind::SACK_PERMITTED | kind::SACK | kind::TIMESTAMPS,
                _,
            ) => {
                o.malformed = true;
                break;
            }
            _ => {}
        }
        b = &b[len..];
    }
    o
}

#[cfg(test)]
mod tests {
    use super::*;

    /// SYN from port 40000 to 443, seq 1000, ack 0, window 64240, with MSS 1460, SACK
    /// permitted, timestamps (7, 0), NOP and window scale 7.
    fn syn() -> Vec<u8> {
        let mut b = vec![
            0x9c, 0x40, 0x01, 0xbb, 0, 0, 0x03, 0xe8, 0, 0, 0, 0, 0xa0, 0x02, 0xfa, 0xf0, 0, 0, 0,
            0,
        ];
        b.extend_from_slice(&[
            2, 4, 0x05, 0xb4, 4, 2, 8, 10, 0, 0, 0, 7, 0, 0, 0, 0, 1, 3, 3, 7,
        ]);
        b
    }

    #[test]
    fn fixed_fields() {
        let b = syn();
        let s = TcpSegment::new_checked(&b).unwrap();
        assert_eq!(s.src_port(), 40000);
        assert_eq!(s.dst_port(), 443);
        assert_eq!(s.seq(), 1000);
        assert_eq!(s.ack(), 0);
        assert_eq!(s.header_len(), 40);
        assert_eq!(s.flags(), flags::SYN);
        assert_eq!(s.window(), 64240);
    }

    #[test]
    fn options() {
        let b = syn();
        let o = TcpSegment::new_checked(&b).unwrap().options();
        assert_eq!(
            o,
            TcpOptions {
                mss: Some(1460),
                wscale: Some(7),
                sack_permitted: true,
                sack_blocks: 0,
                timestamps: Some((7, 0)),
                malformed: false,
            }
        );
    }

    #[test]
    fn sack_blocks_are_counted() {
        let o = parse_options(&[1, 1, 5, 18, 0, 0, 0, 1, 0, 0, 0, 2, 0, 0, 0, 3, 0, 0, 0, 4]);
        assert_eq!(o.sack_blocks, 2);
        assert!(!o.malformed);
    }

    #[test]
    fn options_cut_by_snaplen_keep_what_was_captured() {
        let b = syn();
        let o = TcpSegment::new_checked(&b[..27]).unwrap().options();
        assert_eq!(o.mss, Some(1460));
        assert!(o.sack_permitted);
        assert!(o.malformed, "the timestamps option was cut");
    }

    #[test]
    fn bad_option_lengths_stop_parsing() {
        assert!(parse_options(&[2, 0]).malformed);
        assert!(parse_options(&[2, 3, 0]).malformed, "MSS must be 4 bytes");
        assert!(parse_options(&[8, 40, 0]).malformed);
        assert_eq!(parse_options(&[0, 2, 4, 5, 180]), TcpOptions::default());
    }

    #[test]
    fn bad_headers_are_errors() {
        let b = syn();
        assert!(TcpSegment::new_checked(&b[..19]).is_err());
        let mut small = b;
        small[12] = 0x40;
        assert!(TcpSegment::new_checked(&small).is_err());
    }
}
