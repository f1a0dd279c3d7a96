//! The test harness: fresh databases, requests, responses.

use std::sync::atomic::{AtomicU32, Ordering};

use axum::body::Body;
use axum::http::{header, Request, Response, StatusCode};
use fluxbase_web::{App, Config, PgConfig};
use http_body_util::BodyExt;
use tower::ServiceExt;

pub const PASSWORD: &str = "correct-horse-battery-staple";

pub fn pg(user: &str, db: &str) -> PgConfig {
    let mut c = PgConfig::new();
    let host = std::env::var("PGHOST").expect("PGHOST: run these tests through scripts/test.sh");
    if host.starts_with('/') {
        c.host_path(host);
    } else {
        c.host(&host);
    }
    c.port(std::env::var("PGPORT").ok().and_then(|p| p.parse().ok()).unwrap_or(5432));
    c.user(user).dbname(db);
    c
}

/// A superuser connection to `db` (the test's own view of the database).
pub async fn su(db: &str) -> tokio_postgres::Client {
    let (client, conn) = pg("postgres", db).connect(tokio_postgres::NoTls).await.expect("connect as postgres");
    tokio::spawn(conn);
    client
}

static TEMPLATE: tokio::sync::OnceCell<()> = tokio::sync::OnceCell::const_new();
static COPIES: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());
const TEMPLATE_DB: &str = "fluxbase_web_rs_template";

async fn template() {
    TEMPLATE
        .get_or_init(|| async {
            let c = su("postgres").await;
            c.batch_execute(&format!("DROP DATABASE IF EXISTS {TEMPLATE_DB} WITH (FORCE)")).await.unwrap();
            c.batch_execute(&format!("CREATE DATABASE {TEMPLATE_DB}")).await.unwrap();
            c.batch_execute(
                "DO $$ BEGIN CREATE ROLE fb_web LOGIN; EXCEPTION WHEN duplicate_object THEN NULL; END $$",
            )
            .await
            .unwrap();
            let t = su(TEMPLATE_DB).await;
            t.batch_execute("CREATE EXTENSION fluxbase_admin; GRANT fluxbase_dashboard TO fb_web").await.unwrap();
        })
        .await;
}

/// A fresh database with the extension and the app serving it as fb_web.
pub struct TestDb {
    pub name: String,
    pub app: App,
}

impl TestDb {
    pub async fn new() -> TestDb {
        static N: AtomicU32 = AtomicU32::new(0);
        template().await;
        let name = format!("t_rs_{}_{}", std::process::id(), N.fetch_add(1, Ordering::Relaxed));
        {
            let _one_at_a_time = COPIES.lock().await; // a template can't be copied twice at once
            su("postgres").await.batch_execute(&format!("CREATE DATABASE {name} TEMPLATE {TEMPLATE_DB}")).await.unwrap();
        }
        let app = App::new(Config { pg: pg("fb_web", &name), behind_proxy: false, tls: false, pool_size: 4 }).unwrap();
        TestDb { name, app }
    }

    pub async fn su(&self) -> tokio_postgres::Client {
        su(&self.name).await
    }

    pub async fn send(&self, req: Request<Body>) -> Res {
        let resp = fluxbase_web::app(self.app.clone()).oneshot(req).await.unwrap();
        Res::read(resp).await
    }

    /// First-run setup through the form; returns the session cookie value.
    pub async fn setup(&self) -> String {
        let r = self.send(post("/admin/setup", &form(&[("email", "root@example.com"), ("password", PASSWORD), ("full_name", "Root Admin")]), None)).await;
        assert_eq!(r.status, StatusCode::SEE_OTHER, "{}", r.body);
        r.cookie("__Host-fluxbase_session").expect("session cookie")
    }

    pub async fn drop(self) {
        self.app.db.pool.close();
        self.app.db.reserved.close();
        su("postgres").await.batch_execute(&format!("DROP DATABASE {} WITH (FORCE)", self.name)).await.unwrap();
    }
}

/// Send `req` to an app of the test's own making (`App::with_replica`).
pub async fn send_to(app: &App, req: Request<Body>) -> Res {
    let resp = fluxbase_web::app(app.clone()).oneshot(req).await.unwrap();
    Res::read(resp).await
}

pub fn form(fields: &[(&str, &str)]) -> String {
    serde_urlencoded::to_string(fields).unwrap()
}

pub fn get(path: &str, session: Option<&str>) -> Request<Body> {
    let mut b = Request::get(path).header(header::HOST, "localhost:8080");
    if let Some(s) = session {
        b = b.header(header::COOKIE, format!("__Host-fluxbase_session={s}"));
    }
    b.body(Body::empty()).unwrap()
}

/// A same-origin form POST as a browser sends it (`Sec-Fetch-Site`), with
/// the session cookie and its CSRF token when given.
pub fn post(path: &str, body: &str, session: Option<(&str, &str)>) -> Request<Body> {
    let mut b = Request::post(path)
        .header(header::HOST, "localhost:8080")
        .header("sec-fetch-site", "same-origin")
        .header(header::CONTENT_TYPE, "application/x-www-form-urlencoded");
    if let Some((s, csrf)) = session {
        b = b.header(header::COOKIE, format!("__Host-fluxbase_session={s}")).header("x-csrf-token", csrf);
    }
    b.body(Body::from(body.to_string())).unwrap()
}

/// A response, read whole.
pub struct Res {
    pub status: StatusCode,
    pub headers: axum::http::HeaderMap,
    pub body: String,
}

impl Res {
    async fn read(r: Response<Body>) -> Res {
        let (parts, body) = r.into_parts();
        let bytes = body.collect().await.unwrap().to_bytes();
        Res { status: parts.status, headers: parts.headers, body: String::from_utf8_lossy(&bytes).into_owned() }
    }

    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }

    pub fn set_cookies(&self) -> Vec<&str> {
        self.headers.get_all(header::SET_COOKIE).iter().filter_map(|v| v.to_str().ok()).collect()
    }

    /// The value a Set-Cookie of `name` gives (empty when it clears it).
    pub fn cookie(&self, name: &str) -> Option<String> {
        self.set_cookies()
            .into_iter()
            .find_map(|c| c.split(';').next()?.trim().strip_prefix(&format!("{name}=")).map(str::to_string))
    }

    /// The CSRF token the page carries (`hx-headers` on body).
    pub fn csrf(&self) -> String {
        let i = self.body.find("X-CSRF-Token").expect("page has a CSRF token");
        let rest = &self.body[i..];
        let start = rest.find(": &quot;").map(|p| p + 8).or_else(|| rest.find(": \"").map(|p| p + 3)).unwrap();
        rest[start..].chars().take_while(|c| c.is_ascii_hexdigit()).collect()
    }
}
