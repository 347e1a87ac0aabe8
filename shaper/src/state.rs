//! What the shaper owns on each interface, kept in a state file so that a restarted agent can
//! adopt its leftovers after a crash and restore interfaces as they were.
//!
//! One JSON file per interface under `<state dir>/shaper/`, written atomically (temporary file,
//! then rename) *before* the kernel is changed: after a SIGKILL at any point the file describes
//! at least everything that exists.
//!
//! Rate changes, which create and delete nothing, are appended to a journal next to it instead
//! (`<file>.rates`, one JSON line each), which is much cheaper than rewriting the file. Each line
//! names the fingerprint of the state file it follows; loading applies the lines that follow
//! the file as it is, so lines left from an older file, and a line cut short by a crash, are
//! ignored. Writing the file empties the journal.

use std::collections::BTreeMap;
use std::fmt;
use std::fs;
use std::io::{self, Write};
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::plan::{Direction, InterfacePlan, PlanError, RateChanges};
use crate::tc;

/// An interface, in a named network namespace or in the agent's own.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct IfaceRef {
    /// The iproute2 name of the namespace (`/run/netns/NAME`); `None` for the agent's own.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub netns: Option<String>,
    /// The interface name.
    pub name: String,
}

impl IfaceRef {
    /// The interface `name` in namespace `netns`.
    pub fn new(netns: Option<&str>, name: &str) -> IfaceRef {
        IfaceRef {
            netns: netns.map(str::to_string),
            name: name.to_string(),
        }
    }

    /// Checks the names: an interface name of 1–15 bytes and a namespace name without `/`.
    pub fn validate(&self) -> Result<(), PlanError> {
        let fine = |s: &str, max: usize| {
            !s.is_empty()
                && s.len() <= max
                && s != "."
                && s != ".."
                && !s
                    .bytes()
                    .any(|b| b == b'/' || b == 0 || b.is_ascii_whitespace())
        };
        if let Some(netns) = &self.netns
            && !fine(netns, 255)
        {
            return Err(PlanError::new(
                "netns",
                netns,
                "not a network namespace name",
                "a name as `ip netns list` shows it",
            ));
        }
        if !fine(&self.name, 15) {
            return Err(PlanError::new(
                "iface",
                &self.name,
                "not an interface name",
                "1 to 15 characters without '/' or spaces, as `ip link` shows it",
            ));
        }
        Ok(())
    }

    fn file_name(&self) -> String {
        format!(
            "{}@{}.json",
            self.name,
            self.netns.as_deref().unwrap_or("-")
        )
    }

    fn journal_name(&self) -> String {
        format!("{}.rates", self.file_name())
    }
}

impl fmt::Display for IfaceRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.netns {
            Some(netns) => write!(f, "{} in namespace {netns}", self.name),
            None => f.write_str(&self.name),
        }
    }
}

/// The root qdisc an interface had before we shaped its egress.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum OriginalRoot {
    /// The kernel's default (handle 0, e.g. noqueue or mq): deleting ours brings it back.
    Default {
        /// Its kind, for the record.
        kind: String,
    },
    /// A classless qdisc someone configured; restored with the same kind, handle and options.
    Configured {
        /// Kind, e.g. `tbf`.
        kind: String,
        /// Handle.
        handle: u32,
        /// Its `TCA_OPTIONS` value as dumped, hex.
        options_hex: String,
    },
}

/// What we set up for ingress shaping.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct IngressRecord {
    /// The IFB device ingress traffic is redirected to, e.g. `qlifb0`.
    pub ifb: String,
    /// Whether we created the ingress qdisc (else we only added our filter to it).
    pub created_qdisc: bool,
}

/// Everything the shaper owns on one interface.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Record {
    /// The interface.
    pub iface: IfaceRef,
    /// The root qdisc before we shaped egress; `None` while egress is not shaped.
    pub original_root: Option<OriginalRoot>,
    /// Our ingress setup; `None` while ingress is not shaped.
    pub ingress: Option<IngressRecord>,
    /// Class minor numbers by direction and class name.
    pub minors: BTreeMap<Direction, BTreeMap<String, u16>>,
    /// The plan in force (or being applied).
    pub plan: InterfacePlan,
}

impl Record {
    /// A record of an interface we own nothing on yet.
    pub fn new(iface: IfaceRef) -> Record {
        Record {
            iface,
            original_root: None,
            ingress: None,
            minors: BTreeMap::new(),
            plan: InterfacePlan::default(),
        }
    }

    /// Gives every class of the plan a minor: classes keep theirs, new ones get the lowest
    /// free; classes no longer planned lose theirs.
    pub fn assign_minors(&mut self) {
        for direction in Direction::ALL {
            let Some(plan) = self.plan.direction(direction) else {
                self.minors.remove(&direction);
                continue;
            };
            let old = self.minors.remove(&direction).unwrap_or_default();
            let mut minors: BTreeMap<String, u16> = plan
                .classes
                .iter()
                .filter_map(|c| old.get(&c.name).map(|m| (c.name.clone(), *m)))
                .collect();
            let mut used: Vec<u16> = minors.values().copied().collect();
            used.sort_unstable();
            let mut next = tc::FIRST_CLASS;
            for class in &plan.classes {
                if minors.contains_key(&class.name) {
                    continue;
                }
                while used.binary_search(&next).is_ok() {
                    next += 1;
                }
                minors.insert(class.name.clone(), next);
                next += 1;
            }
            self.minors.insert(direction, minors);
        }
    }
}

/// The directory of state files under a state dir.
fn dir(state_dir: &Path) -> PathBuf {
    state_dir.join("shaper")
}

/// Writes `record` atomically and empties its journal; returns the fingerprint that journal
/// lines written after it must name.
pub fn store(state_dir: &Path, record: &Record) -> io::Result<String> {
    let dir = dir(state_dir);
    fs::create_dir_all(&dir)?;
    let path = dir.join(record.iface.file_name());
    let tmp = path.with_extension("json.tmp");
    let bytes = serde_json::to_vec_pretty(record)?;
    fs::write(&tmp, &bytes)?;
    fs::rename(&tmp, &path)?;
    remove(&dir.join(record.iface.journal_name()))?;
    Ok(fingerprint(&bytes))
}

/// One line of a journal: rate changes made after the state file with fingerprint `base`.
#[derive(Debug, Serialize, Deserialize)]
struct JournalLine {
    base: String,
    rates: RateChanges,
}

/// Appends `changes` to the journal of `iface`, following the state file `base`; returns the
/// journal's length in bytes.
pub fn append_rates(
    state_dir: &Path,
    iface: &IfaceRef,
    base: &str,
    changes: &RateChanges,
) -> io::Result<u64> {
    let mut line = serde_json::to_vec(&JournalLine {
        base: base.to_string(),
        rates: changes.clone(),
    })?;
    line.push(b'\n');
    let mut file = fs::OpenOptions::new()
        .append(true)
        .create(true)
        .open(dir(state_dir).join(iface.journal_name()))?;
    // One write: a crash leaves the line whole or cut short (then ignored), never interleaved.
    file.write_all(&line)?;
    Ok(file.metadata()?.len())
}

/// Removes the record of `iface` and its journal; missing ones are fine.
pub fn forget(state_dir: &Path, iface: &IfaceRef) -> io::Result<()> {
    remove(&dir(state_dir).join(iface.file_name()))?;
    remove(&dir(state_dir).join(iface.journal_name()))
}

fn remove(path: &Path) -> io::Result<()> {
    match fs::remove_file(path) {
        Err(err) if err.kind() != io::ErrorKind::NotFound => Err(err),
        _ => Ok(()),
    }
}

/// Every record in `state_dir`, with the rate changes of its journal applied; unreadable files
/// are reported and skipped.
pub fn load_all(state_dir: &Path) -> io::Result<Vec<Record>> {
    let entries = match fs::read_dir(dir(state_dir)) {
        Ok(entries) => entries,
        Err(err) if err.kind() == io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(err) => return Err(err),
    };
    let mut records = Vec::new();
    for entry in entries {
        let path = entry?.path();
        if path.extension().is_none_or(|e| e != "json") {
            continue;
        }
        let bytes = match fs::read(&path) {
            Ok(bytes) => bytes,
            Err(err) => {
                tracing::error!("cannot read state file {}: {err}", path.display());
                continue;
            }
        };
        match serde_json::from_slice::<Record>(&bytes) {
            Ok(mut record) => {
                replay(state_dir, &mut record, &fingerprint(&bytes));
                records.push(record);
            }
            Err(err) => {
                tracing::error!("ignoring unreadable state file {}: {err}", path.display())
            }
        }
    }
    Ok(records)
}

/// Applies the journal lines of `record` that follow the state file `base`.
fn replay(state_dir: &Path, record: &mut Record, base: &str) {
    let path = dir(state_dir).join(record.iface.journal_name());
    let Ok(text) = fs::read_to_string(&path) else {
        return;
    };
    for line in text.lines() {
        match serde_json::from_str::<JournalLine>(line) {
            Ok(entry) if entry.base == base => {
                if let Err(err) = record.plan.set_rates(&entry.rates) {
                    tracing::error!("ignoring a rate change in {}: {err}", path.display());
                }
            }
            Ok(_) => {}
            Err(err) => tracing::warn!("ignoring a cut-short line of {}: {err}", path.display()),
        }
    }
}

/// FNV-1a of `bytes`, as hex: stable across builds, unlike std's hasher.
fn fingerprint(bytes: &[u8]) -> String {
    let hash = bytes.iter().fold(0xcbf2_9ce4_8422_2325_u64, |hash, b| {
        (hash ^ u64::from(*b)).wrapping_mul(0x0000_0100_0000_01b3)
    });
    format!("{hash:016x}")
}

/// Bytes as lowercase hex.
pub fn to_hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// Hex back to bytes; `None` if malformed.
pub fn from_hex(text: &str) -> Option<Vec<u8>> {
    if !text.len().is_multiple_of(2) {
        return None;
    }
    (0..text.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(text.get(i..i + 2)?, 16).ok())
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record_with(names: &[&str]) -> Record {
        let classes: Vec<String> = names
            .iter()
            .map(|n| {
                format!(r#"{{"name": "{n}", "rate_bps": 1000, "match": {{"protocol": "udp"}}}}"#)
            })
            .collect();
        let json = format!(
            r#"{{"egress": {{"rate_bps": 1000000, "default": {{"rate_bps": 1000}}, "classes": [{}]}}}}"#,
            classes.join(",")
        );
        let mut record = Record::new(IfaceRef::new(Some("ns"), "eth0"));
        record.plan = serde_json::from_str(&json).unwrap();
        record
    }

    #[test]
    fn classes_keep_their_minor_and_new_ones_fill_gaps() {
        let mut record = record_with(&["a", "b", "c"]);
        record.assign_minors();
        let egress = |r: &Record| r.minors[&Direction::Egress].clone();
        assert_eq!(egress(&record)["c"], 5);
        let kept = record.minors.clone();
        record.plan = record_with(&["c", "d", "a"]).plan;
        record.minors = kept;
        record.assign_minors();
        let m = egress(&record);
        assert_eq!((m["a"], m["c"], m["d"]), (3, 5, 4), "{m:?}");
        assert!(!m.contains_key("b"));
    }

    #[test]
    fn records_survive_a_round_trip_and_bad_files_are_skipped() {
        let dir = tempfile::tempdir().unwrap();
        let mut record = record_with(&["a"]);
        record.original_root = Some(OriginalRoot::Configured {
            kind: "tbf".into(),
            handle: 0x1_0000,
            options_hex: to_hex(&[1, 2, 254]),
        });
        store(dir.path(), &record).unwrap();
        fs::write(dir.path().join("shaper/broken@-.json"), b"{").unwrap();
        let loaded = load_all(dir.path()).unwrap();
        assert_eq!(loaded, [record.clone()]);
        forget(dir.path(), &record.iface).unwrap();
        forget(dir.path(), &record.iface).unwrap();
        assert!(load_all(dir.path()).unwrap().is_empty());
        assert_eq!(from_hex("0102fe"), Some(vec![1, 2, 254]));
        assert_eq!(from_hex("0"), None);
    }

    #[test]
    fn journal_lines_that_follow_the_file_are_replayed_and_others_ignored() {
        let dir = tempfile::tempdir().unwrap();
        let mut record = record_with(&["a", "b"]);
        let base = store(dir.path(), &record).unwrap();
        let change = |name: &str, bps: u64| -> RateChanges {
            serde_json::from_str(&format!(
                r#"{{"egress": {{"{name}": {{"rate_bps": {bps}}}}}}}"#
            ))
            .unwrap()
        };
        append_rates(dir.path(), &record.iface, &base, &change("a", 2000)).unwrap();
        let len = append_rates(dir.path(), &record.iface, &base, &change("b", 3000)).unwrap();
        let rate = |r: &Record, i: usize| r.plan.egress.as_ref().unwrap().classes[i].rate_bps.bps();
        let loaded = load_all(dir.path()).unwrap();
        assert_eq!((rate(&loaded[0], 0), rate(&loaded[0], 1)), (2000, 3000));

        // A line cut short by a crash is ignored, the lines before it are not.
        let journal = dir.path().join("shaper").join(record.iface.journal_name());
        let mut file = fs::OpenOptions::new().append(true).open(&journal).unwrap();
        file.write_all(br#"{"base": "x", "rates": {"egr"#).unwrap();
        assert_eq!(rate(&load_all(dir.path()).unwrap()[0], 1), 3000);
        assert!(fs::metadata(&journal).unwrap().len() > len);

        // Lines of an older file do not apply to a newer one.
        record.plan.egress.as_mut().unwrap().classes[0].rate_bps =
            qoelab_units::Rate::from_bps(500);
        let newer = store(dir.path(), &record).unwrap();
        assert_ne!(newer, base);
        assert!(!journal.exists(), "writing the file empties the journal");
        append_rates(dir.path(), &record.iface, &base, &change("a", 9000)).unwrap();
        assert_eq!(rate(&load_all(dir.path()).unwrap()[0], 0), 500);
        forget(dir.path(), &record.iface).unwrap();
        assert!(!journal.exists() && load_all(dir.path()).unwrap().is_empty());
    }

    #[test]
    fn interface_names_are_checked() {
        assert!(IfaceRef::new(None, "eth0").validate().is_ok());
        assert_eq!(
            IfaceRef::new(None, "a/b").validate().unwrap_err().field,
            "iface"
        );
        assert_eq!(
            IfaceRef::new(None, "sixteen-chars-xx")
                .validate()
                .unwrap_err()
                .field,
            "iface"
        );
        assert_eq!(
            IfaceRef::new(Some(".."), "eth0")
                .validate()
                .unwrap_err()
                .field,
            "netns"
        );
    }
}
