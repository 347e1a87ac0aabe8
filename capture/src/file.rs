//! Capture files: pcap (micro- and nanosecond, either byte order) and pcapng, memory-mapped
//! and parsed in place (zero-copy: frames borrow the mapping); pcap record headers are read
//! directly, the file header and pcapng blocks with `pcap-parser`.
//!
//! A file that ends inside a record (a capture killed while writing) yields every complete
//! frame and then [`FileError::Truncated`]; a record whose header is impossible yields the
//! frames before it and then [`FileError::Corrupt`]. Either way nothing read is lost.

use std::fs::File;
use std::path::{Path, PathBuf};

use memmap2::{Advice, Mmap, UncheckedAdvice};
use pcap_parser::pcapng::{Block, parse_block_be, parse_block_le};
use pcap_parser::{PcapError, parse_pcap_header};

use crate::decode::LinkType;

/// A captured length above this is taken as corruption, not as a frame.
pub const MAX_CAPLEN: u32 = 1 << 20;

const PCAPNG_SHB: [u8; 4] = [0x0a, 0x0d, 0x0d, 0x0a];

/// Errors of capture files, each naming the file.
#[derive(Debug, thiserror::Error)]
pub enum FileError {
    /// The file could not be opened or mapped.
    #[error("cannot read {path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// What the OS said.
        source: std::io::Error,
    },
    /// The file has no bytes.
    #[error("{path} is empty (0 bytes): not a capture file")]
    Empty {
        /// The file.
        path: PathBuf,
    },
    /// Neither pcap nor pcapng.
    #[error(
        "{path} is not a capture file: it starts with {magic}, expected a pcap magic \
         (a1b2c3d4 or a1b23c4d, either byte order) or a pcapng section header (0a0d0d0a)"
    )]
    NotCapture {
        /// The file.
        path: PathBuf,
        /// The first bytes, hex.
        magic: String,
    },
    /// A link type this crate does not decode.
    #[error(
        "{path}: link type {code} is not supported; supported are Ethernet (1), raw IP (101, \
         12, 14), IPv4 (228), IPv6 (229), Linux SLL (113), SLL2 (276), loopback (0, 108)"
    )]
    LinkType {
        /// The file.
        path: PathBuf,
        /// The LINKTYPE value.
        code: i32,
    },
    /// The file ends inside a record.
    #[error(
        "{path} ends inside a record at byte {offset} (truncated capture); {frames} frames before it were read"
    )]
    Truncated {
        /// The file.
        path: PathBuf,
        /// Where the incomplete record starts.
        offset: u64,
        /// Frames read before it.
        frames: u64,
    },
    /// A record that cannot be right.
    #[error("{path} is corrupt at byte {offset}: {reason}; {frames} frames before it were read")]
    Corrupt {
        /// The file.
        path: PathBuf,
        /// Where the bad record starts.
        offset: u64,
        /// What is wrong.
        reason: String,
        /// Frames read before it.
        frames: u64,
    },
}

/// One frame of a file, borrowing the file's bytes.
#[derive(Debug, Clone, Copy)]
pub struct RawFrame<'a> {
    /// Link type of the frame's interface; `None` if the pcapng interface has a link type this
    /// crate does not decode.
    pub link: Option<LinkType>,
    /// Capture time, ns since the Unix epoch.
    pub ts_ns: u64,
    /// Length on the wire.
    pub wire_len: u32,
    /// The captured bytes.
    pub data: &'a [u8],
}

#[derive(Debug, Clone, Copy)]
enum Format {
    Pcap {
        big_endian: bool,
        nanos: bool,
        link: LinkType,
    },
    PcapNg,
}

/// An open capture file.
#[derive(Debug)]
pub struct CaptureFile {
    path: PathBuf,
    map: Mmap,
    format: Format,
}

impl CaptureFile {
    /// Opens and maps `path` and reads its header.
    pub fn open(path: &Path) -> Result<CaptureFile, FileError> {
        let io = |source| FileError::Io {
            path: path.to_path_buf(),
            source,
        };
        let file = File::open(path).map_err(io)?;
        if file.metadata().map_err(io)?.len() == 0 {
            return Err(FileError::Empty {
                path: path.to_path_buf(),
            });
        }
        // SAFETY: the mapping is read-only; a file truncated by another process while we read
        // it would fault, as with any reader of a file being rewritten.
        let map = unsafe { Mmap::map(&file) }.map_err(io)?;
        // Read-ahead hint only; failure changes nothing.
        let _ = map.advise(Advice::Sequential);
        let format = detect(path, &map)?;
        Ok(CaptureFile {
            path: path.to_path_buf(),
            map,
            format,
        })
    }

    /// The file's size in bytes.
    pub fn len(&self) -> u64 {
        self.map.len() as u64
    }

    /// Whether the file has no bytes (never true for an opened file).
    pub fn is_empty(&self) -> bool {
        self.map.is_empty()
    }

    /// The frames, in file order.
    pub fn frames(&self) -> Frames<'_> {
        let (offset, state) = match self.format {
            Format::Pcap { .. } => (24, None),
            Format::PcapNg => (0, Some(NgState::default())),
        };
        Frames {
            file: self,
            offset,
            frames: 0,
            ng: state,
            failed: false,
            released: 0,
            prefetched: 0,
        }
    }
}

fn detect(path: &Path, map: &[u8]) -> Result<Format, FileError> {
    let not_capture = || FileError::NotCapture {
        path: path.to_path_buf(),
        magic: map.iter().take(4).map(|b| format!("{b:02x}")).collect(),
    };
    if map.starts_with(&PCAPNG_SHB) {
        return Ok(Format::PcapNg);
    }
    if map.len() < 4 {
        return Err(not_capture());
    }
    let (_, header) = parse_pcap_header(map).map_err(|err| match err {
        nom::Err::Incomplete(_) => FileError::Truncated {
            path: path.to_path_buf(),
            offset: 0,
            frames: 0,
        },
        _ => not_capture(),
    })?;
    if header.is_modified_format() {
        return Err(not_capture());
    }
    let link = LinkType::from_code(header.network.0).ok_or_else(|| FileError::LinkType {
        path: path.to_path_buf(),
        code: header.network.0,
    })?;
    Ok(Format::Pcap {
        big_endian: header.is_bigendian(),
        nanos: header.is_nanosecond_precision(),
        link,
    })
}

/// How far ahead of the record being read the reader asks for the file's bytes.
const PREFETCH_AHEAD: usize = 4096;

const CACHE_LINE: usize = 64;

/// Asks the CPU to load every cache line of `map[from..to]`, four lines at a time (`from` is
/// a multiple of the cache line size); returns where it stopped. Records are found by
/// following each one's length to the next (a chain of dependent loads) and only their first
/// lines are read, an irregular pattern the hardware prefetcher does not follow: without
/// this, every record header is a full memory round trip. Streaming all lines ahead of the
/// reader costs memory bandwidth the machine has to spare instead.
#[inline]
fn prefetch(map: &[u8], from: usize, to: usize) -> usize {
    const CHUNK: usize = 4 * CACHE_LINE;
    let to = to.min(map.len());
    let mut at = from;
    while at < to {
        #[cfg(target_arch = "x86_64")]
        // SAFETY: prefetching is a hint: it never faults, whatever the address (the last
        // chunk may reach past the mapping; `wrapping_add` keeps the arithmetic defined).
        unsafe {
            use std::arch::x86_64::{_MM_HINT_T0, _mm_prefetch};
            let p = map.as_ptr().wrapping_add(at);
            _mm_prefetch::<_MM_HINT_T0>(p.cast());
            _mm_prefetch::<_MM_HINT_T0>(p.wrapping_add(CACHE_LINE).cast());
            _mm_prefetch::<_MM_HINT_T0>(p.wrapping_add(2 * CACHE_LINE).cast());
            _mm_prefetch::<_MM_HINT_T0>(p.wrapping_add(3 * CACHE_LINE).cast());
        }
        at += CHUNK;
    }
    at
}

/// One pcapng interface: link type and time stamp units.
#[derive(Debug, Clone, Copy)]
struct Interface {
    link: Option<LinkType>,
    units_per_s: u64,
    offset_s: i64,
}

#[derive(Debug, Default)]
struct NgState {
    big_endian: bool,
    interfaces: Vec<Interface>,
    last_ts_ns: u64,
}

/// Iterator over the frames of a [`CaptureFile`]; ends after the first error.
#[derive(Debug)]
pub struct Frames<'a> {
    file: &'a CaptureFile,
    offset: usize,
    frames: u64,
    ng: Option<NgState>,
    failed: bool,
    /// Bytes before this offset were handed back with [`Frames::release_read`].
    released: usize,
    /// Bytes before this offset were prefetched (a multiple of the cache line size).
    prefetched: usize,
}

impl<'a> Frames<'a> {
    /// Bytes of the file consumed so far (for progress).
    pub fn offset(&self) -> u64 {
        self.offset as u64
    }

    /// Lets the kernel drop the pages already read from this process's memory (they stay in
    /// the page cache), so reading a large file does not grow the resident set.
    pub fn release_read(&mut self) {
        const PAGE: usize = 4096;
        let upto = self.offset / PAGE * PAGE;
        if upto > self.released {
            // SAFETY: the mapping is shared and read-only: dropped pages are read again from
            // the file if touched, so frames borrowed from them stay valid.
            let _ = unsafe {
                self.file.map.unchecked_advise_range(
                    UncheckedAdvice::DontNeed,
                    self.released,
                    upto - self.released,
                )
            };
            self.released = upto;
        }
    }

    fn truncated(&mut self) -> Option<Result<RawFrame<'a>, FileError>> {
        self.failed = true;
        Some(Err(FileError::Truncated {
            path: self.file.path.clone(),
            offset: self.offset as u64,
            frames: self.frames,
        }))
    }

    fn corrupt(&mut self, reason: String) -> Option<Result<RawFrame<'a>, FileError>> {
        self.failed = true;
        Some(Err(FileError::Corrupt {
            path: self.file.path.clone(),
            offset: self.offset as u64,
            reason,
            frames: self.frames,
        }))
    }

    #[inline]
    fn next_pcap(
        &mut self,
        big_endian: bool,
        nanos: bool,
        link: LinkType,
    ) -> Option<Result<RawFrame<'a>, FileError>> {
        let map: &'a [u8] = &self.file.map;
        let rest = &map[self.offset..];
        if rest.is_empty() {
            return None;
        }
        // The record header: seconds, micro- or nanoseconds, captured and original length.
        let Some(header) = rest.get(..16) else {
            return self.truncated();
        };
        let field = |i: usize| {
            let bytes = [header[i], header[i + 1], header[i + 2], header[i + 3]];
            if big_endian {
                u32::from_be_bytes(bytes)
            } else {
                u32::from_le_bytes(bytes)
            }
        };
        let (ts_s, ts_frac, caplen, origlen) = (field(0), field(4), field(8), field(12));
        if caplen > MAX_CAPLEN {
            return self.corrupt(format!(
                "record claims {caplen} captured bytes (more than {MAX_CAPLEN})"
            ));
        }
        let Some(data) = rest.get(16..16 + caplen as usize) else {
            return self.truncated();
        };
        self.offset += 16 + data.len();
        self.frames += 1;
        let frac_ns = if nanos {
            u64::from(ts_frac)
        } else {
            u64::from(ts_frac) * 1000
        };
        Some(Ok(RawFrame {
            link: Some(link),
            ts_ns: u64::from(ts_s) * 1_000_000_000 + frac_ns,
            wire_len: origlen.max(caplen),
            data,
        }))
    }

    #[inline(never)]
    fn next_ng(&mut self) -> Option<Result<RawFrame<'a>, FileError>> {
        let map: &'a [u8] = &self.file.map;
        loop {
            let rest = &map[self.offset..];
            if rest.is_empty() {
                return None;
            }
            let state = self.ng.as_mut()?;
            if rest.starts_with(&PCAPNG_SHB) && rest.len() >= 12 {
                // A new section may change the byte order.
                state.big_endian = rest[8..12] == [0x1a, 0x2b, 0x3c, 0x4d];
            }
            let parsed = if state.big_endian {
                parse_block_be(rest)
            } else {
                parse_block_le(rest)
            };
            let block = match parsed {
                Ok((after, block)) => {
                    self.offset = map.len() - after.len();
                    block
                }
                Err(nom::Err::Incomplete(_)) => return self.truncated(),
                Err(nom::Err::Error(e) | nom::Err::Failure(e)) => {
                    let reason = match e {
                        PcapError::NomError(_, kind) => format!("bad block ({kind:?})"),
                        other => format!("bad block ({other:?})"),
                    };
                    return self.corrupt(reason);
                }
            };
            let state = self.ng.as_mut()?;
            match block {
                Block::SectionHeader(_) => state.interfaces.clear(),
                Block::InterfaceDescription(idb) => {
                    let Some(units_per_s) = idb.ts_resolution() else {
                        return self.corrupt(format!(
                            "interface time resolution code {} is invalid",
                            idb.if_tsresol
                        ));
                    };
                    state.interfaces.push(Interface {
                        link: LinkType::from_code(idb.linktype.0),
                        units_per_s,
                        offset_s: idb.ts_offset(),
                    });
                }
                Block::EnhancedPacket(epb) => {
                    let Some(iface) = state.interfaces.get(epb.if_id as usize).copied() else {
                        return self.corrupt(format!(
                            "packet of interface {} that was never described",
                            epb.if_id
                        ));
                    };
                    let units = (u64::from(epb.ts_high) << 32) | u64::from(epb.ts_low);
                    let ns = u128::from(units) * 1_000_000_000 / u128::from(iface.units_per_s);
                    let ts_ns = (ns as i128 + i128::from(iface.offset_s) * 1_000_000_000)
                        .clamp(0, i128::from(u64::MAX)) as u64;
                    state.last_ts_ns = ts_ns;
                    self.frames += 1;
                    return Some(Ok(RawFrame {
                        link: iface.link,
                        ts_ns,
                        wire_len: epb.origlen.max(epb.caplen),
                        data: &epb.data[..(epb.caplen as usize).min(epb.data.len())],
                    }));
                }
                Block::SimplePacket(spb) => {
                    let Some(iface) = state.interfaces.first().copied() else {
                        return self.corrupt("simple packet before any interface".into());
                    };
                    self.frames += 1;
                    return Some(Ok(RawFrame {
                        link: iface.link,
                        ts_ns: state.last_ts_ns,
                        wire_len: spb.origlen,
                        data: &spb.data[..(spb.origlen as usize).min(spb.data.len())],
                    }));
                }
                _ => {}
            }
        }
    }
}

impl<'a> Iterator for Frames<'a> {
    type Item = Result<RawFrame<'a>, FileError>;

    #[inline]
    fn next(&mut self) -> Option<Self::Item> {
        if self.failed {
            return None;
        }
        let ahead = self.offset + PREFETCH_AHEAD;
        if ahead > self.prefetched {
            self.prefetched = prefetch(&self.file.map, self.prefetched, ahead);
        }
        match self.file.format {
            Format::Pcap {
                big_endian,
                nanos,
                link,
            } => self.next_pcap(big_endian, nanos, link),
            Format::PcapNg => self.next_ng(),
        }
    }
}
