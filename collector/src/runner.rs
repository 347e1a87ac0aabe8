//! The campaign runner: runs the sessions of its gateway's running campaigns one at a time
//! over the gateway's link — shape, capture, run the workload, stop, correlate, store — and
//! serves external clients that play sessions themselves.
//!
//! The runner talks to the network through [`Network`] (the agent: shaping and capture) and
//! runs built-in workloads through [`Driver`]; both are traits so the same runner serves
//! `qoelab serve` (agent over its socket) and `qoelab up` (agent in-process). A server with
//! several gateways runs one runner per gateway, side by side, sharing one
//! [`Gateways`](crate::gateways::Gateways).
//!
//! Guarantees: the link is unshaped between sessions; a stopped campaign's running session
//! goes back to pending; after a crash, running sessions go back to pending and running
//! campaigns resume; results are stored in one transaction, and if the database is down they
//! are kept and retried until it is back — never silently dropped.

use std::future::Future;
use std::sync::Arc;
use std::time::{Duration, Instant};

use serde_json::Value;
use tokio::sync::{Mutex, Notify};
use tokio_util::sync::CancellationToken;

use crate::application;
use crate::campaign::{self, Campaign, CampaignStatus, Profile, SessionStatus, Workload};
use crate::db::Db;
use crate::error::{Error, Result};
use crate::events::{Event, Events};
use crate::gateways::Gateways;
use crate::session::{self, Results, Session};

/// Shaping and capture on the measured link (implemented by the agent client).
pub trait Network: Send + Sync + 'static {
    /// Shapes the link to `profile`.
    fn apply(
        &self,
        profile: &Profile,
    ) -> impl Future<Output = std::result::Result<(), String>> + Send;
    /// Removes every limit from the link.
    fn clear(&self) -> impl Future<Output = std::result::Result<(), String>> + Send;
    /// Starts a capture on the link; returns its id.
    fn start_capture(&self) -> impl Future<Output = std::result::Result<String, String>> + Send;
    /// Stops capture `id`; returns its flows and series (the application record is empty).
    fn stop_capture(
        &self,
        id: &str,
    ) -> impl Future<Output = std::result::Result<Results, String>> + Send;
}

/// Runs a built-in workload.
pub trait Driver: Send + Sync + 'static {
    /// Runs `workload` for `total` (warm-up included) or until `cancel`; returns the
    /// application's QoE/QoS record.
    fn run(
        &self,
        workload: &Workload,
        total: Duration,
        cancel: CancellationToken,
    ) -> impl Future<Output = std::result::Result<Option<Value>, String>> + Send;
}

/// The session using the link now.
#[derive(Debug, Clone)]
struct Active {
    campaign_id: i64,
    session_id: i64,
    capture_id: Option<String>,
    cancel: CancellationToken,
}

/// Runs the campaigns of one gateway.
pub struct Runner<N, D> {
    gateways: Gateways,
    /// This runner's gateway: its position in `gateways`.
    gateway: usize,
    network: Arc<N>,
    driver: Arc<D>,
    active: Mutex<Option<Active>>,
    wake: Notify,
    /// Seconds each session took, for the ETA.
    durations: std::sync::Mutex<Vec<f64>>,
}

impl<N: Network, D: Driver> Runner<N, D> {
    /// The runner of a server with one gateway: over `db`, the link `network` and the
    /// workload `driver`.
    pub fn new(db: Db, network: N, driver: D, events: Events) -> Arc<Self> {
        Runner::on_gateway(&Gateways::single(db, events), 0, network, driver)
    }

    /// The runner of gateway `gateway` (its position) of `gateways`, over its link `network`
    /// and workload `driver`.
    pub fn on_gateway(gateways: &Gateways, gateway: usize, network: N, driver: D) -> Arc<Self> {
        assert!(gateway < gateways.names().len(), "no gateway {gateway}");
        Arc::new(Runner {
            gateways: gateways.clone(),
            gateway,
            network: Arc::new(network),
            driver: Arc::new(driver),
            active: Mutex::new(None),
            wake: Notify::new(),
            durations: std::sync::Mutex::new(Vec::new()),
        })
    }

    fn db(&self) -> &Db {
        self.gateways.db()
    }

    fn events(&self) -> &Events {
        self.gateways.events()
    }

    /// Starts (or resumes) campaign `id`; refused (naming `gateway`) if it names a gateway
    /// this server does not have.
    pub async fn start(&self, id: i64) -> Result<()> {
        self.gateways
            .of(&campaign::get(self.db(), id).await?.spec)?;
        campaign::set_status(
            self.db(),
            id,
            &[CampaignStatus::Pending, CampaignStatus::Stopped],
            CampaignStatus::Running,
        )
        .await?;
        self.events().publish(Event::CampaignStatus {
            campaign_id: id,
            status: CampaignStatus::Running,
        });
        self.wake.notify_one();
        Ok(())
    }

    /// Stops campaign `id`: its running session is cancelled and goes back to pending.
    pub async fn stop(&self, id: i64) -> Result<()> {
        campaign::set_status(
            self.db(),
            id,
            &[CampaignStatus::Pending, CampaignStatus::Running],
            CampaignStatus::Stopped,
        )
        .await?;
        if let Some(active) = self.active.lock().await.as_ref()
            && active.campaign_id == id
        {
            active.cancel.cancel();
        }
        self.events().publish(Event::CampaignStatus {
            campaign_id: id,
            status: CampaignStatus::Stopped,
        });
        Ok(())
    }

    /// Runs until `shutdown`: first puts sessions left running by a crash back to pending and
    /// unshapes the link, then runs the sessions of running built-in campaigns, oldest campaign
    /// first.
    pub async fn run(self: Arc<Self>, shutdown: CancellationToken) -> Result<()> {
        retry_db(&shutdown, || self.recover()).await?;
        if let Err(e) = self.network.clear().await {
            tracing::warn!("could not unshape the link at start: {e}");
        }
        while !shutdown.is_cancelled() {
            match self.next_builtin().await {
                Ok(Some(campaign)) => {
                    if let Err(e) = self.run_one(&campaign, &shutdown).await {
                        tracing::error!(campaign = campaign.id, "session error: {e}");
                        tokio::time::sleep(Duration::from_secs(1)).await;
                    }
                }
                Ok(None) => {
                    tokio::select! {
                        _ = self.wake.notified() => {}
                        _ = tokio::time::sleep(Duration::from_secs(5)) => {}
                        _ = shutdown.cancelled() => {}
                    }
                }
                Err(e) => {
                    tracing::warn!("the runner cannot read campaigns: {e}");
                    tokio::time::sleep(Duration::from_secs(2)).await;
                }
            }
        }
        if let Some(active) = self.active.lock().await.as_ref() {
            active.cancel.cancel();
        }
        Ok(())
    }

    /// Puts sessions left running by a previous process back to pending (once per database;
    /// see [`Gateways`]).
    async fn recover(&self) -> Result<()> {
        self.gateways.recover().await
    }

    /// The oldest running built-in campaign this runner takes.
    async fn next_builtin(&self) -> Result<Option<Campaign>> {
        Ok(campaign::with_status(self.db(), CampaignStatus::Running)
            .await?
            .into_iter()
            .find(|c| {
                c.spec.workload != Workload::External
                    && self.gateways.runner_of(&c.spec) == self.gateway
            }))
    }

    /// Runs the next session of `campaign`, or marks the campaign done if none is left.
    async fn run_one(&self, campaign: &Campaign, shutdown: &CancellationToken) -> Result<()> {
        if let Err(unknown) = self.gateways.of(&campaign.spec) {
            return self.fail_pending(campaign, &unknown.to_string()).await;
        }
        let Some(session) = session::claim_next(self.db(), campaign.id).await? else {
            self.finish_if_complete(campaign.id).await?;
            return Ok(());
        };
        let cancel = shutdown.child_token();
        *self.active.lock().await = Some(Active {
            campaign_id: campaign.id,
            session_id: session.id,
            capture_id: None,
            cancel: cancel.clone(),
        });
        self.publish_started(campaign, &session).await;
        let started = Instant::now();
        // A stop may come from another process (the CLI) through the database.
        let watcher = tokio::spawn(cancel_when_not_running(
            self.db().clone(),
            campaign.id,
            cancel.clone(),
        ));
        let outcome = self.measure(campaign, &session, cancel.clone()).await;
        watcher.abort();
        if let Err(e) = self.network.clear().await {
            tracing::warn!(session = session.id, "could not unshape the link: {e}");
        }
        *self.active.lock().await = None;
        match outcome {
            _ if cancel.is_cancelled() => {
                retry_db(&CancellationToken::new(), || {
                    session::requeue(self.db(), session.id)
                })
                .await?;
                return Ok(());
            }
            Ok(results) if !results.has_traffic() => {
                self.end(
                    &session,
                    SessionStatus::Discarded,
                    "the session carried no traffic",
                )
                .await?
            }
            Ok(results) => self.store(&session, &results).await?,
            Err(reason) => self.end(&session, SessionStatus::Failed, &reason).await?,
        }
        self.durations
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .push(started.elapsed().as_secs_f64());
        self.finish_if_complete(campaign.id).await
    }

    /// Fails every pending session of `campaign` with `reason`: it can never run here.
    async fn fail_pending(&self, campaign: &Campaign, reason: &str) -> Result<()> {
        let failed = session::fail_pending(self.db(), campaign.id, reason).await?;
        tracing::error!(campaign = campaign.id, "{failed} sessions failed: {reason}");
        self.finish_if_complete(campaign.id).await
    }

    /// Shape, warm up, capture, run, stop: the measurement of one session.
    async fn measure(
        &self,
        campaign: &Campaign,
        session: &Session,
        cancel: CancellationToken,
    ) -> std::result::Result<Results, String> {
        let spec = &campaign.spec;
        self.network
            .apply(&session.profile)
            .await
            .map_err(|e| format!("shaping failed: {e}"))?;
        // The capture starts before the workload so that it sees every connection open: the
        // SYN decides which end is the client, and the handshake gives an RTT.
        let capture_id = self
            .network
            .start_capture()
            .await
            .map_err(|e| format!("capture failed to start: {e}"))?;
        if let Some(active) = self.active.lock().await.as_mut() {
            active.capture_id = Some(capture_id.clone());
        }
        let _ = session::set_capture(self.db(), session.id, &capture_id).await;
        let total = Duration::from_secs_f64(spec.warmup_s + spec.duration_s);
        let driver = self.driver.clone();
        let workload = spec.workload.clone();
        let run = tokio::spawn(async move { driver.run(&workload, total, cancel).await });
        let application = run.await.map_err(|e| format!("workload crashed: {e}"));
        let capture = self
            .network
            .stop_capture(&capture_id)
            .await
            .map_err(|e| format!("capture failed: {e}"));
        let mut results = capture?;
        results.capture_id = Some(capture_id);
        results.warmup_ms = (spec.warmup_s * 1000.0).round() as u64;
        results.application = application??;
        Ok(results)
    }

    async fn publish_started(&self, campaign: &Campaign, session: &Session) {
        let progress = campaign::progress(self.db(), campaign.id)
            .await
            .unwrap_or_default();
        let remaining = (progress.pending + progress.running) as f64;
        let per_session = {
            let d = self.durations.lock().unwrap_or_else(|p| p.into_inner());
            if d.is_empty() {
                campaign.spec.warmup_s + campaign.spec.duration_s
            } else {
                d.iter().sum::<f64>() / d.len() as f64
            }
        };
        self.events().publish(Event::SessionStarted {
            campaign_id: campaign.id,
            session_id: session.id,
            seq: session.seq,
            total: progress.total(),
            rate_bps: session.profile.rate_bps,
            eta_s: Some(remaining * per_session),
        });
    }

    async fn store(&self, session: &Session, results: &Results) -> Result<()> {
        let mut delay = Duration::from_millis(500);
        loop {
            match session::store_results(self.db(), session, results).await {
                Ok(()) => return self.publish_ended(session, SessionStatus::Done, None).await,
                Err(e) if e.is_transient() => {
                    tracing::warn!(session = session.id, "results wait for the database: {e}");
                    self.events().publish(Event::StoreRetrying {
                        campaign_id: session.campaign_id,
                        session_id: session.id,
                        error: e.to_string(),
                    });
                    tokio::time::sleep(delay).await;
                    delay = (delay * 2).min(Duration::from_secs(5));
                }
                Err(e) => {
                    return self
                        .end(
                            session,
                            SessionStatus::Failed,
                            &format!("storing results failed: {e}"),
                        )
                        .await;
                }
            }
        }
    }

    async fn end(&self, session: &Session, status: SessionStatus, reason: &str) -> Result<()> {
        retry_db(&CancellationToken::new(), || {
            session::end_without_results(self.db(), session.id, status, reason)
        })
        .await?;
        self.publish_ended(session, status, Some(reason.to_string()))
            .await
    }

    async fn publish_ended(
        &self,
        session: &Session,
        status: SessionStatus,
        failure: Option<String>,
    ) -> Result<()> {
        let progress = campaign::progress(self.db(), session.campaign_id).await?;
        self.events().publish(Event::SessionEnded {
            campaign_id: session.campaign_id,
            session_id: session.id,
            status,
            failure,
            progress,
        });
        Ok(())
    }

    async fn finish_if_complete(&self, campaign_id: i64) -> Result<()> {
        let progress = campaign::progress(self.db(), campaign_id).await?;
        if progress.pending == 0 && progress.running == 0 {
            campaign::set_status(
                self.db(),
                campaign_id,
                &[CampaignStatus::Running],
                CampaignStatus::Done,
            )
            .await?;
            self.events().publish(Event::CampaignStatus {
                campaign_id,
                status: CampaignStatus::Done,
            });
        }
        Ok(())
    }

    // ----- external clients -------------------------------------------------------------------

    /// Gives an external client the next session of running external campaign `campaign_id`,
    /// marked running; `None` when the campaign has no pending session.
    pub async fn external_next(&self, campaign_id: i64) -> Result<Option<Session>> {
        self.recover().await?;
        let campaign = campaign::get(self.db(), campaign_id).await?;
        self.gateways.of(&campaign.spec)?;
        if campaign.spec.workload != Workload::External {
            return Err(Error::Conflict(format!(
                "campaign {campaign_id} runs the built-in workload '{}'; only external campaigns take external clients",
                campaign.spec.workload.label()
            )));
        }
        match campaign.status {
            CampaignStatus::Running => {}
            CampaignStatus::Done => return Ok(None),
            other => {
                return Err(Error::Conflict(format!(
                    "campaign {campaign_id} is {other}; start it first"
                )));
            }
        }
        let next = session::claim_next(self.db(), campaign_id).await?;
        if next.is_none() {
            self.finish_if_complete(campaign_id).await?;
        }
        Ok(next)
    }

    /// The external client starts playing session `id`: the link is shaped to its profile and
    /// the capture starts. Only one session may use the link at a time.
    pub async fn external_start(&self, id: i64) -> Result<Session> {
        let session = self.running_external(id).await?;
        let mut active = self.active.lock().await;
        if let Some(other) = active.as_ref() {
            return Err(Error::Conflict(format!(
                "the link is busy with session {} of campaign {}; try again when it ends",
                other.session_id, other.campaign_id
            )));
        }
        self.network
            .apply(&session.profile)
            .await
            .map_err(|e| Error::Conflict(format!("shaping failed: {e}")))?;
        let capture_id = match self.network.start_capture().await {
            Ok(id) => id,
            Err(e) => {
                let _ = self.network.clear().await;
                return Err(Error::Conflict(format!("capture failed to start: {e}")));
            }
        };
        session::set_capture(self.db(), id, &capture_id).await?;
        *active = Some(Active {
            campaign_id: session.campaign_id,
            session_id: id,
            capture_id: Some(capture_id),
            cancel: CancellationToken::new(),
        });
        Ok(session)
    }

    /// The external client finished session `id` and reports its application data (format
    /// `qoelab.app-qoe.v1`, see [`application::check`]; refused data leaves the session
    /// running, so the client can send it again). The capture stops, the link is unshaped, the
    /// session is correlated and stored.
    pub async fn external_finish(&self, id: i64, application: Value) -> Result<()> {
        application::check(&application)?;
        let session = self.running_external(id).await?;
        let capture_id = {
            let mut active = self.active.lock().await;
            match active.as_ref() {
                Some(a) if a.session_id == id => {
                    let capture = a.capture_id.clone();
                    *active = None;
                    capture
                }
                _ => {
                    return Err(Error::Conflict(format!(
                        "session {id} was not started; call start first"
                    )));
                }
            }
        };
        let capture = match capture_id.as_deref() {
            Some(cid) => self.network.stop_capture(cid).await,
            None => Err("no capture".to_string()),
        };
        if let Err(e) = self.network.clear().await {
            tracing::warn!(session = id, "could not unshape the link: {e}");
        }
        match capture {
            Ok(mut results) => {
                results.capture_id = capture_id;
                results.application = Some(application);
                if results.has_traffic() {
                    self.store(&session, &results).await?;
                } else {
                    self.end(
                        &session,
                        SessionStatus::Discarded,
                        "the session carried no traffic",
                    )
                    .await?;
                }
            }
            Err(e) => {
                self.end(
                    &session,
                    SessionStatus::Failed,
                    &format!("capture failed: {e}"),
                )
                .await?
            }
        }
        self.finish_if_complete(session.campaign_id).await
    }

    async fn running_external(&self, id: i64) -> Result<Session> {
        self.recover().await?;
        let session = session::get(self.db(), id).await?;
        if session.status != SessionStatus::Running {
            return Err(Error::Conflict(format!(
                "session {id} is {}; request it with next first",
                session.status
            )));
        }
        if session.workload != Workload::External.label() {
            return Err(Error::Conflict(format!(
                "session {id} belongs to a built-in campaign"
            )));
        }
        Ok(session)
    }
}

/// Cancels `cancel` once campaign `id` is no longer running (checked every second).
async fn cancel_when_not_running(db: Db, id: i64, cancel: CancellationToken) {
    loop {
        tokio::select! {
            _ = tokio::time::sleep(Duration::from_secs(1)) => {}
            _ = cancel.cancelled() => return,
        }
        if let Ok(c) = campaign::get(&db, id).await
            && c.status != CampaignStatus::Running
        {
            cancel.cancel();
            return;
        }
    }
}

/// Runs a database step until it succeeds or fails for a reason other than the database being
/// unreachable (then that error is returned), or `cancel` fires.
async fn retry_db<T, F, Fut>(cancel: &CancellationToken, mut step: F) -> Result<T>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<T>>,
{
    let mut delay = Duration::from_millis(500);
    loop {
        match step().await {
            Err(e) if e.is_transient() && !cancel.is_cancelled() => {
                tracing::warn!("database unavailable, retrying: {e}");
                tokio::time::sleep(delay).await;
                delay = (delay * 2).min(Duration::from_secs(5));
            }
            other => return other,
        }
    }
}

/// What the web and API layers need from a runner, object-safe so they need not know which
/// network and workload implementations it runs with.
pub trait Control: Send + Sync {
    /// The database.
    fn db(&self) -> &Db;
    /// The event publisher.
    fn events(&self) -> &Events;
    /// The gateways' names; campaigns naming none run on the first.
    fn gateways(&self) -> &[String];
    /// Starts or resumes a campaign.
    fn start(&self, id: i64) -> BoxFuture<'_, Result<()>>;
    /// Stops a campaign.
    fn stop(&self, id: i64) -> BoxFuture<'_, Result<()>>;
    /// External client: the next session of a campaign.
    fn external_next(&self, campaign_id: i64) -> BoxFuture<'_, Result<Option<Session>>>;
    /// External client: start playing a session.
    fn external_start(&self, id: i64) -> BoxFuture<'_, Result<Session>>;
    /// External client: finish a session with its application data.
    fn external_finish(&self, id: i64, application: Value) -> BoxFuture<'_, Result<()>>;
}

/// A boxed, sendable future.
pub type BoxFuture<'a, T> = std::pin::Pin<Box<dyn Future<Output = T> + Send + 'a>>;

impl<N: Network, D: Driver> Control for Runner<N, D> {
    fn db(&self) -> &Db {
        self.gateways.db()
    }
    fn events(&self) -> &Events {
        self.gateways.events()
    }
    fn gateways(&self) -> &[String] {
        self.gateways.names()
    }
    fn start(&self, id: i64) -> BoxFuture<'_, Result<()>> {
        Box::pin(Runner::start(self, id))
    }
    fn stop(&self, id: i64) -> BoxFuture<'_, Result<()>> {
        Box::pin(Runner::stop(self, id))
    }
    fn external_next(&self, campaign_id: i64) -> BoxFuture<'_, Result<Option<Session>>> {
        Box::pin(Runner::external_next(self, campaign_id))
    }
    fn external_start(&self, id: i64) -> BoxFuture<'_, Result<Session>> {
        Box::pin(Runner::external_start(self, id))
    }
    fn external_finish(&self, id: i64, application: Value) -> BoxFuture<'_, Result<()>> {
        Box::pin(Runner::external_finish(self, id, application))
    }
}
