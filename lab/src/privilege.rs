//! Checks that the process may create namespaces and links, before anything is attempted.

use std::fs;

use crate::error::{LabError, Result};

const CAP_NET_ADMIN: u32 = 12;
const CAP_SYS_ADMIN: u32 = 21;

/// Fails with [`LabError::NotPrivileged`] unless the effective capabilities include
/// CAP_SYS_ADMIN (namespaces, mounts) and CAP_NET_ADMIN (links, addresses, routes).
pub fn check() -> Result<()> {
    let effective = effective_caps().unwrap_or(0);
    let missing: Vec<_> = [
        (CAP_SYS_ADMIN, "CAP_SYS_ADMIN"),
        (CAP_NET_ADMIN, "CAP_NET_ADMIN"),
    ]
    .into_iter()
    .filter(|(bit, _)| effective & (1 << bit) == 0)
    .map(|(_, name)| name)
    .collect();
    if missing.is_empty() {
        Ok(())
    } else {
        Err(LabError::NotPrivileged {
            missing: missing.join(", "),
        })
    }
}

/// The effective capability set of this process, from `/proc/self/status`.
fn effective_caps() -> Option<u64> {
    parse_cap_eff(&fs::read_to_string("/proc/self/status").ok()?)
}

fn parse_cap_eff(status: &str) -> Option<u64> {
    let line = status.lines().find(|l| l.starts_with("CapEff:"))?;
    u64::from_str_radix(line["CapEff:".len()..].trim(), 16).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cap_eff_is_parsed_from_status() {
        let status = "Name:\tx\nCapInh:\t0000000000000000\nCapEff:\t0000000000201000\n";
        let caps = parse_cap_eff(status).unwrap();
        assert_ne!(caps & (1 << CAP_SYS_ADMIN), 0);
        assert_ne!(caps & (1 << CAP_NET_ADMIN), 0);
        assert_eq!(parse_cap_eff("Name:\tx\n"), None);
    }
}
