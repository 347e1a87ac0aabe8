//! Zero-copy views over packet headers, one file per protocol.
//!
//! The contract, as in smoltcp's `wire` module:
//! - a view (`Frame`, `Ipv4Packet`, `TcpSegment`, …) borrows the bytes and copies nothing;
//! - `new_checked` validates every length the accessors rely on, so **accessors never panic**
//!   and never read past the buffer, whatever the bytes are;
//! - field offsets are named ranges in a `field` module, next to the view that uses them.
//!
//! Views decode only what flow statistics need. Checksums are not verified: a capture point
//! sees locally sent packets before the NIC fills in their checksums.
//!
//! Lengths that a snaplen may cut (IP total length, payload lengths) come from the headers,
//! never from the number of captured bytes, so truncated captures still count every byte.

pub mod ethernet;
pub mod icmp;
pub mod ipv4;
pub mod ipv6;
pub mod sll;
pub mod tcp;
pub mod udp;

/// Why bytes could not be read as a header.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum WireError {
    /// Fewer bytes than the header needs.
    #[error("{0} header truncated")]
    Truncated(&'static str),
    /// A field holds a value the protocol does not allow.
    #[error("{0}")]
    Invalid(&'static str),
}

/// The result of a header parse.
pub type Result<T> = std::result::Result<T, WireError>;

/// Reads a big-endian u16 at `at`; the caller has checked the length.
#[inline]
pub(crate) fn be16(b: &[u8], at: usize) -> u16 {
    let bytes: [u8; 2] = b[at..at + 2].try_into().expect("two bytes");
    u16::from_be_bytes(bytes)
}

/// Reads a big-endian u32 at `at`; the caller has checked the length.
#[inline]
pub(crate) fn be32(b: &[u8], at: usize) -> u32 {
    let bytes: [u8; 4] = b[at..at + 4].try_into().expect("four bytes");
    u32::from_be_bytes(bytes)
}

/// Fails with `Truncated(what)` unless `buf` holds at least `len` bytes.
#[inline]
pub(crate) fn need(buf: &[u8], len: usize, what: &'static str) -> Result<()> {
    if buf.len() < len {
        Err(WireError::Truncated(what))
    } else {
        Ok(())
    }
}
