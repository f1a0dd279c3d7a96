-- dashboard_auth.validate_session: the dashboard's per-request check of an
-- admin session token. Empty when the token is unknown, malformed, expired
-- (idle or absolute), revoked, or not a full session (scope 'mfa_pending' /
-- 'mfa_enroll').
--
-- Why SQL and not Rust: it runs on every dashboard request and must reach 0.8
-- of the throughput of the bare primary-key lookup of the digest (issue 2,
-- bench/cases/validate_session.sh). A Rust set-returning function that does no
-- lookup at all measured ~0.85 of that lookup: the SRF call machinery alone
-- leaves no room for the lookup. This function is instead INLINED by the
-- planner into the caller's query (inline_set_returning_function), so
-- `SELECT * FROM dashboard_auth.validate_session($1)` is planned and run as one
-- index scan on sessions(token_digest) plus two cheap function calls: the
-- digest (`_token_digest`, folded at plan time for a literal token) and the
-- liveness filter (`_session_live`, which also refreshes `last_seen_at` at most
-- about once a minute).
--
-- Inlining needs, and tests/test_sessions.py checks (EXPLAIN shows an Index
-- Scan on sessions and no Function Scan): a single SELECT; LANGUAGE sql; not
-- STRICT; not VOLATILE (STABLE); not SECURITY DEFINER; no SET clause; and
-- EXECUTE for the caller. So the query runs as its caller: fluxbase_dashboard
-- gets SELECT on the columns read here and EXECUTE on the two helpers
-- (sql/grants.sql, docs/SECURITY.md). Anyone else has no EXECUTE on
-- validate_session: not inlined, then refused with 42501.
--
-- BEGIN ATOMIC: the body is parsed once, here, with the extension's
-- search_path; a caller's search_path cannot redirect a name or an operator
-- in it when it is inlined into their query.
--
-- Seen data: as a STABLE function, the statement's snapshot. A session created
-- by an earlier statement (a login) validates; one created earlier in the same
-- statement does not (the Rust version, now `_validate_session_native`, saw
-- it). The rule itself (revoked, absolute and idle expiry, refresh when stale)
-- is fluxbase_core::session, the same one use_session and login_mfa apply.
CREATE FUNCTION dashboard_auth.validate_session(token text)
RETURNS TABLE (user_id uuid, email text, role text, expires_at timestamptz)
LANGUAGE sql STABLE
BEGIN ATOMIC
    SELECT s.user_id, s.user_email, s.user_role, least(s.expires_at, s.last_seen_at + s.idle_timeout)
      FROM dashboard_auth.sessions s
     WHERE s.token_digest = dashboard_auth._token_digest(validate_session.token)
       AND s.scope = 'full'
       AND dashboard_auth._session_live(s.id, s.last_seen_at, s.idle_timeout, s.expires_at, s.revoked_at);
END;
COMMENT ON FUNCTION dashboard_auth.validate_session(text) IS
    'The per-request check of an admin session token: one row (user_id, email, role, expires_at) when it is a live full session';
