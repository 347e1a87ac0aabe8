//! A minute-stepped simulation of a gateway serving a request trace.
//!
//! Every minute, in this order:
//!
//! 1. downloads that have finished (transfer plus extraction) put their layers in the store;
//! 2. requests whose lifetime is over depart (their layers are released);
//! 3. new requests arrive and start in the cloud;
//! 4. cloud analytics whose image is complete in the store move to the edge, while the gateway
//!    has edge slots free (their layers are referenced, so never evicted while they run);
//! 5. the store evicts layers if it passed its high watermark ([`crate::replacement`]);
//! 6. at the start of every placement slot, images are chosen for the apps with analytics in
//!    the cloud ([`crate::placement`]): an image is worth the upload its cloud analytics would
//!    save at full quality (cloud − edge bitrate at K = 1, for as many of them as there are
//!    free edge slots), the capacity is min(free storage − bytes in flight, downlink bytes in
//!    the slot), and layers present or in flight cost nothing;
//! 7. the upload budget is allocated among all running analytics ([`crate::allocate`]).
//!
//! Each minute becomes a [`Row`]: weighted QoS, upload used and saved, edge/cloud counts,
//! download and storage bytes, and the algorithms' run times. [`Report::csv`] writes them and
//! [`plot::svg`] draws them.

pub mod plot;

use std::collections::HashSet;
use std::fmt::Write;
use std::time::Instant;

use qoelab_workload::model::{Location, ModelSet};
use serde::Serialize;

use crate::PlanError;
use crate::allocate::{self, Algorithm, Problem};
use crate::analytic::{Analytic, AnalyticSpec};
use crate::placement::{self, Image, Instance, Method, slot_capacity_bytes};
use crate::replacement::{LayerStore, Policy, Watermarks};
use crate::requests::Request;
use crate::scenario::Scenario;

/// What to simulate with.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Config {
    /// Image placement method.
    pub ida: Method,
    /// ε of `fptas`.
    pub epsilon: f64,
    /// Rate allocation algorithm.
    pub raa: Algorithm,
    /// Rate allocation tuning (α of `raa`, …).
    pub options: allocate::Options,
    /// Layer replacement policy.
    pub lrp: Policy,
    /// Store watermarks.
    pub watermarks: Watermarks,
    /// Uplink, bit/s: the allocation budget.
    pub upload_bps: u64,
    /// Downlink, bit/s: carries image downloads.
    pub download_bps: u64,
    /// Gateway storage for layers, bytes.
    pub storage_bytes: u64,
    /// Minutes between placements.
    pub slot_min: u32,
    /// Analytics the gateway runs at once.
    pub edge_slots: u32,
    /// Extraction speed of downloaded layers, bytes/s.
    pub extract_bytes_per_s: u64,
    /// Minutes to simulate (default: until the last request departs).
    pub minutes: Option<u32>,
}

impl Config {
    /// The reference study's setting: 5 Mbit/s up, 100 Mbit/s down, 5-minute slots, RAA with
    /// α = 0.01, the DP placement, LRU, ε = 0.4, with 2 GB of storage, 5 edge slots and
    /// extraction at 50 MB/s.
    pub fn reference() -> Config {
        Config {
            ida: Method::Exact,
            epsilon: 0.4,
            raa: Algorithm::Raa,
            options: allocate::Options::default(),
            lrp: Policy::Lru,
            watermarks: Watermarks::default(),
            upload_bps: 5_000_000,
            download_bps: 100_000_000,
            storage_bytes: 2_000_000_000,
            slot_min: 5,
            edge_slots: 5,
            extract_bytes_per_s: 50_000_000,
            minutes: None,
        }
    }

    fn validate(&self) -> Result<(), PlanError> {
        self.options.validate()?;
        self.watermarks.validate()?;
        if self.ida == Method::Fptas {
            placement::check_epsilon(self.epsilon)?;
        }
        let positive = [
            (
                "upload rate",
                self.upload_bps,
                "a positive rate, e.g. 5mbit",
            ),
            (
                "download rate",
                self.download_bps,
                "a positive rate, e.g. 100mbit",
            ),
            ("storage", self.storage_bytes, "a positive size, e.g. 2gb"),
            ("slot", u64::from(self.slot_min), "at least 1 minute"),
            (
                "extraction rate",
                self.extract_bytes_per_s,
                "a positive rate, e.g. 400mbit",
            ),
        ];
        for (field, value, accepted) in positive {
            if value == 0 {
                return Err(PlanError::invalid(field, 0, accepted));
            }
        }
        Ok(())
    }
}

/// One simulated minute.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Row {
    /// The minute.
    pub minute: u32,
    /// Analytics running.
    pub running: u32,
    /// Of those, at the edge.
    pub edge: u32,
    /// Of those, in the cloud.
    pub cloud: u32,
    /// Of those, admitted by the allocation.
    pub admitted: u32,
    /// Σ w·QoS / Σ w over running analytics (0 when none run).
    pub weighted_qos: f64,
    /// Upload allocated, bit/s.
    pub upload_bps: u64,
    /// Upload saved by edge analytics at their knobs (cloud − edge bitrate), bit/s.
    pub saved_bps: u64,
    /// Bytes downloaded this minute.
    pub download_bytes: u64,
    /// Bytes in the layer store at the end of the minute.
    pub storage_bytes: u64,
    /// Bytes evicted this minute.
    pub evicted_bytes: u64,
    /// Images chosen by this minute's placement.
    pub placed_images: u32,
    /// Allocation run time, µs (0 when nothing runs).
    pub allocate_us: f64,
    /// Placement run time, µs (none in minutes without a placement).
    pub place_us: Option<f64>,
}

/// Means and totals over a simulation.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Summary {
    /// Mean weighted QoS over minutes with analytics running.
    pub mean_weighted_qos: f64,
    /// Mean upload saved over minutes with analytics running, bit/s.
    pub mean_saved_bps: f64,
    /// Share of analytic-minutes spent at the edge.
    pub edge_share: f64,
    /// Bytes downloaded.
    pub download_bytes: u64,
    /// Bytes evicted.
    pub evicted_bytes: u64,
    /// Mean allocation run time, µs.
    pub mean_allocate_us: f64,
    /// Mean placement run time over placements, µs.
    pub mean_place_us: f64,
}

/// A simulation's minutes and summary.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Report {
    /// The configuration.
    pub config: Config,
    /// One row per minute.
    pub rows: Vec<Row>,
    /// Means and totals.
    pub summary: Summary,
}

impl Report {
    /// The rows as CSV with a header line.
    pub fn csv(&self) -> String {
        let mut out = String::from(
            "minute,running,edge,cloud,admitted,weighted_qos,upload_bps,saved_bps,\
             download_bytes,storage_bytes,evicted_bytes,placed_images,allocate_us,place_us\n",
        );
        for r in &self.rows {
            let _ = writeln!(
                out,
                "{},{},{},{},{},{:.6},{},{},{},{},{},{},{:.1},{}",
                r.minute,
                r.running,
                r.edge,
                r.cloud,
                r.admitted,
                r.weighted_qos,
                r.upload_bps,
                r.saved_bps,
                r.download_bytes,
                r.storage_bytes,
                r.evicted_bytes,
                r.placed_images,
                r.allocate_us,
                r.place_us.map_or(String::new(), |us| format!("{us:.1}"))
            );
        }
        out
    }
}

struct Running {
    id: String,
    app: usize,
    departs: u32,
    location: Location,
}

struct Download {
    layers: Vec<usize>,
    ready: u32,
}

/// The simulation state between minutes.
struct Gateway<'a> {
    scenario: &'a Scenario,
    models: &'a ModelSet,
    config: &'a Config,
    store: LayerStore,
    running: Vec<Running>,
    downloads: Vec<Download>,
    /// Bytes the downlink carries per minute from now on (index 0 = this minute).
    downlink: Vec<u64>,
    arrivals: u64,
}

/// Runs `requests` through the gateway of `scenario`.
pub fn run(
    scenario: &Scenario,
    models: &ModelSet,
    requests: &[Request],
    config: &Config,
) -> Result<Report, PlanError> {
    config.validate()?;
    let mut trace = Vec::with_capacity(requests.len());
    for r in requests {
        trace.push((
            scenario.app(&r.app)?.0,
            r.arrival_min,
            r.arrival_min + r.lifetime_min,
        ));
    }
    let minutes = config
        .minutes
        .unwrap_or_else(|| trace.iter().map(|t| t.2).max().unwrap_or(0) + 1);
    let mut gateway = Gateway {
        scenario,
        models,
        config,
        store: LayerStore::new(config.storage_bytes, config.watermarks)?,
        running: Vec::new(),
        downloads: Vec::new(),
        downlink: Vec::new(),
        arrivals: 0,
    };
    let mut rows = Vec::with_capacity(minutes as usize);
    for minute in 0..minutes {
        let arriving: Vec<(usize, u32)> = trace
            .iter()
            .filter(|t| t.1 == minute)
            .map(|t| (t.0, t.2))
            .collect();
        rows.push(gateway.step(minute, &arriving)?);
    }
    let summary = summarize(&rows);
    Ok(Report {
        config: config.clone(),
        rows,
        summary,
    })
}

impl Gateway<'_> {
    fn layers_of(&self, app: usize) -> &[String] {
        &self.scenario.apps[app].image
    }

    fn complete(&self, app: usize) -> bool {
        self.layers_of(app).iter().all(|l| self.store.contains(l))
    }

    fn step(&mut self, minute: u32, arriving: &[(usize, u32)]) -> Result<Row, PlanError> {
        // 1. Finished downloads.
        let (done, pending): (Vec<Download>, Vec<Download>) = std::mem::take(&mut self.downloads)
            .into_iter()
            .partition(|d| d.ready <= minute);
        self.downloads = pending;
        for d in done {
            for &l in &d.layers {
                let layer = &self.scenario.layers[l];
                self.store.store(&layer.id, layer.bytes);
            }
        }
        // 2. Departures.
        let (gone, staying): (Vec<Running>, Vec<Running>) = std::mem::take(&mut self.running)
            .into_iter()
            .partition(|r| r.departs <= minute);
        self.running = staying;
        for r in gone.iter().filter(|r| r.location == Location::Edge) {
            let layers = self.layers_of(r.app).to_vec();
            self.store.release(&layers);
        }
        // 3. Arrivals.
        for &(app, departs) in arriving {
            self.arrivals += 1;
            self.running.push(Running {
                id: format!("{}#{}", self.scenario.apps[app].name, self.arrivals),
                app,
                departs,
                location: Location::Cloud,
            });
        }
        // 4. Moves to the edge.
        let mut edge = self.count(Location::Edge);
        for i in 0..self.running.len() {
            let app = self.running[i].app;
            if edge < self.config.edge_slots
                && self.running[i].location == Location::Cloud
                && self.complete(app)
            {
                self.running[i].location = Location::Edge;
                let layers = self.layers_of(app).to_vec();
                self.store.acquire(&layers);
                edge += 1;
            }
        }
        // 5. Replacement.
        let evicted_bytes = self
            .store
            .enforce(self.config.lrp)
            .iter()
            .map(|e| e.bytes)
            .sum();
        // 6. Placement.
        let (placed_images, place_us) = if minute.is_multiple_of(self.config.slot_min) {
            self.place(minute)?
        } else {
            (0, None)
        };
        let download_bytes = if self.downlink.is_empty() {
            0
        } else {
            self.downlink.remove(0)
        };
        // 7. Allocation.
        let mut row = self.allocate(minute)?;
        row.download_bytes = download_bytes;
        row.evicted_bytes = evicted_bytes;
        row.placed_images = placed_images;
        row.place_us = place_us;
        Ok(row)
    }

    fn count(&self, location: Location) -> u32 {
        self.running
            .iter()
            .filter(|r| r.location == location)
            .count() as u32
    }

    /// Chooses images for apps with cloud analytics and starts their downloads.
    fn place(&mut self, minute: u32) -> Result<(u32, Option<f64>), PlanError> {
        let in_flight: HashSet<usize> = self
            .downloads
            .iter()
            .flat_map(|d| d.layers.clone())
            .collect();
        let mut present: HashSet<String> = self.store.ids().map(str::to_string).collect();
        present.extend(
            in_flight
                .iter()
                .map(|&l| self.scenario.layers[l].id.clone()),
        );
        // Only as many analytics as there are free edge slots can move.
        let free_slots = self
            .config
            .edge_slots
            .saturating_sub(self.count(Location::Edge)) as usize;
        let mut images = Vec::new();
        for (app, spec) in self.scenario.apps.iter().enumerate() {
            if spec.image.iter().all(|l| present.contains(l)) {
                continue;
            }
            let model = self.models.get(&spec.kind)?;
            let saved = (model.rate_bps(1.0, Location::Cloud)
                - model.rate_bps(1.0, Location::Edge))
            .max(0.0);
            let waiting = self
                .running
                .iter()
                .filter(|r| r.app == app && r.location == Location::Cloud)
                .count()
                .min(free_slots);
            if waiting > 0 {
                images.push(Image {
                    id: spec.name.clone(),
                    layers: spec.image.clone(),
                    value_bps: saved * waiting as f64,
                });
            }
        }
        if images.is_empty() {
            return Ok((0, None));
        }
        let in_flight_bytes: u64 = in_flight
            .iter()
            .map(|&l| self.scenario.layers[l].bytes)
            .sum();
        let capacity = slot_capacity_bytes(
            self.store.free_bytes().saturating_sub(in_flight_bytes),
            self.config.download_bps,
            u64::from(self.config.slot_min) * 60,
        );
        let instance = Instance::new(&self.scenario.layers, &images, &present, capacity)?;
        let started = Instant::now();
        let chosen = placement::place(&instance, self.config.ida, self.config.epsilon)?;
        let place_us = micros(started);
        let mut layers: Vec<usize> = Vec::new();
        for name in &chosen.images {
            let (app, _) = self.scenario.app(name)?;
            for id in &self.scenario.apps[app].image {
                let l = self
                    .scenario
                    .layers
                    .iter()
                    .position(|layer| &layer.id == id)
                    .expect("scenario layers are validated");
                if !present.contains(id) && !layers.contains(&l) {
                    layers.push(l);
                }
            }
        }
        let bytes = chosen.download_bytes;
        let seconds = bytes as f64 * 8.0 / self.config.download_bps as f64
            + bytes as f64 / self.config.extract_bytes_per_s as f64;
        let ready = minute + (seconds / 60.0).ceil() as u32;
        // The downlink carries the bytes at its rate from this minute on.
        let per_minute = self.config.download_bps * 60 / 8;
        let mut left = bytes;
        let mut at = 0;
        while left > 0 {
            if self.downlink.len() <= at {
                self.downlink.push(0);
            }
            let room = per_minute.saturating_sub(self.downlink[at]);
            let carried = left.min(room);
            self.downlink[at] += carried;
            left -= carried;
            at += 1;
        }
        self.downloads.push(Download { layers, ready });
        Ok((chosen.images.len() as u32, Some(place_us)))
    }

    /// Allocates the uplink among the running analytics.
    fn allocate(&mut self, minute: u32) -> Result<Row, PlanError> {
        let mut row = Row {
            minute,
            running: self.running.len() as u32,
            edge: self.count(Location::Edge),
            cloud: self.count(Location::Cloud),
            admitted: 0,
            weighted_qos: 0.0,
            upload_bps: 0,
            saved_bps: 0,
            download_bytes: 0,
            storage_bytes: self.store.used_bytes(),
            evicted_bytes: 0,
            placed_images: 0,
            allocate_us: 0.0,
            place_us: None,
        };
        if self.running.is_empty() {
            return Ok(row);
        }
        let analytics = self
            .running
            .iter()
            .map(|r| {
                let app = &self.scenario.apps[r.app];
                let spec = AnalyticSpec {
                    id: r.id.clone(),
                    kind: app.kind.clone(),
                    weight: app.weight,
                    location: r.location,
                    k_min: None,
                    port: None,
                    address: None,
                };
                Analytic::new(spec, self.models)
            })
            .collect::<Result<Vec<_>, _>>()?;
        let problem = Problem::new(self.config.upload_bps, analytics)?;
        let started = Instant::now();
        let allocation = allocate::allocate(&problem, self.config.raa, &self.config.options)?;
        row.allocate_us = micros(started);
        row.admitted = allocation.shares.iter().filter(|s| s.admitted).count() as u32;
        row.weighted_qos = allocation.mean_weighted_qos();
        row.upload_bps = allocation.used_bps;
        row.saved_bps = problem
            .analytics()
            .iter()
            .zip(&allocation.shares)
            .filter(|(a, s)| s.admitted && a.location == Location::Edge)
            .map(|(a, s)| {
                a.model.rate_bps(s.knob, Location::Cloud) - a.model.rate_bps(s.knob, Location::Edge)
            })
            .sum::<f64>()
            .max(0.0) as u64;
        Ok(row)
    }
}

fn micros(since: Instant) -> f64 {
    since.elapsed().as_secs_f64() * 1e6
}

fn summarize(rows: &[Row]) -> Summary {
    let busy: Vec<&Row> = rows.iter().filter(|r| r.running > 0).collect();
    let mean = |f: &dyn Fn(&Row) -> f64, over: &[&Row]| {
        if over.is_empty() {
            0.0
        } else {
            over.iter().map(|r| f(r)).sum::<f64>() / over.len() as f64
        }
    };
    let placements: Vec<&Row> = rows.iter().filter(|r| r.place_us.is_some()).collect();
    let analytic_minutes: u32 = rows.iter().map(|r| r.running).sum();
    let edge_minutes: u32 = rows.iter().map(|r| r.edge).sum();
    Summary {
        mean_weighted_qos: mean(&|r| r.weighted_qos, &busy),
        mean_saved_bps: mean(&|r| r.saved_bps as f64, &busy),
        edge_share: if analytic_minutes == 0 {
            0.0
        } else {
            f64::from(edge_minutes) / f64::from(analytic_minutes)
        },
        download_bytes: rows.iter().map(|r| r.download_bytes).sum(),
        evicted_bytes: rows.iter().map(|r| r.evicted_bytes).sum(),
        mean_allocate_us: mean(&|r| r.allocate_us, &busy),
        mean_place_us: mean(&|r| r.place_us.unwrap_or(0.0), &placements),
    }
}

#[cfg(test)]
mod tests;
