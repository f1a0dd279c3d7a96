//! Who is acting. A database role that is a member of `fluxbase_dashboard`
//! may call the API; `dashboard_auth.use_session(token)` then makes a verified
//! admin the actor for the rest of the transaction.
//!
//! The verified identity lives in this backend's memory, set only by
//! `use_session` after checking the token, and wiped by a transaction callback
//! at commit or abort. It is deliberately not a GUC: any SQL can `set_config` a
//! GUC, nobody can write this.

use std::cell::RefCell;

use fluxbase_core::{FbError, FbResult};
use pgrx::datum::Uuid;
use pgrx::pg_sys;

use crate::runtime::db;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AdminRole {
    Admin,
    Viewer,
}

impl AdminRole {
    pub fn parse(s: &str) -> FbResult<Self> {
        match s {
            "dashboard_admin" => Ok(AdminRole::Admin),
            "dashboard_viewer" => Ok(AdminRole::Viewer),
            other => Err(FbError::invalid(format!(
                "unknown admin role '{}': use dashboard_admin or dashboard_viewer",
                other.chars().take(60).collect::<String>()
            ))),
        }
    }
    pub fn as_str(self) -> &'static str {
        match self {
            AdminRole::Admin => "dashboard_admin",
            AdminRole::Viewer => "dashboard_viewer",
        }
    }
}

#[derive(Debug, Clone)]
pub struct AdminIdentity {
    pub user_id: Uuid,
    pub email: String,
    pub role: AdminRole,
    pub session_id: Uuid,
    /// The session's scope: 'full', or 'mfa_enroll' when 2FA must be set up first.
    pub scope: String,
}

#[derive(Debug, Clone)]
pub enum Actor {
    /// A verified admin session (`use_session`).
    Admin(AdminIdentity),
    /// A database role acting without an admin session, e.g. the CLI run by an operator.
    Database { session_user: String },
}

impl Actor {
    pub fn label(&self) -> String {
        match self {
            Actor::Admin(a) => a.email.clone(),
            Actor::Database { session_user } => format!("db:{session_user}"),
        }
    }
    pub fn id(&self) -> Option<Uuid> {
        match self {
            Actor::Admin(a) => Some(a.user_id),
            Actor::Database { .. } => None,
        }
    }
    pub fn admin(&self) -> Option<&AdminIdentity> {
        match self {
            Actor::Admin(a) => Some(a),
            Actor::Database { .. } => None,
        }
    }
}

thread_local! {
    static CURRENT: RefCell<Option<AdminIdentity>> = const { RefCell::new(None) };
}

pub fn set_admin(identity: AdminIdentity) {
    CURRENT.with(|c| *c.borrow_mut() = Some(identity));
}

pub fn clear() {
    CURRENT.with(|c| *c.borrow_mut() = None);
}

pub fn current() -> Actor {
    match CURRENT.with(|c| c.borrow().clone()) {
        Some(a) => Actor::Admin(a),
        None => Actor::Database { session_user: db::session_user_name() },
    }
}

/// The actor, refused when it is an admin session limited to enrolling in 2FA.
pub fn reader() -> Actor {
    crate::runtime::confine::refuse_if_untrusted();
    let actor = current();
    if let Actor::Admin(a) = &actor {
        if a.scope != "full" {
            crate::runtime::errors::raise(
                FbError::denied("this session may only set up two-factor authentication")
                    .with_hint("call dashboard_auth.totp_setup() and dashboard_auth.totp_enable(code) first"),
            );
        }
    }
    actor
}

/// The actor, refused (42501) unless it may change things: a `dashboard_admin`
/// session, or a database role acting without an admin session.
pub fn writer(what: &str) -> Actor {
    let actor = reader();
    if let Actor::Admin(a) = &actor {
        if a.role != AdminRole::Admin {
            crate::runtime::errors::raise(FbError::denied(format!(
                "permission denied: {what} needs the dashboard_admin role, {} is a dashboard_viewer",
                a.email
            )));
        }
    }
    actor
}

/// The admin behind the current session; refused for callers without one.
pub fn session_admin(what: &str) -> AdminIdentity {
    crate::runtime::confine::refuse_if_untrusted();
    match current() {
        Actor::Admin(a) => a,
        Actor::Database { .. } => crate::runtime::errors::raise(
            FbError::denied(format!("{what} needs an admin session"))
                .with_hint("call dashboard_auth.use_session(token) in the same transaction first"),
        ),
    }
}

/// Forget the admin at the end of every transaction (called by the
/// extension's one transaction callback, `_PG_init`'s `on_xact_event`).
pub fn on_xact_event(event: pg_sys::XactEvent::Type) {
    use pg_sys::XactEvent::*;
    if event == XACT_EVENT_COMMIT
        || event == XACT_EVENT_ABORT
        || event == XACT_EVENT_PARALLEL_COMMIT
        || event == XACT_EVENT_PARALLEL_ABORT
        || event == XACT_EVENT_PREPARE
    {
        clear();
    }
}
