//! `dashboard.overview()`: the home page's instance at a glance in one call
//! (issue 30): app users (total, new in 7 days, sign-ups per day for 14
//! days), admin sessions and impersonations live, database size,
//! connections, the last audit entries, the audit chain's head and last
//! purge, admins without 2FA. Any reader may call it; it reads the
//! extension's tables as their owner (no secret among what it returns: counts,
//! and of the audit entries only id, time, actor, action, outcome).

use pgrx::datum::JsonB;
use pgrx::prelude::*;

use crate::runtime::{actor, db};

const OVERVIEW_SQL: &str = "
SELECT pg_catalog.jsonb_build_object(
  'collected_at', pg_catalog.now(),
  'app_users', (SELECT pg_catalog.count(*) FROM auth.users WHERE deleted_at IS NULL),
  'app_users_new_7d', (SELECT pg_catalog.count(*) FROM auth.users
                       WHERE deleted_at IS NULL AND created_at >= pg_catalog.now() - interval '7 days'),
  'signups_14d', (SELECT pg_catalog.jsonb_agg(COALESCE(u.n, 0) ORDER BY d.day)
                  FROM pg_catalog.generate_series(0, 13) AS g(i)
                  CROSS JOIN LATERAL (SELECT CURRENT_DATE - (13 - g.i) AS day) d
                  LEFT JOIN (SELECT created_at::date AS day, pg_catalog.count(*) AS n FROM auth.users
                             WHERE created_at >= CURRENT_DATE - 13 GROUP BY 1) u ON u.day = d.day),
  'admin_sessions_live', (SELECT pg_catalog.count(*) FROM dashboard_auth.sessions
                          WHERE revoked_at IS NULL AND expires_at > pg_catalog.now()),
  'impersonations_live', (SELECT pg_catalog.count(*) FROM auth.impersonation_sessions
                          WHERE ended_at IS NULL AND expires_at > pg_catalog.now()),
  'database_bytes', pg_catalog.pg_database_size(pg_catalog.current_database()),
  'connections', (SELECT pg_catalog.count(*) FROM pg_catalog.pg_stat_activity WHERE backend_type = 'client backend'),
  'max_connections', pg_catalog.current_setting('max_connections')::int4,
  'recent_audit', (SELECT COALESCE(pg_catalog.jsonb_agg(pg_catalog.jsonb_build_object(
                       'id', a.id, 'occurred_at', a.occurred_at, 'actor', a.actor, 'action', a.action,
                       'success', a.success) ORDER BY a.id DESC), '[]'::pg_catalog.jsonb)
                   FROM (SELECT id, occurred_at, actor, action, success FROM dashboard_auth.audit_log
                         ORDER BY id DESC LIMIT 5) a),
  'chain_head', (SELECT last_id FROM dashboard_auth.audit_chain_head),
  'last_purge', (SELECT pg_catalog.max(purged_at) FROM dashboard_auth.audit_checkpoints),
  'admins_without_2fa', (SELECT pg_catalog.count(*) FROM dashboard_auth.users WHERE NOT totp_enabled))";

#[pg_extern(schema = "dashboard", stable)]
fn overview() -> JsonB {
    actor::reader();
    db::as_extension_owner(|| db::one::<JsonB>(OVERVIEW_SQL, &[])).unwrap_or(JsonB(serde_json::json!({})))
}
