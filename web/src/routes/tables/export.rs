use super::*;

// ------------------------------------------------------------ export

/// Chunks fetched ahead of the one being sent (each at most ~1 MiB and
/// EXPORT_ROWS rows): the server's memory stays a few chunks, whatever the
/// table's size.
const EXPORT_AHEAD: usize = 2;

/// One chunk of the export as the viewer: its own short transaction
/// (`with_session_as`: the session checked again, the impersonation applied
/// again; nothing is held open between chunks).
#[allow(clippy::too_many_arguments)]
async fn export_chunk(
    app: &App,
    token: &str,
    imp: Option<uuid::Uuid>,
    schema: &str,
    table: &str,
    q: &Query,
    format: &str,
    after: Option<&Value>,
) -> Result<ex::ExportChunk, WebError> {
    let (_, _, chunk) = app
        .db
        .with_session_as(token, imp, async |_, _| Ok(()), async |tx, _| ex::export_rows(tx, schema, table, q, format, after).await)
        .await?;
    Ok(chunk)
}

/// CSV or JSON of the whole view (filters, sort, search; as the viewer),
/// streamed chunk by chunk by keyset from `dashboard.export_rows`. The CSV is
/// COPY's (each value through its type's output function, COPY's quoting);
/// the JSON an array of one object per row. The first chunk is read before
/// the answer starts (an error then gets its normal page); later ones are
/// fetched by a task at most EXPORT_AHEAD chunks ahead of the download, so
/// memory stays constant; a failure then cuts the download short.
pub(super) async fn export_get(
    State(app): State<App>,
    s: Session,
    Path((schema, table)): Path<(String, String)>,
    RawQuery(raw): RawQuery,
) -> Result<Response, WebError> {
    let view = View::parse(raw.as_deref());
    let csv = !raw.as_deref().unwrap_or("").split('&').any(|kv| kv == "format=json");
    // CSV is spreadsheet-safe by default (a value starting a formula gets a
    // leading '); `csv=copy` gives COPY's bytes exactly (docs/TABLES_EXPORT.md).
    let exact = raw.as_deref().unwrap_or("").split('&').any(|kv| kv == "csv=copy");
    let format = if csv { "csv" } else { "json" };
    let q = view.browse_query();
    let first = export_chunk(&app, &s.token, s.imp, &schema, &table, &q, format, None).await?;
    let name: String = table.chars().map(|c| if c.is_ascii_alphanumeric() || c == '_' { c } else { '_' }).collect();
    let disposition = format!("attachment; filename=\"{name}.{format}\"");
    let (send, recv) = tokio::sync::mpsc::channel::<Result<String, std::io::Error>>(EXPORT_AHEAD);
    let (token, imp) = (s.token.clone(), s.imp);
    // (the later chunks keep the request's class: its statement timeout, `limits`)
    tokio::spawn(crate::limits::scope(crate::limits::current(), async move {
        // JSON: "[", the chunks' objects joined by ",\n", "]".
        let mut wrote = false;
        let frame = |data: String, wrote: &mut bool| -> String {
            if csv && !exact {
                return crate::csv_safe::spreadsheet_safe(&data);
            }
            if csv || data.is_empty() {
                return data;
            }
            let sep = if *wrote { ",\n" } else { "\n" };
            *wrote = true;
            let mut out = String::with_capacity(data.len() + 2);
            out.push_str(sep);
            out.push_str(&data);
            out
        };
        let mut next = first.next;
        let mut data = frame(first.data, &mut wrote);
        if !csv {
            data.insert(0, '[');
        }
        loop {
            let last = next.is_none();
            if last && !csv {
                data.push_str("\n]\n");
            }
            if send.send(Ok(data)).await.is_err() || last {
                return; // the download was dropped, or that was the end
            }
            match export_chunk(&app, &token, imp, &schema, &table, &q, format, next.as_ref()).await {
                Ok(c) => {
                    next = c.next;
                    data = frame(c.data, &mut wrote);
                }
                Err(e) => {
                    let _ = send.send(Err(std::io::Error::other(format!("export stopped: {e:?}")))).await;
                    return;
                }
            }
        }
    }));
    let stream = futures_util::stream::unfold(recv, |mut r| async move { r.recv().await.map(|c| (c, r)) });
    let mut resp = Body::from_stream(stream).into_response();
    let h = resp.headers_mut();
    h.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static(if csv { "text/csv; charset=utf-8" } else { "application/json" }),
    );
    if let Ok(v) = HeaderValue::from_str(&disposition) {
        h.insert(header::CONTENT_DISPOSITION, v);
    }
    Ok(resp)
}
