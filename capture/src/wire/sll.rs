//! Linux "cooked" capture headers: SLL (`any` interface, 16 bytes) and SLL2 (20 bytes).

use super::{Result, be16, be32, need};

mod field {
    /// SLL: packet type (to us, broadcast, outgoing…), ARPHRD type, address length, address.
    pub const SLL_PKTTYPE: usize = 0;
    pub const SLL_PROTOCOL: usize = 14;
    pub const SLL_LEN: usize = 16;
    /// SLL2: protocol first, then reserved, interface index, ARPHRD, packet type.
    pub const SLL2_PROTOCOL: usize = 0;
    pub const SLL2_IFINDEX: usize = 4;
    pub const SLL2_PKTTYPE: usize = 10;
    pub const SLL2_LEN: usize = 20;
}

/// The `sll_pkttype` value of packets this host sent.
pub const PACKET_OUTGOING: u16 = 4;

/// A Linux cooked capture header, either version.
#[derive(Debug, Clone, Copy)]
pub struct CookedHeader<'a> {
    buf: &'a [u8],
    v2: bool,
}

impl<'a> CookedHeader<'a> {
    /// Checks that `buf` holds an SLL header.
    pub fn new_sll(buf: &'a [u8]) -> Result<Self> {
        need(buf, field::SLL_LEN, "Linux cooked (SLL)")?;
        Ok(CookedHeader { buf, v2: false })
    }

    /// Checks that `buf` holds an SLL2 header.
    pub fn new_sll2(buf: &'a [u8]) -> Result<Self> {
        need(buf, field::SLL2_LEN, "Linux cooked v2 (SLL2)")?;
        Ok(CookedHeader { buf, v2: true })
    }

    /// The EtherType of the payload.
    pub fn protocol(&self) -> u16 {
        let at = if self.v2 {
            field::SLL2_PROTOCOL
        } else {
            field::SLL_PROTOCOL
        };
        be16(self.buf, at)
    }

    /// The packet type (0 to us, 4 outgoing, …).
    pub fn packet_type(&self) -> u16 {
        if self.v2 {
            u16::from(self.buf[field::SLL2_PKTTYPE])
        } else {
            be16(self.buf, field::SLL_PKTTYPE)
        }
    }

    /// The interface index (SLL2 only).
    pub fn ifindex(&self) -> Option<u32> {
        self.v2.then(|| be32(self.buf, field::SLL2_IFINDEX))
    }

    /// The bytes after the header.
    pub fn payload(&self) -> &'a [u8] {
        let len = if self.v2 {
            field::SLL2_LEN
        } else {
            field::SLL_LEN
        };
        &self.buf[len..]
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sll_fields() {
        let mut b = [0u8; 18];
        b[1] = 4; // outgoing
        b[14..16].copy_from_slice(&0x86ddu16.to_be_bytes());
        let h = CookedHeader::new_sll(&b).unwrap();
        assert_eq!(h.packet_type(), PACKET_OUTGOING);
        assert_eq!(h.protocol(), 0x86dd);
        assert_eq!(h.ifindex(), None);
        assert_eq!(h.payload().len(), 2);
    }

    #[test]
    fn sll2_fields() {
        let mut b = [0u8; 20];
        b[0..2].copy_from_slice(&0x0800u16.to_be_bytes());
        b[4..8].copy_from_slice(&7u32.to_be_bytes());
        b[10] = 4;
        let h = CookedHeader::new_sll2(&b).unwrap();
        assert_eq!(h.protocol(), 0x0800);
        assert_eq!(h.ifindex(), Some(7));
        assert_eq!(h.packet_type(), PACKET_OUTGOING);
        assert!(h.payload().is_empty());
    }

    #[test]
    fn short_headers_are_errors() {
        assert!(CookedHeader::new_sll(&[0; 15]).is_err());
        assert!(CookedHeader::new_sll2(&[0; 19]).is_err());
    }
}
