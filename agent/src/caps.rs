//! Dropping every capability but the few the agent needs, after setup.
//!
//! Kept when held (see [`KEPT`]): CAP_NET_ADMIN to program qdiscs, classes, filters and IFB
//! links; CAP_NET_RAW for packet capture (the capture endpoints); and, optionally,
//! CAP_SYS_ADMIN, which unshare(2) of the scratch namespace where the shaper probes the
//! kernel's tc features, and setns(2) into the network namespace of a shaped or captured
//! interface, require. The agent refuses to start without the two network capabilities
//! ([`missing`]); without CAP_SYS_ADMIN it works on the interfaces of its own namespace, takes
//! the tc features as present (a missing one shows as the kernel's refusal), and refuses plans
//! and captures naming another namespace with a message saying so. Everything else (file
//! ownership overrides, module loading, ptrace, ...) is removed from the effective, permitted,
//! inheritable, ambient and bounding sets, and no-new-privileges is set, so neither the agent
//! nor anything it runs can regain them. Capabilities are per thread on Linux: call
//! [`drop_all_but_kept`] on the main thread before any other thread is started.

use std::io;

/// The capabilities kept when held: (number, name, why).
pub const KEPT: [(u32, &str, &str); 3] = [
    (
        12,
        "CAP_NET_ADMIN",
        "program qdiscs, classes, filters and IFB devices",
    ),
    (13, "CAP_NET_RAW", "capture packets"),
    (
        21,
        "CAP_SYS_ADMIN",
        "optional: probe tc features in a scratch network namespace, and enter the network namespace a plan or capture names (setns)",
    ),
];

/// The capabilities the agent cannot start without: the first two of [`KEPT`].
pub const REQUIRED: usize = 2;

const LINUX_CAPABILITY_VERSION_3: u32 = 0x2008_0522;

#[repr(C)]
struct CapHeader {
    version: u32,
    pid: i32,
}

#[repr(C)]
#[derive(Clone, Copy, Default)]
struct CapData {
    effective: u32,
    permitted: u32,
    inheritable: u32,
}

fn kept_mask() -> u64 {
    KEPT.iter().fold(0, |mask, (cap, _, _)| mask | 1 << cap)
}

/// Drops every capability not in [`KEPT`] from the calling thread (and so from threads it
/// starts later), and sets no-new-privileges.
pub fn drop_all_but_kept() -> io::Result<()> {
    let check = |ret: libc::c_int| {
        if ret < 0 {
            Err(io::Error::last_os_error())
        } else {
            Ok(())
        }
    };
    let last: u32 = std::fs::read_to_string("/proc/sys/kernel/cap_last_cap")
        .ok()
        .and_then(|s| s.trim().parse().ok())
        .unwrap_or(40);
    let kept = kept_mask();
    for cap in 0..=last {
        // Only what is still bounded: dropping needs CAP_SETPCAP, which a service started with
        // a bounding set of only the kept capabilities (systemd, `docker --cap-drop ALL`) lacks
        // and does not need.
        // SAFETY: prctl with integer arguments only.
        let bounded = unsafe { libc::prctl(libc::PR_CAPBSET_READ, cap as libc::c_ulong, 0, 0, 0) };
        if kept & (1 << cap) == 0 && bounded == 1 {
            // SAFETY: as above.
            check(unsafe { libc::prctl(libc::PR_CAPBSET_DROP, cap as libc::c_ulong, 0, 0, 0) })?;
        }
    }
    // SAFETY: as above.
    check(unsafe {
        libc::prctl(
            libc::PR_CAP_AMBIENT,
            libc::PR_CAP_AMBIENT_CLEAR_ALL as libc::c_ulong,
            0,
            0,
            0,
        )
    })?;
    let mut header = CapHeader {
        version: LINUX_CAPABILITY_VERSION_3,
        pid: 0,
    };
    let mut data = [CapData::default(); 2];
    // SAFETY: capget fills the two structs version 3 defines.
    check(
        unsafe { libc::syscall(libc::SYS_capget, &mut header, data.as_mut_ptr()) } as libc::c_int,
    )?;
    for (i, word) in data.iter_mut().enumerate() {
        let keep = (kept >> (32 * i)) as u32;
        word.effective &= keep;
        word.permitted &= keep;
        word.inheritable = 0;
    }
    // SAFETY: as above, with the structs capget filled.
    check(unsafe { libc::syscall(libc::SYS_capset, &header, data.as_ptr()) } as libc::c_int)?;
    // SAFETY: as above.
    check(unsafe { libc::prctl(libc::PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) })?;
    Ok(())
}

/// The required capabilities the calling thread lacks (effective set): (name, why it is
/// needed).
pub fn missing() -> Vec<(&'static str, &'static str)> {
    let held = TaskCaps::of("thread-self").map_or(0, |c| c.effective);
    KEPT[..REQUIRED]
        .iter()
        .filter(|(cap, _, _)| held & (1 << cap) == 0)
        .map(|(_, name, why)| (*name, *why))
        .collect()
}

/// The names of the kept capabilities the calling thread holds (effective): what the agent can
/// do, which is less than [`KEPT`] where it was started with fewer (a container without
/// CAP_SYS_ADMIN cannot enter other network namespaces).
pub fn held_names() -> Vec<String> {
    let held = TaskCaps::of("thread-self").map_or(0, |c| c.effective);
    KEPT.iter()
        .filter(|(cap, _, _)| held & (1 << cap) != 0)
        .map(|(_, name, _)| name.to_string())
        .collect()
}

/// The capability sets of a task, and its no-new-privileges flag, as /proc shows them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TaskCaps {
    /// `CapEff`.
    pub effective: u64,
    /// `CapPrm`.
    pub permitted: u64,
    /// `CapInh`.
    pub inheritable: u64,
    /// `CapBnd`.
    pub bounding: u64,
    /// `CapAmb`.
    pub ambient: u64,
    /// `NoNewPrivs`.
    pub no_new_privs: bool,
}

impl TaskCaps {
    /// The sets of `task` under /proc: a pid, `self`, or `PID/task/TID` for one thread.
    pub fn of(task: &str) -> Option<TaskCaps> {
        let status = std::fs::read_to_string(format!("/proc/{task}/status")).ok()?;
        let field = |name: &str| {
            status
                .lines()
                .find_map(|l| l.strip_prefix(name)?.strip_prefix(':'))
                .map(str::trim)
        };
        let mask = |name: &str| u64::from_str_radix(field(name)?, 16).ok();
        Some(TaskCaps {
            effective: mask("CapEff")?,
            permitted: mask("CapPrm")?,
            inheritable: mask("CapInh")?,
            bounding: mask("CapBnd")?,
            ambient: mask("CapAmb")?,
            no_new_privs: field("NoNewPrivs")? == "1",
        })
    }

    /// What a task has after [`drop_all_but_kept`].
    pub fn kept() -> TaskCaps {
        let kept = kept_mask();
        TaskCaps {
            effective: kept,
            permitted: kept,
            inheritable: 0,
            bounding: kept,
            ambient: 0,
            no_new_privs: true,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Removes capability `cap` from the calling thread's effective and permitted sets.
    fn give_up(cap: u32) {
        let mut header = CapHeader {
            version: LINUX_CAPABILITY_VERSION_3,
            pid: 0,
        };
        let mut data = [CapData::default(); 2];
        // SAFETY: capget/capset with the two structs version 3 defines.
        unsafe {
            libc::syscall(libc::SYS_capget, &mut header, data.as_mut_ptr());
            data[0].effective &= !(1 << cap);
            data[0].permitted &= !(1 << cap);
            libc::syscall(libc::SYS_capset, &header, data.as_ptr());
        }
    }

    #[test]
    fn missing_names_the_required_capabilities_a_thread_lacks() {
        assert!(missing().is_empty(), "the tests run as root");
        let lacking = std::thread::spawn(|| {
            give_up(21);
            give_up(13);
            missing()
        })
        .join()
        .unwrap();
        let names: Vec<_> = lacking.iter().map(|(name, _)| *name).collect();
        assert_eq!(names, ["CAP_NET_RAW"], "CAP_SYS_ADMIN is optional");
        assert_eq!(lacking[0].1, "capture packets");
    }

    #[test]
    fn a_thread_keeps_exactly_the_listed_capabilities() {
        let caps = std::thread::spawn(|| {
            drop_all_but_kept().unwrap();
            // SAFETY: gettid has no preconditions.
            let tid = unsafe { libc::gettid() };
            TaskCaps::of(&format!("self/task/{tid}"))
        })
        .join()
        .unwrap();
        assert_eq!(caps, Some(TaskCaps::kept()));
        assert_eq!(TaskCaps::kept().effective, 1 << 12 | 1 << 13 | 1 << 21);
        assert_eq!(
            std::thread::spawn(|| {
                drop_all_but_kept().unwrap();
                held_names()
            })
            .join()
            .unwrap(),
            ["CAP_NET_ADMIN", "CAP_NET_RAW", "CAP_SYS_ADMIN"]
        );
        assert_ne!(
            TaskCaps::of("self").unwrap().effective & (1 << 1),
            0,
            "other threads keep theirs"
        );
    }

    #[test]
    fn a_service_bounded_to_the_kept_capabilities_needs_no_cap_setpcap() {
        // As systemd (CapabilityBoundingSet=) or `docker --cap-drop ALL --cap-add ...` start
        // it: only the kept capabilities bounded, and no CAP_SETPCAP to drop anything.
        let outcome = std::thread::spawn(|| {
            for cap in 0..=40u32 {
                if kept_mask() & (1 << cap) == 0 {
                    // SAFETY: prctl with integer arguments only (EINVAL past the last cap).
                    unsafe { libc::prctl(libc::PR_CAPBSET_DROP, cap as libc::c_ulong, 0, 0, 0) };
                }
            }
            give_up(8);
            let no_setpcap = TaskCaps::of("thread-self").unwrap().effective & (1 << 8) == 0;
            (no_setpcap, drop_all_but_kept().map(|()| held_names()))
        })
        .join()
        .unwrap();
        assert!(outcome.0, "CAP_SETPCAP was not removed for the test");
        assert_eq!(outcome.1.unwrap().len(), KEPT.len());
    }
}
