-- The audit trail: one row per admin action.
CREATE TABLE dashboard_auth.audit_log (
    id                  bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    occurred_at         timestamptz NOT NULL DEFAULT clock_timestamp(),
    actor_id            uuid,
    -- an admin's email, or db:<session_user> for a database role without an admin session
    actor               text NOT NULL,
    action              text NOT NULL,
    target_type         text,
    target_id           text,
    details             jsonb NOT NULL DEFAULT '{}'::jsonb,
    ip                  inet,
    success             boolean NOT NULL DEFAULT true,
    db_user             text NOT NULL DEFAULT session_user,
    txid                bigint NOT NULL DEFAULT txid_current(),
    impersonation_session_id uuid,
    -- The hash chain (see core/src/chain.rs): row_hash = sha256(prev_hash ||
    -- canonical(row)); both are filled by the commit-time append, whatever an
    -- INSERT says (the BEFORE INSERT trigger _audit_chain routes others there).
    prev_hash           bytea,
    row_hash            bytea
);
-- BRIN: entries are appended in time order, so a block range index finds time
-- ranges at a fraction of a btree's cost on every append.
CREATE INDEX audit_log_occurred_at ON dashboard_auth.audit_log USING brin (occurred_at);
-- Only entries with an admin behind them: row changes made by application
-- roles and DBAs (no actor_id) are most of a busy log, and an index entry
-- each was a measurable part of auditing a statement. `actor_id = $1` still
-- uses it (the condition implies the index predicate).
CREATE INDEX audit_log_actor ON dashboard_auth.audit_log (actor_id, occurred_at) WHERE actor_id IS NOT NULL;
CREATE INDEX audit_log_action ON dashboard_auth.audit_log (action, occurred_at);
COMMENT ON TABLE dashboard_auth.audit_log IS 'Append-only record of every admin action';

-- The head of the hash chain: one row. Entries are appended at commit
-- (src/audit_append.rs) under an EXCLUSIVE lock on this table, held from the
-- append to the end of the commit, so concurrent writers queue for the append
-- only. Ids are assigned there (last_id + 1): gapless and in chain order.
-- verify_audit_chain() also checks the tail against this row, which finds
-- rows removed from the end of the log.
CREATE TABLE dashboard_auth.audit_chain_head (
    singleton           boolean PRIMARY KEY DEFAULT true CHECK (singleton),
    last_id             bigint NOT NULL,
    last_hash           bytea NOT NULL
);
-- (its one row is created by the first append, not at install, so a restore
-- brings it without a clash)
-- fillfactor 10: every append updates the one row; with its page kept mostly
-- free, each update is a HOT update on that page, pruned in place, instead of
-- the table (and its key index) growing by a page of dead versions at a time.
ALTER TABLE dashboard_auth.audit_chain_head SET (fillfactor = 10);
COMMENT ON TABLE dashboard_auth.audit_chain_head IS 'Last id and hash of the audit chain; written only by the commit-time append';

-- Retention: purge_audit() deletes a prefix of the chain and records here the
-- id and hash of the last row it removed, so verification can start from it.
-- Append-only as well (same guard as audit_log).
CREATE TABLE dashboard_auth.audit_checkpoints (
    id                  bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    last_purged_id      bigint NOT NULL,
    last_purged_hash    bytea NOT NULL,
    purged_rows         bigint NOT NULL,
    purged_at           timestamptz NOT NULL DEFAULT clock_timestamp(),
    purged_by           text NOT NULL
);
COMMENT ON TABLE dashboard_auth.audit_checkpoints IS 'Where the audit chain continues after each purge';
-- dashboard.audit_search's target (an id, a type or 'type:id') is answered
-- from this one index, newest first: by (type, id) for each type the log holds,
-- found by a skip scan of the leading column (core/src/audit_search.rs).
CREATE INDEX audit_log_target ON dashboard_auth.audit_log (target_type, target_id, id);

-- Row-change entries carry whole batches of rows in `details`: lz4 compresses
-- them several times faster than the default pglz (where the server has lz4).
DO $lz4$
BEGIN
    ALTER TABLE dashboard_auth.audit_log ALTER COLUMN details SET COMPRESSION lz4;
EXCEPTION WHEN feature_not_supported OR invalid_parameter_value THEN
    NULL;
END
$lz4$;

-- Row-change entries keep the statement's changed rows as a binary row image
-- (core/src/row_image.rs), decoded to JSON only when read
-- (dashboard.audit_search, dashboard_auth.audit_details): capturing jsonb for
-- every row cost more than the audited statement itself. Covered by row_hash.
ALTER TABLE dashboard_auth.audit_log ADD COLUMN row_data bytea;
-- MAIN: compressed and kept in the row (a statement's image compresses to a
-- few kB), not moved to the TOAST table unless the row would not fit a page:
-- the TOAST insert was a measurable share of an audited statement.
ALTER TABLE dashboard_auth.audit_log ALTER COLUMN row_data SET STORAGE MAIN;
-- details too: otherwise, next to a big row image, the small details document
-- is what the toaster moves out of line.
ALTER TABLE dashboard_auth.audit_log ALTER COLUMN details SET STORAGE MAIN;

-- Every other variable-length column stays in the row as well. By default the
-- toaster, to bring a row with a big row image under 2 kB, first moves the
-- *other* columns of more than 24 bytes out of line: the two 32-byte hashes
-- (and a long target_id) went to the TOAST table on every row-change entry —
-- two more heap rows and index entries per entry, and a TOAST fetch on every
-- verification. The hashes are always 32 bytes: PLAIN (never compressed or
-- moved); the texts MAIN (moved out only if the row cannot fit a page).
ALTER TABLE dashboard_auth.audit_log
    ALTER COLUMN prev_hash SET STORAGE PLAIN,
    ALTER COLUMN row_hash SET STORAGE PLAIN,
    ALTER COLUMN actor SET STORAGE MAIN,
    ALTER COLUMN action SET STORAGE MAIN,
    ALTER COLUMN target_type SET STORAGE MAIN,
    ALTER COLUMN target_id SET STORAGE MAIN,
    ALTER COLUMN db_user SET STORAGE MAIN;
DO $lz4$
BEGIN
    ALTER TABLE dashboard_auth.audit_log ALTER COLUMN row_data SET COMPRESSION lz4;
EXCEPTION WHEN feature_not_supported OR invalid_parameter_value THEN
    NULL;
END
$lz4$;
