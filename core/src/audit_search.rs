//! How `dashboard.audit_search` finds what it is asked for without reading the
//! whole log.
//!
//! Its `target` matches an entry's target_id, its target_type, or
//! 'type:id'. Written as one condition with three ORed arms, no index answers
//! it, and a search for a target the log does not hold read every entry (300
//! ms per million). Here the target is turned into a few arms that the index
//! `audit_log_target (target_type, target_id, id)` answers one by one, each
//! newest first and stopping at the page size:
//! - target_id = t: one arm per target type the log holds (found by a skip
//!   scan of the same index: the types are few), and one for entries without
//!   a type;
//! - target_type = t: only when t is one of those types;
//! - 'type:id': one arm per ':' in t whose left side is one of those types.
//!
//! Its `actor` is an admin's user id or an actor label (an email,
//! `db:<role>`): a user id searches actor_id (the `audit_log_actor` index),
//! anything else the label.
//!
//! This module is plain Rust (unit-tested without Postgres): it plans the arms
//! and writes the SQL, with every value a parameter.

/// More target types than this (only possible with entries a superuser wrote
/// by hand) and the search falls back to the single ORed condition: correct,
/// just not indexed.
pub const MAX_TARGET_TYPES: usize = 64;

/// One way an entry can be about the searched target.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TargetArm {
    /// target_type = .0 AND target_id = .1
    TypeAndId(String, String),
    /// target_type IS NULL AND target_id = .0
    UntypedId(String),
    /// target_type = .0
    Type(String),
}

/// The arms that together find exactly the entries whose target_id,
/// target_type or target_type || ':' || target_id is `target`, given every
/// non-NULL target_type the log holds.
pub fn target_arms(target: &str, types: &[String]) -> Vec<TargetArm> {
    let holds = |t: &str| types.iter().any(|known| known == t);
    let mut arms = vec![TargetArm::UntypedId(target.to_string())];
    arms.extend(types.iter().map(|t| TargetArm::TypeAndId(t.clone(), target.to_string())));
    if holds(target) {
        arms.push(TargetArm::Type(target.to_string()));
    }
    // (a type may itself hold ':', so every split is tried, not just the first)
    for (i, _) in target.match_indices(':') {
        let (target_type, target_id) = (&target[..i], &target[i + 1..]);
        if holds(target_type) {
            arms.push(TargetArm::TypeAndId(target_type.to_string(), target_id.to_string()));
        }
    }
    arms
}

/// Whether `actor` is a user id (searched in actor_id) rather than a label:
/// the hyphenated form, as ids are shown (and as the search matched them
/// before, through actor_id::text), in either case. Labels are emails and
/// `db:<role>`, never of that form.
pub fn actor_is_user_id(actor: &str) -> bool {
    crate::is_hyphenated_uuid(actor)
}

/// The filters besides the target, over the function's parameters: $1 actor,
/// $2 action, $4 since, $5 until, $7 after. The search runs as a one-shot
/// plan with these bound as constants, so the arms not asked for fold away.
pub fn common_filters(actor_is_id: bool) -> String {
    let actor = if actor_is_id { "actor_id = $1::uuid" } else { "actor = $1" };
    format!(
        "($1::text IS NULL OR {actor})
         AND ($2::text IS NULL OR action = $2
              OR (right($2, 1) = '*' AND starts_with(action, left($2, -1))))
         AND ($4::timestamptz IS NULL OR occurred_at >= $4)
         AND ($5::timestamptz IS NULL OR occurred_at < $5)
         AND ($7::bigint IS NULL OR id < $7)"
    )
}

/// The search without a target, or with the target as one ORed condition ($3).
pub fn plain_search_sql(columns: &str, actor_is_id: bool) -> String {
    format!(
        "SELECT {columns}
           FROM dashboard_auth.audit_log
          WHERE {}
            AND ($3::text IS NULL OR target_id = $3 OR target_type = $3
                 OR (target_type || ':' || target_id) = $3)
          ORDER BY id DESC
          LIMIT $6",
        common_filters(actor_is_id)
    )
}

/// The search for a target by arms: each arm a newest-first index scan
/// limited to a page ($6), the page the newest of all of them. Returns the
/// SQL and the values of its parameters from $8 on, in order.
pub fn target_search_sql(columns: &str, actor_is_id: bool, arms: &[TargetArm]) -> (String, Vec<String>) {
    let common = common_filters(actor_is_id);
    let mut values = Vec::new();
    let mut param = |v: &str| {
        values.push(v.to_string());
        format!("${}::text", 7 + values.len())
    };
    let selects: Vec<String> = arms
        .iter()
        .map(|arm| {
            let condition = match arm {
                TargetArm::TypeAndId(t, id) => format!("target_type = {} AND target_id = {}", param(t), param(id)),
                TargetArm::UntypedId(id) => format!("target_type IS NULL AND target_id = {}", param(id)),
                TargetArm::Type(t) => format!("target_type = {}", param(t)),
            };
            format!(
                "(SELECT id FROM dashboard_auth.audit_log WHERE {condition} AND {common} ORDER BY id DESC LIMIT $6)"
            )
        })
        .collect();
    let sql = format!(
        "SELECT {columns}
           FROM dashboard_auth.audit_log
          WHERE id IN ({})
          ORDER BY id DESC
          LIMIT $6",
        selects.join("\n UNION ALL ")
    );
    (sql, values)
}

/// The target types the log holds: a skip scan of audit_log_target's leading
/// column, one index descent per type, stopping after MAX_TARGET_TYPES + 1.
pub fn target_types_sql() -> String {
    format!(
        "WITH RECURSIVE types(t) AS (
             (SELECT target_type FROM dashboard_auth.audit_log
               WHERE target_type IS NOT NULL ORDER BY target_type LIMIT 1)
           UNION ALL
             SELECT (SELECT l.target_type FROM dashboard_auth.audit_log l
                      WHERE l.target_type > types.t ORDER BY l.target_type LIMIT 1)
               FROM types WHERE types.t IS NOT NULL)
         SELECT t FROM types WHERE t IS NOT NULL LIMIT {}",
        MAX_TARGET_TYPES + 1
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use TargetArm::*;

    fn s(v: &[&str]) -> Vec<String> {
        v.iter().map(|x| x.to_string()).collect()
    }

    /// What the arms find, computed the slow way the old single condition did.
    fn matches(arms: &[TargetArm], entry: (Option<&str>, Option<&str>)) -> bool {
        arms.iter().any(|arm| match (arm, entry) {
            (TypeAndId(t, id), (Some(et), Some(eid))) => t == et && id == eid,
            (UntypedId(id), (None, Some(eid))) => id == eid,
            (Type(t), (Some(et), _)) => t == et,
            _ => false,
        })
    }
    fn old_condition(target: &str, entry: (Option<&str>, Option<&str>)) -> bool {
        let (t, id) = entry;
        id == Some(target) || t == Some(target) || matches!((t, id), (Some(t), Some(id)) if format!("{t}:{id}") == target)
    }

    #[test]
    fn arms_cover_id_type_and_type_colon_id() {
        let types = s(&["admin", "table"]);
        assert_eq!(
            target_arms("admin:42", &types),
            vec![
                UntypedId("admin:42".into()),
                TypeAndId("admin".into(), "admin:42".into()),
                TypeAndId("table".into(), "admin:42".into()),
                TypeAndId("admin".into(), "42".into()),
            ]
        );
        assert!(target_arms("table", &types).contains(&Type("table".into())));
        // a type the log does not hold is not searched as a type
        assert!(!target_arms("session", &types).iter().any(|a| matches!(a, Type(_))));
        assert!(!target_arms("session:1", &types).contains(&TypeAndId("session".into(), "1".into())));
    }

    #[test]
    fn arms_find_exactly_what_the_single_condition_found() {
        // types with ':' in them, empty parts, a target that is also a type
        let types = s(&["a", "a:b", "", "x"]);
        let log_types: Vec<Option<&str>> = vec![None, Some("a"), Some("a:b"), Some(""), Some("x")];
        let ids: Vec<Option<&str>> = vec![None, Some(""), Some("b"), Some("b:c"), Some("c"), Some("a"), Some("a:b:c"), Some("x")];
        let targets = ["a", "a:b", "a:b:c", ":c", "b:c", "x", "x:", "", "zz", "a::", ":"];
        for target in targets {
            let arms = target_arms(target, &types);
            for t in &log_types {
                for id in &ids {
                    assert_eq!(matches(&arms, (*t, *id)), old_condition(target, (*t, *id)), "{target:?} {t:?} {id:?}");
                }
            }
        }
    }

    #[test]
    fn values_are_parameters_never_sql() {
        let evil = "x'); DROP TABLE dashboard_auth.audit_log; --";
        let arms = target_arms(evil, &s(&["x'); DROP TABLE dashboard_auth.audit_log; --"]));
        let (sql, values) = target_search_sql("*", false, &arms);
        assert!(!sql.contains("DROP"), "{sql}");
        assert_eq!(values.len(), 4); // untyped id; type + id; type
        for i in 8..8 + values.len() {
            assert!(sql.contains(&format!("${i}::text")));
        }
        assert!(!sql.contains(&format!("${}", 8 + values.len())));
        assert_eq!(sql.matches("UNION ALL").count(), arms.len() - 1);
    }

    #[test]
    fn a_user_id_is_searched_as_an_id() {
        assert!(actor_is_user_id("5b4e4d6c-0000-4000-8000-000000000000"));
        assert!(actor_is_user_id("5B4E4D6C-0000-4000-8000-000000000000"));
        // (forms Postgres' uuid input does not all take)
        assert!(!actor_is_user_id("urn:uuid:5b4e4d6c-0000-4000-8000-000000000000"));
        assert!(!actor_is_user_id("5b4e4d6c000040008000000000000000"));
        assert!(!actor_is_user_id("db:postgres"));
        assert!(!actor_is_user_id("root@example.com"));
        assert!(common_filters(true).contains("actor_id = $1::uuid"));
        assert!(common_filters(false).contains("actor = $1"));
        assert!(!common_filters(false).contains("actor_id"));
    }
}
