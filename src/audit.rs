//! Writing the audit trail. Every capability records its actions through
//! `record`, which fills in the actor from the current identity.

use pgrx::datum::{Inet, JsonB, Uuid};
use serde_json::{json, Value};

use crate::{actor, db};

pub struct Event {
    pub action: &'static str,
    pub target_type: Option<&'static str>,
    pub target_id: Option<String>,
    pub details: Value,
    pub success: bool,
    pub ip: Option<String>,
    /// Set when the acting person is known but is not the current actor
    /// (a login attempt names the account it tried).
    pub actor_override: Option<(Option<Uuid>, String)>,
    pub impersonation_session_id: Option<Uuid>,
}

impl Event {
    pub fn new(action: &'static str, target_type: &'static str, target_id: impl ToString) -> Self {
        Event {
            action,
            target_type: Some(target_type),
            target_id: Some(target_id.to_string()),
            details: json!({}),
            success: true,
            ip: None,
            actor_override: None,
            impersonation_session_id: None,
        }
    }
    pub fn details(mut self, d: Value) -> Self {
        self.details = d;
        self
    }
    pub fn failed(mut self) -> Self {
        self.success = false;
        self
    }
    pub fn ip(mut self, ip: Option<String>) -> Self {
        self.ip = ip;
        self
    }
    pub fn actor(mut self, id: Option<Uuid>, label: String) -> Self {
        self.actor_override = Some((id, label));
        self
    }
    pub fn impersonation(mut self, session: Uuid) -> Self {
        self.impersonation_session_id = Some(session);
        self
    }
}

/// Append one row to dashboard_auth.audit_log, as the extension owner (callers
/// of SECURITY INVOKER functions have no INSERT right on it).
pub fn record(ev: Event) {
    let (actor_id, actor_label) = ev.actor_override.clone().unwrap_or_else(|| {
        let a = actor::current();
        (a.id(), a.label())
    });
    db::as_extension_owner(|| {
        db::execute(
            "INSERT INTO dashboard_auth.audit_log
                 (actor_id, actor, action, target_type, target_id, details, ip, success, impersonation_session_id)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)",
            &[
                actor_id.into(),
                actor_label.into(),
                ev.action.into(),
                ev.target_type.into(),
                ev.target_id.into(),
                JsonB(ev.details).into(),
                ev.ip.map(Inet).into(),
                ev.success.into(),
                ev.impersonation_session_id.into(),
            ],
        )
    });
}
