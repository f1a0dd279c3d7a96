-- Monitoring (src/monitoring.rs) needs no tables of its own: it reads
-- pg_stat_activity, pg_stat_statements (when installed) and the catalog with
-- the caller's own rights, so Postgres's visibility rules (pg_read_all_stats)
-- apply to it; only admin sessions and impersonations are read as the owner.
SELECT 1;
