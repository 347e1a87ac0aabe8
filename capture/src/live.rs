//! Live capture from a network interface through an AF_PACKET socket (no libpcap needed),
//! optionally inside a network namespace, with the kernel's drop counter.
//!
//! The socket sees both directions of the interface. Each frame carries the kernel's receive
//! time stamp (`SO_TIMESTAMPNS`) and its full length (`MSG_TRUNC`), so frames longer than the
//! buffer still count their bytes.

use std::ffi::CString;
use std::io;
use std::mem::{size_of, zeroed};
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use qoelab_lab::NetNs;

use crate::decode::LinkType;

/// Bytes kept of each frame: enough for any header chain.
pub const SNAPLEN: usize = 65_535;

/// The socket receive buffer asked for, so bursts do not overflow it.
pub const RECV_BUFFER_BYTES: i32 = 64 << 20;

/// Errors opening a live source.
#[derive(Debug, thiserror::Error)]
pub enum LiveError {
    /// The namespace does not exist or cannot be entered.
    #[error(
        "cannot enter network namespace '{name}': {source}{}",
        if .source.kind() == io::ErrorKind::NotFound { " (is it listed by `ip netns list`?)" } else { "" }
    )]
    Netns {
        /// The namespace.
        name: String,
        /// What the OS said.
        source: io::Error,
    },
    /// No such interface.
    #[error("interface '{name}' does not exist{where_}")]
    NoInterface {
        /// The interface.
        name: String,
        /// " in namespace X", or empty.
        where_: String,
    },
    /// Capturing needs CAP_NET_RAW.
    #[error("opening a packet socket needs root or CAP_NET_RAW: {0}")]
    Permission(io::Error),
    /// The interface's link layer is not one the decoder handles.
    #[error(
        "interface '{name}' has hardware type {arphrd}, which is not supported (Ethernet, loopback and raw IP are)"
    )]
    LinkType {
        /// The interface.
        name: String,
        /// Its ARPHRD_* type.
        arphrd: u16,
    },
    /// Any other failure of a system call.
    #[error("{what}: {source}")]
    Os {
        /// What was being done.
        what: String,
        /// What the OS said.
        source: io::Error,
    },
}

/// One received frame, borrowing the source's buffer.
#[derive(Debug, Clone, Copy)]
pub struct LiveFrame<'a> {
    /// Kernel receive time, ns since the Unix epoch.
    pub ts_ns: u64,
    /// Length on the wire.
    pub wire_len: u32,
    /// The captured bytes (at most [`SNAPLEN`]).
    pub data: &'a [u8],
}

/// An AF_PACKET socket bound to one interface.
#[derive(Debug)]
pub struct LiveSource {
    fd: OwnedFd,
    link: LinkType,
    buf: Vec<u8>,
    drops: u64,
}

impl LiveSource {
    /// Opens a packet socket on `interface`, inside namespace `netns` if given (the socket
    /// stays in that namespace; the calling thread does not change namespace).
    pub fn open(interface: &str, netns: Option<&str>) -> Result<LiveSource, LiveError> {
        match netns {
            None => open_here(interface, ""),
            Some(name) => {
                let ns = NetNs::open(name).map_err(|source| LiveError::Netns {
                    name: name.to_string(),
                    source,
                })?;
                let where_ = format!(" in network namespace '{name}'");
                ns.run(|| open_here(interface, &where_))
                    .map_err(|source| LiveError::Netns {
                        name: name.to_string(),
                        source,
                    })?
            }
        }
    }

    /// The link layer of the frames.
    pub fn link(&self) -> LinkType {
        self.link
    }

    /// Waits up to `timeout` for a frame; `Ok(None)` if none came.
    pub fn next_frame(&mut self, timeout: Duration) -> io::Result<Option<LiveFrame<'_>>> {
        let fd = self.fd.as_raw_fd();
        let mut pfd = libc::pollfd {
            fd,
            events: libc::POLLIN,
            revents: 0,
        };
        let ms = timeout.as_millis().min(i32::MAX as u128) as i32;
        // SAFETY: one valid pollfd.
        let ready = unsafe { libc::poll(&mut pfd, 1, ms) };
        if ready < 0 {
            let err = io::Error::last_os_error();
            return if err.kind() == io::ErrorKind::Interrupted {
                Ok(None)
            } else {
                Err(err)
            };
        }
        if ready == 0 {
            return Ok(None);
        }
        self.receive()
    }

    fn receive(&mut self) -> io::Result<Option<LiveFrame<'_>>> {
        let mut iov = libc::iovec {
            iov_base: self.buf.as_mut_ptr().cast(),
            iov_len: self.buf.len(),
        };
        // Room for one timespec control message.
        let mut control = [0u64; 8];
        // SAFETY: msghdr is plain data; zeroed is a valid empty header.
        let mut msg: libc::msghdr = unsafe { zeroed() };
        msg.msg_iov = &mut iov;
        msg.msg_iovlen = 1;
        msg.msg_control = control.as_mut_ptr().cast();
        msg.msg_controllen = size_of::<[u64; 8]>();
        // SAFETY: msg points at live buffers of the sizes given.
        let n = unsafe {
            libc::recvmsg(
                self.fd.as_raw_fd(),
                &mut msg,
                libc::MSG_TRUNC | libc::MSG_DONTWAIT,
            )
        };
        if n < 0 {
            let err = io::Error::last_os_error();
            return match err.kind() {
                io::ErrorKind::WouldBlock | io::ErrorKind::Interrupted => Ok(None),
                _ => Err(err),
            };
        }
        let wire_len = n as usize;
        let ts_ns = timestamp(&msg).unwrap_or_else(now_ns);
        Ok(Some(LiveFrame {
            ts_ns,
            wire_len: wire_len as u32,
            data: &self.buf[..wire_len.min(self.buf.len())],
        }))
    }

    /// Packets the kernel dropped for this socket since it was opened (its buffer was full).
    pub fn kernel_drops(&mut self) -> io::Result<u64> {
        // SAFETY: tpacket_stats is plain data.
        let mut stats: libc::tpacket_stats = unsafe { zeroed() };
        let mut len = size_of::<libc::tpacket_stats>() as libc::socklen_t;
        // SAFETY: stats and len describe a valid buffer. Reading resets the kernel counters.
        let rc = unsafe {
            libc::getsockopt(
                self.fd.as_raw_fd(),
                libc::SOL_PACKET,
                libc::PACKET_STATISTICS,
                (&mut stats as *mut libc::tpacket_stats).cast(),
                &mut len,
            )
        };
        if rc != 0 {
            return Err(io::Error::last_os_error());
        }
        self.drops += u64::from(stats.tp_drops);
        Ok(self.drops)
    }
}

/// The current time, ns since the epoch.
pub fn now_ns() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_nanos() as u64)
        .unwrap_or_default()
}

fn timestamp(msg: &libc::msghdr) -> Option<u64> {
    // SAFETY: the CMSG macros walk the control buffer the kernel filled, within its length.
    unsafe {
        let mut cmsg = libc::CMSG_FIRSTHDR(msg);
        while !cmsg.is_null() {
            if (*cmsg).cmsg_level == libc::SOL_SOCKET && (*cmsg).cmsg_type == libc::SCM_TIMESTAMPNS
            {
                let ts = std::ptr::read_unaligned(libc::CMSG_DATA(cmsg).cast::<libc::timespec>());
                return Some(ts.tv_sec as u64 * 1_000_000_000 + ts.tv_nsec as u64);
            }
            cmsg = libc::CMSG_NXTHDR(msg, cmsg);
        }
    }
    None
}

fn os(what: &str) -> impl FnOnce(io::Error) -> LiveError + '_ {
    move |source| LiveError::Os {
        what: what.to_string(),
        source,
    }
}

fn set_int(fd: &OwnedFd, level: i32, name: i32, value: i32) -> io::Result<()> {
    // SAFETY: a valid int option.
    let rc = unsafe {
        libc::setsockopt(
            fd.as_raw_fd(),
            level,
            name,
            (&value as *const i32).cast(),
            size_of::<i32>() as libc::socklen_t,
        )
    };
    if rc == 0 {
        Ok(())
    } else {
        Err(io::Error::last_os_error())
    }
}

/// Opens the socket in the current thread's namespace.
fn open_here(interface: &str, where_: &str) -> Result<LiveSource, LiveError> {
    let no_interface = || LiveError::NoInterface {
        name: interface.to_string(),
        where_: where_.to_string(),
    };
    let c_name = CString::new(interface).map_err(|_| no_interface())?;
    // SAFETY: a valid C string.
    let ifindex = unsafe { libc::if_nametoindex(c_name.as_ptr()) };
    if ifindex == 0 {
        return Err(no_interface());
    }
    let protocol = (libc::ETH_P_ALL as u16).to_be();
    // SAFETY: plain socket(2).
    let raw = unsafe { libc::socket(libc::AF_PACKET, libc::SOCK_RAW, i32::from(protocol)) };
    if raw < 0 {
        let err = io::Error::last_os_error();
        return Err(match err.raw_os_error() {
            Some(libc::EPERM | libc::EACCES) => LiveError::Permission(err),
            _ => LiveError::Os {
                what: "open packet socket".into(),
                source: err,
            },
        });
    }
    // SAFETY: raw is a fresh descriptor we own.
    let fd = unsafe { OwnedFd::from_raw_fd(raw) };
    let link = link_type(&fd, interface)?;
    // SAFETY: sockaddr_ll is plain data.
    let mut addr: libc::sockaddr_ll = unsafe { zeroed() };
    addr.sll_family = libc::AF_PACKET as u16;
    addr.sll_protocol = protocol;
    addr.sll_ifindex = ifindex as i32;
    // SAFETY: addr is a valid sockaddr_ll of the given size.
    let rc = unsafe {
        libc::bind(
            fd.as_raw_fd(),
            (&addr as *const libc::sockaddr_ll).cast(),
            size_of::<libc::sockaddr_ll>() as libc::socklen_t,
        )
    };
    if rc != 0 {
        return Err(os("bind packet socket")(io::Error::last_os_error()));
    }
    // A large buffer absorbs bursts; FORCE needs CAP_NET_ADMIN, the plain one is capped by
    // net.core.rmem_max.
    if set_int(
        &fd,
        libc::SOL_SOCKET,
        libc::SO_RCVBUFFORCE,
        RECV_BUFFER_BYTES,
    )
    .is_err()
    {
        let _ = set_int(&fd, libc::SOL_SOCKET, libc::SO_RCVBUF, RECV_BUFFER_BYTES);
    }
    set_int(&fd, libc::SOL_SOCKET, libc::SO_TIMESTAMPNS, 1).map_err(os("enable time stamps"))?;
    let mut source = LiveSource {
        fd,
        link,
        buf: vec![0; SNAPLEN],
        drops: 0,
    };
    // Start the drop counter at zero for this capture.
    source
        .kernel_drops()
        .map_err(os("read packet statistics"))?;
    source.drops = 0;
    Ok(source)
}

fn link_type(fd: &OwnedFd, interface: &str) -> Result<LinkType, LiveError> {
    // SAFETY: ifreq is plain data; the name fits (checked by if_nametoindex, ≤ 15 bytes).
    let mut req: libc::ifreq = unsafe { zeroed() };
    for (dst, src) in req.ifr_name.iter_mut().zip(interface.bytes()) {
        *dst = src as libc::c_char;
    }
    // SAFETY: SIOCGIFHWADDR fills ifr_hwaddr of a valid ifreq.
    let rc = unsafe { libc::ioctl(fd.as_raw_fd(), libc::SIOCGIFHWADDR, &mut req) };
    if rc != 0 {
        return Err(os("read the interface's hardware type")(
            io::Error::last_os_error(),
        ));
    }
    // SAFETY: the kernel set the hwaddr member.
    let arphrd = unsafe { req.ifr_ifru.ifru_hwaddr.sa_family };
    match arphrd {
        libc::ARPHRD_ETHER | libc::ARPHRD_LOOPBACK => Ok(LinkType::Ethernet),
        libc::ARPHRD_NONE | libc::ARPHRD_TUNNEL | libc::ARPHRD_TUNNEL6 | libc::ARPHRD_IPGRE => {
            Ok(LinkType::Raw)
        }
        _ => Err(LiveError::LinkType {
            name: interface.to_string(),
            arphrd,
        }),
    }
}
