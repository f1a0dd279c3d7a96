//! Live updates: ONE task with its own connection (not the pool) LISTENs on
//! `dashboard_changes` and fans every notification out to the open pages
//! through a broadcast channel; `routes::tables` streams them as SSE. Only the
//! schema, table and op of a payload are used (the payload carries no row
//! keys once the security work lands): the browser re-fetches its visible
//! page through the normal handler, so grants and RLS apply to what it sees.
//! The task starts with the first subscriber and reconnects after a drop,
//! sending `Change::Resync` so pages refetch what they may have missed.

use std::future::poll_fn;
use tokio::sync::broadcast;
use tokio_postgres::AsyncMessage;

/// What a page hears.
#[derive(Clone, Debug, PartialEq)]
pub enum Change {
    Row { schema: String, table: String, op: String },
    /// Changes may have been missed (reconnect, slow reader): refetch.
    Resync,
}

pub struct Live {
    tx: broadcast::Sender<Change>,
    /// Set at shutdown: open streams end, so a graceful shutdown is not held
    /// up by browsers that keep an event stream open.
    closing: tokio::sync::watch::Sender<bool>,
    started: tokio::sync::OnceCell<()>,
    pg: tokio_postgres::Config,
}

impl Live {
    pub fn new(pg: tokio_postgres::Config) -> Live {
        Live { tx: broadcast::channel(1024).0, closing: tokio::sync::watch::channel(false).0, started: tokio::sync::OnceCell::new(), pg }
    }

    /// End every open stream (the server is shutting down).
    pub fn close(&self) {
        self.closing.send_replace(true);
    }

    /// Resolves once `close` was called.
    pub fn closed(&self) -> impl std::future::Future<Output = ()> + Send + 'static {
        let mut rx = self.closing.subscribe();
        async move {
            let _ = rx.wait_for(|c| *c).await;
        }
    }

    /// Open streams (receivers), for the metrics (`prom`).
    pub fn subscribers(&self) -> usize {
        self.tx.receiver_count()
    }

    /// A receiver of every change from now on (starts the listener once).
    pub async fn subscribe(&self) -> broadcast::Receiver<Change> {
        let rx = self.tx.subscribe();
        self.started
            .get_or_init(|| async {
                let (tx, pg) = (self.tx.clone(), self.pg.clone());
                tokio::spawn(listen_forever(pg, tx));
            })
            .await;
        rx
    }
}

fn parse(payload: &str) -> Option<Change> {
    let v: serde_json::Value = serde_json::from_str(payload).ok()?;
    let s = |k: &str| v.get(k).and_then(|x| x.as_str()).map(str::to_string);
    Some(Change::Row { schema: s("schema")?, table: s("table")?, op: s("op")? })
}

async fn listen_forever(pg: tokio_postgres::Config, tx: broadcast::Sender<Change>) {
    let mut first = true;
    loop {
        if !first {
            let _ = tx.send(Change::Resync);
        }
        first = false;
        match pg.connect(tokio_postgres::NoTls).await {
            Ok((client, mut conn)) => {
                let fan = tx.clone();
                // poll_message drives the connection (LISTEN completes through it).
                let pump = tokio::spawn(async move {
                    loop {
                        match poll_fn(|cx| conn.poll_message(cx)).await {
                            Some(Ok(AsyncMessage::Notification(n))) => {
                                if let Some(c) = parse(n.payload()) {
                                    let _ = fan.send(c);
                                }
                            }
                            Some(Ok(_)) => {}
                            Some(Err(_)) | None => break,
                        }
                    }
                });
                if client.batch_execute("LISTEN dashboard_changes").await.is_ok() {
                    let _ = pump.await;
                } else {
                    pump.abort();
                }
            }
            Err(e) => eprintln!("fluxbase serve: live updates: cannot connect: {e}"),
        }
        tokio::time::sleep(std::time::Duration::from_secs(2)).await;
    }
}

/// How often an open event stream checks that its session still holds.
pub const SESSION_CHECK: std::time::Duration = std::time::Duration::from_secs(5);

/// `stream` until the session of `token` ends (revoked, expired, signed
/// out): checked every `SESSION_CHECK` with `validate_session` on the
/// primary, so a revoked session's event streams stop within seconds
/// (issue 28 item 5). A check that cannot reach the database ends the
/// stream too (the browser reconnects, through `use_session`).
pub fn until_revoked<S: futures_util::Stream>(app: crate::App, token: String, stream: S) -> impl futures_util::Stream<Item = S::Item> {
    use futures_util::StreamExt;
    let ended = async move {
        loop {
            tokio::time::sleep(SESSION_CHECK).await;
            if app.db.session_live(&token).await != Some(true) {
                return;
            }
        }
    };
    stream.take_until(Box::pin(ended))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn payload_needs_schema_table_op_only() {
        assert_eq!(
            parse(r#"{"schema":"public","table":"t","op":"INSERT","n":7}"#),
            Some(Change::Row { schema: "public".into(), table: "t".into(), op: "INSERT".into() })
        );
        assert_eq!(parse(r#"{"table":"t"}"#), None);
        assert_eq!(parse("not json"), None);
    }
}
