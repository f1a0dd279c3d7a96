use super::*;

// ------------------------------------------------------------ live

#[derive(Deserialize)]
pub(super) struct LiveForm {
    on: String,
}

/// Turn live updates of the table on or off (`watch_table` adds the
/// notifying trigger; that is the admin's act, not the viewer's).
pub(super) async fn live_post(
    State(app): State<App>,
    s: Session,
    Path((schema, table)): Path<(String, String)>,
    WebForm(f): WebForm<LiveForm>,
) -> Result<Response, WebError> {
    let on = f.on == "1";
    app.db.with_session(&s.token, async |tx, _| ex::watch(tx, &schema, &table, on).await).await?;
    Ok(StatusCode::NO_CONTENT.into_response())
}

/// Server-sent events for one table: rights are checked first (the viewer
/// must be able to describe it), then every change of that table is sent as
/// an event `change` (data: the op) and `resync` when some may have been
/// missed. The page refetches its grid through the normal handler.
pub(super) async fn events_get(
    State(app): State<App>,
    s: Session,
    Path((schema, table)): Path<(String, String)>,
) -> Result<Response, WebError> {
    as_viewer(&app, &s, async |tx, _| ex::describe(tx, &schema, &table).await.map(|_| ())).await?;
    let rx = app.live.subscribe().await;
    let closed = Box::pin(app.live.closed());
    let stream = futures_util::stream::unfold((rx, schema, table, closed), |(mut rx, schema, table, mut closed)| async move {
        loop {
            let got = tokio::select! {
                got = rx.recv() => got,
                _ = &mut closed => return None,
            };
            let ev = match got {
                Ok(Change::Row { schema: s, table: t, op }) if s == schema && t == table => Event::default().event("change").data(op),
                Ok(Change::Row { .. }) => continue,
                Ok(Change::Resync) | Err(tokio::sync::broadcast::error::RecvError::Lagged(_)) => Event::default().event("resync").data(""),
                Err(tokio::sync::broadcast::error::RecvError::Closed) => return None,
            };
            return Some((Ok::<_, std::convert::Infallible>(ev), (rx, schema, table, closed)));
        }
    });
    Ok(Sse::new(stream).keep_alive(KeepAlive::new().interval(Duration::from_secs(15))).into_response())
}
