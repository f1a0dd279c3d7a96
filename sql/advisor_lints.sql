-- The catalog lints of dashboard.advisories() (src/advisor.rs, issue 32).
-- Not part of the install script: src/advisor.rs runs this query (include_str!)
-- with search_path pinned to pg_catalog. The policy lints that need the
-- server's parse trees (policy_always_true, policy_uses_user_metadata,
-- policy_column_unindexed) are decided in Rust from pg_policy's node trees.
--
-- "User objects": not in a system schema, not in the extension's own schemas,
-- not a member of any extension. "Exposed to anon/authenticated": the role has
-- USAGE on the schema and the privilege on the object.
WITH roles AS (
    SELECT r.oid, r.rolname FROM pg_catalog.pg_roles r WHERE r.rolname IN ('anon', 'authenticated')
),
user_ns AS (
    SELECT n.oid, n.nspname FROM pg_catalog.pg_namespace n
    WHERE n.nspname NOT IN ('pg_catalog', 'information_schema', 'pg_toast', 'dashboard', 'dashboard_auth')
      AND n.nspname NOT LIKE 'pg\_temp\_%' AND n.nspname NOT LIKE 'pg\_toast\_temp\_%'
      AND NOT EXISTS (SELECT FROM pg_catalog.pg_depend d
                      WHERE d.classid = 'pg_catalog.pg_namespace'::pg_catalog.regclass AND d.objid = n.oid AND d.deptype = 'e')
),
user_rel AS (
    SELECT c.oid, c.relname, c.relkind, c.relrowsecurity, c.reloptions, n.oid AS nsp, n.nspname
    FROM pg_catalog.pg_class c JOIN user_ns n ON n.oid = c.relnamespace
    WHERE c.relkind IN ('r', 'p', 'v', 'm')
      AND NOT EXISTS (SELECT FROM pg_catalog.pg_depend d
                      WHERE d.classid = 'pg_catalog.pg_class'::pg_catalog.regclass AND d.objid = c.oid AND d.deptype = 'e')
),
exposed AS (
    -- (relation, the roles that may read or write it, the privileges)
    SELECT c.oid, pg_catalog.string_agg(DISTINCT r.rolname, ', ') AS who,
           pg_catalog.bool_or(pg_catalog.has_table_privilege(r.oid, c.oid, 'SELECT')) AS readable
    FROM user_rel c CROSS JOIN roles r
    WHERE pg_catalog.has_schema_privilege(r.oid, c.nsp, 'USAGE')
      AND pg_catalog.has_table_privilege(r.oid, c.oid, 'SELECT, INSERT, UPDATE, DELETE')
    GROUP BY c.oid
),
user_fn AS (
    SELECT p.oid, p.proname, p.prosecdef, p.proconfig, n.oid AS nsp, n.nspname,
           pg_catalog.format('%I.%I(%s)', n.nspname, p.proname, pg_catalog.pg_get_function_identity_arguments(p.oid)) AS sig
    FROM pg_catalog.pg_proc p JOIN user_ns n ON n.oid = p.pronamespace
    WHERE p.prokind IN ('f', 'p')
      AND NOT EXISTS (SELECT FROM pg_catalog.pg_depend d
                      WHERE d.classid = 'pg_catalog.pg_proc'::pg_catalog.regclass AND d.objid = p.oid AND d.deptype = 'e')
),
idx AS (
    SELECT i.indexrelid, i.indrelid, i.indkey::pg_catalog.int2[] AS keys, i.indclass, i.indcollation,
           i.indisunique, i.indexprs, i.indpred
    FROM pg_catalog.pg_index i
)
-- rls_disabled_exposed
SELECT 'rls_disabled_exposed', 'error', c.nspname::text, c.relname::text,
       pg_catalog.format('%s may read or write this table and row-level security is off: every row is open to them', e.who),
       pg_catalog.format('ALTER TABLE %I.%I ENABLE ROW LEVEL SECURITY;', c.nspname, c.relname)
FROM user_rel c JOIN exposed e ON e.oid = c.oid
WHERE c.relkind IN ('r', 'p') AND NOT c.relrowsecurity
UNION ALL
-- rls_enabled_no_policy
SELECT 'rls_enabled_no_policy', 'info', c.nspname::text, c.relname::text,
       'row-level security is on but the table has no policy: nobody but its owner and BYPASSRLS roles sees a row',
       pg_catalog.format('CREATE POLICY "owner can read" ON %I.%I FOR SELECT TO authenticated USING (true);  -- write the condition that fits', c.nspname, c.relname)
FROM user_rel c
WHERE c.relkind IN ('r', 'p') AND c.relrowsecurity
  AND NOT EXISTS (SELECT FROM pg_catalog.pg_policy p WHERE p.polrelid = c.oid)
UNION ALL
-- security_definer_exposed
SELECT 'security_definer_exposed', 'warn', f.nspname::text, f.sig,
       pg_catalog.format('SECURITY DEFINER function that %s may execute: it runs with its owner''s rights, RLS of its owner',
           (SELECT pg_catalog.string_agg(r.rolname, ', ' ORDER BY r.rolname) FROM roles r
            WHERE pg_catalog.has_schema_privilege(r.oid, f.nsp, 'USAGE') AND pg_catalog.has_function_privilege(r.oid, f.oid, 'EXECUTE'))),
       pg_catalog.format('REVOKE EXECUTE ON FUNCTION %s FROM PUBLIC, anon, authenticated;', f.sig)
FROM user_fn f
WHERE f.prosecdef
  AND EXISTS (SELECT FROM roles r WHERE pg_catalog.has_schema_privilege(r.oid, f.nsp, 'USAGE')
                                    AND pg_catalog.has_function_privilege(r.oid, f.oid, 'EXECUTE'))
UNION ALL
-- function_search_path_mutable
SELECT 'function_search_path_mutable', 'warn', f.nspname::text, f.sig,
       'the function does not pin search_path: what its unqualified names mean depends on the caller''s search_path',
       pg_catalog.format('ALTER FUNCTION %s SET search_path = '''';', f.sig)
FROM user_fn f
WHERE NOT EXISTS (SELECT FROM pg_catalog.unnest(f.proconfig) AS s(setting) WHERE s.setting LIKE 'search\_path=%')
UNION ALL
-- security_definer_view_exposed
SELECT 'security_definer_view_exposed', 'error', v.nspname::text, v.relname::text,
       pg_catalog.format('view over the row-level secured table(s) %s, readable by %s, runs as its owner (no security_invoker): RLS is bypassed through it',
           (SELECT pg_catalog.string_agg(DISTINCT pg_catalog.format('%I.%I', tn.nspname, t.relname), ', ')
            FROM pg_catalog.pg_rewrite rw JOIN pg_catalog.pg_depend d ON d.classid = 'pg_catalog.pg_rewrite'::pg_catalog.regclass AND d.objid = rw.oid
            JOIN pg_catalog.pg_class t ON t.oid = d.refobjid JOIN pg_catalog.pg_namespace tn ON tn.oid = t.relnamespace
            WHERE rw.ev_class = v.oid AND t.oid <> v.oid AND t.relrowsecurity), e.who),
       pg_catalog.format('ALTER VIEW %I.%I SET (security_invoker = on);', v.nspname, v.relname)
FROM user_rel v JOIN exposed e ON e.oid = v.oid AND e.readable
WHERE v.relkind = 'v'
  AND NOT COALESCE(EXISTS (SELECT FROM pg_catalog.unnest(v.reloptions) AS o(opt)
                           WHERE o.opt IN ('security_invoker=true', 'security_invoker=on', 'security_invoker=1', 'security_invoker=yes')), false)
  AND EXISTS (SELECT FROM pg_catalog.pg_rewrite rw JOIN pg_catalog.pg_depend d ON d.classid = 'pg_catalog.pg_rewrite'::pg_catalog.regclass AND d.objid = rw.oid
              JOIN pg_catalog.pg_class t ON t.oid = d.refobjid
              WHERE rw.ev_class = v.oid AND t.oid <> v.oid AND t.relrowsecurity)
UNION ALL
-- auth_users_exposed: a view or materialized view over auth.users that anon/authenticated can read
SELECT 'auth_users_exposed', 'error', v.nspname::text, v.relname::text,
       pg_catalog.format('reads auth.users and %s may select from it: app users'' emails and metadata are exposed', e.who),
       pg_catalog.format('REVOKE ALL ON %I.%I FROM PUBLIC, anon, authenticated;', v.nspname, v.relname)
FROM user_rel v JOIN exposed e ON e.oid = v.oid AND e.readable
WHERE v.relkind IN ('v', 'm')
  AND EXISTS (SELECT FROM pg_catalog.pg_rewrite rw JOIN pg_catalog.pg_depend d ON d.classid = 'pg_catalog.pg_rewrite'::pg_catalog.regclass AND d.objid = rw.oid
              JOIN pg_catalog.pg_class t ON t.oid = d.refobjid JOIN pg_catalog.pg_namespace tn ON tn.oid = t.relnamespace
              WHERE rw.ev_class = v.oid AND tn.nspname = 'auth' AND t.relname = 'users')
UNION ALL
-- ... and auth.users itself, granted to them
SELECT 'auth_users_exposed', 'error', 'auth', 'users',
       pg_catalog.format('%s may select from auth.users directly', pg_catalog.string_agg(r.rolname, ', ' ORDER BY r.rolname)),
       'REVOKE ALL ON auth.users FROM PUBLIC, anon, authenticated;'
FROM roles r
WHERE pg_catalog.to_regclass('auth.users') IS NOT NULL
  AND pg_catalog.has_table_privilege(r.oid, pg_catalog.to_regclass('auth.users'), 'SELECT')
HAVING pg_catalog.count(*) > 0
UNION ALL
-- no_primary_key
SELECT 'no_primary_key', 'info', c.nspname::text, c.relname::text,
       'the table has no primary key: the table explorer can show its rows but not edit them',
       pg_catalog.format('ALTER TABLE %I.%I ADD PRIMARY KEY (<column>);', c.nspname, c.relname)
FROM user_rel c
WHERE c.relkind IN ('r', 'p')
  AND NOT EXISTS (SELECT FROM pg_catalog.pg_index i WHERE i.indrelid = c.oid AND i.indisprimary)
UNION ALL
-- unindexed_foreign_key: no index whose leading columns are the key's columns
SELECT 'unindexed_foreign_key', 'info', c.nspname::text, c.relname::text,
       pg_catalog.format('foreign key %I (%s) has no index leading with its columns: deletes and updates of the referenced rows scan this table',
           k.conname, (SELECT pg_catalog.string_agg(pg_catalog.quote_ident(a.attname), ', ' ORDER BY u.ord)
                       FROM pg_catalog.unnest(k.conkey) WITH ORDINALITY AS u(attnum, ord)
                       JOIN pg_catalog.pg_attribute a ON a.attrelid = k.conrelid AND a.attnum = u.attnum)),
       pg_catalog.format('CREATE INDEX ON %I.%I (%s);', c.nspname, c.relname,
           (SELECT pg_catalog.string_agg(pg_catalog.quote_ident(a.attname), ', ' ORDER BY u.ord)
            FROM pg_catalog.unnest(k.conkey) WITH ORDINALITY AS u(attnum, ord)
            JOIN pg_catalog.pg_attribute a ON a.attrelid = k.conrelid AND a.attnum = u.attnum))
FROM pg_catalog.pg_constraint k JOIN user_rel c ON c.oid = k.conrelid
WHERE k.contype = 'f'
  AND NOT EXISTS (SELECT FROM idx i
                  CROSS JOIN LATERAL (SELECT pg_catalog.array_agg(u.attnum) AS lead
                                      FROM pg_catalog.unnest(i.keys) WITH ORDINALITY AS u(attnum, ord)
                                      WHERE u.ord <= pg_catalog.cardinality(k.conkey)) AS l
                  WHERE i.indrelid = k.conrelid AND i.indpred IS NULL
                    AND l.lead @> k.conkey AND l.lead <@ k.conkey)
UNION ALL
-- duplicate_index: same table, columns, operator classes, collations, expressions
-- and predicate (the index that backs a constraint is the one kept)
SELECT 'duplicate_index', 'warn', c.nspname::text, c.relname::text,
       pg_catalog.format('indexes %s and %s are identical', pg_catalog.quote_ident(ia.relname), pg_catalog.quote_ident(ib.relname)),
       pg_catalog.format('DROP INDEX %I.%I;', c.nspname,
           CASE WHEN EXISTS (SELECT FROM pg_catalog.pg_constraint k WHERE k.conindid = b.indexrelid) THEN ia.relname ELSE ib.relname END)
FROM idx a JOIN idx b ON a.indrelid = b.indrelid AND a.indexrelid < b.indexrelid
JOIN user_rel c ON c.oid = a.indrelid
JOIN pg_catalog.pg_class ia ON ia.oid = a.indexrelid JOIN pg_catalog.pg_class ib ON ib.oid = b.indexrelid
WHERE a.keys = b.keys AND a.indclass::pg_catalog.oid[] = b.indclass::pg_catalog.oid[]
  AND a.indcollation::pg_catalog.oid[] = b.indcollation::pg_catalog.oid[]
  AND a.indisunique = b.indisunique AND ia.relam = ib.relam
  AND pg_catalog.pg_get_expr(a.indexprs, a.indrelid) IS NOT DISTINCT FROM pg_catalog.pg_get_expr(b.indexprs, b.indrelid)
  AND pg_catalog.pg_get_expr(a.indpred, a.indrelid) IS NOT DISTINCT FROM pg_catalog.pg_get_expr(b.indpred, b.indrelid)
  AND NOT (EXISTS (SELECT FROM pg_catalog.pg_constraint k WHERE k.conindid = a.indexrelid)
           AND EXISTS (SELECT FROM pg_catalog.pg_constraint k WHERE k.conindid = b.indexrelid))
