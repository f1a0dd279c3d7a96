//! The rules of `dashboard.search_users` (issue 20): which sorts exist, the
//! cursor a page ends with, and the SQL text of each case. Every caller value
//! is bound as a parameter; only the fixed texts below are put together.
//!
//! Order: the sort key, NULLs last in both directions, then the id (the same
//! direction), so the order is total and keyset paging (`after` = the cursor
//! of the last row seen) returns every row exactly once, ties included.

use serde_json::{json, Value};

use crate::error::{FbError, FbResult};

/// What the list can be sorted by.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum UserSort {
    Email,
    CreatedAt,
    LastSignInAt,
}

pub const SORT_NAMES: &str = "email, created_at, last_sign_in_at";

impl UserSort {
    /// The sort named `name` (NULL or '' is `email`); anything else is 22023.
    pub fn parse(name: Option<&str>) -> FbResult<Self> {
        match name.map(str::trim).unwrap_or("") {
            "" | "email" => Ok(UserSort::Email),
            "created_at" => Ok(UserSort::CreatedAt),
            "last_sign_in_at" => Ok(UserSort::LastSignInAt),
            other => Err(FbError::invalid(format!(
                "unknown sort '{}'",
                other.chars().filter(|c| !c.is_control()).take(40).collect::<String>()
            ))
            .with_hint(format!("sort by one of: {SORT_NAMES}"))),
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            UserSort::Email => "email",
            UserSort::CreatedAt => "created_at",
            UserSort::LastSignInAt => "last_sign_in_at",
        }
    }

    /// The key's SQL expression over `auth.users u` (the email lower-cased in
    /// the "C" collation: the order of the users_email_search index).
    pub fn key_sql(self) -> &'static str {
        match self {
            UserSort::Email => "lower(u.email) COLLATE \"C\"",
            UserSort::CreatedAt => "u.created_at",
            UserSort::LastSignInAt => "u.last_sign_in_at",
        }
    }

    /// Whether the key is a timestamp (else text).
    pub fn is_timestamp(self) -> bool {
        !matches!(self, UserSort::Email)
    }
}

/// Where a page continues: after the row with this key (None: a NULL key) and id.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Cursor {
    pub key: Option<String>,
    pub id: String,
}

/// Read `after` (a cursor a previous page returned for the same sort and
/// direction). The key is returned as text; the caller parses timestamps.
pub fn parse_cursor(after: &Value, sort: UserSort, descending: bool) -> FbResult<Cursor> {
    let bad = |why: &str| {
        FbError::invalid(format!("after is not a cursor of this list: {why}"))
            .with_hint("pass the cursor column of the last row of the previous page, with the same sort and direction")
    };
    let obj = after.as_object().ok_or_else(|| bad("not a JSON object"))?;
    if obj.keys().any(|k| !matches!(k.as_str(), "sort" | "desc" | "key" | "id")) {
        return Err(bad("unexpected member"));
    }
    if obj.get("sort").and_then(Value::as_str) != Some(sort.as_str()) {
        return Err(bad("it was made for another sort"));
    }
    if obj.get("desc").and_then(Value::as_bool) != Some(descending) {
        return Err(bad("it was made for the other direction"));
    }
    let id = obj.get("id").and_then(Value::as_str).filter(|s| crate::is_hyphenated_uuid(s)).ok_or_else(|| bad("id is not a uuid"))?;
    let key = match obj.get("key") {
        None => return Err(bad("key is missing")),
        Some(Value::Null) => None,
        Some(Value::String(s)) if s.chars().count() <= 300 => Some(s.clone()),
        Some(_) => return Err(bad("key is not a string")),
    };
    Ok(Cursor { key, id: id.to_ascii_lowercase() })
}

/// The cursor of a row, as SQL builds it (`jsonb_build_object` over these names).
pub fn cursor_json(sort: UserSort, descending: bool, key: Option<&str>, id: &str) -> Value {
    json!({ "sort": sort.as_str(), "desc": descending, "key": key, "id": id })
}

/// Which parts a query has (the values themselves are bound).
#[derive(Debug, Clone, Copy, Default)]
pub struct Parts {
    pub search: bool,
    pub phone: bool,
    pub id_prefix: bool,
    pub confirmed: Option<bool>,
    pub role: bool,
    /// Some(true): continue after a row whose key is NULL; Some(false): after a key.
    pub after_null_key: Option<bool>,
}

/// The search condition over `auth.users u`, as `AND (...)` (also
/// `list_users`'): the lower-cased email LIKE the pattern in `$email`, and
/// when given, the phone LIKE `$phone` and the id's text LIKE `$id`.
pub fn search_sql(email: u8, phone: Option<u8>, id: Option<u8>) -> String {
    let mut sql = format!(" AND (lower(u.email) COLLATE \"C\" LIKE ${email}");
    if let Some(p) = phone {
        sql.push_str(&format!(" OR u.phone LIKE ${p}"));
    }
    if let Some(p) = id {
        sql.push_str(&format!(" OR u.id::text LIKE ${p}"));
    }
    sql.push(')');
    sql
}

/// The inner query: one page of users with their `sort_key`, in order.
/// Parameters: $1 page size, $2 email pattern, $3 phone pattern, $4 id
/// prefix, $5 role, $6 the key after which to continue (text or timestamptz,
/// as the sort's key is), $7 that row's id. The confirmed filter is fixed text
/// (IS NULL / IS NOT NULL), no value.
pub fn page_sql(sort: UserSort, descending: bool, p: Parts) -> String {
    let key = sort.key_sql();
    let (cmp, dir) = if descending { ("<", "DESC") } else { (">", "ASC") };
    let mut sql = format!("SELECT u.*, {key} AS sort_key FROM auth.users u WHERE u.deleted_at IS NULL");
    if p.search {
        sql.push_str(&search_sql(2, p.phone.then_some(3), p.id_prefix.then_some(4)));
    }
    match p.confirmed {
        Some(true) => sql.push_str(" AND u.confirmed_at IS NOT NULL"),
        Some(false) => sql.push_str(" AND u.confirmed_at IS NULL"),
        None => {}
    }
    if p.role {
        sql.push_str(" AND u.role = $5");
    }
    match p.after_null_key {
        // NULL keys come last: after one, only NULL keys with a later id.
        Some(true) => sql.push_str(&format!(" AND {key} IS NULL AND u.id {cmp} $7")),
        Some(false) => sql.push_str(&format!(" AND (({key}, u.id) {cmp} ($6, $7) OR {key} IS NULL)")),
        None => {}
    }
    sql.push_str(&format!(" ORDER BY {key} {dir} NULLS LAST, u.id {dir} LIMIT $1"));
    sql
}

/// The order of the outer query (over the inner one's `sort_key`).
pub fn outer_order(descending: bool) -> &'static str {
    if descending {
        "ORDER BY u.sort_key DESC NULLS LAST, u.id DESC"
    } else {
        "ORDER BY u.sort_key ASC NULLS LAST, u.id ASC"
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sorts_parse_and_unknown_is_invalid() {
        assert_eq!(UserSort::parse(None).unwrap(), UserSort::Email);
        assert_eq!(UserSort::parse(Some("")).unwrap(), UserSort::Email);
        assert_eq!(UserSort::parse(Some("created_at")).unwrap(), UserSort::CreatedAt);
        assert_eq!(UserSort::parse(Some("last_sign_in_at")).unwrap(), UserSort::LastSignInAt);
        for bad in ["id; DROP TABLE x", "Email", "role", "email desc"] {
            let e = UserSort::parse(Some(bad)).unwrap_err();
            assert_eq!(e.code.sqlstate(), "22023", "{bad}");
        }
    }

    #[test]
    fn cursor_round_trips_and_refuses_other_shapes() {
        let id = "0000000a-0000-4000-8000-000000000001";
        let c = cursor_json(UserSort::CreatedAt, true, Some("2026-01-01T00:00:00+00:00"), id);
        assert_eq!(parse_cursor(&c, UserSort::CreatedAt, true).unwrap().key.as_deref(), Some("2026-01-01T00:00:00+00:00"));
        assert!(parse_cursor(&c, UserSort::CreatedAt, false).is_err());
        assert!(parse_cursor(&c, UserSort::Email, true).is_err());
        let n = cursor_json(UserSort::Email, false, None, id);
        assert_eq!(parse_cursor(&n, UserSort::Email, false).unwrap().key, None);
        for bad in [json!([]), json!("x"), json!({"sort": "email", "desc": false, "key": 1, "id": id}),
                    json!({"sort": "email", "desc": false, "key": "a", "id": "1' OR '1'='1"}),
                    json!({"sort": "email", "desc": false, "id": id}),
                    json!({"sort": "email", "desc": false, "key": "a", "id": id, "sql": "x"})] {
            assert_eq!(parse_cursor(&bad, UserSort::Email, false).unwrap_err().code.sqlstate(), "22023", "{bad}");
        }
    }

    #[test]
    fn search_condition_names_only_its_parameters() {
        assert_eq!(search_sql(2, None, None), " AND (lower(u.email) COLLATE \"C\" LIKE $2)");
        assert_eq!(
            search_sql(2, Some(4), Some(5)),
            " AND (lower(u.email) COLLATE \"C\" LIKE $2 OR u.phone LIKE $4 OR u.id::text LIKE $5)"
        );
    }

    #[test]
    fn sql_has_no_values_and_orders_nulls_last() {
        let p = Parts { search: true, phone: true, id_prefix: true, confirmed: Some(false), role: true, after_null_key: Some(false) };
        let s = page_sql(UserSort::LastSignInAt, true, p);
        assert!(s.contains("u.last_sign_in_at DESC NULLS LAST, u.id DESC LIMIT $1"), "{s}");
        assert!(s.contains("((u.last_sign_in_at, u.id) < ($6, $7) OR u.last_sign_in_at IS NULL)"), "{s}");
        assert!(s.contains("u.confirmed_at IS NULL") && s.contains("u.role = $5"));
        let s = page_sql(UserSort::Email, false, Parts { after_null_key: Some(true), ..Parts::default() });
        assert!(s.contains("lower(u.email) COLLATE \"C\" IS NULL AND u.id > $7"), "{s}");
    }
}
