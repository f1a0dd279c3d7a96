//! Monitoring (`dashboard`): who is signed in, connections, the heaviest
//! queries, storage. Readable by viewers (actor::reader).
//!
//! These functions are SECURITY INVOKER on purpose: pg_stat_activity and
//! pg_stat_statements then apply their own visibility rules to the caller, so a
//! caller without pg_read_all_stats sees "<insufficient privilege>" instead of
//! other users' query text, exactly as if it queried the views itself. Only
//! the extension's own tables (admin sessions, impersonations) are read as the
//! extension owner.
//!
//! Owns `analytics` too (the Analytics page). May call: `runtime`.

use pgrx::datum::{JsonB, TimestampWithTimeZone, Uuid};
use pgrx::prelude::*;

use crate::runtime::{actor, db};

pub mod analytics;
/// The home page's instance at a glance (issue 30).
pub mod overview;

type Tz = TimestampWithTimeZone;

/// What to do when pg_stat_statements is missing (a NOTICE, and the Analytics page's hint).
pub const PG_STAT_STATEMENTS_HINT: &str =
    "pg_stat_statements is not available in this database: CREATE EXTENSION pg_stat_statements (it must also be in shared_preload_libraries)";

/// The schema pg_stat_statements is installed in, when it is installed here
/// and loaded (shared_preload_libraries); None otherwise.
pub fn pg_stat_statements_schema() -> Option<String> {
    // shared_preload_libraries is readable by superusers and
    // pg_read_all_settings only: look at it (just it) as the owner.
    db::as_extension_owner(|| {
        db::one::<String>(
            "SELECT n.nspname::text FROM pg_extension e JOIN pg_namespace n ON n.oid = e.extnamespace
              WHERE e.extname = 'pg_stat_statements'
                AND current_setting('shared_preload_libraries') ~ '(^|[ ,])pg_stat_statements($|[ ,])'",
            &[],
        )
    })
}

#[pg_schema]
pub mod dashboard {
    use super::*;

    /// Live admin sessions and active impersonations.
    #[allow(clippy::type_complexity)]
    #[pg_extern]
    #[search_path(pg_catalog, pg_temp)]
    pub fn active_sessions() -> TableIterator<
        'static,
        (
            name!(kind, String),
            name!(session_id, Option<Uuid>),
            name!(user_id, Option<Uuid>),
            name!(actor, Option<String>),
            name!(role, Option<String>),
            name!(started_at, Option<TimestampWithTimeZone>),
            name!(expires_at, Option<TimestampWithTimeZone>),
            name!(last_seen_at, Option<TimestampWithTimeZone>),
            name!(ip, Option<String>),
            name!(detail, Option<JsonB>),
        ),
    > {
        actor::reader();
        let map = |r: &pgrx::spi::SpiHeapTupleData| {
            Ok((
                r.get::<String>(1)?.unwrap_or_default(),
                r.get::<Uuid>(2)?,
                r.get::<Uuid>(3)?,
                r.get::<String>(4)?,
                r.get::<String>(5)?,
                r.get::<Tz>(6)?,
                r.get::<Tz>(7)?,
                r.get::<Tz>(8)?,
                r.get::<String>(9)?,
                r.get::<JsonB>(10)?,
            ))
        };
        let mut rows = db::as_extension_owner(|| {
            let mut rows = db::select(
                "SELECT 'admin_session', s.id, s.user_id, u.email, u.role, s.created_at, s.expires_at,
                        s.last_seen_at, s.ip::text,
                        jsonb_build_object('scope', s.scope, 'user_agent', s.user_agent)
                   FROM dashboard_auth.sessions s
                   JOIN dashboard_auth.users u ON u.id = s.user_id
                  WHERE s.revoked_at IS NULL AND s.expires_at > now()
                  ORDER BY s.last_seen_at DESC",
                &[],
                map,
            );
            // auth.impersonation_sessions belongs to the impersonation
            // capability: read it when it exists, through to_jsonb so a column
            // it lacks gives NULL instead of an error.
            let exists = db::one::<bool>("SELECT to_regclass('auth.impersonation_sessions') IS NOT NULL", &[])
                .unwrap_or(false);
            if exists {
                rows.extend(db::select(
                    "SELECT 'impersonation', (j->>'id')::uuid, (j->>'admin_user_id')::uuid, j->>'actor',
                            j->>'target_role', (j->>'started_at')::timestamptz, (j->>'expires_at')::timestamptz,
                            NULL::timestamptz, j->>'ip',
                            jsonb_build_object('target_user_id', j->'target_user_id',
                                               'impersonation_type', j->'impersonation_type',
                                               'reason', j->'reason')
                       FROM (SELECT to_jsonb(i) AS j FROM auth.impersonation_sessions i) x
                      WHERE j->>'ended_at' IS NULL
                        AND coalesce((j->>'expires_at')::timestamptz > now(), true)
                      ORDER BY (j->>'started_at')::timestamptz DESC",
                    &[],
                    map,
                ));
            }
            rows
        });
        rows.truncate(10_000);
        TableIterator::new(rows)
    }

    /// Client connections by state, with the totals and the limit.
    #[allow(clippy::type_complexity)]
    #[pg_extern]
    #[search_path(pg_catalog, pg_temp)]
    pub fn connection_stats() -> TableIterator<
        'static,
        (
            name!(state, String),
            name!(connections, i64),
            name!(waiting, i64),
            name!(longest_running_seconds, Option<f64>),
            name!(total_connections, i64),
            name!(max_connections, i32),
        ),
    > {
        actor::reader();
        let rows = db::select(
            "WITH a AS (
                 SELECT coalesce(state, 'hidden') AS st, wait_event_type, query_start
                   FROM pg_stat_activity WHERE backend_type = 'client backend')
             SELECT st, count(*),
                    count(*) FILTER (WHERE wait_event_type = 'Lock'),
                    (max(extract(epoch FROM (clock_timestamp() - query_start)))
                        FILTER (WHERE st = 'active'))::float8,
                    (SELECT count(*) FROM a),
                    current_setting('max_connections')::int
               FROM a GROUP BY st ORDER BY st",
            &[],
            |r| {
                Ok((
                    r.get::<String>(1)?.unwrap_or_default(),
                    r.get::<i64>(2)?.unwrap_or(0),
                    r.get::<i64>(3)?.unwrap_or(0),
                    r.get::<f64>(4)?,
                    r.get::<i64>(5)?.unwrap_or(0),
                    r.get::<i32>(6)?.unwrap_or(0),
                ))
            },
        );
        TableIterator::new(rows)
    }

    /// The heaviest statements of this database, from pg_stat_statements when
    /// it is installed here (else empty, with a NOTICE).
    #[allow(clippy::type_complexity)]
    #[pg_extern]
    #[search_path(pg_catalog, pg_temp)]
    pub fn query_stats(
        limit: default!(Option<i32>, 20),
    ) -> TableIterator<
        'static,
        (
            name!(queryid, Option<i64>),
            name!(query, Option<String>),
            name!(username, Option<String>),
            name!(calls, i64),
            name!(total_exec_ms, f64),
            name!(mean_exec_ms, f64),
            name!(rows, i64),
            name!(shared_blks_hit, i64),
            name!(shared_blks_read, i64),
        ),
    > {
        actor::reader();
        let limit = crate::monitoring::analytics::check_limit(limit);
        let rows = crate::monitoring::analytics::statements(crate::monitoring::analytics::query_order("total_time"), limit);
        TableIterator::new(rows.into_iter().map(|(id, q, user, calls, total, mean, rows, hit, read, _)| {
            (id, q, user, calls, total, mean, rows, hit, read)
        }))
    }

    /// Sizes: the database, each schema, and the 20 largest tables.
    #[allow(clippy::type_complexity)]
    #[pg_extern]
    #[search_path(pg_catalog, pg_temp)]
    pub fn storage_usage() -> TableIterator<
        'static,
        (
            name!(kind, String),
            name!(schema_name, Option<String>),
            name!(name, String),
            name!(total_bytes, i64),
            name!(table_bytes, Option<i64>),
            name!(index_bytes, Option<i64>),
            name!(toast_bytes, Option<i64>),
            name!(row_estimate, Option<i64>),
        ),
    > {
        actor::reader();
        let rows = db::select(
            "SELECT 'database', NULL::text, current_database()::text, pg_database_size(current_database()),
                    NULL::bigint, NULL::bigint, NULL::bigint, NULL::bigint
             UNION ALL
             SELECT * FROM (
               SELECT 'schema', n.nspname::text, n.nspname::text, sum(pg_total_relation_size(c.oid))::bigint,
                      sum(pg_relation_size(c.oid))::bigint, sum(pg_indexes_size(c.oid))::bigint,
                      sum(CASE WHEN c.reltoastrelid <> 0 THEN pg_total_relation_size(c.reltoastrelid) ELSE 0 END)::bigint,
                      NULL::bigint
                 FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
                WHERE c.relkind IN ('r', 'm', 'p') AND n.nspname NOT LIKE 'pg\\_temp\\_%'
                GROUP BY n.nspname ORDER BY 4 DESC) s
             UNION ALL
             SELECT * FROM (
               SELECT 'table', n.nspname::text, c.relname::text, pg_total_relation_size(c.oid),
                      pg_relation_size(c.oid), pg_indexes_size(c.oid),
                      CASE WHEN c.reltoastrelid <> 0 THEN pg_total_relation_size(c.reltoastrelid) ELSE 0 END,
                      greatest(c.reltuples, 0)::bigint
                 FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
                WHERE c.relkind IN ('r', 'm')
                  AND n.nspname NOT IN ('pg_catalog', 'information_schema')
                  AND n.nspname NOT LIKE 'pg\\_toast%' AND n.nspname NOT LIKE 'pg\\_temp\\_%'
                ORDER BY 4 DESC LIMIT 20) t",
            &[],
            |r| {
                Ok((
                    r.get::<String>(1)?.unwrap_or_default(),
                    r.get::<String>(2)?,
                    r.get::<String>(3)?.unwrap_or_default(),
                    r.get::<i64>(4)?.unwrap_or(0),
                    r.get::<i64>(5)?,
                    r.get::<i64>(6)?,
                    r.get::<i64>(7)?,
                    r.get::<i64>(8)?,
                ))
            },
        );
        TableIterator::new(rows)
    }

    /// All of the above in one document.
    #[pg_extern]
    #[search_path(pg_catalog, pg_temp)]
    pub fn metrics() -> JsonB {
        actor::reader();
        let doc = db::select(
            "SELECT jsonb_build_object(
                 'collected_at', now(),
                 'active_sessions', (SELECT coalesce(jsonb_agg(to_jsonb(s)), '[]') FROM dashboard.active_sessions() s),
                 'connections', (SELECT coalesce(jsonb_agg(to_jsonb(c)), '[]') FROM dashboard.connection_stats() c),
                 'queries', (SELECT coalesce(jsonb_agg(to_jsonb(q)), '[]') FROM dashboard.query_stats(20) q),
                 'storage', (SELECT coalesce(jsonb_agg(to_jsonb(u)), '[]') FROM dashboard.storage_usage() u))",
            &[],
            |r| r.get::<JsonB>(1),
        );
        doc.into_iter().next().flatten().unwrap_or(JsonB(serde_json::json!({})))
    }
}
