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
    match app.db.with_session(&s.token, async |tx, _| ex::watch(tx, &schema, &table, on).await).await {
        Ok(()) => Ok(StatusCode::NO_CONTENT.into_response()),
        // Refused: the reason as text; the page unticks the toggle and shows it (app.js).
        Err(WebError::Denied(m)) => Ok(live_refused(StatusCode::FORBIDDEN, m)),
        Err(WebError::BadRequest(m)) => Ok(live_refused(StatusCode::BAD_REQUEST, m)),
        Err(WebError::NotFound(m)) => Ok(live_refused(StatusCode::NOT_FOUND, m)),
        Err(e) => Err(e),
    }
}

/// Why the Live toggle was refused, as plain text (never HTML: the page puts
/// it in with textContent).
fn live_refused(status: StatusCode, message: String) -> Response {
    let mut r = (status, format!("Live updates are off: {message}")).into_response();
    r.headers_mut().insert(header::CONTENT_TYPE, HeaderValue::from_static("text/plain; charset=utf-8"));
    r
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
    // (ends once the session does: revoked, expired, signed out)
    let stream = crate::live::until_revoked(app.clone(), s.token.clone(), stream);
    Ok(Sse::new(stream).keep_alive(KeepAlive::new().interval(Duration::from_secs(15))).into_response())
}
