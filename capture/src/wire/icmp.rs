//! ICMP and ICMPv6 message headers: type and code.

use super::{Result, need};

mod field {
    pub const TYPE: usize = 0;
    pub const CODE: usize = 1;
    pub const HEADER_LEN: usize = 8;
}

/// The ICMP header length: type, code, checksum and the 4-byte rest of header.
pub const HEADER_LEN: usize = field::HEADER_LEN;

/// An ICMP or ICMPv6 header (both start with type, code, checksum).
#[derive(Debug, Clone, Copy)]
pub struct IcmpMessage<'a> {
    buf: &'a [u8],
}

impl<'a> IcmpMessage<'a> {
    /// Checks that the 8-byte header is present.
    pub fn new_checked(buf: &'a [u8]) -> Result<Self> {
        need(buf, field::HEADER_LEN, "ICMP")?;
        Ok(IcmpMessage { buf })
    }

    /// Message type.
    pub fn msg_type(&self) -> u8 {
        self.buf[field::TYPE]
    }

    /// Message code.
    pub fn code(&self) -> u8 {
        self.buf[field::CODE]
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fields() {
        let b = [3, 4, 0xf7, 0xff, 0, 0, 5, 0xdc];
        let m = IcmpMessage::new_checked(&b).unwrap();
        assert_eq!((m.msg_type(), m.code()), (3, 4));
        assert!(IcmpMessage::new_checked(&b[..7]).is_err());
    }
}
