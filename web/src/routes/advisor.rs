//! The Advisor section (issue 32): the findings of `dashboard.advisories()`
//! grouped by level, each linking to its table, and "Why can't I see a row?"
//! — `dashboard.explain_access` for a table, a key and a principal, with the
//! verdict per policy. The explanation is audited, so it is a POST (GETs never
//! write). No SQL or rules here: the extension decides and explains.

use askama::Template;
use axum::extract::{Query, State};
use axum::response::Response;
use axum::routing::get;
use axum::Router;
use percent_encoding::{utf8_percent_encode, NON_ALPHANUMERIC};
use serde_json::Value;

use super::Url;
use crate::api::advisor::Finding;
use crate::error::WebError;
use crate::form::WebForm;
use crate::render::page;
use crate::session::{HxRequest, Session};
use crate::{api, App};

pub const WHY_PATH: &str = "/admin/advisor/why";

pub fn router() -> Router<App> {
    Router::new()
        .route(Url::Advisor.path(), get(list_get))
        .route(WHY_PATH, get(why_get).post(why_post))
}

pub struct Group {
    pub level: &'static str,
    pub label: &'static str,
    pub findings: Vec<Finding>,
}

#[derive(Template)]
#[template(path = "advisor/list_partial.html")]
struct ListPartial {
    groups: Vec<Group>,
    total: usize,
}

impl ListPartial {
    /// The table's page in Tables, for findings about a table or view.
    fn table_href(&self, f: &Finding) -> Option<String> {
        if matches!(f.lint.as_str(), "security_definer_exposed" | "function_search_path_mutable") {
            return None; // a function
        }
        Some(format!(
            "{}/{}/{}",
            Url::Tables.path(),
            utf8_percent_encode(&f.schema_name, NON_ALPHANUMERIC),
            utf8_percent_encode(&f.object_name, NON_ALPHANUMERIC)
        ))
    }
}

async fn list_get(State(app): State<App>, s: Session, hx: HxRequest) -> Result<Response, WebError> {
    page(&app, &s, hx, Url::Advisor, "Advisor", async |tx, _| {
        let all = api::advisor::advisories(tx).await?;
        let total = all.len();
        let groups = [("error", "Errors"), ("warn", "Warnings"), ("info", "Suggestions")]
            .into_iter()
            .map(|(level, label)| Group { level, label, findings: all.iter().filter(|f| f.level == level).cloned().collect() })
            .collect();
        Ok(ListPartial { groups, total })
    })
    .await
}

#[derive(serde::Deserialize, Default, Clone)]
pub struct WhyInput {
    #[serde(default)]
    pub table: String,
    #[serde(default)]
    pub key: String,
    #[serde(default)]
    pub as_user: String,
    #[serde(default)]
    pub command: String,
    #[serde(default)]
    pub new_row: String,
}

/// One policy of the verdict, as shown.
pub struct PolicyRow {
    pub name: String,
    pub command: String,
    pub kind: &'static str,
    pub roles: String,
    pub applies: bool,
    pub using: String,
    pub with_check: String,
    pub using_expr: String,
    pub with_check_expr: String,
    pub error: String,
}

pub struct Verdict {
    pub allowed: bool,
    pub outcome: String,
    pub decided_by: Vec<String>,
    pub rls: String,
    pub bypass: bool,
    pub role: String,
    pub missing: Vec<String>,
    pub row_exists: Option<bool>,
    pub policies: Vec<PolicyRow>,
    /// Whether the template gives its parts ids (`#verdict`, `#decided-by`,
    /// ...): the one verdict of a page. Several on one page (the SQL
    /// console's 0-rows explanation) go without, found by class.
    pub anchored: bool,
}

fn text(v: &Value) -> String {
    match v {
        Value::Null => "—".into(),
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

fn strings(v: &Value) -> Vec<String> {
    v.as_array().map(|a| a.iter().map(text).collect()).unwrap_or_default()
}

impl Verdict {
    pub(crate) fn from_json(v: &Value) -> Verdict {
        Verdict {
            allowed: v["allowed"].as_bool().unwrap_or(false),
            outcome: text(&v["outcome"]),
            decided_by: strings(&v["decided_by"]),
            rls: text(&v["rls"]),
            bypass: v["bypass"].as_bool().unwrap_or(false),
            role: text(&v["principal"]["role"]),
            missing: strings(&v["privilege"]["missing"]),
            row_exists: v["row_exists"].as_bool(),
            policies: v["policies"]
                .as_array()
                .map(|a| {
                    a.iter()
                        .map(|p| PolicyRow {
                            name: text(&p["name"]),
                            command: text(&p["command"]),
                            kind: if p["permissive"].as_bool().unwrap_or(true) { "permissive" } else { "restrictive" },
                            roles: strings(&p["roles"]).join(", "),
                            applies: p["applies"].as_bool().unwrap_or(false),
                            using: text(&p["using"]),
                            with_check: text(&p["with_check"]),
                            using_expr: text(&p["using_expr"]),
                            with_check_expr: text(&p["with_check_expr"]),
                            error: if p["error"].is_null() { String::new() } else { text(&p["error"]) },
                        })
                        .collect()
                })
                .unwrap_or_default(),
            anchored: true,
        }
    }
}

#[derive(Template)]
#[template(path = "advisor/why_partial.html")]
struct WhyPartial {
    csrf: String,
    input: WhyInput,
    verdict: Option<Verdict>,
}

impl WhyPartial {
    fn selected(&self, c: &str) -> bool {
        let cur = if self.input.command.is_empty() { "select" } else { self.input.command.as_str() };
        cur == c
    }
}

async fn why_get(State(app): State<App>, s: Session, hx: HxRequest, Query(q): Query<WhyInput>) -> Result<Response, WebError> {
    let csrf = s.csrf.clone();
    page(&app, &s, hx, Url::Advisor, "Why can't I see a row?", async |_, _| Ok(WhyPartial { csrf, input: q, verdict: None })).await
}

fn json_field(what: &str, s: &str) -> Result<Option<Value>, WebError> {
    if s.trim().is_empty() {
        return Ok(None);
    }
    serde_json::from_str(s)
        .map(Some)
        .map_err(|e| WebError::BadRequest(format!("{what} must be JSON, e.g. {{\"id\": 1}} ({e})")))
}

async fn why_post(State(app): State<App>, s: Session, hx: HxRequest, WebForm(f): WebForm<WhyInput>) -> Result<Response, WebError> {
    let key = json_field("the key", &f.key)?.unwrap_or(Value::Null);
    let new_row = json_field("the new row", &f.new_row)?;
    let command = if f.command.is_empty() { "select".to_string() } else { f.command.clone() };
    let csrf = s.csrf.clone();
    page(&app, &s, hx, Url::Advisor, "Why can't I see a row?", async |tx, _| {
        let v = api::advisor::explain_access(tx, f.table.trim(), &key, f.as_user.trim(), &command, new_row.as_ref()).await?;
        Ok(WhyPartial { csrf, input: f.clone(), verdict: Some(Verdict::from_json(&v)) })
    })
    .await
}
