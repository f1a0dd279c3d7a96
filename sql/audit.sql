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
    impersonation_session_id uuid
);
CREATE INDEX audit_log_occurred_at ON dashboard_auth.audit_log (occurred_at);
CREATE INDEX audit_log_actor ON dashboard_auth.audit_log (actor_id, occurred_at);
CREATE INDEX audit_log_action ON dashboard_auth.audit_log (action, occurred_at);
COMMENT ON TABLE dashboard_auth.audit_log IS 'Append-only record of every admin action';
