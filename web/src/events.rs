//! A campaign's progress as server-sent events: first a `snapshot` (state, sessions per state,
//! the running session), then every runner event of that campaign as it happens, each a JSON
//! object with a `type`. A listener that falls behind gets a fresh snapshot instead of the
//! events it missed. Streams end when the server shuts down.

use std::convert::Infallible;
use std::time::Duration;

use axum::response::sse::{Event, KeepAlive, Sse};
use futures::Stream;
use serde_json::{Value, json};
use tokio::sync::broadcast::error::RecvError;

use qoelab_collector::campaign::{self, SessionStatus};
use qoelab_collector::session::{self, SessionQuery};

use crate::App;
use crate::error::Problem;

/// The snapshot of campaign `id` as an event payload.
pub async fn snapshot(app: &App, id: i64) -> Result<Value, Problem> {
    let c = campaign::get(app.db(), id).await?;
    let running = session::list(
        app.db(),
        &SessionQuery {
            campaign_id: Some(id),
            status: Some(SessionStatus::Running),
            per_page: Some(1),
            ..Default::default()
        },
    )
    .await?;
    Ok(json!({
        "type": "snapshot",
        "campaign_id": id,
        "status": c.status,
        "progress": c.progress,
        "running": running.sessions.first(),
    }))
}

fn event(payload: &Value) -> Result<Event, Infallible> {
    Ok(Event::default().data(payload.to_string()))
}

/// The event stream of campaign `id` (404 if there is none).
pub async fn stream(
    app: App,
    id: i64,
) -> Result<Sse<impl Stream<Item = Result<Event, Infallible>>>, Problem> {
    // Subscribe before reading the snapshot so nothing falls between them.
    let receiver = app.events().subscribe();
    let first = snapshot(&app, id).await?;
    let state = (app, receiver, Some(first));
    let events = futures::stream::unfold(state, move |(app, mut receiver, first)| async move {
        if let Some(first) = first {
            return Some((event(&first), (app, receiver, None)));
        }
        loop {
            let next = tokio::select! {
                next = receiver.recv() => next,
                _ = app.shutdown().cancelled() => return None,
            };
            match next {
                Ok(e) if e.campaign_id() == id => {
                    let payload = serde_json::to_value(&e).unwrap_or(Value::Null);
                    return Some((event(&payload), (app, receiver, None)));
                }
                Ok(_) => continue,
                Err(RecvError::Lagged(_)) => match snapshot(&app, id).await {
                    Ok(s) => return Some((event(&s), (app, receiver, None))),
                    Err(_) => return None,
                },
                Err(RecvError::Closed) => return None,
            }
        }
    });
    Ok(Sse::new(events).keep_alive(KeepAlive::new().interval(Duration::from_secs(15))))
}
