//! The security advisor (issue 32, item 3): `dashboard.advisories()`.
//!
//! Every lint is decided from the catalogs and the server's own parse trees,
//! never from a regex over SQL text:
//! * sql/advisor_lints.sql: the catalog lints (privileges through
//!   has_*_privilege, views' dependencies through pg_rewrite/pg_depend,
//!   pg_proc.prosecdef/proconfig, pg_index/pg_constraint);
//! * here: the policy lints, from pg_policy's node trees (`stringToNode`):
//!   `policy_always_true` folds the expression with the planner's
//!   `eval_const_expressions` and asks whether it became the constant true;
//!   `policy_uses_user_metadata` looks for the constants `user_metadata` /
//!   `raw_user_meta_data` (e.g. `auth.jwt() -> 'user_metadata'`) and for a
//!   recorded dependency on the column auth.users.raw_user_meta_data;
//!   `policy_column_unindexed` finds `column = auth.uid()` (or `(SELECT
//!   auth.uid())`) comparisons and asks pg_index whether an index leads with
//!   that column.
//!
//! Catalog reads only (nothing user-defined runs: no function of anyone is
//! called), with search_path pinned. Any admin may call it (viewers too).

use std::ffi::c_void;

use pgrx::pg_sys::{self, Node, NodeTag};
use pgrx::prelude::*;
use pgrx::PgList;

use crate::runtime::actor;
use crate::runtime::db;
use crate::users::impersonation::pinned_path;

const CATALOG_LINTS: &str = include_str!("../../sql/advisor_lints.sql");

const POLICIES_SQL: &str = "
WITH roles AS (SELECT r.oid FROM pg_catalog.pg_roles r WHERE r.rolname IN ('anon', 'authenticated'))
SELECT n.nspname::pg_catalog.text, c.relname::pg_catalog.text, p.polname::pg_catalog.text, c.oid,
       p.polpermissive,
       (0::pg_catalog.oid OPERATOR(pg_catalog.=) ANY (p.polroles)
        OR EXISTS (SELECT FROM pg_catalog.unnest(p.polroles) AS x CROSS JOIN roles r
                   WHERE x OPERATOR(pg_catalog.<>) 0::pg_catalog.oid AND pg_catalog.pg_has_role(r.oid, x, 'USAGE'))),
       p.polqual::pg_catalog.text, p.polwithcheck::pg_catalog.text,
       EXISTS (SELECT FROM pg_catalog.pg_depend d JOIN pg_catalog.pg_attribute a
                 ON a.attrelid = d.refobjid AND a.attnum = d.refobjsubid
               WHERE d.classid = 'pg_catalog.pg_policy'::pg_catalog.regclass AND d.objid = p.oid
                 AND d.refobjid = pg_catalog.to_regclass('auth.users') AND a.attname = 'raw_user_meta_data'),
       ARRAY(SELECT DISTINCT i.indkey[0] FROM pg_catalog.pg_index i WHERE i.indrelid = c.oid)::pg_catalog.int2[]
FROM pg_catalog.pg_policy p
JOIN pg_catalog.pg_class c ON c.oid = p.polrelid
JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
WHERE n.nspname NOT IN ('pg_catalog', 'information_schema', 'dashboard', 'dashboard_auth')
  AND NOT EXISTS (SELECT FROM pg_catalog.pg_depend d
                  WHERE d.classid = 'pg_catalog.pg_class'::pg_catalog.regclass AND d.objid = c.oid AND d.deptype = 'e')";

type Finding = (String, String, String, String, String, String);

/// What the walk over one expression found.
struct Walk {
    uid_fn: pg_sys::Oid,
    /// Query nesting: comparisons count only at the policy's own level.
    depth: u32,
    metadata: bool,
    uid_columns: Vec<i16>,
}

unsafe fn strip(mut node: *mut Node) -> *mut Node {
    unsafe {
        loop {
            if node.is_null() {
                return node;
            }
            match (*node).type_ {
                NodeTag::T_RelabelType => node = (*(node as *mut pg_sys::RelabelType)).arg as *mut Node,
                NodeTag::T_CoerceViaIO => node = (*(node as *mut pg_sys::CoerceViaIO)).arg as *mut Node,
                _ => return node,
            }
        }
    }
}

/// `auth.uid()`, or `(SELECT auth.uid())`.
unsafe fn is_uid(node: *mut Node, uid_fn: pg_sys::Oid) -> bool {
    unsafe {
        let node = strip(node);
        if node.is_null() || uid_fn == pg_sys::InvalidOid {
            return false;
        }
        match (*node).type_ {
            NodeTag::T_FuncExpr => (*(node as *mut pg_sys::FuncExpr)).funcid == uid_fn,
            NodeTag::T_SubLink => {
                let s = node as *mut pg_sys::SubLink;
                if (*s).subLinkType != pg_sys::SubLinkType::EXPR_SUBLINK || (*s).subselect.is_null() {
                    return false;
                }
                let q = (*s).subselect as *mut pg_sys::Query;
                let tl = PgList::<pg_sys::TargetEntry>::from_pg((*q).targetList);
                if !(*q).jointree.is_null() && !(*(*q).jointree).fromlist.is_null() {
                    return false;
                }
                tl.len() == 1 && tl.get_ptr(0).map(|te| is_uid((*te).expr as *mut Node, uid_fn)).unwrap_or(false)
            }
            _ => false,
        }
    }
}

unsafe fn const_text(c: *mut pg_sys::Const) -> Option<String> {
    unsafe {
        if (*c).constisnull {
            return None;
        }
        let t = (*c).consttype;
        if t != pg_sys::TEXTOID && t != pg_sys::TEXTARRAYOID && t != pg_sys::UNKNOWNOID && t != pg_sys::JSONPATHOID {
            return None;
        }
        let mut out = pg_sys::InvalidOid;
        let mut varlena = false;
        pg_sys::getTypeOutputInfo(t, &mut out, &mut varlena);
        let s = pg_sys::OidOutputFunctionCall(out, (*c).constvalue);
        Some(std::ffi::CStr::from_ptr(s).to_string_lossy().into_owned())
    }
}

#[pg_guard]
unsafe extern "C-unwind" fn walker(node: *mut Node, ctx: *mut c_void) -> bool {
    unsafe {
        if node.is_null() {
            return false;
        }
        let w = &mut *(ctx as *mut Walk);
        match (*node).type_ {
            NodeTag::T_Const => {
                if let Some(s) = const_text(node as *mut pg_sys::Const) {
                    let t = (*(node as *mut pg_sys::Const)).consttype;
                    let hit = |k: &str| if t == pg_sys::TEXTOID || t == pg_sys::UNKNOWNOID { s == k } else { s.contains(k) };
                    if hit("user_metadata") || hit("raw_user_meta_data") {
                        w.metadata = true;
                    }
                }
                return false;
            }
            NodeTag::T_OpExpr if w.depth == 0 => {
                let args = PgList::<Node>::from_pg((*(node as *mut pg_sys::OpExpr)).args);
                if args.len() == 2 {
                    let (a, b) = (args.get_ptr(0).unwrap_or(std::ptr::null_mut()), args.get_ptr(1).unwrap_or(std::ptr::null_mut()));
                    for (x, y) in [(a, b), (b, a)] {
                        let x = strip(x);
                        if !x.is_null() && (*x).type_ == NodeTag::T_Var && is_uid(y, w.uid_fn) {
                            let v = x as *mut pg_sys::Var;
                            if (*v).varlevelsup == 0 && (*v).varattno > 0 {
                                w.uid_columns.push((*v).varattno);
                            }
                        }
                    }
                }
            }
            NodeTag::T_Query => {
                w.depth += 1;
                let r = pg_sys::query_tree_walker(node as *mut pg_sys::Query, Some(walker), ctx, 0);
                let w = &mut *(ctx as *mut Walk);
                w.depth -= 1;
                return r;
            }
            _ => {}
        }
        pg_sys::expression_tree_walker(node, Some(walker), ctx)
    }
}

/// Whether the expression folds to the constant true.
unsafe fn always_true(node: *mut Node) -> bool {
    unsafe {
        let folded = pg_sys::eval_const_expressions(std::ptr::null_mut(), node);
        if folded.is_null() || (*folded).type_ != NodeTag::T_Const {
            return false;
        }
        let c = folded as *mut pg_sys::Const;
        (*c).consttype == pg_sys::BOOLOID && !(*c).constisnull && bool::from_datum((*c).constvalue, false).unwrap_or(false)
    }
}

fn parse_tree(text: &str) -> *mut Node {
    let c = std::ffi::CString::new(text).expect("node trees hold no NUL");
    unsafe { pg_sys::stringToNode(c.as_ptr()) as *mut Node }
}

fn attname(rel: pg_sys::Oid, attnum: i16) -> String {
    unsafe {
        let p = pg_sys::get_attname(rel, attnum, true);
        if p.is_null() {
            format!("#{attnum}")
        } else {
            std::ffi::CStr::from_ptr(p).to_string_lossy().into_owned()
        }
    }
}

fn q(s: &str) -> String {
    fluxbase_core::explorer::quote_ident(s)
}

fn policy_findings() -> Vec<Finding> {
    let uid_fn = db::one::<pg_sys::Oid>("SELECT pg_catalog.to_regprocedure('auth.uid()')::pg_catalog.oid", &[])
        .unwrap_or(pg_sys::InvalidOid);
    let rows = db::select(POLICIES_SQL, &[], |r| {
        Ok((
            r.get::<String>(1)?.unwrap_or_default(),
            r.get::<String>(2)?.unwrap_or_default(),
            r.get::<String>(3)?.unwrap_or_default(),
            r.get::<pg_sys::Oid>(4)?.unwrap_or(pg_sys::InvalidOid),
            r.get::<bool>(5)?.unwrap_or(true),
            r.get::<bool>(6)?.unwrap_or(false),
            r.get::<String>(7)?,
            r.get::<String>(8)?,
            r.get::<bool>(9)?.unwrap_or(false),
            r.get::<Vec<i16>>(10)?.unwrap_or_default(),
        ))
    });
    let mut out = Vec::new();
    for (schema, table, policy, rel, permissive, exposed, qual, check, meta_column, leading) in rows {
        let on = format!("{}.{}", q(&schema), q(&table));
        let mut w = Walk { uid_fn, depth: 0, metadata: meta_column, uid_columns: Vec::new() };
        let mut constant_true = Vec::new();
        for (what, tree) in [("USING", &qual), ("WITH CHECK", &check)] {
            let Some(tree) = tree else { continue };
            let node = parse_tree(tree);
            unsafe { walker(node, &mut w as *mut Walk as *mut c_void) };
            // (a fresh copy: eval_const_expressions may scribble on its input)
            if permissive && exposed && unsafe { always_true(parse_tree(tree)) } {
                constant_true.push(what);
            }
        }
        for what in constant_true {
            out.push((
                "policy_always_true".into(),
                "warn".into(),
                schema.clone(),
                table.clone(),
                format!("permissive policy {} has {what} that is always true for anon/authenticated: it lets every row through", q(&policy)),
                format!("ALTER POLICY {} ON {on} {what} (<a condition on the row, e.g. user_id = (SELECT auth.uid())>);", q(&policy)),
            ));
        }
        if w.metadata {
            out.push((
                "policy_uses_user_metadata".into(),
                "error".into(),
                schema.clone(),
                table.clone(),
                format!("policy {} reads user_metadata (raw_user_meta_data), which every user can edit about themselves", q(&policy)),
                format!("ALTER POLICY {} ON {on} USING (<the same check on auth.jwt() -> 'app_metadata'>);  -- app_metadata is set by the server only", q(&policy)),
            ));
        }
        w.uid_columns.sort_unstable();
        w.uid_columns.dedup();
        for col in w.uid_columns.into_iter().filter(|c| !leading.contains(c)) {
            let name = attname(rel, col);
            out.push((
                "policy_column_unindexed".into(),
                "info".into(),
                schema.clone(),
                table.clone(),
                format!("policy {} compares column {} with auth.uid() and no index leads with it: every query scans the table", q(&policy), q(&name)),
                format!("CREATE INDEX ON {on} ({});", q(&name)),
            ));
        }
    }
    out
}

fn level_rank(l: &str) -> u8 {
    match l {
        "error" => 0,
        "warn" => 1,
        _ => 2,
    }
}

#[pg_extern(schema = "dashboard")]
fn advisories() -> TableIterator<
    'static,
    (
        name!(lint, String),
        name!(level, String),
        name!(schema_name, String),
        name!(object_name, String),
        name!(detail, String),
        name!(remedy, String),
    ),
> {
    actor::reader();
    let mut all: Vec<Finding> = pinned_path(|| {
        let mut v = db::select(CATALOG_LINTS, &[], |r| {
            Ok((
                r.get::<String>(1)?.unwrap_or_default(),
                r.get::<String>(2)?.unwrap_or_default(),
                r.get::<String>(3)?.unwrap_or_default(),
                r.get::<String>(4)?.unwrap_or_default(),
                r.get::<String>(5)?.unwrap_or_default(),
                r.get::<String>(6)?.unwrap_or_default(),
            ))
        });
        v.extend(policy_findings());
        v
    });
    all.sort_by(|a, b| (level_rank(&a.1), &a.0, &a.2, &a.3, &a.4).cmp(&(level_rank(&b.1), &b.0, &b.2, &b.3, &b.4)));
    TableIterator::new(all)
}
