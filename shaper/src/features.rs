//! Which tc features this kernel has, found by trying them once in a scratch network namespace.
//!
//! The probe runs on a thread that unshares a fresh, unnamed network namespace: nothing it
//! creates is visible anywhere else, and all of it vanishes with the thread. Each feature is
//! tried for real (an HTB qdisc on `lo`, an IFB device, a u32 filter with a mirred redirect
//! ...); a kernel that does not know a qdisc kind answers ENOENT or EOPNOTSUPP.

use std::io;

use serde::{Deserialize, Serialize};

use crate::netlink::{KernelError, Rtnl};
use crate::tc::{self, Mode};
use crate::wire;

/// tc features of the running kernel.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Features {
    /// The HTB qdisc (required for shaping).
    pub htb: bool,
    /// The byte fifo, used as the queue of every class.
    pub bfifo: bool,
    /// The token bucket filter.
    pub tbf: bool,
    /// netem: delay, jitter, loss (needed for impairments).
    pub netem: bool,
    /// The ingress qdisc (needed for ingress shaping).
    pub ingress: bool,
    /// IFB devices (needed for ingress shaping).
    pub ifb: bool,
    /// The u32 classifier (needed for class matches).
    pub u32: bool,
    /// The mirred action (needed for ingress shaping).
    pub mirred: bool,
    /// Whether the kernel was probed; if not (no CAP_SYS_ADMIN for the scratch namespace),
    /// every feature is taken as present and a missing one shows as the kernel's refusal.
    pub probed: bool,
}

impl Features {
    /// Everything present; for tests of validation.
    pub fn all() -> Features {
        Features {
            htb: true,
            bfifo: true,
            tbf: true,
            netem: true,
            ingress: true,
            ifb: true,
            u32: true,
            mirred: true,
            probed: true,
        }
    }

    /// Every feature taken as present without a probe.
    pub fn assumed() -> Features {
        Features {
            probed: false,
            ..Features::all()
        }
    }

    /// Probes the running kernel in a scratch namespace.
    pub fn probe() -> io::Result<Features> {
        std::thread::spawn(|| {
            nix::sched::unshare(nix::sched::CloneFlags::CLONE_NEWNET)?;
            probe_here()
        })
        .join()
        .unwrap_or_else(|_| Err(io::Error::other("the feature probe panicked")))
    }

    /// Every feature: whether it is present, and its name with its kernel option.
    fn named(&self) -> [(bool, &'static str); 8] {
        [
            (self.htb, HTB),
            (self.bfifo, BFIFO),
            (self.u32, U32),
            (self.ingress, INGRESS),
            (self.ifb, IFB),
            (self.mirred, MIRRED),
            (self.tbf, "TBF (CONFIG_NET_SCH_TBF)"),
            (self.netem, "netem (CONFIG_NET_SCH_NETEM)"),
        ]
    }

    fn first_missing(&self, names: &[&'static str]) -> Option<&'static str> {
        self.named()
            .into_iter()
            .find(|(present, name)| !present && names.contains(name))
            .map(|(_, name)| name)
    }

    /// What is missing for shaping at all, if anything.
    pub fn missing_for_shaping(&self) -> Option<&'static str> {
        self.first_missing(&[HTB, BFIFO, U32])
    }

    /// What is missing for ingress shaping, if anything.
    pub fn missing_for_ingress(&self) -> Option<&'static str> {
        self.first_missing(&[INGRESS, IFB, MIRRED])
    }

    /// A feature `earlier` had and this probe did not find, if any.
    pub fn lost_since(&self, earlier: &Features) -> Option<&'static str> {
        earlier
            .named()
            .into_iter()
            .zip(self.named())
            .find(|((before, _), (now, _))| *before && !now)
            .map(|((_, name), _)| name)
    }
}

const HTB: &str = "HTB (CONFIG_NET_SCH_HTB)";
const BFIFO: &str = "bfifo (CONFIG_NET_SCH_FIFO)";
const U32: &str = "the u32 classifier (CONFIG_NET_CLS_U32)";
const INGRESS: &str = "the ingress qdisc (CONFIG_NET_SCH_INGRESS)";
const IFB: &str = "IFB devices (CONFIG_IFB)";
const MIRRED: &str = "the mirred action (CONFIG_NET_ACT_MIRRED)";

/// Runs the probe in the calling thread's (scratch) namespace.
fn probe_here() -> io::Result<Features> {
    let mut rtnl = Rtnl::open(None)?;
    const LO: u32 = 1;
    let root = tc::handle(1, 0);
    let mut try_root = |kind: &str, options: Vec<u8>| -> io::Result<bool> {
        let created = present(rtnl.execute(vec![tc::qdisc(
            Mode::Replace,
            LO,
            root,
            tc::TC_H_ROOT,
            kind,
            Some(options),
        )])?);
        if created {
            rtnl.execute(vec![tc::delete_qdisc(LO, root, tc::TC_H_ROOT)])?;
        }
        Ok(created)
    };
    let netem = wire::Netem {
        delay: std::time::Duration::ZERO,
        jitter: std::time::Duration::ZERO,
        loss: 0.0,
        limit_packets: 1000,
    };
    let tbf = wire::Tbf {
        rate_bytes: 125_000,
        burst_bytes: 1600,
        limit_bytes: 10_000,
    };
    let mut features = Features {
        htb: try_root("htb", wire::htb_qdisc(tc::DEFAULT_CLASS, 10))?,
        bfifo: try_root("bfifo", wire::bfifo(10_000))?,
        tbf: try_root("tbf", tbf.encode().expect("small burst"))?,
        netem: try_root("netem", netem.encode())?,
        ingress: false,
        ifb: false,
        u32: false,
        mirred: false,
        probed: true,
    };
    let ingress = tc::qdisc(
        Mode::Create,
        LO,
        tc::INGRESS_HANDLE,
        tc::TC_H_INGRESS,
        "ingress",
        None,
    );
    features.ingress = present(rtnl.execute(vec![ingress])?);
    features.ifb = present(rtnl.execute(vec![tc::create_ifb("qlifb0", 1500)])?);
    if features.ingress && features.ifb {
        let ifb = rtnl
            .dump(tc::dump_links())?
            .iter()
            .filter_map(|m| tc::Link::parse(m))
            .find(|l| l.name == "qlifb0")
            .map(|l| l.index);
        if let Some(ifb) = ifb {
            let redirect = present(rtnl.execute(vec![tc::redirect_filter(LO, ifb)])?);
            features.u32 = redirect;
            features.mirred = redirect;
        }
    }
    if !features.mirred {
        // Without ingress or IFB, try u32 alone on a root HTB.
        let htb = tc::qdisc(
            Mode::Replace,
            LO,
            root,
            tc::TC_H_ROOT,
            "htb",
            Some(wire::htb_qdisc(2, 10)),
        );
        let filter = tc::u32_filter(
            LO,
            root,
            2,
            crate::classify::ETH_P_IP,
            &[(0, 0, 0)],
            tc::handle(1, 2),
        );
        let results = rtnl.execute(vec![htb, filter])?;
        features.u32 = results.iter().all(Result::is_ok);
    }
    tracing::info!(?features, "tc features of this kernel");
    Ok(features)
}

/// Whether a single request's answer shows the feature is there; errors other than "unknown
/// kind" are logged, as they point at a problem of the probe rather than of the kernel.
fn present(results: Vec<Result<(), KernelError>>) -> bool {
    match results.into_iter().next() {
        Some(Ok(())) => true,
        Some(Err(err)) => {
            if !matches!(err.errno, libc::ENOENT | libc::EOPNOTSUPP) {
                tracing::warn!("feature probe: unexpected answer {err}");
            }
            false
        }
        None => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lost_features_and_missing_ones_are_named() {
        let all = Features::all();
        let without_netem = Features {
            netem: false,
            ..all
        };
        assert_eq!(
            without_netem.lost_since(&all),
            Some("netem (CONFIG_NET_SCH_NETEM)")
        );
        assert_eq!(all.lost_since(&without_netem), None, "gained, not lost");
        assert_eq!(all.missing_for_shaping(), None);
        let no_ifb = Features { ifb: false, ..all };
        assert_eq!(
            no_ifb.missing_for_ingress(),
            Some("IFB devices (CONFIG_IFB)")
        );
        assert_eq!(no_ifb.missing_for_shaping(), None);
    }
}
