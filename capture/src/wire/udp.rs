//! UDP headers (RFC 768).

use super::{Result, be16, need};

mod field {
    pub const SRC_PORT: usize = 0;
    pub const DST_PORT: usize = 2;
    pub const LENGTH: usize = 4;
    pub const HEADER_LEN: usize = 8;
}

/// The UDP header length.
pub const HEADER_LEN: usize = field::HEADER_LEN;

/// A UDP header.
#[derive(Debug, Clone, Copy)]
pub struct UdpDatagram<'a> {
    buf: &'a [u8],
}

impl<'a> UdpDatagram<'a> {
    /// Checks that the 8-byte header is present.
    pub fn new_checked(buf: &'a [u8]) -> Result<Self> {
        need(buf, field::HEADER_LEN, "UDP")?;
        Ok(UdpDatagram { buf })
    }

    /// Source port.
    pub fn src_port(&self) -> u16 {
        be16(self.buf, field::SRC_PORT)
    }

    /// Destination port.
    pub fn dst_port(&self) -> u16 {
        be16(self.buf, field::DST_PORT)
    }

    /// The length field (header and payload).
    pub fn length(&self) -> u16 {
        be16(self.buf, field::LENGTH)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fields() {
        let b = [0x00, 0x35, 0xd4, 0x31, 0, 12, 0, 0, 1, 2, 3, 4];
        let d = UdpDatagram::new_checked(&b).unwrap();
        assert_eq!(d.src_port(), 53);
        assert_eq!(d.dst_port(), 54321);
        assert_eq!(d.length(), 12);
        assert!(UdpDatagram::new_checked(&b[..7]).is_err());
    }
}
