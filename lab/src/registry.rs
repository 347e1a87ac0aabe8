//! The record of each lab under `/run/qoelab/labs/<name>.json`.
//!
//! A record is written *before* anything is created, so a lab interrupted half-way (even by
//! SIGKILL) is still known and can be removed. It names the owning process, if any: a lab owned
//! by a live process is in use; one whose owner is gone, or that was made persistent by
//! `qoelab lab up`, is removed by `qoelab lab clean`.

use std::fs::{self, OpenOptions};
use std::io::{self, Write};
use std::path::PathBuf;

use serde::{Deserialize, Serialize};

use crate::topology::Topology;

/// Directory of lab records.
pub const STATE_DIR: &str = "/run/qoelab/labs";

/// What is known about a lab.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LabRecord {
    /// The lab's name (the part after `ql` in every name it owns).
    pub name: String,
    /// The process that removes the lab when it ends; `None` for persistent labs.
    pub owner: Option<Owner>,
    /// Creation time, seconds since the Unix epoch.
    pub created_unix_s: u64,
    /// What the lab consists of.
    pub topology: Topology,
}

/// A process identified by pid and start time, so a recycled pid is not mistaken for it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Owner {
    /// Process id.
    pub pid: u32,
    /// Start time in clock ticks after boot (field 22 of `/proc/PID/stat`).
    pub start_ticks: u64,
}

impl Owner {
    /// The calling process.
    pub fn current() -> Owner {
        let pid = std::process::id();
        Owner {
            pid,
            start_ticks: start_ticks(pid).unwrap_or_default(),
        }
    }

    /// Whether the owning process still runs.
    pub fn alive(&self) -> bool {
        start_ticks(self.pid) == Some(self.start_ticks)
    }
}

fn start_ticks(pid: u32) -> Option<u64> {
    let stat = fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // The command name may contain spaces and parentheses: fields start after the last ')'.
    let rest = &stat[stat.rfind(')')? + 2..];
    rest.split(' ').nth(19)?.parse().ok()
}

impl LabRecord {
    fn path(name: &str) -> PathBuf {
        PathBuf::from(STATE_DIR).join(format!("{name}.json"))
    }

    /// Whether the lab is in use by a live process.
    pub fn in_use(&self) -> bool {
        self.owner.is_some_and(|o| o.alive())
    }

    /// Writes the record only if no lab of this name is recorded yet
    /// ([`io::ErrorKind::AlreadyExists`] otherwise).
    pub fn claim(&self) -> io::Result<()> {
        fs::create_dir_all(STATE_DIR)?;
        let mut file = OpenOptions::new()
            .write(true)
            .create_new(true)
            .open(Self::path(&self.name))?;
        file.write_all(&serde_json::to_vec_pretty(self)?)
    }

    /// Replaces the stored record.
    pub fn store(&self) -> io::Result<()> {
        let tmp = Self::path(&format!("{}.tmp", self.name));
        fs::write(&tmp, serde_json::to_vec_pretty(self)?)?;
        fs::rename(tmp, Self::path(&self.name))
    }

    /// Deletes the stored record; a missing one is not an error.
    pub fn forget(name: &str) -> io::Result<()> {
        match fs::remove_file(Self::path(name)) {
            Err(err) if err.kind() != io::ErrorKind::NotFound => Err(err),
            _ => Ok(()),
        }
    }

    /// The record of lab `name`, if there is one.
    pub fn load(name: &str) -> io::Result<Option<LabRecord>> {
        match fs::read(Self::path(name)) {
            Ok(bytes) => Ok(Some(serde_json::from_slice(&bytes)?)),
            Err(err) if err.kind() == io::ErrorKind::NotFound => Ok(None),
            Err(err) => Err(err),
        }
    }

    /// All readable records, sorted by name. Unreadable files are skipped with a warning.
    pub fn all() -> io::Result<Vec<LabRecord>> {
        let entries = match fs::read_dir(STATE_DIR) {
            Ok(entries) => entries,
            Err(err) if err.kind() == io::ErrorKind::NotFound => return Ok(Vec::new()),
            Err(err) => return Err(err),
        };
        let mut records = Vec::new();
        for entry in entries {
            let path = entry?.path();
            if path.extension().is_some_and(|e| e == "json") {
                match fs::read(&path).map(|b| serde_json::from_slice::<LabRecord>(&b)) {
                    Ok(Ok(record)) => records.push(record),
                    _ => tracing::warn!("skipping unreadable lab record {}", path.display()),
                }
            }
        }
        records.sort_by(|a, b| a.name.cmp(&b.name));
        Ok(records)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_current_process_is_alive_and_a_changed_start_time_is_not() {
        let me = Owner::current();
        assert!(me.start_ticks > 0);
        assert!(me.alive());
        let recycled = Owner {
            start_ticks: me.start_ticks + 1,
            ..me
        };
        assert!(!recycled.alive());
    }
}
