//! Table explorer: list, describe, browse, edit and watch any table.
//! (Owns `export`. May call: `runtime`, `audit`, `users` for impersonation.)
//!
//! Every function here is SECURITY INVOKER: the caller's own grants and RLS
//! policies decide what is seen and changed, so the explorer shows an admin
//! exactly what the database would show them, and inside an impersonation
//! (`dashboard.apply_impersonation` makes `current_user` the app user's role,
//! e.g. `authenticated`) exactly what that app user may see.
//!
//! Who may call: the explorer functions are the one part of `dashboard` that
//! `anon`, `authenticated` and `service_role` have EXECUTE on (sql/grants.sql),
//! so that they keep working after `apply_impersonation` switched the role.
//! The gate is therefore not the role but the *connection*: every function
//! first requires `session_user` (the login role, which SET ROLE does not
//! change) to be a member of `fluxbase_dashboard`. An app user logged in
//! through PostgREST (session_user `authenticator`) or any other login role
//! is refused with 42501 before anything is read.
//!
//! SQL is built by `fluxbase_core::explorer` (identifiers from the catalog,
//! values bound as parameters, operators schema-qualified); only the audit
//! write runs as the extension owner (`audit::record`).
//!
//! Everything after the actor check runs confined (`confine::run_untrusted`):
//! a browsed view, an edited table's triggers, defaults, domain checks and RLS
//! policies are someone else's code, which must not reach the API or change
//! role or claims (issue 17).
//!
//! The admin's own view (issue 30, `owner_view`): an admin session that is
//! not impersonating reads and edits a table of a user schema as the table's
//! owner (a superuser's table as `fluxbase_explorer`), restricted, so RLS
//! filters only a FORCE ROW LEVEL SECURITY table and no grant to the web login
//! is needed; `table_overview` lists every such table.

use fluxbase_core::explorer::{self as ex, EditPlan, Table};
use fluxbase_core::{Code, FbError};
use std::cell::{Cell, RefCell};
use std::collections::HashMap;
use std::rc::Rc;

use pgrx::datum::{DatumWithOid, JsonB};
use pgrx::prelude::*;
use pgrx::spi::OwnedPreparedStatement;
use pgrx::PgRelation;
use serde_json::{json, Value};

use crate::runtime::actor::{self, Actor};
use crate::audit::{self, Event};
use crate::runtime::db;
use crate::runtime::errors::{raise, OrRaise};
use crate::users::impersonation::pinned_path;
use crate::runtime::json::JsonArg;

/// dashboard.export_rows and dashboard.count_rows (issue 19).
mod export;
/// The admin's own view of a table: as its owner, restricted (issue 30).
pub mod owner_view;

/// Refuse unless the login behind this connection is a dashboard member (see
/// the module comment); returns the acting admin or database role.
fn gate() -> Actor {
    let ok = db::one::<bool>(
        "SELECT pg_catalog.pg_has_role(session_user, 'fluxbase_dashboard', 'MEMBER')",
        &[],
    )
    .unwrap_or(false);
    if !ok {
        raise(FbError::denied(
            "permission denied: the table explorer is for members of fluxbase_dashboard",
        ));
    }
    actor::reader()
}

const CATALOG_SQL: &str = "
SELECT pg_catalog.jsonb_build_object(
  'schema', n.nspname, 'name', c.relname, 'kind', c.relkind, 'reltuples', c.reltuples,
  'visible', pg_catalog.has_any_column_privilege(c.oid, 'SELECT'),
  'columns', COALESCE((
      SELECT pg_catalog.jsonb_agg(pg_catalog.jsonb_build_object(
          'name', a.attname,
          -- the type bound values are cast to; no typmod (a cast to varchar(5)
          -- would truncate silently), except where the bare name means length 1
          'cast_type', CASE WHEN a.atttypid = 1042 THEN 'pg_catalog.bpchar'
                            WHEN a.atttypid = 1014 THEN 'pg_catalog.bpchar[]'
                            WHEN a.atttypid IN (1560, 1561) THEN pg_catalog.format_type(a.atttypid, a.atttypmod)
                            ELSE pg_catalog.format_type(a.atttypid, NULL) END,
          'type_oid', a.atttypid::pg_catalog.int8,
          'typmod', a.atttypmod,
          'not_null', a.attnotnull,
          'generated', a.attgenerated <> '',
          'identity_always', a.attidentity = 'a',
          'text_like', ty.typcategory = 'S',
          -- where the column's comparison operators live: a user-defined base
          -- type's own schema (citext, ...), else pg_catalog (built-in types,
          -- their arrays, domains over them, enums, composites)
          'op_schema', CASE WHEN bt.typtype = 'b' AND bt.typcategory <> 'A' AND bt.oid >= 16384
                            THEN (SELECT bn.nspname FROM pg_catalog.pg_namespace bn WHERE bn.oid = bt.typnamespace)
                            ELSE 'pg_catalog' END) ORDER BY a.attnum)
      FROM pg_catalog.pg_attribute a JOIN pg_catalog.pg_type ty ON ty.oid = a.atttypid
      JOIN pg_catalog.pg_type bt ON bt.oid = CASE WHEN ty.typtype = 'd' THEN ty.typbasetype ELSE ty.oid END
      WHERE a.attrelid = c.oid AND a.attnum > 0 AND NOT a.attisdropped), '[]'::pg_catalog.jsonb),
  'pk', COALESCE((
      SELECT pg_catalog.jsonb_agg(a.attname ORDER BY k.ord)
      FROM pg_catalog.pg_index i
      CROSS JOIN LATERAL pg_catalog.unnest(i.indkey::pg_catalog.int2[]) WITH ORDINALITY AS k(attnum, ord)
      JOIN pg_catalog.pg_attribute a ON a.attrelid = i.indrelid AND a.attnum = k.attnum
      WHERE i.indrelid = c.oid AND i.indisprimary), '[]'::pg_catalog.jsonb))
FROM pg_catalog.pg_class c JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
WHERE c.oid = $1";

// ------------------------------------------------------------ caches
//
// browse is the hot path: the table's catalog description and the query
// plans are kept per backend.
// * Table descriptions are keyed by (oid, search_path) — format_type spells a
//   type relative to the search path — and dropped by a relcache invalidation
//   callback whenever Postgres invalidates that relation (ALTER TABLE, DROP,
//   GRANT, ANALYZE's stats update ...), so they never outlive a catalog change.
//   Whether the *current* caller may read the table is checked on every call.
// * Plans are SPI plans kept by their SQL text (which holds only catalog
//   identifiers, never values). Postgres's plan cache revalidates them after
//   DDL by itself; at most MAX_PLANS are kept.

const MAX_PLANS: usize = 128;

thread_local! {
    static TABLES: RefCell<HashMap<(u32, String), Table>> = RefCell::new(HashMap::new());
    static TABLES_STALE: Cell<bool> = const { Cell::new(false) };
    static CALLBACK_SET: Cell<bool> = const { Cell::new(false) };
    static PLANS: RefCell<HashMap<String, Rc<OwnedPreparedStatement>>> = RefCell::new(HashMap::new());
}

#[pg_guard]
unsafe extern "C-unwind" fn on_relcache_invalidation(_arg: pg_sys::Datum, relid: pg_sys::Oid) {
    TABLES.with(|t| match t.try_borrow_mut() {
        Ok(mut t) if relid != pg_sys::Oid::INVALID => t.retain(|k, _| k.0 != relid.to_u32()),
        Ok(mut t) => t.clear(),
        // never expected (no borrow is held across a query), but be safe
        Err(_) => TABLES_STALE.with(|s| s.set(true)),
    });
}

fn cached_table(key: &(u32, String)) -> Option<Table> {
    if TABLES_STALE.with(|s| s.replace(false)) {
        TABLES.with(|t| t.borrow_mut().clear());
    }
    TABLES.with(|t| t.borrow().get(key).cloned())
}

fn remember_table(key: (u32, String), t: &Table) {
    if !CALLBACK_SET.with(|c| c.replace(true)) {
        unsafe { pg_sys::CacheRegisterRelcacheCallback(Some(on_relcache_invalidation), pg_sys::Datum::from(0)) };
    }
    TABLES.with(|m| {
        let mut m = m.borrow_mut();
        if m.len() >= MAX_PLANS {
            m.clear();
        }
        m.insert(key, t.clone());
    });
}

/// A kept plan for `sql` taking `nargs` text parameters (or one oid when
/// `oid_arg`).
fn kept_plan(sql: &str, types: &[PgOid]) -> Rc<OwnedPreparedStatement> {
    if let Some(p) = PLANS.with(|m| m.borrow().get(sql).cloned()) {
        return p;
    }
    let stmt = Spi::connect(|c| c.prepare(sql, types).map(|p| p.keep())).or_raise();
    let stmt = Rc::new(stmt);
    PLANS.with(|m| {
        let mut m = m.borrow_mut();
        if m.len() >= MAX_PLANS {
            m.clear();
        }
        m.insert(sql.to_owned(), stmt.clone());
    });
    stmt
}

fn text_types(n: usize) -> Vec<PgOid> {
    vec![PgOid::BuiltIn(PgBuiltInOids::TEXTOID); n]
}

const GATE_TABLE_SQL: &str = "SELECT pg_catalog.pg_has_role(session_user, 'fluxbase_dashboard', 'MEMBER'),
        pg_catalog.has_any_column_privilege($1, 'SELECT'),
        pg_catalog.current_setting('search_path')";

/// Read the table's description (cached, see above); refused (42501) when the
/// caller may not read it, before anything about it (not even its columns)
/// reaches them. Also applies the session gate (see `gate`).
fn load(rel: &PgRelation) -> Table {
    let oid = rel.oid();
    let stmt = kept_plan(GATE_TABLE_SQL, &[PgOid::BuiltIn(PgBuiltInOids::OIDOID)]);
    let (member, visible, path) = Spi::connect(|c| {
        let t = c.select(&*stmt, Some(1), &[oid.into()])?;
        let r = t.first();
        Ok::<_, pgrx::spi::SpiError>((
            r.get::<bool>(1)?.unwrap_or(false),
            r.get::<bool>(2)?.unwrap_or(false),
            r.get::<String>(3)?.unwrap_or_default(),
        ))
    })
    .or_raise();
    if !member {
        raise(FbError::denied(
            "permission denied: the table explorer is for members of fluxbase_dashboard",
        ));
    }
    // (the caller checked actor::reader()/writer() before confining itself)
    if !visible {
        raise(FbError::denied(format!("permission denied for table {}", rel.name())));
    }
    let key = (oid.to_u32(), path);
    if let Some(t) = cached_table(&key) {
        return t;
    }
    // With search_path pinned: the query's own operators are pg_catalog's,
    // and format_type then spells every type outside pg_catalog with its
    // schema, so the casts the generated SQL writes name exactly that type.
    let v = pinned_path(|| db::one::<JsonB>(CATALOG_SQL, &[oid.into()]))
        .map(|j| j.0)
        .unwrap_or_else(|| raise(FbError::not_found("no such table")));
    let t = Table::from_catalog(&v).or_raise();
    if !matches!(t.kind, 'r' | 'p' | 'v' | 'm' | 'f') {
        raise(FbError::invalid(format!("{} is not a table or view", t.display())));
    }
    remember_table(key, &t);
    t
}

fn args(p: &ex::Params) -> Vec<DatumWithOid<'static>> {
    p.0.iter().map(|v| v.clone().into()).collect()
}

/// Run `f` on the table confined: in the admin's own view as the table's
/// owner (`owner_view`), else with the caller's rights.
fn on_table<R>(rel: &PgRelation, f: impl FnOnce() -> R) -> R {
    crate::explorer::owner_view::run(crate::explorer::owner_view::run_as(rel), f)
}

/// The catalog readers' common start: the caller may read (actor), the
/// table is visible to them (load); `f` then runs confined.
fn reading_table<R>(tbl: Option<PgRelation>, f: impl FnOnce(&PgRelation) -> R) -> R {
    actor::reader();
    let rel = required_rel(tbl);
    on_table(&rel, || {
        load(&rel);
        f(&rel)
    })
}

/// A view's reader (browse, export, count): the caller may read (actor);
/// then, confined (as the owner in the admin's own view), the table is
/// loaded (visible) and `f` gets it.
fn reading_view<R>(tbl: Option<PgRelation>, f: impl FnOnce(&Table) -> R) -> R {
    actor::reader();
    let rel = required_rel(tbl);
    on_table(&rel, || f(&load(&rel)))
}

/// A view's JSON arguments as values (each refused with 22023, naming it,
/// when it can't be used).
fn view_args<const N: usize>(args: [(Option<JsonArg>, &str); N]) -> [Option<Value>; N] {
    args.map(|(a, what)| a.map(|j| j.into_value(what)))
}

fn required_rel(tbl: Option<PgRelation>) -> PgRelation {
    tbl.unwrap_or_else(|| raise(FbError::new(Code::NullValue, "tbl is required")))
}

// ------------------------------------------------------------ reading

#[pg_extern(schema = "dashboard", stable)]
fn list_tables(
    schema: default!(Option<&str>, "NULL"),
) -> TableIterator<
    'static,
    (
        name!(schema, String),
        name!(name, String),
        name!(kind, String),
        name!(row_estimate, i64),
        name!(total_bytes, i64),
        name!(rls_enabled, bool),
        name!(primary_key, Vec<String>),
        name!(comment, Option<String>),
    ),
> {
    gate();
    crate::runtime::confine::run_untrusted(|| {
        if let Some(s) = schema {
            fluxbase_core::error::check_len("schema", s, 200).or_raise();
        }
        // Without a schema: every user schema, not the system's nor the
        // extension's own (dashboard_auth, dashboard, auth); name one to see it.
        let rows = db::select(
        "SELECT n.nspname::pg_catalog.text, c.relname::pg_catalog.text,
                CASE c.relkind WHEN 'r' THEN 'table' WHEN 'p' THEN 'partitioned table' WHEN 'v' THEN 'view'
                               WHEN 'm' THEN 'materialized view' WHEN 'f' THEN 'foreign table' END,
                GREATEST(c.reltuples, 0)::pg_catalog.int8,
                CASE WHEN c.relkind IN ('r', 'm', 'p') THEN pg_catalog.pg_total_relation_size(c.oid) ELSE 0 END::pg_catalog.int8,
                c.relrowsecurity,
                COALESCE((SELECT pg_catalog.array_agg(a.attname::pg_catalog.text ORDER BY k.ord)
                          FROM pg_catalog.pg_index i
                          CROSS JOIN LATERAL pg_catalog.unnest(i.indkey::pg_catalog.int2[]) WITH ORDINALITY AS k(attnum, ord)
                          JOIN pg_catalog.pg_attribute a ON a.attrelid = i.indrelid AND a.attnum = k.attnum
                          WHERE i.indrelid = c.oid AND i.indisprimary), '{}'::pg_catalog.text[]),
                pg_catalog.obj_description(c.oid, 'pg_class')
         FROM pg_catalog.pg_class c JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
         WHERE c.relkind IN ('r', 'p', 'v', 'm', 'f')
           AND pg_catalog.has_any_column_privilege(c.oid, 'SELECT')
           AND CASE WHEN $1::pg_catalog.text IS NULL
                    THEN n.nspname NOT IN ('pg_catalog', 'information_schema', 'pg_toast', 'dashboard_auth', 'dashboard', 'auth')
                         AND n.nspname NOT LIKE 'pg\\_temp\\_%' AND n.nspname NOT LIKE 'pg\\_toast\\_temp\\_%'
                    ELSE n.nspname = $1 END
         ORDER BY 1, 2",
        &[schema.into()],
        |r| {
            Ok((
                r.get::<String>(1)?.unwrap_or_default(),
                r.get::<String>(2)?.unwrap_or_default(),
                r.get::<String>(3)?.unwrap_or_default(),
                r.get::<i64>(4)?.unwrap_or_default(),
                r.get::<i64>(5)?.unwrap_or_default(),
                r.get::<bool>(6)?.unwrap_or_default(),
                r.get::<Vec<String>>(7)?.unwrap_or_default(),
                r.get::<String>(8)?,
            ))
        },
    );
        TableIterator::new(rows)
    })
}

/// The Tables section's list (issue 30): `list_tables` with each table's
/// owner, RLS state (`on`, `forced`, `off`), policy count, the role the
/// explorer reads it as (`runs_as`) and whether it can be opened
/// (`readable`). In the admin's own view (`owner_view`) every table of every
/// schema but PostgreSQL's and the extension's is listed, without any grant
/// to the login; otherwise (a database role, an impersonation, a named
/// private schema) those the caller may read, as `list_tables`.
#[pg_extern(schema = "dashboard", stable)]
fn table_overview(
    schema: default!(Option<&str>, "NULL"),
) -> TableIterator<
    'static,
    (
        name!(schema, String),
        name!(name, String),
        name!(kind, String),
        name!(row_estimate, i64),
        name!(total_bytes, i64),
        name!(rls, String),
        name!(policies, i32),
        name!(owner, String),
        name!(runs_as, String),
        name!(readable, bool),
        name!(primary_key, Vec<String>),
        name!(comment, Option<String>),
    ),
> {
    gate();
    let admin_view = crate::explorer::owner_view::admin_view();
    crate::runtime::confine::run_untrusted(|| {
        if let Some(s) = schema {
            fluxbase_core::error::check_len("schema", s, 200).or_raise();
        }
        let private = crate::explorer::owner_view::PRIVATE_SQL;
        let sql = format!(
            "SELECT n.nspname::pg_catalog.text, c.relname::pg_catalog.text,
                CASE c.relkind WHEN 'r' THEN 'table' WHEN 'p' THEN 'partitioned table' WHEN 'v' THEN 'view'
                               WHEN 'm' THEN 'materialized view' WHEN 'f' THEN 'foreign table' END,
                GREATEST(c.reltuples, 0)::pg_catalog.int8,
                CASE WHEN c.relkind IN ('r', 'm', 'p') THEN pg_catalog.pg_total_relation_size(c.oid) ELSE 0 END::pg_catalog.int8,
                CASE WHEN c.relforcerowsecurity AND c.relrowsecurity THEN 'forced'
                     WHEN c.relrowsecurity THEN 'on' ELSE 'off' END,
                (SELECT pg_catalog.count(*) FROM pg_catalog.pg_policy p WHERE p.polrelid = c.oid)::pg_catalog.int4,
                pg_catalog.pg_get_userbyid(c.relowner)::pg_catalog.text,
                CASE WHEN v.own THEN CASE WHEN o.rolsuper THEN $3 ELSE o.rolname::pg_catalog.text END
                     ELSE current_user::pg_catalog.text END,
                v.own OR pg_catalog.has_any_column_privilege(c.oid, 'SELECT'),
                COALESCE((SELECT pg_catalog.array_agg(a.attname::pg_catalog.text ORDER BY k.ord)
                          FROM pg_catalog.pg_index i
                          CROSS JOIN LATERAL pg_catalog.unnest(i.indkey::pg_catalog.int2[]) WITH ORDINALITY AS k(attnum, ord)
                          JOIN pg_catalog.pg_attribute a ON a.attrelid = i.indrelid AND a.attnum = k.attnum
                          WHERE i.indrelid = c.oid AND i.indisprimary), '{{}}'::pg_catalog.text[]),
                pg_catalog.obj_description(c.oid, 'pg_class')
         FROM pg_catalog.pg_class c JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
         LEFT JOIN pg_catalog.pg_roles o ON o.oid = c.relowner
         CROSS JOIN LATERAL (SELECT $2 AND NOT {private} AND c.relpersistence <> 't' AS own) v
         WHERE c.relkind IN ('r', 'p', 'v', 'm', 'f')
           AND (v.own OR pg_catalog.has_any_column_privilege(c.oid, 'SELECT'))
           AND CASE WHEN $1::pg_catalog.text IS NULL
                    THEN NOT {private}
                    ELSE n.nspname = $1 END
         ORDER BY 1, 2"
        );
        let rows = pinned_path(|| {
            db::select(&sql, &[schema.into(), admin_view.into(), crate::explorer::owner_view::ROLE.into()], |r| {
                Ok((
                    r.get::<String>(1)?.unwrap_or_default(),
                    r.get::<String>(2)?.unwrap_or_default(),
                    r.get::<String>(3)?.unwrap_or_default(),
                    r.get::<i64>(4)?.unwrap_or_default(),
                    r.get::<i64>(5)?.unwrap_or_default(),
                    r.get::<String>(6)?.unwrap_or_default(),
                    r.get::<i32>(7)?.unwrap_or_default(),
                    r.get::<String>(8)?.unwrap_or_default(),
                    r.get::<String>(9)?.unwrap_or_default(),
                    r.get::<bool>(10)?.unwrap_or_default(),
                    r.get::<Vec<String>>(11)?.unwrap_or_default(),
                    r.get::<String>(12)?,
                ))
            })
        });
        TableIterator::new(rows)
    })
}

#[pg_extern(schema = "dashboard", stable)]
fn describe_table(
    tbl: Option<PgRelation>,
) -> TableIterator<
    'static,
    (
        name!(name, String),
        name!(type, String),
        name!(nullable, bool),
        name!(default, Option<String>),
        name!(primary_key, bool),
        name!(generated, Option<String>),
        name!(foreign_key, Option<String>),
    ),
> {
    reading_table(tbl, |rel| {
        let rows = db::select(
        "SELECT a.attname::pg_catalog.text,
                pg_catalog.format_type(a.atttypid, a.atttypmod),
                NOT a.attnotnull,
                CASE WHEN a.attgenerated = '' THEN pg_catalog.pg_get_expr(d.adbin, d.adrelid)
                     WHEN a.attidentity <> '' THEN NULL END,
                EXISTS (SELECT 1 FROM pg_catalog.pg_index i
                        WHERE i.indrelid = a.attrelid AND i.indisprimary AND a.attnum = ANY (i.indkey)),
                CASE WHEN a.attgenerated = 's' THEN 'stored: ' || pg_catalog.pg_get_expr(d.adbin, d.adrelid)
                     WHEN a.attidentity = 'a' THEN 'identity always'
                     WHEN a.attidentity = 'd' THEN 'identity by default' END,
                (SELECT pg_catalog.string_agg(fc.confrelid::pg_catalog.regclass::pg_catalog.text || '(' || fa.attname || ')', ', ')
                 FROM pg_catalog.pg_constraint fc
                 CROSS JOIN LATERAL pg_catalog.generate_subscripts(fc.conkey, 1) AS s(i)
                 JOIN pg_catalog.pg_attribute fa ON fa.attrelid = fc.confrelid AND fa.attnum = fc.confkey[s.i]
                 WHERE fc.conrelid = a.attrelid AND fc.contype = 'f' AND fc.conkey[s.i] = a.attnum)
         FROM pg_catalog.pg_attribute a
         LEFT JOIN pg_catalog.pg_attrdef d ON d.adrelid = a.attrelid AND d.adnum = a.attnum
         WHERE a.attrelid = $1 AND a.attnum > 0 AND NOT a.attisdropped
         ORDER BY a.attnum",
        &[rel.oid().into()],
        |r| {
            Ok((
                r.get::<String>(1)?.unwrap_or_default(),
                r.get::<String>(2)?.unwrap_or_default(),
                r.get::<bool>(3)?.unwrap_or_default(),
                r.get::<String>(4)?,
                r.get::<bool>(5)?.unwrap_or_default(),
                r.get::<String>(6)?,
                r.get::<String>(7)?,
            ))
        },
    );
        TableIterator::new(rows)
    })
}

/// Indexes of a table (name, definition), for the explorer's table page.
#[pg_extern(schema = "dashboard", stable)]
fn table_indexes(
    tbl: Option<PgRelation>,
) -> TableIterator<'static, (name!(name, String), name!(definition, String), name!(is_primary, bool), name!(is_unique, bool))>
{
    reading_table(tbl, |rel| {
        let rows = db::select(
        "SELECT ic.relname::pg_catalog.text, pg_catalog.pg_get_indexdef(i.indexrelid), i.indisprimary, i.indisunique
         FROM pg_catalog.pg_index i JOIN pg_catalog.pg_class ic ON ic.oid = i.indexrelid
         WHERE i.indrelid = $1 ORDER BY 1",
        &[rel.oid().into()],
        |r| {
            Ok((
                r.get::<String>(1)?.unwrap_or_default(),
                r.get::<String>(2)?.unwrap_or_default(),
                r.get::<bool>(3)?.unwrap_or_default(),
                r.get::<bool>(4)?.unwrap_or_default(),
            ))
        },
    );
        TableIterator::new(rows)
    })
}

/// RLS policies of a table.
#[pg_extern(schema = "dashboard", stable)]
fn table_policies(
    tbl: Option<PgRelation>,
) -> TableIterator<
    'static,
    (
        name!(name, String),
        name!(command, String),
        name!(permissive, bool),
        name!(roles, Vec<String>),
        name!(using_expr, Option<String>),
        name!(check_expr, Option<String>),
    ),
> {
    reading_table(tbl, |rel| {
        let rows = db::select(
            "SELECT p.polname::pg_catalog.text,
                CASE p.polcmd WHEN 'r' THEN 'SELECT' WHEN 'a' THEN 'INSERT' WHEN 'w' THEN 'UPDATE'
                              WHEN 'd' THEN 'DELETE' ELSE 'ALL' END,
                p.polpermissive,
                ARRAY(SELECT CASE WHEN r = 0 THEN 'public' ELSE pg_catalog.pg_get_userbyid(r)::pg_catalog.text END
                      FROM pg_catalog.unnest(p.polroles) AS r),
                pg_catalog.pg_get_expr(p.polqual, p.polrelid),
                pg_catalog.pg_get_expr(p.polwithcheck, p.polrelid)
         FROM pg_catalog.pg_policy p WHERE p.polrelid = $1 ORDER BY 1",
            &[rel.oid().into()],
            |r| {
                Ok((
                    r.get::<String>(1)?.unwrap_or_default(),
                    r.get::<String>(2)?.unwrap_or_default(),
                    r.get::<bool>(3)?.unwrap_or_default(),
                    r.get::<Vec<String>>(4)?.unwrap_or_default(),
                    r.get::<String>(5)?,
                    r.get::<String>(6)?,
                ))
            },
        );
        TableIterator::new(rows)
    })
}

/// The labels of every enum column of a table (also a domain over an enum, at
/// any depth), in the enum's order: the dashboard's cell editor and insert
/// form offer them as a choice. The type is followed by OID through pg_type
/// and pg_enum; no name is read back into SQL.
#[pg_extern(schema = "dashboard", stable)]
fn column_choices(
    tbl: Option<PgRelation>,
) -> TableIterator<'static, (name!(column_name, String), name!(labels, Vec<String>))> {
    reading_table(tbl, |rel| {
        // (search_path pinned: the query's operators are pg_catalog's)
        let rows = pinned_path(|| db::select(
            "SELECT a.attname::pg_catalog.text,
                    ARRAY(SELECT e.enumlabel::pg_catalog.text FROM pg_catalog.pg_enum e
                          WHERE e.enumtypid = b.oid ORDER BY e.enumsortorder)
             FROM pg_catalog.pg_attribute a
             CROSS JOIN LATERAL (
                 WITH RECURSIVE chain(oid, typtype, typbasetype, depth) AS (
                     SELECT t.oid, t.typtype, t.typbasetype, 0 FROM pg_catalog.pg_type t WHERE t.oid = a.atttypid
                     UNION ALL
                     SELECT t.oid, t.typtype, t.typbasetype, c.depth + 1
                     FROM chain c JOIN pg_catalog.pg_type t ON t.oid = c.typbasetype
                     WHERE c.typtype = 'd' AND c.depth < 32)
                 SELECT chain.oid FROM chain WHERE chain.typtype = 'e') b
             WHERE a.attrelid = $1 AND a.attnum > 0 AND NOT a.attisdropped
             ORDER BY a.attnum",
            &[rel.oid().into()],
            |r| Ok((r.get::<String>(1)?.unwrap_or_default(), r.get::<Vec<String>>(2)?.unwrap_or_default())),
        ));
        TableIterator::new(rows)
    })
}

#[pg_extern(schema = "dashboard", stable)]
fn browse(
    tbl: Option<PgRelation>,
    filters: default!(Option<JsonArg>, "'[]'"),
    sort: default!(Option<JsonArg>, "'[]'"),
    search: default!(Option<&str>, "NULL"),
    page_size: default!(Option<i32>, 50),
    after: default!(Option<JsonArg>, "NULL"),
) -> RawJsonb {
    let [filters, sort, after] = view_args([(filters, "filters"), (sort, "sort"), (after, "after")]);
    reading_view(tbl, |t| {
        // Checked before the table is read (plan_browse checks it again).
        ex::check_page_size(page_size).or_raise();
        let plan = ex::plan_browse(t, filters.as_ref(), sort.as_ref(), search, page_size, after.as_ref()).or_raise();
        let stmt = kept_plan(&plan.sql, &text_types(plan.params.0.len()));
        // The statement builds the whole answer; hand its jsonb datum straight
        // back (copied out of SPI's memory) rather than parsing and re-encoding it.
        let datum = Spi::connect(|c| {
            let tt = c.select(&*stmt, Some(1), &args(&plan.params))?.first();
            Ok::<_, pgrx::spi::SpiError>(
                tt.get_datum_by_ordinal(1)?
                    .map(|d| unsafe { pg_sys::SPI_datumTransfer(d, false, -1) }),
            )
        })
        .or_raise();
        match datum {
            Some(d) => RawJsonb(d),
            None => raise(FbError::invalid("browse produced no result")),
        }
    })
}

/// A jsonb datum already built by Postgres, returned as it is.
pub struct RawJsonb(pg_sys::Datum);

impl IntoDatum for RawJsonb {
    fn into_datum(self) -> Option<pg_sys::Datum> {
        Some(self.0)
    }
    fn type_oid() -> pg_sys::Oid {
        pg_sys::JSONBOID
    }
}

// SAFETY: the datum is a jsonb varlena in the function's memory context
// (SPI_datumTransfer put it there), which is what Postgres expects back.
unsafe impl pgrx::callconv::BoxRet for RawJsonb {
    unsafe fn box_into<'fcx>(self, fcinfo: &mut pgrx::callconv::FcInfo<'fcx>) -> pgrx::datum::Datum<'fcx> {
        unsafe { fcinfo.return_raw_datum(self.0) }
    }
}

pgrx::impl_sql_translatable!(RawJsonb, "jsonb");

// ------------------------------------------------------------ editing

/// Check every value against its column's type before the edit runs, so a bad
/// one fails naming its column (22P02) instead of a bare "invalid input
/// syntax". dashboard._check_values tries each cast in a subtransaction.
fn check_values(t: &Table, plan: &EditPlan) {
    if plan.checks.is_empty() {
        return;
    }
    let vals: Vec<Option<String>> = plan.checks.iter().map(|(_, v)| Some(v.clone())).collect();
    let oids: Vec<i64> = plan.checks.iter().map(|(i, _)| t.columns[*i].type_oid).collect();
    let mods: Vec<i32> = plan.checks.iter().map(|(i, _)| t.columns[*i].typmod).collect();
    // (as the caller in the admin's own view: the owner may not execute the
    // extension's helper; the casts run restricted either way)
    let bad = crate::explorer::owner_view::as_caller(|| {
        db::select(
            "SELECT bad, message FROM dashboard._check_values($1, $2::pg_catalog.int8[]::pg_catalog.oid[], $3)",
            &[vals.into(), oids.into(), mods.into()],
            |r| Ok((r.get::<i32>(1)?, r.get::<String>(2)?)),
        )
    });
    if let Some((Some(i), msg)) = bad.into_iter().next() {
        let (col, v) = &plan.checks[(i - 1) as usize];
        raise(ex::bad_value(t, *col, v, &msg.unwrap_or_default()));
    }
}

/// The role the edit ran as (the app user's role inside an impersonation),
/// recorded in the audit log beside the actor.
fn current_role() -> String {
    db::one::<String>("SELECT current_user::pg_catalog.text", &[]).unwrap_or_default()
}

fn rows_of(sql: &str, params: &ex::Params) -> Vec<Value> {
    db::update(sql, &args(params), |r| {
        Ok(r.get::<JsonArg>(1)?
            .map(|j| j.into_value("a row"))
            .unwrap_or(Value::Null))
    })
}

fn json_array(what: &str, v: Option<JsonArg>) -> Vec<Value> {
    match v.map(|j| j.into_value(what)) {
        Some(Value::Array(a)) => a,
        None | Some(Value::Null) => raise(FbError::new(Code::NullValue, format!("{what} is required"))),
        Some(_) => raise(FbError::invalid(format!("{what} must be a JSON array"))),
    }
}

/// Run an update plan: lock and read the old rows, write, audit both.
fn run_update(t: &Table, plan: &EditPlan, action: &'static str) -> (Vec<Value>, Vec<Value>) {
    check_values(t, plan);
    let old = plan
        .lock
        .as_deref()
        .map(|l| rows_of(l, &plan.params))
        .unwrap_or_default();
    let new = rows_of(&plan.write, &plan.params);
    audit::record(
        Event::new(action, "table", t.display())
            .details(json!({"table": t.display(), "as_role": current_role(), "old": old, "new": new})),
    );
    (old, new)
}

#[pg_extern(schema = "dashboard")]
fn update_row(tbl: Option<PgRelation>, pk: Option<JsonArg>, changes: Option<JsonArg>) -> JsonB {
    actor::writer("editing rows");
    let rel = required_rel(tbl);
    on_table(&rel, || {
        let t = load(&rel);
        let pk = pk
            .map(|j| j.into_value("pk"))
            .unwrap_or_else(|| raise(FbError::new(Code::NullValue, "pk is required")));
        let changes = changes
            .map(|j| j.into_value("changes"))
            .unwrap_or_else(|| raise(FbError::new(Code::NullValue, "changes is required")));
        let plan = ex::plan_update(&t, std::slice::from_ref(&pk), &changes).or_raise();
        let (_, new) = run_update(&t, &plan, "explorer.update_row");
        match new.into_iter().next() {
            Some(row) => JsonB(row),
            None => raise(FbError::not_found(format!(
                "no row of {} has that primary key (or it is not visible to you)",
                t.display()
            ))),
        }
    })
}

#[pg_extern(schema = "dashboard")]
fn update_rows(tbl: Option<PgRelation>, pks: Option<JsonArg>, changes: Option<JsonArg>) -> i32 {
    actor::writer("editing rows");
    let rel = required_rel(tbl);
    on_table(&rel, || {
        let t = load(&rel);
        let changes = changes
            .map(|j| j.into_value("changes"))
            .unwrap_or_else(|| raise(FbError::new(Code::NullValue, "changes is required")));
        let plan = ex::plan_update(&t, &json_array("pks", pks), &changes).or_raise();
        let (_, new) = run_update(&t, &plan, "explorer.update_rows");
        new.len() as i32
    })
}

#[pg_extern(schema = "dashboard")]
fn insert_rows(tbl: Option<PgRelation>, rows: Option<JsonArg>) -> i32 {
    actor::writer("inserting rows");
    let rel = required_rel(tbl);
    on_table(&rel, || {
        let t = load(&rel);
        let plan = ex::plan_insert(&t, &json_array("rows", rows)).or_raise();
        let (_, new) = run_update(&t, &plan, "explorer.insert_rows");
        new.len() as i32
    })
}

#[pg_extern(schema = "dashboard")]
fn delete_rows(tbl: Option<PgRelation>, pks: Option<JsonArg>) -> i32 {
    actor::writer("deleting rows");
    let rel = required_rel(tbl);
    on_table(&rel, || {
        let t = load(&rel);
        let plan = ex::plan_delete(&t, &json_array("pks", pks)).or_raise();
        check_values(&t, &plan);
        let old = rows_of(&plan.write, &plan.params);
        audit::record(
            Event::new("explorer.delete_rows", "table", t.display())
                .details(json!({"table": t.display(), "as_role": current_role(), "old": old, "new": []})),
        );
        old.len() as i32
    })
}

// ------------------------------------------------------------ watching

const WATCH_TRIGGER: &str = "fluxbase_watch";

/// The caller must be allowed to put triggers on the table (owner or TRIGGER
/// privilege); the trigger itself is then created as the extension owner,
/// because dashboard._notify_change is internal (no caller has EXECUTE on it).
fn may_trigger(rel: &PgRelation, t: &Table) {
    // In the admin's own view the admin acts as the owner, who may.
    let ok = crate::explorer::owner_view::as_owner_now() || db::one::<bool>(
        "SELECT pg_catalog.has_table_privilege($1::pg_catalog.oid, 'TRIGGER')",
        &[rel.oid().into()],
    )
    .unwrap_or(false);
    if !ok {
        raise(FbError::denied(format!(
            "permission denied: watching {} needs the TRIGGER privilege on it",
            t.display()
        )));
    }
    if !matches!(t.kind, 'r' | 'p') {
        raise(FbError::invalid(format!(
            "only tables can be watched; {} is not one",
            t.display()
        )));
    }
}

/// Put the watch trigger on (or take it off) the table, as the extension owner.
fn set_watch(tbl: Option<PgRelation>, on: bool) {
    actor::writer("watching tables");
    let rel = required_rel(tbl);
    on_table(&rel, || {
        let t = load(&rel);
        may_trigger(&rel, &t);
        let (trigger, table) = (ex::quote_ident(WATCH_TRIGGER), t.qualified());
        // One notification per statement, without keys or values (sql/explorer.sql).
        let sql = if on {
            format!("CREATE OR REPLACE TRIGGER {trigger} AFTER INSERT OR UPDATE OR DELETE ON {table} FOR EACH STATEMENT EXECUTE FUNCTION dashboard._notify_change()")
        } else {
            format!("DROP TRIGGER IF EXISTS {trigger} ON {table}")
        };
        db::as_extension_owner(|| db::execute(&sql, &[]));
        audit::record(Event::new(if on { "explorer.watch" } else { "explorer.unwatch" }, "table", t.display()));
    })
}

#[pg_extern(schema = "dashboard")]
fn watch_table(tbl: Option<PgRelation>) {
    set_watch(tbl, true)
}

#[pg_extern(schema = "dashboard")]
fn unwatch_table(tbl: Option<PgRelation>) {
    set_watch(tbl, false)
}
