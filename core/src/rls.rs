//! Row-level security, explained (issue 32): the verdict of
//! `dashboard.explain_access` from what the extension measured — privileges,
//! whether RLS applies, and each policy's expressions evaluated on the row as
//! the principal. The rules are PostgreSQL's (src/backend/rewrite/rowsecurity.c):
//!
//! * the policies of a command are its own and the `ALL` ones, for the roles
//!   the principal has the privileges of (`PUBLIC` covers everyone);
//! * existing rows (SELECT, UPDATE, DELETE) pass when at least one permissive
//!   policy's USING is true and every restrictive policy's USING is true; a
//!   policy without USING takes no part; no permissive policy = no row;
//! * UPDATE and DELETE with a WHERE on the key read the key columns, which
//!   needs SELECT rights, so the SELECT policies filter the old row too and,
//!   for UPDATE, must also let the new row through (else 42501);
//! * new rows (INSERT, UPDATE) are checked with each policy's WITH CHECK, or
//!   its USING when it has none: a failure is an error (42501), not 0 rows.
//!
//! A NULL result counts as false, as in a WHERE clause.

use crate::explorer::{json_to_text, op, quote_ident, Params};
use crate::{FbError, FbResult};
use serde_json::{json, Map, Value};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Command {
    Select,
    Insert,
    Update,
    Delete,
}

impl Command {
    pub fn parse(s: &str) -> FbResult<Command> {
        match s.trim().to_ascii_lowercase().as_str() {
            "select" => Ok(Command::Select),
            "insert" => Ok(Command::Insert),
            "update" => Ok(Command::Update),
            "delete" => Ok(Command::Delete),
            _ => Err(FbError::invalid("command must be one of select, insert, update, delete")),
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Command::Select => "select",
            Command::Insert => "insert",
            Command::Update => "update",
            Command::Delete => "delete",
        }
    }

    /// pg_policy.polcmd of the policies written for this command.
    pub fn polcmd(self) -> char {
        match self {
            Command::Select => 'r',
            Command::Insert => 'a',
            Command::Update => 'w',
            Command::Delete => 'd',
        }
    }

    /// Whether the row must exist (the command addresses it by key).
    pub fn reads_row(self) -> bool {
        self != Command::Insert
    }

    /// Whether new rows are checked (WITH CHECK).
    pub fn writes_row(self) -> bool {
        matches!(self, Command::Insert | Command::Update)
    }
}

/// pg_policy.polcmd as the word CREATE POLICY uses.
pub fn polcmd_name(c: char) -> &'static str {
    match c {
        'r' => "select",
        'a' => "insert",
        'w' => "update",
        'd' => "delete",
        _ => "all",
    }
}

/// What an expression gave on a row: `Some(Ok(Some(b)))` a value,
/// `Some(Ok(None))` NULL, `Some(Err(msg))` an error, `None` not evaluated.
pub type Eval = Option<Result<Option<bool>, String>>;

pub fn eval_json(e: &Eval) -> Value {
    match e {
        None => Value::Null,
        Some(Ok(Some(b))) => json!(b),
        Some(Ok(None)) => json!("null"),
        Some(Err(_)) => json!("error"),
    }
}

fn passes(e: &Eval) -> bool {
    matches!(e, Some(Ok(Some(true))))
}

#[derive(Debug, Clone, PartialEq)]
pub struct Policy {
    pub name: String,
    /// pg_policy.polcmd: r a w d or *.
    pub cmd: char,
    pub permissive: bool,
    pub roles: Vec<String>,
    /// Its roles cover the principal (has_privs_of_role, or PUBLIC).
    pub for_role: bool,
    pub has_using: bool,
    pub has_check: bool,
    /// USING on the existing row.
    pub using: Eval,
    /// WITH CHECK (or USING when it has none) on the new row.
    pub with_check: Eval,
    /// USING on the new row (the SELECT policies' check of an UPDATE's new row).
    pub using_new: Eval,
}

impl Policy {
    fn covers(&self, cmd: Command) -> bool {
        self.cmd == '*' || self.cmd == cmd.polcmd()
    }

    fn applies_to(&self, cmd: Command) -> bool {
        self.for_role && self.covers(cmd)
    }

    /// Whether it takes part in `cmd` for this principal (directly, or as a
    /// SELECT policy an UPDATE/DELETE by key also needs).
    pub fn applies(&self, cmd: Command) -> bool {
        self.applies_to(cmd) || (matches!(cmd, Command::Update | Command::Delete) && self.applies_to(Command::Select))
    }

    pub fn first_error(&self) -> Option<&str> {
        [&self.using, &self.with_check, &self.using_new].into_iter().find_map(|e| match e {
            Some(Err(m)) => Some(m.as_str()),
            _ => None,
        })
    }
}

/// How RLS stands for this principal on this table.
#[derive(Debug, Clone, PartialEq)]
pub struct RlsState {
    pub enabled: bool,
    pub forced: bool,
    /// BYPASSRLS (superusers included).
    pub bypassrls: bool,
    /// The principal has the privileges of the table's owner.
    pub owner: bool,
}

impl RlsState {
    pub fn label(&self) -> &'static str {
        match (self.enabled, self.forced) {
            (false, _) => "off",
            (true, false) => "on",
            (true, true) => "forced",
        }
    }

    /// Why the policies do not apply, when they don't.
    pub fn skipped_because(&self) -> Option<&'static str> {
        if !self.enabled {
            Some("rls off")
        } else if self.bypassrls {
            Some("bypassrls")
        } else if self.owner && !self.forced {
            Some("table owner")
        } else {
            None
        }
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct Verdict {
    pub allowed: bool,
    pub decided_by: Vec<String>,
    /// What the real statement does: `found`, `not found`, `1 row`, `0 rows`,
    /// `inserted`, `42501` (refused), or `error` (a policy expression fails).
    pub outcome: &'static str,
}

fn denied(cmd: Command, why: Vec<String>) -> Verdict {
    Verdict { allowed: false, decided_by: why, outcome: if cmd == Command::Select { "not found" } else { "0 rows" } }
}

fn refused(why: Vec<String>) -> Verdict {
    Verdict { allowed: false, decided_by: why, outcome: "42501" }
}

fn success(cmd: Command, why: Vec<String>) -> Verdict {
    let outcome = match cmd {
        Command::Select => "found",
        Command::Insert => "inserted",
        _ => "1 row",
    };
    Verdict { allowed: true, decided_by: why, outcome }
}

/// One group of policies (a command's, or the SELECT ones an UPDATE also
/// needs) over one expression: Ok(names of the permissive ones that let it
/// through) or Err(why not). `pick` gives the expression's result and whether
/// the policy has that expression at all.
fn group(
    policies: &[Policy],
    cmd: Command,
    pick: impl Fn(&Policy) -> (bool, &Eval),
    suffix: &str,
) -> Result<Vec<String>, Vec<String>> {
    let mut any_permissive = false;
    let mut allowed_by = Vec::new();
    for p in policies.iter().filter(|p| p.applies_to(cmd) && p.permissive) {
        let (has, e) = pick(p);
        if has {
            any_permissive = true;
            if passes(e) {
                allowed_by.push(p.name.clone());
            }
        }
    }
    let mut failed = Vec::new();
    let mut restrictive = policies.iter().filter(|p| p.applies_to(cmd) && !p.permissive).collect::<Vec<_>>();
    restrictive.sort_by(|a, b| a.name.cmp(&b.name));
    for p in restrictive {
        let (has, e) = pick(p);
        if has && !passes(e) {
            failed.push(format!("restrictive: {}{suffix}", p.name));
        }
    }
    if allowed_by.is_empty() {
        let why = if any_permissive { "no permissive policy allows it" } else { "no permissive policy" };
        let mut v = vec![format!("{why}{suffix}")];
        v.extend(failed);
        return Err(v);
    }
    if !failed.is_empty() {
        return Err(failed);
    }
    Ok(allowed_by)
}

/// The verdict. `missing` lists the privileges the principal lacks (each
/// already worded `no privilege: ...`); `row_exists` whether the key found a row.
pub fn decide(cmd: Command, rls: &RlsState, missing: &[String], row_exists: bool, policies: &[Policy]) -> Verdict {
    if !missing.is_empty() {
        return refused(missing.to_vec());
    }
    if cmd.reads_row() && !row_exists {
        return denied(cmd, vec!["no row has this key".into()]);
    }
    if let Some(why) = rls.skipped_because() {
        return success(cmd, vec![why.into()]);
    }
    // A policy the statement uses that fails to evaluate makes it fail.
    let errors: Vec<String> = policies
        .iter()
        .filter(|p| p.applies(cmd))
        .filter_map(|p| p.first_error().map(|_| format!("error in policy: {}", p.name)))
        .collect();
    if !errors.is_empty() {
        return Verdict { allowed: false, decided_by: errors, outcome: "error" };
    }
    let mut by: Vec<String> = Vec::new();
    if cmd.reads_row() {
        let mut groups = vec![(cmd, "")];
        if cmd != Command::Select {
            groups.push((Command::Select, " (select)"));
        }
        for (g, suffix) in groups {
            match group(policies, g, |p| (p.has_using, &p.using), suffix) {
                Ok(names) => by.extend(names.into_iter().map(|n| if suffix.is_empty() { n } else { format!("{n}{suffix}") })),
                Err(why) => return denied(cmd, why),
            }
        }
    }
    if cmd.writes_row() {
        match group(policies, cmd, |p| (p.has_using || p.has_check, &p.with_check), " (with check)") {
            Ok(names) => by.extend(names.into_iter().map(|n| format!("{n} (with check)"))),
            Err(why) => return refused(why),
        }
        if cmd == Command::Update {
            if let Err(why) = group(policies, Command::Select, |p| (p.has_using, &p.using_new), " (new row, select)") {
                return refused(why);
            }
        }
    }
    by.dedup();
    success(cmd, by)
}

/// The privileges a command by key needs: (privilege, column) pairs, column
/// None for the table itself. SELECT on the key columns (the WHERE reads
/// them), UPDATE on the columns set (the key columns when none are given),
/// INSERT on the columns given, DELETE on the table.
pub fn needed_privileges(cmd: Command, key_cols: &[String], new_cols: &[String]) -> Vec<(&'static str, Option<String>)> {
    let mut v: Vec<(&'static str, Option<String>)> = Vec::new();
    if cmd.reads_row() {
        v.extend(key_cols.iter().map(|c| ("SELECT", Some(c.clone()))));
    }
    match cmd {
        Command::Select => {}
        Command::Delete => v.push(("DELETE", None)),
        Command::Update => {
            let cols = if new_cols.is_empty() { key_cols } else { new_cols };
            v.extend(cols.iter().map(|c| ("UPDATE", Some(c.clone()))));
        }
        Command::Insert => {
            if new_cols.is_empty() {
                v.push(("INSERT", None));
            } else {
                v.extend(new_cols.iter().map(|c| ("INSERT", Some(c.clone()))));
            }
        }
    }
    v
}

pub fn missing_privilege(privilege: &str, column: Option<&str>) -> String {
    match column {
        Some(c) => format!("no privilege: {privilege} on column {c}"),
        None => format!("no privilege: {privilege} on the table"),
    }
}

/// A key column: its name, the type bound values are cast to, the schema of
/// its `=` operator.
#[derive(Debug, Clone, PartialEq)]
pub struct KeyColumn {
    pub name: String,
    pub cast_type: String,
    pub op_schema: String,
}

/// `alias.k1 = $1::text::type AND ...` for the key object, which must name
/// exactly the key columns with non-null values (values bound, never pasted).
pub fn key_condition(alias: &str, cols: &[KeyColumn], key: &Value, p: &mut Params) -> FbResult<String> {
    let obj: &Map<String, Value> =
        key.as_object().ok_or_else(|| FbError::invalid("key must be a JSON object of primary key column: value"))?;
    if cols.is_empty() {
        return Err(FbError::invalid("the table has no primary key: rows can't be addressed by key")
            .with_hint("add a primary key"));
    }
    for k in obj.keys() {
        if !cols.iter().any(|c| &c.name == k) {
            return Err(FbError::invalid(format!("\"{}\" is not a primary key column", crate::explorer::shorten(k))));
        }
    }
    let mut parts = Vec::new();
    for c in cols {
        let v = obj
            .get(&c.name)
            .ok_or_else(|| FbError::invalid(format!("key needs a value for column \"{}\"", c.name)))?;
        let s = json_to_text(v).ok_or_else(|| FbError::invalid(format!("key column \"{}\" can't be null", c.name)))?;
        parts.push(format!("{alias}.{} {} {}", quote_ident(&c.name), op(&c.op_schema, "="), p.bind(Some(s), &c.cast_type)?));
    }
    Ok(parts.join(" AND "))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pol(name: &str, cmd: char, permissive: bool, using: Option<bool>, check: Option<bool>) -> Policy {
        Policy {
            name: name.into(),
            cmd,
            permissive,
            roles: vec!["public".into()],
            for_role: true,
            has_using: using.is_some(),
            has_check: check.is_some(),
            using: using.map(|b| Ok(Some(b))),
            with_check: check.or(using).map(|b| Ok(Some(b))),
            using_new: using.map(|b| Ok(Some(b))),
        }
    }

    fn on() -> RlsState {
        RlsState { enabled: true, forced: false, bypassrls: false, owner: false }
    }

    #[test]
    fn no_policy_hides_everything() {
        let v = decide(Command::Select, &on(), &[], true, &[]);
        assert_eq!((v.allowed, v.outcome), (false, "not found"));
        assert_eq!(v.decided_by, vec!["no permissive policy"]);
    }

    #[test]
    fn permissive_or_restrictive_and() {
        let ps = [pol("a", 'r', true, Some(false), None), pol("b", '*', true, Some(true), None)];
        let v = decide(Command::Select, &on(), &[], true, &ps);
        assert!(v.allowed);
        assert_eq!(v.decided_by, vec!["b"]);
        let mut ps = ps.to_vec();
        ps.push(pol("r", 'r', false, Some(false), None));
        let v = decide(Command::Select, &on(), &[], true, &ps);
        assert_eq!(v.decided_by, vec!["restrictive: r"]);
        assert!(!v.allowed);
    }

    #[test]
    fn update_needs_select_and_check() {
        let ps = [pol("u", 'w', true, Some(true), Some(false)), pol("s", 'r', true, Some(true), None)];
        let v = decide(Command::Update, &on(), &[], true, &ps);
        assert_eq!(v.outcome, "42501");
        assert_eq!(v.decided_by, vec!["no permissive policy allows it (with check)"]);
        let ps = [pol("u", 'w', true, Some(true), None)];
        let v = decide(Command::Update, &on(), &[], true, &ps);
        assert_eq!(v.outcome, "0 rows");
        assert_eq!(v.decided_by, vec!["no permissive policy (select)"]);
    }

    #[test]
    fn skipped_and_privileges() {
        let st = RlsState { enabled: true, forced: false, bypassrls: true, owner: false };
        assert_eq!(decide(Command::Delete, &st, &[], true, &[]).decided_by, vec!["bypassrls"]);
        let v = decide(Command::Delete, &on(), &[missing_privilege("DELETE", None)], true, &[]);
        assert_eq!(v.outcome, "42501");
        assert_eq!(decide(Command::Delete, &st, &[], false, &[]).outcome, "0 rows");
        assert_eq!(
            needed_privileges(Command::Update, &["id".into()], &["title".into()]),
            vec![("SELECT", Some("id".into())), ("UPDATE", Some("title".into()))]
        );
    }

    #[test]
    fn key_condition_binds_values() {
        let cols = vec![KeyColumn { name: "id".into(), cast_type: "integer".into(), op_schema: "pg_catalog".into() }];
        let mut p = Params::default();
        let c = key_condition("t", &cols, &json!({"id": "1'; drop table x"}), &mut p).unwrap();
        assert_eq!(c, "t.\"id\" OPERATOR(pg_catalog.=) $1::pg_catalog.text::integer");
        assert_eq!(p.0, vec![Some("1'; drop table x".to_string())]);
        assert!(key_condition("t", &cols, &json!({"nope": 1}), &mut p).is_err());
        assert!(key_condition("t", &cols, &json!({"id": null}), &mut p).is_err());
        assert!(key_condition("t", &cols, &json!([1]), &mut p).is_err());
    }
}
