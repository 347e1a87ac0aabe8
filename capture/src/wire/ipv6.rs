//! IPv6 headers (RFC 8200) and the walk over extension headers to the upper layer.

use std::net::Ipv6Addr;

use super::{Result, WireError, be16, need};

mod field {
    use std::ops::Range;
    pub const VERSION: usize = 0;
    pub const PAYLOAD_LEN: usize = 4;
    pub const NEXT_HEADER: usize = 6;
    pub const HOP_LIMIT: usize = 7;
    pub const SRC: Range<usize> = 8..24;
    pub const DST: Range<usize> = 24..40;
    pub const HEADER_LEN: usize = 40;
    /// In an extension header: next header, then its length in 8-byte units beyond the first.
    pub const EXT_NEXT: usize = 0;
    pub const EXT_LEN: usize = 1;
    /// In a fragment header: offset (13 bits, 8-byte units) and the M flag.
    pub const FRAG_OFFSET: usize = 2;
}

/// Extension header numbers.
pub mod ext {
    /// Hop-by-hop options.
    pub const HOP_BY_HOP: u8 = 0;
    /// Routing header.
    pub const ROUTING: u8 = 43;
    /// Fragment header.
    pub const FRAGMENT: u8 = 44;
    /// Authentication header (length in 4-byte units).
    pub const AUTH: u8 = 51;
    /// Destination options.
    pub const DEST_OPTS: u8 = 60;
    /// Mobility header.
    pub const MOBILITY: u8 = 135;
}

/// The most extension headers followed before giving up.
pub const MAX_EXTENSIONS: usize = 8;

/// An IPv6 fixed header.
#[derive(Debug, Clone, Copy)]
pub struct Ipv6Packet<'a> {
    buf: &'a [u8],
}

/// Where the upper-layer header starts, after the extension headers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct UpperLayer {
    /// Upper-layer protocol number (6 TCP, 17 UDP, 58 ICMPv6, …).
    pub protocol: u8,
    /// Offset of the upper-layer header from the start of the IPv6 header.
    pub offset: usize,
    /// Whether a fragment header was present.
    pub fragment: bool,
    /// Whether this is a fragment other than the first (no upper-layer header inside).
    pub later_fragment: bool,
}

impl<'a> Ipv6Packet<'a> {
    /// Checks the version and that the 40-byte header is present.
    pub fn new_checked(buf: &'a [u8]) -> Result<Self> {
        need(buf, field::HEADER_LEN, "IPv6")?;
        if buf[field::VERSION] >> 4 != 6 {
            return Err(WireError::Invalid("IPv6 version is not 6"));
        }
        Ok(Ipv6Packet { buf })
    }

    /// The payload length field (extension headers included); 0 for jumbograms.
    pub fn payload_len(&self) -> u16 {
        be16(self.buf, field::PAYLOAD_LEN)
    }

    /// Total length: 40 plus the payload length.
    pub fn total_len(&self) -> u32 {
        field::HEADER_LEN as u32 + u32::from(self.payload_len())
    }

    /// The Next Header field of the fixed header.
    pub fn next_header(&self) -> u8 {
        self.buf[field::NEXT_HEADER]
    }

    /// Hop limit.
    pub fn hop_limit(&self) -> u8 {
        self.buf[field::HOP_LIMIT]
    }

    /// Source address.
    pub fn src(&self) -> Ipv6Addr {
        Ipv6Addr::from(<[u8; 16]>::try_from(&self.buf[field::SRC]).unwrap_or_default())
    }

    /// Destination address.
    pub fn dst(&self) -> Ipv6Addr {
        Ipv6Addr::from(<[u8; 16]>::try_from(&self.buf[field::DST]).unwrap_or_default())
    }

    /// Follows the extension headers to the upper layer. Extension headers must be captured
    /// whole and lie within the payload length.
    pub fn upper_layer(&self) -> Result<UpperLayer> {
        let mut next = self.next_header();
        let mut offset = field::HEADER_LEN;
        let end = self.total_len() as usize;
        let mut fragment = false;
        let mut later_fragment = false;
        for _ in 0..MAX_EXTENSIONS {
            let len = match next {
                ext::HOP_BY_HOP | ext::ROUTING | ext::DEST_OPTS | ext::MOBILITY => {
                    need(&self.buf[offset..], 2, "IPv6 extension")?;
                    (usize::from(self.buf[offset + field::EXT_LEN]) + 1) * 8
                }
                ext::AUTH => {
                    need(&self.buf[offset..], 2, "IPv6 authentication")?;
                    (usize::from(self.buf[offset + field::EXT_LEN]) + 2) * 4
                }
                ext::FRAGMENT => {
                    need(&self.buf[offset..], 8, "IPv6 fragment")?;
                    fragment = true;
                    later_fragment = be16(self.buf, offset + field::FRAG_OFFSET) & 0xfff8 != 0;
                    8
                }
                protocol => {
                    return Ok(UpperLayer {
                        protocol,
                        offset,
                        fragment,
                        later_fragment,
                    });
                }
            };
            need(&self.buf[offset..], len, "IPv6 extension")?;
            if offset + len > end {
                return Err(WireError::Invalid(
                    "IPv6 extension headers exceed the payload length",
                ));
            }
            next = self.buf[offset + field::EXT_NEXT];
            offset += len;
            if later_fragment {
                return Ok(UpperLayer {
                    protocol: next,
                    offset,
                    fragment,
                    later_fragment,
                });
            }
        }
        Err(WireError::Invalid("more than 8 IPv6 extension headers"))
    }

    /// The captured bytes from `offset` to the end of the packet as the header states it.
    pub fn bytes_from(&self, offset: usize) -> &'a [u8] {
        let end = (self.total_len() as usize).min(self.buf.len());
        self.buf.get(offset..end).unwrap_or_default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// 2001:db8::1 → 2001:db8::2, hop-by-hop (8 bytes) then a first fragment then TCP.
    fn packet() -> Vec<u8> {
        let mut b = vec![0x60, 0, 0, 0, 0, 36, ext::HOP_BY_HOP, 64];
        b.extend_from_slice(&"2001:db8::1".parse::<Ipv6Addr>().unwrap().octets());
        b.extend_from_slice(&"2001:db8::2".parse::<Ipv6Addr>().unwrap().octets());
        b.extend_from_slice(&[ext::FRAGMENT, 0, 1, 4, 0, 0, 0, 0]); // hop-by-hop, PadN
        b.extend_from_slice(&[6, 0, 0x00, 0x01, 0, 0, 0, 9]); // fragment: offset 0, M
        b.resize(40 + 36, 0);
        b
    }

    #[test]
    fn fields() {
        let b = packet();
        let p = Ipv6Packet::new_checked(&b).unwrap();
        assert_eq!(p.payload_len(), 36);
        assert_eq!(p.total_len(), 76);
        assert_eq!(p.next_header(), ext::HOP_BY_HOP);
        assert_eq!(p.hop_limit(), 64);
        assert_eq!(p.src(), "2001:db8::1".parse::<Ipv6Addr>().unwrap());
        assert_eq!(p.dst(), "2001:db8::2".parse::<Ipv6Addr>().unwrap());
    }

    #[test]
    fn extension_headers_are_walked() {
        let b = packet();
        let up = Ipv6Packet::new_checked(&b).unwrap().upper_layer().unwrap();
        assert_eq!(
            up,
            UpperLayer {
                protocol: 6,
                offset: 56,
                fragment: true,
                later_fragment: false
            }
        );
    }

    #[test]
    fn later_fragments_have_no_upper_header() {
        let mut b = packet();
        b[50] = 0x05; // offset 5 × 8 bytes
        let up = Ipv6Packet::new_checked(&b).unwrap().upper_layer().unwrap();
        assert!(up.later_fragment);
    }

    #[test]
    fn bad_headers_are_errors() {
        let b = packet();
        assert!(Ipv6Packet::new_checked(&b[..39]).is_err());
        let p = Ipv6Packet::new_checked(&b[..44]).unwrap();
        assert!(p.upper_layer().is_err(), "extension header cut");
        let mut v4 = b.clone();
        v4[0] = 0x45;
        assert!(Ipv6Packet::new_checked(&v4).is_err());
        let mut short = b;
        short[5] = 10; // payload length shorter than the extension headers
        assert!(
            Ipv6Packet::new_checked(&short)
                .unwrap()
                .upper_layer()
                .is_err()
        );
    }
}
