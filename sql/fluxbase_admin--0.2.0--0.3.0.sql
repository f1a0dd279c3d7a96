-- fluxbase_admin 0.2.0 -> 0.3.0 (ALTER EXTENSION fluxbase_admin UPDATE)
--
-- Every change to the extension's objects between the archived 0.2.0 install
-- script (sql/versions/fluxbase_admin--0.2.0.sql) and what `CREATE EXTENSION
-- fluxbase_admin` installs at 0.3.0 belongs here (see docs/RELEASING.md and the
-- header of fluxbase_admin--0.1.0--0.2.0.sql). One section per topic, headed
-- `-- == <topic> (issue N) ==`. tests/test_upgrade.py compares an updated
-- database with a fresh one, object by object, and fails on any difference.
--
-- Runs inside the extension script machinery: no BEGIN/COMMIT, schema-qualify
-- everything. Once 0.3.0 is released this file is never edited again.

-- == auth.uid fast path (issue 22) ==
-- auth.uid(), auth.role(), auth.email() become hand-written V1 C functions that
-- return a cached Datum (src/claims.rs). The 0.2.0 symbols (uid_wrapper,
-- role_wrapper, email_wrapper) stay in the library for the archived scripts.
-- CREATE OR REPLACE keeps the functions' owner, grants and dependents (policies).
CREATE OR REPLACE FUNCTION auth."uid"() RETURNS uuid STRICT STABLE PARALLEL SAFE LANGUAGE c AS 'MODULE_PATHNAME', 'uid_fast';
CREATE OR REPLACE FUNCTION auth."role"() RETURNS text STRICT STABLE PARALLEL SAFE LANGUAGE c AS 'MODULE_PATHNAME', 'role_fast';
CREATE OR REPLACE FUNCTION auth."email"() RETURNS text STRICT STABLE PARALLEL SAFE LANGUAGE c AS 'MODULE_PATHNAME', 'email_fast';
