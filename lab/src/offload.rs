//! Segmentation offloads (TSO, GSO, GRO) through the SIOCETHTOOL ioctl.
//!
//! veth devices hand 64 KiB super-frames to the stack when these are on; a lab turns them off
//! so that frames are wire-sized as on a real NIC, queues in bytes mean what they say and
//! captures see real packets. The legacy per-feature ioctl commands are used: they are stable
//! and need no generic-netlink family lookup.

use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};

const SIOCETHTOOL: libc::c_ulong = 0x8946;

/// One offload feature with its legacy ethtool get/set command numbers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Offload {
    /// TCP segmentation offload (all TSO variants).
    Tso,
    /// Generic segmentation offload.
    Gso,
    /// Generic receive offload.
    Gro,
}

impl Offload {
    /// The three offloads a lab turns off.
    pub const ALL: [Offload; 3] = [Offload::Tso, Offload::Gso, Offload::Gro];

    fn commands(self) -> (u32, u32) {
        // (get, set) from linux/ethtool.h
        match self {
            Offload::Tso => (0x1e, 0x1f),
            Offload::Gso => (0x23, 0x24),
            Offload::Gro => (0x2b, 0x2c),
        }
    }
}

#[repr(C)]
struct EthtoolValue {
    cmd: u32,
    data: u32,
}

/// Whether `offload` is on for interface `ifname` in the calling thread's namespace.
pub fn get(ifname: &str, offload: Offload) -> io::Result<bool> {
    let mut value = EthtoolValue {
        cmd: offload.commands().0,
        data: 0,
    };
    ethtool_ioctl(ifname, &mut value)?;
    Ok(value.data != 0)
}

/// Turns `offload` on or off for interface `ifname` in the calling thread's namespace.
pub fn set(ifname: &str, offload: Offload, on: bool) -> io::Result<()> {
    let mut value = EthtoolValue {
        cmd: offload.commands().1,
        data: u32::from(on),
    };
    ethtool_ioctl(ifname, &mut value)
}

fn ethtool_ioctl(ifname: &str, value: &mut EthtoolValue) -> io::Result<()> {
    if ifname.is_empty() || ifname.len() >= libc::IFNAMSIZ {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            format!("interface name '{ifname}' must be 1 to 15 bytes"),
        ));
    }
    // SAFETY: plain socket(2); the descriptor is owned right away.
    let raw = unsafe { libc::socket(libc::AF_INET, libc::SOCK_DGRAM | libc::SOCK_CLOEXEC, 0) };
    if raw < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: `raw` is a fresh descriptor nobody else owns.
    let socket = unsafe { OwnedFd::from_raw_fd(raw) };
    // SAFETY: ifreq is plain data; all-zero is a valid value.
    let mut request: libc::ifreq = unsafe { std::mem::zeroed() };
    for (dst, src) in request.ifr_name.iter_mut().zip(ifname.bytes()) {
        *dst = src as libc::c_char;
    }
    request.ifr_ifru.ifru_data = (value as *mut EthtoolValue).cast();
    // SAFETY: the request points at a live EthtoolValue for the duration of the call.
    let rc = unsafe { libc::ioctl(socket.as_raw_fd(), SIOCETHTOOL as _, &mut request) };
    if rc < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unknown_interfaces_and_bad_names_are_errors() {
        let err = get("qlnosuchif0", Offload::Tso).unwrap_err();
        assert_eq!(err.raw_os_error(), Some(libc::ENODEV));
        let err = set("", Offload::Gro, false).unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::InvalidInput);
        assert!(get("a-name-far-too-long", Offload::Gso).is_err());
    }
}
