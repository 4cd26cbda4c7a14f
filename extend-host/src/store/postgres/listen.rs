//! The listening connection: turns `NOTIFY`s into the change feed and the
//! remote log stream, and reconnects when it is lost.

use super::conn::{CHANGES_CHANNEL, LOGS_CHANNEL, db, parse_change};
use super::relay::Reassembly;
use crate::store::{Change, RemoteLog, StoreError};
use futures_util::StreamExt as _;
use std::time::Duration;
use tokio::sync::{broadcast, mpsc};
use tokio_postgres::{AsyncMessage, Client, Config, NoTls, Notification};
use tokio_util::sync::CancellationToken;

/// The first wait before reconnecting; it doubles up to [`MAX_BACKOFF`].
const FIRST_BACKOFF: Duration = Duration::from_millis(50);
const MAX_BACKOFF: Duration = Duration::from_secs(5);

/// Connects and listens, then follows in the background until `stop`.
/// Fails if the first connection fails, so a host with a bad database URL
/// does not start.
pub(super) async fn start(
    mut config: Config,
    feed: broadcast::Sender<Change>,
    logs: broadcast::Sender<RemoteLog>,
    node: String,
    listening: std::sync::Arc<std::sync::atomic::AtomicBool>,
    stop: CancellationToken,
) -> Result<(), StoreError> {
    use std::sync::atomic::Ordering;
    // Named, so that operators (and tests) can find it in pg_stat_activity.
    config.application_name("extend-host listener");
    let first = connect(&config).await?;
    listening.store(true, Ordering::Release);
    tokio::spawn(async move {
        let mut reassembly = Reassembly::default();
        let mut session = Some(first);
        let mut backoff = FIRST_BACKOFF;
        loop {
            if let Some((client, mut notes)) = session.take() {
                backoff = FIRST_BACKOFF;
                loop {
                    let note = tokio::select! {
                        () = stop.cancelled() => return,
                        note = notes.recv() => note,
                    };
                    let Some(note) = note else { break };
                    dispatch(&note, &feed, &logs, &node, &mut reassembly);
                }
                drop(client);
                listening.store(false, Ordering::Release);
                tracing::warn!(
                    "lost the database's change feed; reconnecting, and dropping every cached webtask meanwhile"
                );
                // Whatever changed from now until the new LISTEN is unknown.
                let _ = feed.send(Change::Missed);
                reassembly = Reassembly::default();
            }
            tokio::select! {
                () = stop.cancelled() => return,
                () = tokio::time::sleep(backoff) => {}
            }
            match connect(&config).await {
                Ok(s) => {
                    tracing::info!("the database's change feed is back");
                    listening.store(true, Ordering::Release);
                    let _ = feed.send(Change::Missed);
                    session = Some(s);
                }
                Err(e) => {
                    tracing::warn!(error = %e, retry_in = ?backoff, "cannot reconnect the change feed");
                    backoff = (backoff * 2).min(MAX_BACKOFF);
                }
            }
        }
    });
    Ok(())
}

/// A listening session: its client (which must live as long as it) and its notifications.
type Session = (Client, mpsc::UnboundedReceiver<Notification>);

async fn connect(config: &Config) -> Result<Session, StoreError> {
    let (client, mut connection) = config.connect(NoTls).await.map_err(db)?;
    let (tx, rx) = mpsc::unbounded_channel();
    // The connection delivers notifications only while polled; its task ends
    // when the connection does, which closes `rx`.
    tokio::spawn(async move {
        let mut messages = futures_util::stream::poll_fn(move |cx| connection.poll_message(cx));
        while let Some(message) = messages.next().await {
            match message {
                Ok(AsyncMessage::Notification(n)) => {
                    if tx.send(n).is_err() {
                        return;
                    }
                }
                Ok(_) => {}
                Err(e) => {
                    tracing::debug!(error = %e, "change-feed connection ended");
                    return;
                }
            }
        }
    });
    client
        .batch_execute(&format!("LISTEN {CHANGES_CHANNEL}; LISTEN {LOGS_CHANNEL}"))
        .await
        .map_err(db)?;
    Ok((client, rx))
}

fn dispatch(
    note: &Notification,
    feed: &broadcast::Sender<Change>,
    logs: &broadcast::Sender<RemoteLog>,
    node: &str,
    reassembly: &mut Reassembly,
) {
    match note.channel() {
        CHANGES_CHANNEL => match parse_change(note.payload()) {
            Some(change) => {
                let _ = feed.send(change);
            }
            None => tracing::warn!(payload = note.payload(), "unreadable change notification"),
        },
        LOGS_CHANNEL => {
            for log in reassembly.receive(note.payload(), node) {
                let _ = logs.send(log);
            }
        }
        _ => {}
    }
}
