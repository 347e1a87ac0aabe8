//! Session lists kept for a second: counting 10,000 matching rows costs several times what
//! reading a page of them does, and tables, dashboards and scripts that poll ask for the same
//! totals and pages again and again. Everything kept is forgotten as soon as this server
//! changes anything (any request other than GET, any runner event); changes made by another
//! process (the CLI, a second server) show within [`FRESH`]; a request with
//! `Cache-Control: no-cache` reads the database.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use tokio::sync::broadcast::Receiver;
use tokio::sync::broadcast::error::TryRecvError;

use qoelab_collector::campaign::SessionStatus;
use qoelab_collector::events::{Event, Events};
use qoelab_collector::session::{self, SessionPage, SessionQuery};
use qoelab_collector::{Db, Result};

/// How long a total is trusted without a change seen here.
pub const FRESH: Duration = Duration::from_secs(1);

type Key = (
    Option<i64>,
    Option<SessionStatus>,
    Option<u64>,
    Option<String>,
);

type PageKey = (Key, Option<String>, bool, u32, Option<u32>);

/// Most pages kept at once.
const MAX_PAGES: usize = 1000;

/// Recently counted totals and read pages.
pub struct Totals {
    known: Mutex<HashMap<Key, (u64, Instant)>>,
    pages: Mutex<HashMap<PageKey, (Arc<SessionPage>, Instant)>>,
    filling: tokio::sync::Mutex<()>,
    events: Mutex<Receiver<Event>>,
}

fn key(q: &SessionQuery) -> Key {
    (q.campaign_id, q.status, q.rate_bps, q.label.clone())
}

impl Totals {
    /// Totals that forget themselves on every event of `events`.
    pub fn new(events: &Events) -> Totals {
        Totals {
            known: Mutex::new(HashMap::new()),
            pages: Mutex::new(HashMap::new()),
            filling: tokio::sync::Mutex::new(()),
            events: Mutex::new(events.subscribe()),
        }
    }

    /// Forgets every total and page.
    pub fn forget(&self) {
        self.known.lock().unwrap_or_else(|p| p.into_inner()).clear();
        self.pages.lock().unwrap_or_else(|p| p.into_inner()).clear();
    }

    fn changed_since_last_look(&self) -> bool {
        let mut events = self.events.lock().unwrap_or_else(|p| p.into_inner());
        let mut changed = false;
        loop {
            match events.try_recv() {
                Ok(_) | Err(TryRecvError::Lagged(_)) => changed = true,
                Err(TryRecvError::Empty | TryRecvError::Closed) => return changed,
            }
        }
    }

    /// The number of sessions matching `q`'s filters.
    pub async fn total(&self, db: &Db, q: &SessionQuery) -> Result<u64> {
        if self.changed_since_last_look() {
            self.forget();
        }
        let key = key(q);
        if let Some((total, at)) = self
            .known
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .get(&key)
            && at.elapsed() < FRESH
        {
            return Ok(*total);
        }
        let total = session::count(db, q).await?;
        let mut known = self.known.lock().unwrap_or_else(|p| p.into_inner());
        known.insert(key, (total, Instant::now()));
        Ok(total)
    }

    fn kept(&self, key: &PageKey) -> Option<Arc<SessionPage>> {
        let pages = self.pages.lock().unwrap_or_else(|p| p.into_inner());
        pages
            .get(key)
            .filter(|(_, at)| at.elapsed() < FRESH)
            .map(|(page, _)| page.clone())
    }

    /// A page of sessions with the total of its filters; `fresh` reads the database whatever
    /// is kept (a request with `Cache-Control: no-cache`).
    pub async fn list(&self, db: &Db, q: &SessionQuery, fresh: bool) -> Result<Arc<SessionPage>> {
        if fresh {
            return Ok(Arc::new(session::list(db, q).await?));
        }
        if self.changed_since_last_look() {
            self.forget();
        }
        let page_key = (key(q), q.sort.clone(), q.desc, q.page, q.per_page);
        if let Some(page) = self.kept(&page_key) {
            return Ok(page);
        }
        // One reader refills at a time: requests that missed together find the page it read
        // instead of all queueing on the database for the same rows.
        let _filling = self.filling.lock().await;
        if let Some(page) = self.kept(&page_key) {
            return Ok(page);
        }
        let sessions = session::page(db, q).await?;
        let page = Arc::new(SessionPage {
            sessions,
            total: self.total(db, q).await?,
        });
        let mut pages = self.pages.lock().unwrap_or_else(|p| p.into_inner());
        if pages.len() >= MAX_PAGES {
            pages.clear();
        }
        pages.insert(page_key, (page.clone(), Instant::now()));
        Ok(page)
    }
}
