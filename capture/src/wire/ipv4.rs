//! IPv4 headers (RFC 791), options skipped, fragments recognised.

use std::net::Ipv4Addr;

use super::{Result, WireError, be16, need};

mod field {
    use std::ops::Range;
    pub const VER_IHL: usize = 0;
    pub const TOTAL_LEN: usize = 2;
    pub const IDENT: usize = 4;
    pub const FLAGS_FRAG: usize = 6;
    pub const TTL: usize = 8;
    pub const PROTOCOL: usize = 9;
    pub const SRC: Range<usize> = 12..16;
    pub const DST: Range<usize> = 16..20;
    pub const MIN_LEN: usize = 20;
}

/// An IPv4 header whose version, header length and total length are consistent.
#[derive(Debug, Clone, Copy)]
pub struct Ipv4Packet<'a> {
    buf: &'a [u8],
}

impl<'a> Ipv4Packet<'a> {
    /// Checks the version, that the header (with options) is present, and that the total
    /// length covers the header. The payload itself may be cut by a snaplen.
    pub fn new_checked(buf: &'a [u8]) -> Result<Self> {
        need(buf, field::MIN_LEN, "IPv4")?;
        let p = Ipv4Packet { buf };
        if buf[field::VER_IHL] >> 4 != 4 {
            return Err(WireError::Invalid("IPv4 version is not 4"));
        }
        if p.header_len() < field::MIN_LEN {
            return Err(WireError::Invalid("IPv4 header length below 20 bytes"));
        }
        need(buf, p.header_len(), "IPv4 options")?;
        if usize::from(p.total_len()) < p.header_len() {
            return Err(WireError::Invalid("IPv4 total length below header length"));
        }
        Ok(p)
    }

    /// Header length in bytes, options included.
    pub fn header_len(&self) -> usize {
        usize::from(self.buf[field::VER_IHL] & 0x0f) * 4
    }

    /// Whether the header carries options.
    pub fn has_options(&self) -> bool {
        self.header_len() > field::MIN_LEN
    }

    /// Total length of the packet (header and payload) as the header states it.
    pub fn total_len(&self) -> u16 {
        be16(self.buf, field::TOTAL_LEN)
    }

    /// The identification field.
    pub fn ident(&self) -> u16 {
        be16(self.buf, field::IDENT)
    }

    /// Whether the more-fragments flag is set.
    pub fn more_fragments(&self) -> bool {
        self.buf[field::FLAGS_FRAG] & 0x20 != 0
    }

    /// The fragment offset in bytes.
    pub fn frag_offset(&self) -> u16 {
        (be16(self.buf, field::FLAGS_FRAG) & 0x1fff) * 8
    }

    /// Time to live.
    pub fn ttl(&self) -> u8 {
        self.buf[field::TTL]
    }

    /// The payload's protocol number.
    pub fn protocol(&self) -> u8 {
        self.buf[field::PROTOCOL]
    }

    /// Source address.
    pub fn src(&self) -> Ipv4Addr {
        Ipv4Addr::from(<[u8; 4]>::try_from(&self.buf[field::SRC]).unwrap_or_default())
    }

    /// Destination address.
    pub fn dst(&self) -> Ipv4Addr {
        Ipv4Addr::from(<[u8; 4]>::try_from(&self.buf[field::DST]).unwrap_or_default())
    }

    /// The captured payload bytes (at most `total_len - header_len`; fewer if cut).
    pub fn payload(&self) -> &'a [u8] {
        let end = usize::from(self.total_len()).min(self.buf.len());
        &self.buf[self.header_len()..end]
    }

    /// The payload length as the header states it, whatever was captured.
    pub fn payload_len(&self) -> u16 {
        self.total_len() - self.header_len() as u16
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// 24-byte header (one option word), total length 40, ID 0x1234, MF, offset 16, TTL 63,
    /// TCP, 198.18.1.2 → 198.18.2.2.
    fn header() -> Vec<u8> {
        let mut b = vec![
            0x46, 0, 0, 40, 0x12, 0x34, 0x20, 0x02, 63, 6, 0, 0, 198, 18, 1, 2, 198, 18, 2, 2, 1,
            1, 1, 0,
        ];
        b.resize(40, 0xaa);
        b
    }

    #[test]
    fn fields() {
        let b = header();
        let p = Ipv4Packet::new_checked(&b).unwrap();
        assert_eq!(p.header_len(), 24);
        assert!(p.has_options());
        assert_eq!(p.total_len(), 40);
        assert_eq!(p.ident(), 0x1234);
        assert!(p.more_fragments());
        assert_eq!(p.frag_offset(), 16);
        assert_eq!(p.ttl(), 63);
        assert_eq!(p.protocol(), 6);
        assert_eq!(p.src(), Ipv4Addr::new(198, 18, 1, 2));
        assert_eq!(p.dst(), Ipv4Addr::new(198, 18, 2, 2));
        assert_eq!(p.payload().len(), 16);
        assert_eq!(p.payload_len(), 16);
    }

    #[test]
    fn lengths_come_from_the_header_when_cut() {
        let b = header();
        let p = Ipv4Packet::new_checked(&b[..30]).unwrap();
        assert_eq!(p.payload().len(), 6);
        assert_eq!(p.payload_len(), 16);
    }

    #[test]
    fn ethernet_padding_is_not_payload() {
        let mut b = header();
        b.extend_from_slice(&[0; 6]);
        assert_eq!(Ipv4Packet::new_checked(&b).unwrap().payload().len(), 16);
    }

    #[test]
    fn bad_headers_are_errors() {
        let b = header();
        assert!(Ipv4Packet::new_checked(&b[..19]).is_err());
        assert!(Ipv4Packet::new_checked(&b[..22]).is_err(), "options cut");
        let mut v6 = b.clone();
        v6[0] = 0x65;
        assert!(Ipv4Packet::new_checked(&v6).is_err());
        let mut short_ihl = b.clone();
        short_ihl[0] = 0x44;
        assert!(Ipv4Packet::new_checked(&short_ihl).is_err());
        let mut short_total = b;
        short_total[3] = 20;
        assert!(Ipv4Packet::new_checked(&short_total).is_err());
    }
}
