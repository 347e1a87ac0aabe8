//! Decisions into the database through the collector's ingest: each decision is one batch of
//! allocation decisions (one per admitted analytic: knob, rate, algorithm, time) with an
//! idempotency key of the gateway, the service's start and the decision's sequence number.
//!
//! A batch the database does not take (it is down) is kept and sent again, in order, with the
//! next decision; the key makes a batch stored twice count once. A batch the collector refuses
//! for its content is logged and dropped.

use qoelab_collector::Db;
use qoelab_collector::ingest::{self, AllocationDecision, Batch};
use qoelab_planner::allocate::Allocation;
use serde::Serialize;

/// How a decision's storage went.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Stored {
    /// Allocation decisions stored now (this decision's and earlier pending ones).
    pub items: usize,
    /// Batches still waiting for the database.
    pub pending_batches: usize,
    /// The database's error, if it refused.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

/// Stores the decisions of one run of the service.
#[derive(Debug)]
pub struct DecisionStore {
    db: Db,
    gateway: String,
    run_ms: i64,
    pending: Vec<Batch<AllocationDecision>>,
}

impl DecisionStore {
    /// Stores into `db` as `gateway`; `run_ms` (the service's start) keeps keys of different
    /// runs apart.
    pub fn new(db: Db, gateway: &str, run_ms: i64) -> DecisionStore {
        DecisionStore {
            db,
            gateway: gateway.to_string(),
            run_ms,
            pending: Vec::new(),
        }
    }

    /// Stores decision `sequence` (its admitted analytics' knobs and rates at `ts_ms`), after any
    /// batches still pending.
    pub async fn store(&mut self, sequence: u64, allocation: &Allocation, ts_ms: i64) -> Stored {
        let items: Vec<AllocationDecision> = allocation
            .shares
            .iter()
            .filter(|s| s.admitted)
            .map(|s| AllocationDecision {
                gateway: self.gateway.clone(),
                analytic: s.id.clone(),
                knob: s.knob,
                rate_bps: s.rate_bps,
                algorithm: allocation.algorithm.name().to_string(),
                ts_ms,
            })
            .collect();
        if !items.is_empty() {
            self.pending.push(Batch {
                idempotency_key: Some(format!("{}:{}:{sequence}", self.gateway, self.run_ms)),
                items,
            });
        }
        let mut stored = Stored {
            items: 0,
            pending_batches: 0,
            error: None,
        };
        while let Some(batch) = self.pending.first() {
            match ingest::allocation_decisions(&self.db, batch).await {
                Ok(outcome) => {
                    stored.items += outcome.stored;
                    self.pending.remove(0);
                }
                // Refused for its content: it never will be stored; keeping it would block
                // every later batch.
                Err(err @ qoelab_collector::Error::Invalid { .. }) => {
                    tracing::error!("allocation decisions refused by the collector: {err}");
                    stored.error = Some(err.to_string());
                    self.pending.remove(0);
                }
                Err(err) => {
                    tracing::warn!("allocation decisions not stored yet: {err}");
                    stored.error = Some(err.to_string());
                    break;
                }
            }
        }
        stored.pending_batches = self.pending.len();
        stored
    }
}
