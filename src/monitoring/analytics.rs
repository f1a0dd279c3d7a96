//! What the dashboard's Analytics page (issue 20) needs beyond monitoring.rs:
//! connections by state, application and role against max_connections, the
//! cache hit ratio, the top statements by total time, mean time or calls (with
//! rows and cache hits), whether pg_stat_statements is there, and the largest
//! indexes. Readable by viewers (actor::reader).
//!
//! SECURITY INVOKER like monitoring.rs: pg_stat_activity and
//! pg_stat_statements apply their own visibility rules to the caller.

use fluxbase_core::FbError;
use pgrx::prelude::*;

use crate::runtime::errors::raise;
use crate::monitoring::{pg_stat_statements_schema, PG_STAT_STATEMENTS_HINT};
use crate::runtime::{actor, db};

/// One statement's figures from pg_stat_statements: queryid, query, user,
/// calls, total and mean execution time (ms), rows, shared blocks hit and
/// read, and the cache hit ratio of those blocks.
pub type StatementRow = (Option<i64>, Option<String>, Option<String>, i64, f64, f64, i64, i64, i64, Option<f64>);

/// The top `limit` statements of this database by `order` (an ORDER BY of
/// `query_order`'s constants), or none (and a NOTICE saying how to enable
/// them) when pg_stat_statements is not available.
pub fn statements(order: &str, limit: i64) -> Vec<StatementRow> {
    let Some(schema) = pg_stat_statements_schema() else {
        pgrx::notice!("{}", PG_STAT_STATEMENTS_HINT);
        return Vec::new();
    };
    let q = format!(
        "SELECT queryid, query, userid::regrole::text, calls, total_exec_time, mean_exec_time, rows,
                shared_blks_hit, shared_blks_read,
                (shared_blks_hit::float8 / nullif(shared_blks_hit + shared_blks_read, 0))::float8
           FROM \"{}\".pg_stat_statements
          WHERE dbid = (SELECT oid FROM pg_database WHERE datname = current_database())
          ORDER BY {order}, queryid LIMIT $1",
        schema.replace('"', "\"\"")
    );
    db::select(&q, &[limit.into()], |r| {
        Ok((
            r.get::<i64>(1)?,
            r.get::<String>(2)?,
            r.get::<String>(3)?,
            r.get::<i64>(4)?.unwrap_or(0),
            r.get::<f64>(5)?.unwrap_or(0.0),
            r.get::<f64>(6)?.unwrap_or(0.0),
            r.get::<i64>(7)?.unwrap_or(0),
            r.get::<i64>(8)?.unwrap_or(0),
            r.get::<i64>(9)?.unwrap_or(0),
            r.get::<f64>(10)?,
        ))
    })
}

/// A `limit` argument: 1 … 1000, 20 when NULL.
pub fn check_limit(limit: Option<i32>) -> i64 {
    let limit = limit.unwrap_or(20);
    if !(1..=1000).contains(&limit) {
        raise(FbError::invalid("limit must be between 1 and 1000"));
    }
    limit as i64
}

/// The ORDER BY of `top_queries` for each accepted `order_by` (constants only).
pub fn query_order(order_by: &str) -> &'static str {
    match order_by {
        "total_time" => "total_exec_time DESC",
        "mean_time" => "mean_exec_time DESC",
        "calls" => "calls DESC",
        other => raise(FbError::invalid(format!(
            "order_by must be total_time, mean_time or calls, not '{}'",
            other.chars().take(40).collect::<String>()
        ))),
    }
}

#[pg_schema]
pub mod dashboard {
    use super::*;

    /// Client connections grouped by database, state, application and role,
    /// with the server's max_connections (one row per group).
    #[allow(clippy::type_complexity)]
    #[pg_extern]
    #[search_path(pg_catalog, pg_temp)]
    pub fn connection_breakdown() -> TableIterator<
        'static,
        (
            name!(database, Option<String>),
            name!(state, String),
            name!(application_name, String),
            name!(role, Option<String>),
            name!(connections, i64),
            name!(waiting, i64),
            name!(longest_running_seconds, Option<f64>),
            name!(max_connections, i32),
        ),
    > {
        actor::reader();
        let rows = db::select(
            "SELECT datname::text, coalesce(state, 'hidden'), coalesce(application_name, ''), usename::text,
                    count(*), count(*) FILTER (WHERE wait_event_type = 'Lock'),
                    (max(extract(epoch FROM (clock_timestamp() - query_start))) FILTER (WHERE state = 'active'))::float8,
                    current_setting('max_connections')::int
               FROM pg_stat_activity WHERE backend_type = 'client backend'
              GROUP BY 1, 2, 3, 4 ORDER BY 5 DESC, 1, 2, 3, 4",
            &[],
            |r| {
                Ok((
                    r.get::<String>(1)?,
                    r.get::<String>(2)?.unwrap_or_default(),
                    r.get::<String>(3)?.unwrap_or_default(),
                    r.get::<String>(4)?,
                    r.get::<i64>(5)?.unwrap_or(0),
                    r.get::<i64>(6)?.unwrap_or(0),
                    r.get::<f64>(7)?,
                    r.get::<i32>(8)?.unwrap_or(0),
                ))
            },
        );
        TableIterator::new(rows)
    }

    /// Buffer cache hits and reads of this database since its statistics were
    /// reset: the whole database (pg_stat_database), user tables' heap and
    /// user indexes (pg_statio_*); `ratio` is hits / (hits + reads), NULL
    /// before any block was read.
    #[allow(clippy::type_complexity)]
    #[pg_extern]
    #[search_path(pg_catalog, pg_temp)]
    pub fn cache_hit_ratio() -> TableIterator<
        'static,
        (name!(scope, String), name!(hits, i64), name!(reads, i64), name!(ratio, Option<f64>)),
    > {
        actor::reader();
        let rows = db::select(
            "WITH s(scope, hits, reads) AS (
                 SELECT 'database', blks_hit, blks_read FROM pg_stat_database WHERE datname = current_database()
                 UNION ALL
                 SELECT 'tables', coalesce(sum(heap_blks_hit), 0)::bigint, coalesce(sum(heap_blks_read), 0)::bigint
                   FROM pg_statio_user_tables
                 UNION ALL
                 SELECT 'indexes', coalesce(sum(idx_blks_hit), 0)::bigint, coalesce(sum(idx_blks_read), 0)::bigint
                   FROM pg_statio_user_indexes)
             SELECT scope, hits, reads, (hits::float8 / nullif(hits + reads, 0))::float8 FROM s",
            &[],
            |r| {
                Ok((
                    r.get::<String>(1)?.unwrap_or_default(),
                    r.get::<i64>(2)?.unwrap_or(0),
                    r.get::<i64>(3)?.unwrap_or(0),
                    r.get::<f64>(4)?,
                ))
            },
        );
        TableIterator::new(rows)
    }

    /// Whether query statistics can be shown, and if not, how to enable them.
    #[pg_extern]
    #[search_path(pg_catalog, pg_temp)]
    pub fn query_stats_available() -> TableIterator<'static, (name!(available, bool), name!(hint, Option<String>))> {
        actor::reader();
        let available = pg_stat_statements_schema().is_some();
        TableIterator::once((available, (!available).then(|| PG_STAT_STATEMENTS_HINT.to_string())))
    }

    /// The top statements of this database from pg_stat_statements, by
    /// `order_by` (total_time, mean_time or calls), with rows and cache hits.
    /// Empty (and a NOTICE) when pg_stat_statements is not available.
    #[allow(clippy::type_complexity)]
    #[pg_extern]
    #[search_path(pg_catalog, pg_temp)]
    pub fn top_queries(
        order_by: default!(Option<&str>, "'total_time'"),
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
            name!(cache_hit_ratio, Option<f64>),
        ),
    > {
        actor::reader();
        let order = query_order(order_by.unwrap_or("total_time"));
        let limit = check_limit(limit);
        TableIterator::new(statements(order, limit))
    }

    /// The largest indexes of this database (outside the system schemas), with
    /// their table, size and how often they were scanned.
    #[allow(clippy::type_complexity)]
    #[pg_extern]
    #[search_path(pg_catalog, pg_temp)]
    pub fn largest_indexes(
        limit: default!(Option<i32>, 20),
    ) -> TableIterator<
        'static,
        (
            name!(schema_name, String),
            name!(table_name, String),
            name!(index_name, String),
            name!(bytes, i64),
            name!(scans, Option<i64>),
            name!(is_unique, bool),
            name!(is_primary, bool),
        ),
    > {
        actor::reader();
        let limit = check_limit(limit);
        let rows = db::select(
            "SELECT n.nspname::text, t.relname::text, c.relname::text, pg_relation_size(c.oid),
                    s.idx_scan, i.indisunique, i.indisprimary
               FROM pg_index i
               JOIN pg_class c ON c.oid = i.indexrelid
               JOIN pg_class t ON t.oid = i.indrelid
               JOIN pg_namespace n ON n.oid = c.relnamespace
               LEFT JOIN pg_stat_all_indexes s ON s.indexrelid = i.indexrelid
              WHERE n.nspname NOT IN ('pg_catalog', 'information_schema')
                AND n.nspname NOT LIKE 'pg\\_toast%' AND n.nspname NOT LIKE 'pg\\_temp\\_%'
              ORDER BY 4 DESC, 1, 3 LIMIT $1",
            &[limit.into()],
            |r| {
                Ok((
                    r.get::<String>(1)?.unwrap_or_default(),
                    r.get::<String>(2)?.unwrap_or_default(),
                    r.get::<String>(3)?.unwrap_or_default(),
                    r.get::<i64>(4)?.unwrap_or(0),
                    r.get::<i64>(5)?,
                    r.get::<bool>(6)?.unwrap_or(false),
                    r.get::<bool>(7)?.unwrap_or(false),
                ))
            },
        );
        TableIterator::new(rows)
    }
}
