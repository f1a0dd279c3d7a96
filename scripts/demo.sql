\set pw '''correct-horse-battery-staple'''
\echo '== 1. CREATE EXTENSION fluxbase_admin'
CREATE EXTENSION fluxbase_admin;
\echo
\echo '== 2. First run: is setup needed? Then create the first admin (logged in at once)'
SELECT dashboard_auth.needs_setup();
SELECT user_id, left(session_token, 12) || '…' AS session_token
FROM dashboard_auth.setup_first_admin('ada@example.com', :pw, 'Ada Admin');
SELECT dashboard_auth.needs_setup();
\echo
\echo '== 3. Login: right password, wrong password, unknown email (same answer)'
SELECT status, left(session_token, 12) || '…' AS session_token, expires_at FROM dashboard_auth.login('ada@example.com', :pw, '127.0.0.1');
SELECT status, session_token FROM dashboard_auth.login('ada@example.com', 'not-my-password');
SELECT status, session_token FROM dashboard_auth.login('mallory@example.com', 'not-my-password');
SELECT session_token AS token FROM dashboard_auth.login('ada@example.com', :pw) \gset
\echo 'validate_session, the per-request check of the dashboard:'
SELECT email, role, expires_at FROM dashboard_auth.validate_session(:'token');
\echo 'A weak password is refused with the reason:'
\set ON_ERROR_STOP 0
SELECT dashboard_auth.create_admin('bob@example.com', 'password1234', 'Bob');
\set ON_ERROR_STOP 1
BEGIN;
SELECT dashboard_auth.use_session(:'token') IS NOT NULL AS acting_as_ada;
SELECT dashboard_auth.create_admin('vic@example.com', 'lighthouse-keeper-77', 'Vic Viewer', 'dashboard_viewer') IS NOT NULL AS viewer_created;
COMMIT;
SELECT email, role, totp_enabled, active_sessions FROM dashboard_auth.list_admins();
\echo
\echo '== 4. App users, a table with row level security, and impersonation'
CREATE TABLE public.todos (
    id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    user_id uuid NOT NULL REFERENCES auth.users (id),
    title text NOT NULL,
    done boolean NOT NULL DEFAULT false
);
ALTER TABLE public.todos ENABLE ROW LEVEL SECURITY;
CREATE POLICY own_todos ON public.todos USING (user_id = auth.uid()) WITH CHECK (user_id = auth.uid());
GRANT SELECT, INSERT, UPDATE, DELETE ON public.todos TO authenticated;
SELECT user_id AS alice FROM dashboard.invite_user('alice@example.com') \gset
SELECT user_id AS bob FROM dashboard.invite_user('bob@example.com') \gset
INSERT INTO public.todos (user_id, title) VALUES
    (:'alice', 'Alice: write the report'), (:'alice', 'Alice: book flights'), (:'bob', 'Bob: fix the bike');
SELECT email, role, created_at FROM dashboard.list_users();
\echo 'Impersonate Alice as Ada (the reason is required and recorded):'
BEGIN;
SELECT dashboard_auth.use_session(:'token') IS NOT NULL AS acting_as_ada;
SELECT dashboard.start_impersonation('alice@example.com', 'ticket #42: Alice cannot see her todos') AS imp \gset
\echo 'What Alice sees through the RLS policy (2 of 3 rows):'
SELECT * FROM dashboard.query_as(:'imp', 'SELECT title, done FROM public.todos ORDER BY id');
COMMIT;
\echo 'An escape attempt through query_as is refused:'
BEGIN;
SELECT dashboard_auth.use_session(:'token') IS NOT NULL AS acting_as_ada;
\set ON_ERROR_STOP 0
SELECT * FROM dashboard.query_as(:'imp', 'SET ROLE postgres');
\set ON_ERROR_STOP 1
ROLLBACK;
BEGIN;
SELECT dashboard_auth.use_session(:'token') IS NOT NULL AS acting_as_ada;
SELECT dashboard.stop_impersonation(:'imp');
COMMIT;
SELECT actor, target_role, impersonation_type, reason, ended_at IS NOT NULL AS ended FROM auth.impersonation_sessions ORDER BY started_at DESC LIMIT 50;
\echo
\echo '== 5. Table explorer: filtered, keyset-paginated browsing'
SELECT jsonb_pretty(dashboard.browse('public.todos', '[{"column": "done", "op": "eq", "value": false}]', '[{"column": "title"}]', page_size => 2));
\echo
\echo '== 6. The audit trail (append-only, hash-chained)'
SELECT id, actor, action, target_type, success FROM dashboard_auth.audit_log ORDER BY id;
\echo '-- any table can be audited; a statement''s changed rows are kept and shown as JSON'
SELECT dashboard.enable_audit('public.todos');
UPDATE public.todos SET done = true WHERE NOT done;
SELECT action, target_id, jsonb_pretty(details->'rows') AS changed_rows
FROM dashboard.audit_search(action => 'row.*', page_size => 1);
SELECT * FROM dashboard_auth.verify_audit_chain();
