//! Layer replacement: the gateway's layer store and which layers to evict when it fills up.
//!
//! When the stored bytes pass the high watermark (default 80% of the capacity), layers are
//! evicted in the policy's order until the store is at or below the low watermark (default
//! 60%). A layer used by a running analytic (reference count > 0) is never evicted; if only
//! such layers remain, eviction stops short of the low watermark.
//!
//! | policy | evicts first |
//! |---|---|
//! | `lru` | the least recently used layer |
//! | `mru` | the most recently used layer |
//! | `lfu` | the least often used layer (ties: least recent) |
//! | `mfu` | the most often used layer (ties: least recent) |
//! | `fifo` | the layer stored longest ago |
//!
//! "Used" means an analytic started with an image holding the layer. A layer never used
//! counts as used when it was stored. Further ties go by layer id, so results are repeatable.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::PlanError;
use crate::error::named_enum;

/// A replacement policy.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Policy {
    /// Least recently used first.
    Lru,
    /// Most recently used first.
    Mru,
    /// Least frequently used first.
    Lfu,
    /// Most frequently used first.
    Mfu,
    /// First stored first.
    Fifo,
}

named_enum!(
    Policy,
    "layer replacement policy",
    [Lru => "lru", Mru => "mru", Lfu => "lfu", Mfu => "mfu", Fifo => "fifo"]
);

/// The high and low watermarks as fractions of the capacity.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Watermarks {
    /// Eviction starts above this fraction.
    pub high: f64,
    /// Eviction frees down to this fraction.
    pub low: f64,
}

impl Default for Watermarks {
    fn default() -> Watermarks {
        Watermarks {
            high: 0.8,
            low: 0.6,
        }
    }
}

impl Watermarks {
    /// Checks 0 ≤ low < high ≤ 1.
    pub fn validate(self) -> Result<Watermarks, PlanError> {
        if !(0.0..=1.0).contains(&self.high) {
            return Err(PlanError::invalid(
                "high watermark",
                format!("{}%", self.high * 100.0),
                "a percentage in [0%, 100%]",
            ));
        }
        if !(self.low >= 0.0 && self.low < self.high) {
            return Err(PlanError::invalid(
                "low watermark",
                format!("{}%", self.low * 100.0),
                format!(
                    "a percentage ≥ 0% below the high watermark ({}%)",
                    self.high * 100.0
                ),
            ));
        }
        Ok(self)
    }
}

#[derive(Debug, Clone, PartialEq)]
struct Stored {
    bytes: u64,
    stored_at: u64,
    used_at: u64,
    uses: u64,
    references: u32,
}

/// A layer that was evicted.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Evicted {
    /// Layer id.
    pub id: String,
    /// Its bytes.
    pub bytes: u64,
}

/// The layers stored on the gateway, with use statistics and reference counts.
#[derive(Debug, Clone, PartialEq)]
pub struct LayerStore {
    capacity_bytes: u64,
    watermarks: Watermarks,
    layers: BTreeMap<String, Stored>,
    used_bytes: u64,
    /// Event counter: orders stores and uses.
    clock: u64,
}

impl LayerStore {
    /// An empty store of `capacity_bytes`.
    pub fn new(capacity_bytes: u64, watermarks: Watermarks) -> Result<LayerStore, PlanError> {
        Ok(LayerStore {
            capacity_bytes,
            watermarks: watermarks.validate()?,
            layers: BTreeMap::new(),
            used_bytes: 0,
            clock: 0,
        })
    }

    /// Bytes stored.
    pub fn used_bytes(&self) -> u64 {
        self.used_bytes
    }

    /// Bytes free.
    pub fn free_bytes(&self) -> u64 {
        self.capacity_bytes.saturating_sub(self.used_bytes)
    }

    /// Whether layer `id` is stored.
    pub fn contains(&self, id: &str) -> bool {
        self.layers.contains_key(id)
    }

    /// Ids of the stored layers.
    pub fn ids(&self) -> impl Iterator<Item = &str> {
        self.layers.keys().map(String::as_str)
    }

    /// How many running analytics use layer `id`.
    pub fn references(&self, id: &str) -> u32 {
        self.layers.get(id).map_or(0, |l| l.references)
    }

    fn tick(&mut self) -> u64 {
        self.clock += 1;
        self.clock
    }

    /// Stores a layer (a no-op if it is stored already).
    pub fn store(&mut self, id: &str, bytes: u64) {
        if self.layers.contains_key(id) {
            return;
        }
        let now = self.tick();
        self.layers.insert(
            id.to_string(),
            Stored {
                bytes,
                stored_at: now,
                used_at: now,
                uses: 0,
                references: 0,
            },
        );
        self.used_bytes += bytes;
    }

    /// An analytic starts with an image of these layers: each is used once more and
    /// referenced until [`release`](Self::release). Layers not stored are ignored.
    pub fn acquire(&mut self, layers: &[String]) {
        let now = self.tick();
        for id in layers {
            if let Some(l) = self.layers.get_mut(id) {
                l.used_at = now;
                l.uses += 1;
                l.references += 1;
            }
        }
    }

    /// An analytic that ran with these layers has ended.
    pub fn release(&mut self, layers: &[String]) {
        for id in layers {
            if let Some(l) = self.layers.get_mut(id) {
                l.references = l.references.saturating_sub(1);
            }
        }
    }

    /// If the store is above the high watermark, evicts unreferenced layers in `policy`'s
    /// order until it is at or below the low watermark. Returns what was evicted.
    pub fn enforce(&mut self, policy: Policy) -> Vec<Evicted> {
        let capacity = self.capacity_bytes as f64;
        if (self.used_bytes as f64) <= self.watermarks.high * capacity {
            return Vec::new();
        }
        let mut candidates: Vec<(&String, &Stored)> = self
            .layers
            .iter()
            .filter(|(_, l)| l.references == 0)
            .collect();
        candidates.sort_by(|(a_id, a), (b_id, b)| {
            let order = match policy {
                Policy::Lru => a.used_at.cmp(&b.used_at),
                Policy::Mru => b.used_at.cmp(&a.used_at),
                Policy::Lfu => a.uses.cmp(&b.uses).then(a.used_at.cmp(&b.used_at)),
                Policy::Mfu => b.uses.cmp(&a.uses).then(a.used_at.cmp(&b.used_at)),
                Policy::Fifo => a.stored_at.cmp(&b.stored_at),
            };
            order.then(a_id.cmp(b_id))
        });
        let target = self.watermarks.low * capacity;
        let mut used = self.used_bytes;
        let mut evicted = Vec::new();
        for (id, layer) in candidates {
            if (used as f64) <= target {
                break;
            }
            used -= layer.bytes;
            evicted.push(Evicted {
                id: id.clone(),
                bytes: layer.bytes,
            });
        }
        for e in &evicted {
            self.layers.remove(&e.id);
        }
        self.used_bytes = used;
        evicted
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ids(list: &[&str]) -> Vec<String> {
        list.iter().map(|s| s.to_string()).collect()
    }

    /// A 100-byte store with layers a..e of 20 bytes (100%): stored in order a..e, then used
    /// a ×3, b ×1, c ×2 (c last), d and e never.
    fn full_store() -> LayerStore {
        let mut store = LayerStore::new(100, Watermarks::default()).unwrap();
        for id in ["a", "b", "c", "d", "e"] {
            store.store(id, 20);
        }
        for list in [&["a"][..], &["a", "c"], &["b"], &["a", "c"]] {
            let list = ids(list);
            store.acquire(&list);
            store.release(&list);
        }
        store
    }

    fn evicted_by(policy: Policy) -> Vec<String> {
        full_store()
            .enforce(policy)
            .into_iter()
            .map(|e| e.id)
            .collect()
    }

    #[test]
    fn each_policy_frees_down_to_the_low_watermark_in_its_order() {
        // 100 → 60 bytes: two layers of 20.
        assert_eq!(evicted_by(Policy::Fifo), ["a", "b"]);
        assert_eq!(evicted_by(Policy::Lru), ["d", "e"]);
        assert_eq!(evicted_by(Policy::Mru), ["a", "c"]);
        assert_eq!(evicted_by(Policy::Lfu), ["d", "e"]);
        assert_eq!(evicted_by(Policy::Mfu), ["a", "c"]);
        let mut store = full_store();
        store.enforce(Policy::Lru);
        assert_eq!(store.used_bytes(), 60);
        assert_eq!(store.free_bytes(), 40);
        assert!(!store.contains("d") && store.contains("a"));
    }

    #[test]
    fn nothing_is_evicted_at_or_below_the_high_watermark() {
        let mut store = LayerStore::new(100, Watermarks::default()).unwrap();
        store.store("a", 80);
        assert!(store.enforce(Policy::Lru).is_empty());
        store.store("b", 1);
        assert_eq!(store.enforce(Policy::Lru).len(), 1);
    }

    #[test]
    fn layers_of_running_analytics_are_never_evicted() {
        let mut store = full_store();
        // d and e run now (referenced); shared layer c is referenced twice.
        store.acquire(&ids(&["d", "e", "c"]));
        store.acquire(&ids(&["c"]));
        assert_eq!(store.references("c"), 2);
        assert_eq!(evict_ids(&mut store, Policy::Mru), ["a", "b"]);
        store.release(&ids(&["c"]));
        assert_eq!(store.references("c"), 1);
        // Everything stored is referenced: eviction stops short of the low watermark.
        store.store("f", 40);
        store.acquire(&ids(&["f"]));
        assert!(store.enforce(Policy::Lru).is_empty());
        assert_eq!(store.used_bytes(), 100);
        store.release(&ids(&["f"]));
        assert_eq!(evict_ids(&mut store, Policy::Lru), ["f"]);
        assert!(store.contains("c") && store.contains("d"));
    }

    fn evict_ids(store: &mut LayerStore, policy: Policy) -> Vec<String> {
        store.enforce(policy).into_iter().map(|e| e.id).collect()
    }

    #[test]
    fn bad_watermarks_and_names_are_refused() {
        let err = LayerStore::new(
            1,
            Watermarks {
                high: 0.5,
                low: 0.6,
            },
        )
        .unwrap_err();
        assert_eq!(
            err.to_string(),
            "low watermark = 60% is not accepted: a percentage ≥ 0% below the high watermark (50%)"
        );
        let err = "arc".parse::<Policy>().unwrap_err().to_string();
        assert_eq!(
            err,
            "layer replacement policy = 'arc' is not accepted: one of lru, mru, lfu, mfu, fifo"
        );
    }
}
