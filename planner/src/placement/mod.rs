//! Image placement: which analytic images to download to the gateway in a time slot.
//!
//! Each image is a list of layers (base first); placing it is worth the upload bandwidth its
//! analytics save by running at the edge. Downloading costs the bytes of its layers that are
//! neither on the gateway already nor part of another chosen image: layers are charged once
//! (a set-union knapsack). The capacity is in **bytes**: the lesser of the free storage and
//! what the downlink carries in the slot ([`slot_capacity_bytes`]).
//!
//! | method | what it does |
//! |---|---|
//! | `exact` | branch and bound; the bound is a fractional knapsack where each shared layer's bytes are split among the images that could still take it |
//! | `fptas` | value scaling with ε over the layer tree (images sharing a base share a prefix, as Docker's chain IDs do): value ≥ (1 − ε)·optimum when sharing is prefix-shaped |
//! | `greedy` | best value per marginal byte first, or the best single image if that is worth more |
//!
//! Layers shared other than as a common prefix (the same layer on different bases) are charged
//! once by `exact` and `greedy`; `fptas` charges them per prefix (an overestimate, so its
//! choice always fits) and then adds whatever else still fits.

mod exact;
mod fptas;
mod greedy;
pub mod synthetic;

use std::collections::{HashMap, HashSet};

use serde::{Deserialize, Serialize};

use crate::PlanError;
use crate::error::named_enum;

/// A layer of an image.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Layer {
    /// Content id (digest or name), unique.
    pub id: String,
    /// Compressed bytes to download.
    pub bytes: u64,
}

/// An image that may be placed.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Image {
    /// Image id, unique.
    pub id: String,
    /// Its layers' ids, base first.
    pub layers: Vec<String>,
    /// Upload bandwidth saved by placing it, bit/s (≥ 0).
    pub value_bps: f64,
}

/// A placement method.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Method {
    /// Branch and bound: optimal.
    Exact,
    /// Value scaling with ε: within (1 − ε) of optimal.
    Fptas,
    /// Value density.
    Greedy,
}

named_enum!(
    Method,
    "image placement method",
    [Exact => "exact", Fptas => "fptas", Greedy => "greedy"]
);

/// Checks an ε for `fptas`: in (0, 1).
pub fn check_epsilon(epsilon: f64) -> Result<f64, PlanError> {
    if epsilon > 0.0 && epsilon < 1.0 {
        Ok(epsilon)
    } else {
        Err(PlanError::invalid(
            "epsilon",
            epsilon,
            "a number in (0, 1), e.g. 0.1",
        ))
    }
}

/// Bytes that can be placed in a slot: the lesser of the free storage (bytes) and what the
/// downlink (bit/s) carries in `slot_s` seconds (bytes = bit/s × s / 8).
pub fn slot_capacity_bytes(free_storage_bytes: u64, downlink_bps: u64, slot_s: u64) -> u64 {
    let downlink_bytes = u128::from(downlink_bps) * u128::from(slot_s) / 8;
    free_storage_bytes.min(u64::try_from(downlink_bytes).unwrap_or(u64::MAX))
}

/// A validated placement problem with layers and images indexed.
#[derive(Debug, Clone)]
pub struct Instance {
    layer_bytes: Vec<u64>,
    present: Vec<bool>,
    image_ids: Vec<String>,
    images: Vec<Vec<usize>>,
    values: Vec<f64>,
    capacity_bytes: u64,
}

impl Instance {
    /// Checks that ids are unique, every image's layers are known and distinct, and values
    /// are finite and non-negative. `present` lists layers already on the gateway (unknown ids
    /// there are ignored).
    pub fn new(
        layers: &[Layer],
        images: &[Image],
        present: &HashSet<String>,
        capacity_bytes: u64,
    ) -> Result<Instance, PlanError> {
        let mut index = HashMap::new();
        for (i, layer) in layers.iter().enumerate() {
            if index.insert(layer.id.as_str(), i).is_some() {
                return Err(PlanError::invalid(
                    "layer id",
                    format!("'{}' (twice)", layer.id),
                    "unique layer ids",
                ));
            }
        }
        let mut image_ids = HashSet::new();
        let mut indexed = Vec::with_capacity(images.len());
        for image in images {
            if !image_ids.insert(image.id.as_str()) {
                return Err(PlanError::invalid(
                    "image id",
                    format!("'{}' (twice)", image.id),
                    "unique image ids",
                ));
            }
            if !(image.value_bps.is_finite() && image.value_bps >= 0.0) {
                return Err(PlanError::invalid(
                    format!("image '{}' value_bps", image.id),
                    image.value_bps,
                    "a finite number ≥ 0",
                ));
            }
            let mut seen = HashSet::new();
            let mut list = Vec::with_capacity(image.layers.len());
            for id in &image.layers {
                let &l = index.get(id.as_str()).ok_or_else(|| {
                    PlanError::invalid(
                        format!("image '{}' layer", image.id),
                        format!("'{id}'"),
                        "a layer listed among the layers",
                    )
                })?;
                if !seen.insert(l) {
                    return Err(PlanError::invalid(
                        format!("image '{}' layer", image.id),
                        format!("'{id}' (twice)"),
                        "each layer once per image",
                    ));
                }
                list.push(l);
            }
            indexed.push(list);
        }
        Ok(Instance {
            layer_bytes: layers.iter().map(|l| l.bytes).collect(),
            present: layers.iter().map(|l| present.contains(&l.id)).collect(),
            image_ids: images.iter().map(|i| i.id.clone()).collect(),
            images: indexed,
            values: images.iter().map(|i| i.value_bps).collect(),
            capacity_bytes,
        })
    }

    /// The capacity in bytes.
    pub fn capacity_bytes(&self) -> u64 {
        self.capacity_bytes
    }

    /// Bytes to download for the images `chosen` (indices): their layers not present, once.
    pub fn cost(&self, chosen: &[usize]) -> u64 {
        let mut union = Union::new(self);
        for &i in chosen {
            union.add(i);
        }
        union.bytes
    }

    fn value(&self, chosen: &[usize]) -> f64 {
        chosen.iter().map(|&i| self.values[i]).sum()
    }

    /// Images worth placing (value > 0), in index order.
    fn candidates(&self) -> Vec<usize> {
        (0..self.images.len())
            .filter(|&i| self.values[i] > 0.0)
            .collect()
    }
}

/// The layers taken so far (with how many chosen images use each) and their bytes.
#[derive(Debug, Clone)]
struct Union<'a> {
    instance: &'a Instance,
    users: Vec<u32>,
    bytes: u64,
}

impl<'a> Union<'a> {
    fn new(instance: &'a Instance) -> Union<'a> {
        Union {
            instance,
            users: vec![0; instance.layer_bytes.len()],
            bytes: 0,
        }
    }

    /// Whether layer `l` costs nothing more: present or already taken.
    fn has(&self, l: usize) -> bool {
        self.instance.present[l] || self.users[l] > 0
    }

    /// Bytes image `i` adds.
    fn marginal(&self, i: usize) -> u64 {
        self.instance.images[i]
            .iter()
            .filter(|&&l| !self.has(l))
            .map(|&l| self.instance.layer_bytes[l])
            .sum()
    }

    fn add(&mut self, i: usize) {
        self.bytes += self.marginal(i);
        for &l in &self.instance.images[i] {
            self.users[l] += 1;
        }
    }

    fn remove(&mut self, i: usize) {
        for &l in &self.instance.images[i] {
            self.users[l] -= 1;
        }
        self.bytes -= self.marginal(i);
    }
}

/// An upper bound on the value that images `items` can add to `union`: a fractional knapsack
/// where each layer's bytes are split evenly among the items that still need it. Any subset of
/// the items pays at least its split bytes, so no subset is worth more than this.
fn fractional_bound(union: &Union<'_>, items: &[usize]) -> f64 {
    let instance = union.instance;
    let mut needing = vec![0u32; instance.layer_bytes.len()];
    for &i in items {
        for &l in &instance.images[i] {
            if !union.has(l) {
                needing[l] += 1;
            }
        }
    }
    let mut pieces: Vec<(f64, f64)> = items
        .iter()
        .map(|&i| {
            let bytes: f64 = instance.images[i]
                .iter()
                .filter(|&&l| !union.has(l))
                .map(|&l| instance.layer_bytes[l] as f64 / f64::from(needing[l]))
                .sum();
            (instance.values[i], bytes)
        })
        .collect();
    // Best value per byte first (cross-multiplied, so free items come first).
    pieces.sort_by(|a, b| (b.0 * a.1).total_cmp(&(a.0 * b.1)));
    let mut room = (instance.capacity_bytes - union.bytes) as f64;
    let mut bound = 0.0;
    for (value, bytes) in pieces {
        if bytes <= room {
            bound += value;
            room -= bytes;
        } else {
            bound += value * room / bytes;
            break;
        }
    }
    bound
}

/// The chosen images.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Placement {
    /// The method that chose them.
    pub method: Method,
    /// Their ids, in instance order.
    pub images: Vec<String>,
    /// Σ value, bit/s.
    pub value_bps: f64,
    /// Bytes to download (shared layers once, present layers not at all) ≤ capacity.
    pub download_bytes: u64,
    /// The capacity it was chosen for.
    pub capacity_bytes: u64,
}

/// Chooses images with `method` (`epsilon` is used by `fptas` only and checked then).
pub fn place(instance: &Instance, method: Method, epsilon: f64) -> Result<Placement, PlanError> {
    let mut chosen = match method {
        Method::Exact => exact::solve(instance)?,
        Method::Fptas => fptas::solve(instance, check_epsilon(epsilon)?),
        Method::Greedy => greedy::solve(instance),
    };
    chosen.sort_unstable();
    let download_bytes = instance.cost(&chosen);
    assert!(
        download_bytes <= instance.capacity_bytes,
        "{method} chose {download_bytes} bytes over a capacity of {}",
        instance.capacity_bytes
    );
    Ok(Placement {
        method,
        images: chosen
            .iter()
            .map(|&i| instance.image_ids[i].clone())
            .collect(),
        value_bps: instance.value(&chosen),
        download_bytes,
        capacity_bytes: instance.capacity_bytes,
    })
}

#[cfg(test)]
mod tests;
