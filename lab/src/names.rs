//! Naming of everything a lab creates.
//!
//! Every namespace and interface starts with [`PREFIX`] followed by the lab's name, so that
//! several labs coexist and `qoelab lab clean` can find leftovers without touching anything
//! else. Interface names fit the kernel's limit of 15 bytes.

use crate::error::{LabError, Result};

/// The prefix of every namespace, interface and state file qoelab creates.
pub const PREFIX: &str = "ql";
/// The kernel's limit on interface names (IFNAMSIZ − 1).
pub const IFNAME_MAX: usize = 15;
/// Longest lab name: leaves room for `ql`, the name, `-` and a 6-byte interface suffix.
pub const LAB_NAME_MAX: usize = 6;
/// Longest interface suffix within a lab.
pub const IFACE_SUFFIX_MAX: usize = IFNAME_MAX - PREFIX.len() - LAB_NAME_MAX - 1;
/// Longest node name.
pub const NODE_NAME_MAX: usize = 12;

/// Checks that `name` is a valid lab name: 1–6 lowercase letters or digits.
pub fn check_lab_name(name: &str) -> Result<()> {
    check_word("lab name", name, LAB_NAME_MAX)
}

/// Checks a node name (namespace suffix): 1–12 lowercase letters or digits.
pub fn check_node_name(name: &str) -> Result<()> {
    check_word("node name", name, NODE_NAME_MAX)
}

/// Checks an interface suffix: 1–6 lowercase letters or digits.
pub fn check_iface_suffix(name: &str) -> Result<()> {
    check_word("interface name", name, IFACE_SUFFIX_MAX)
}

fn check_word(what: &str, value: &str, max: usize) -> Result<()> {
    let ok = !value.is_empty()
        && value.len() <= max
        && value
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit());
    if ok {
        Ok(())
    } else {
        Err(LabError::InvalidName(format!(
            "{what} '{value}' is not accepted: use 1 to {max} lowercase letters or digits"
        )))
    }
}

/// A fresh random lab name of five lowercase letters and digits.
pub fn random_lab_name() -> String {
    const ALPHABET: &[u8] = b"abcdefghijklmnopqrstuvwxyz0123456789";
    let mut bytes = [0u8; 5];
    // getrandom(2) only fails on ancient kernels; fall back to time and pid then.
    let filled = unsafe { libc::getrandom(bytes.as_mut_ptr().cast(), bytes.len(), 0) };
    if filled != bytes.len() as isize {
        let seed = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos())
            .unwrap_or_default()
            ^ u128::from(std::process::id());
        bytes = (seed as u64).to_le_bytes()[..5]
            .try_into()
            .expect("five bytes");
    }
    bytes
        .iter()
        .map(|b| ALPHABET[usize::from(*b) % ALPHABET.len()] as char)
        .collect()
}

/// The namespace name of `node` in lab `lab`, e.g. `qlab12c-router`.
pub fn netns_name(lab: &str, node: &str) -> String {
    format!("{PREFIX}{lab}-{node}")
}

/// The interface name for `suffix` in lab `lab`, e.g. `qlab12c-wan`.
pub fn iface_name(lab: &str, suffix: &str) -> String {
    format!("{PREFIX}{lab}-{suffix}")
}

/// The lab a namespace or interface name belongs to, if it is one of ours.
pub fn lab_of(name: &str) -> Option<&str> {
    let rest = name.strip_prefix(PREFIX)?;
    let (lab, _) = rest.split_once('-')?;
    check_lab_name(lab).ok().map(|_| lab)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn longest_names_fit_the_kernel_limit() {
        let name = iface_name(&"a".repeat(LAB_NAME_MAX), &"b".repeat(IFACE_SUFFIX_MAX));
        assert_eq!(name.len(), IFNAME_MAX);
    }

    #[test]
    fn bad_names_are_refused_with_the_value() {
        for bad in ["", "Upper", "with-dash", "toolong7", "sp ace"] {
            let err = check_lab_name(bad).unwrap_err().to_string();
            assert!(err.contains(&format!("'{bad}'")), "{err}");
        }
        check_lab_name("a1b2c3").unwrap();
    }

    #[test]
    fn random_names_are_valid_and_vary() {
        let a = random_lab_name();
        check_lab_name(&a).unwrap();
        let distinct: std::collections::HashSet<_> = (0..20).map(|_| random_lab_name()).collect();
        assert!(distinct.len() > 15);
    }

    #[test]
    fn lab_of_recognises_only_our_names() {
        assert_eq!(lab_of("qlab12c-router"), Some("ab12c"));
        assert_eq!(lab_of("qlab12c-wan"), Some("ab12c"));
        assert_eq!(lab_of("eth0"), None);
        assert_eq!(lab_of("qlBAD-x"), None);
        assert_eq!(lab_of("ql-x"), None);
    }
}
