//! What the metrics sampler (`prom`) reads from the database: live admin
//! sessions and impersonations (`dashboard.active_sessions`), the newest audit
//! entry (`dashboard.audit_search`, one row). One transaction, every
//! `prom::SAMPLE_EVERY`, never per scrape.

use super::one;
use crate::db::Tx;
use crate::error::WebError;
use serde::Deserialize;

#[derive(Deserialize, Clone, Debug)]
pub struct OpsFigures {
    pub admin_sessions: i64,
    pub impersonations: i64,
    /// Id of the newest audit entry (ids are gapless from 1: the chain's length).
    pub audit_last_id: Option<i64>,
    /// Unix seconds of the newest audit entry.
    pub audit_newest_at: Option<f64>,
}

pub async fn figures(tx: &Tx<'_>) -> Result<OpsFigures, WebError> {
    one(
        tx,
        "SELECT pg_catalog.json_build_object(
                    'admin_sessions', s.admin_sessions, 'impersonations', s.impersonations,
                    'audit_last_id', a.id, 'audit_newest_at', pg_catalog.date_part('epoch', a.occurred_at))
           FROM (SELECT pg_catalog.count(*) FILTER (WHERE kind = 'admin_session') AS admin_sessions,
                        pg_catalog.count(*) FILTER (WHERE kind = 'impersonation') AS impersonations
                   FROM dashboard.active_sessions()) s
           LEFT JOIN (SELECT id, occurred_at FROM dashboard.audit_search(page_size => 1)) a ON true",
        &[],
    )
    .await
}
