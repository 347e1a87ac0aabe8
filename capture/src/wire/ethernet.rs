//! Ethernet II frames and 802.1Q / 802.1ad (QinQ) VLAN tags.

use super::{Result, WireError, be16, need};

/// EtherType values this crate follows.
pub mod ethertype {
    /// IPv4.
    pub const IPV4: u16 = 0x0800;
    /// IPv6.
    pub const IPV6: u16 = 0x86dd;
    /// 802.1Q customer VLAN tag.
    pub const VLAN: u16 = 0x8100;
    /// 802.1ad service VLAN tag (outer tag of QinQ).
    pub const QINQ: u16 = 0x88a8;
    /// Pre-standard QinQ outer tag.
    pub const QINQ_OLD: u16 = 0x9100;
}

mod field {
    use std::ops::Range;
    pub const DST: Range<usize> = 0..6;
    pub const SRC: Range<usize> = 6..12;
    pub const ETHERTYPE: usize = 12;
    pub const PAYLOAD: usize = 14;
    /// In a VLAN tag (4 bytes after the outer EtherType): TCI, then the inner EtherType.
    pub const TAG_TCI: usize = 0;
    pub const TAG_ETHERTYPE: usize = 2;
    pub const TAG_LEN: usize = 4;
}

/// The most VLAN tags followed before giving up (QinQ has two).
pub const MAX_TAGS: usize = 4;

/// An Ethernet II frame.
#[derive(Debug, Clone, Copy)]
pub struct Frame<'a> {
    buf: &'a [u8],
}

impl<'a> Frame<'a> {
    /// Checks that `buf` holds the 14-byte header.
    pub fn new_checked(buf: &'a [u8]) -> Result<Self> {
        need(buf, field::PAYLOAD, "Ethernet")?;
        Ok(Frame { buf })
    }

    /// Destination MAC address.
    pub fn dst(&self) -> [u8; 6] {
        self.buf[field::DST].try_into().unwrap_or_default()
    }

    /// Source MAC address.
    pub fn src(&self) -> [u8; 6] {
        self.buf[field::SRC].try_into().unwrap_or_default()
    }

    /// The EtherType field (or an 802.3 length when below 0x600).
    pub fn ethertype(&self) -> u16 {
        be16(self.buf, field::ETHERTYPE)
    }

    /// The bytes after the header.
    pub fn payload(&self) -> &'a [u8] {
        &self.buf[field::PAYLOAD..]
    }
}

/// Whether `ethertype` announces a VLAN tag.
pub fn is_vlan(ethertype: u16) -> bool {
    matches!(
        ethertype,
        ethertype::VLAN | ethertype::QINQ | ethertype::QINQ_OLD
    )
}

/// A VLAN tag: the 4 bytes after a VLAN EtherType.
#[derive(Debug, Clone, Copy)]
pub struct VlanTag<'a> {
    buf: &'a [u8],
}

impl<'a> VlanTag<'a> {
    /// Checks that `buf` holds the 4-byte tag.
    pub fn new_checked(buf: &'a [u8]) -> Result<Self> {
        need(buf, field::TAG_LEN, "VLAN tag")?;
        Ok(VlanTag { buf })
    }

    /// The VLAN identifier (12 bits).
    pub fn vid(&self) -> u16 {
        be16(self.buf, field::TAG_TCI) & 0x0fff
    }

    /// The EtherType of what follows the tag.
    pub fn ethertype(&self) -> u16 {
        be16(self.buf, field::TAG_ETHERTYPE)
    }

    /// The bytes after the tag.
    pub fn payload(&self) -> &'a [u8] {
        &self.buf[field::TAG_LEN..]
    }
}

/// Follows up to [`MAX_TAGS`] VLAN tags from `ethertype` over `payload`; returns the inner
/// EtherType and its payload.
pub fn skip_vlan_tags(mut ethertype: u16, mut payload: &[u8]) -> Result<(u16, &[u8])> {
    let mut tags = 0;
    while is_vlan(ethertype) {
        if tags == MAX_TAGS {
            return Err(WireError::Invalid("more than 4 VLAN tags"));
        }
        let tag = VlanTag::new_checked(payload)?;
        ethertype = tag.ethertype();
        payload = tag.payload();
        tags += 1;
    }
    Ok((ethertype, payload))
}

#[cfg(test)]
mod tests {
    use super::*;

    const FRAME: [u8; 22] = [
        1, 2, 3, 4, 5, 6, // dst
        7, 8, 9, 10, 11, 12, // src
        0x88, 0xa8, 0x00, 0x64, // QinQ outer tag, VID 100
        0x81, 0x00, 0x20, 0xc8, // 802.1Q inner tag, PCP 1, VID 200
        0x08, 0x00, // IPv4
    ];

    #[test]
    fn fields() {
        let f = Frame::new_checked(&FRAME).unwrap();
        assert_eq!(f.dst(), [1, 2, 3, 4, 5, 6]);
        assert_eq!(f.src(), [7, 8, 9, 10, 11, 12]);
        assert_eq!(f.ethertype(), ethertype::QINQ);
        assert_eq!(f.payload().len(), 8);
    }

    #[test]
    fn vlan_tag_fields() {
        let tag = VlanTag::new_checked(&FRAME[14..]).unwrap();
        assert_eq!(tag.vid(), 100);
        assert_eq!(tag.ethertype(), ethertype::VLAN);
        let inner = VlanTag::new_checked(tag.payload()).unwrap();
        assert_eq!(inner.vid(), 200);
    }

    #[test]
    fn qinq_is_skipped_to_the_inner_ethertype() {
        let f = Frame::new_checked(&FRAME).unwrap();
        let (et, rest) = skip_vlan_tags(f.ethertype(), f.payload()).unwrap();
        assert_eq!(et, ethertype::IPV4);
        assert!(rest.is_empty());
    }

    #[test]
    fn short_buffers_are_errors() {
        assert_eq!(
            Frame::new_checked(&FRAME[..13]).unwrap_err(),
            WireError::Truncated("Ethernet")
        );
        assert!(skip_vlan_tags(ethertype::VLAN, &[0, 1, 8]).is_err());
    }

    #[test]
    fn endless_tags_are_refused() {
        let tags = [0x00, 0x01, 0x81, 0x00].repeat(6); // TCI, then VLAN again
        assert_eq!(
            skip_vlan_tags(ethertype::VLAN, &tags).unwrap_err(),
            WireError::Invalid("more than 4 VLAN tags")
        );
    }
}
