//! The Tables section (issue 19): keyset paging, edits, impersonation and
//! the batch regression, hostile names, export vs COPY.

use axum::body::Body;
use axum::http::{header, Request, StatusCode};

use crate::common::*;

/// A signed-in admin (and the impersonation cookie, once started).
pub(crate) struct Admin {
    pub(crate) token: String,
    pub(crate) csrf: String,
    pub(crate) imp: Option<String>,
}

impl Admin {
    pub(crate) async fn new(db: &TestDb) -> Admin {
        let token = db.setup().await;
        let r = db.send(get("/admin", Some(&token))).await;
        Admin { csrf: r.csrf(), token, imp: None }
    }

    fn cookie(&self) -> String {
        match &self.imp {
            Some(i) => format!("__Host-fluxbase_session={}; __Host-fluxbase_imp={i}", self.token),
            None => format!("__Host-fluxbase_session={}", self.token),
        }
    }

    pub(crate) fn get(&self, path: &str) -> Request<Body> {
        Request::get(path).header(header::HOST, "localhost:8080").header(header::COOKIE, self.cookie()).body(Body::empty()).unwrap()
    }

    pub(crate) fn post(&self, path: &str, body: &str) -> Request<Body> {
        Request::post(path)
            .header(header::HOST, "localhost:8080")
            .header("sec-fetch-site", "same-origin")
            .header(header::CONTENT_TYPE, "application/x-www-form-urlencoded")
            .header(header::COOKIE, self.cookie())
            .header("x-csrf-token", &self.csrf)
            .body(Body::from(body.to_string()))
            .unwrap()
    }
}

pub(crate) fn unescape(s: &str) -> String {
    s.replace("&quot;", "\"")
        .replace("&#34;", "\"")
        .replace("&#39;", "'")
        .replace("&lt;", "<")
        .replace("&#60;", "<")
        .replace("&gt;", ">")
        .replace("&#62;", ">")
        .replace("&amp;", "&")
        .replace("&#38;", "&")
}

/// The row keys (`data-key`) of a grid page, in order.
pub(crate) fn keys(body: &str) -> Vec<serde_json::Value> {
    body.split("data-key=\"")
        .skip(1)
        .map(|rest| serde_json::from_str(&unescape(&rest[..rest.find('"').unwrap()])).unwrap())
        .collect()
}

fn next_link(body: &str) -> Option<String> {
    let end = body.find("\" rel=\"next\"")?;
    let start = body[..end].rfind("href=\"")? + 6;
    Some(unescape(&body[start..end]))
}

#[tokio::test]
async fn paging_10000_rows_sees_every_row_once_in_order_also_after_an_insert() {
    let db = TestDb::new().await;
    let a = Admin::new(&db).await;
    let su = db.su().await;
    su.batch_execute(
        "CREATE TABLE items (id int PRIMARY KEY, label text);
         INSERT INTO items SELECT g * 2, 'item ' || g FROM generate_series(1, 10000) g;
         GRANT SELECT, INSERT, UPDATE, DELETE ON items TO fluxbase_dashboard; ANALYZE items",
    )
    .await
    .unwrap();
    let r = db.send(a.get("/admin/tables")).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    assert!(r.body.contains(">items</a>"), "listed");
    let mut url = "/admin/tables/public/items?n=500".to_string();
    let mut seen: Vec<i64> = Vec::new();
    let mut pages = 0;
    while pages < 100 {
        let r = db.send(a.get(&url)).await;
        assert_eq!(r.status, StatusCode::OK, "{url}: {}", r.body);
        assert!(!url.contains("offset"));
        seen.extend(keys(&r.body).iter().map(|k| k["id"].as_str().unwrap().parse::<i64>().unwrap()));
        pages += 1;
        if pages == 3 {
            // A row inserted behind the cursor is not seen again; one ahead is seen once.
            su.batch_execute("INSERT INTO items VALUES (1, 'behind'), (20001, 'ahead')").await.unwrap();
        }
        match next_link(&r.body) {
            Some(n) => url = n,
            None => break,
        }
    }
    let mut want: Vec<i64> = (1..=10000).map(|g| g * 2).collect();
    want.push(20001);
    assert_eq!(seen, want, "every row once, in order");
    // Sorted descending by label with a search and a filter, page size 25.
    let r = db.send(a.get("/admin/tables/public/items?fc=id&fo=lte&fv=100&s=-label&q=item&n=25")).await;
    let ks = keys(&r.body);
    assert_eq!(ks.len(), 25);
    assert_eq!(ks[0]["id"], "18", "'item 9' sorts last ascending, first descending");
    // The exact count, as the viewer.
    let r = db.send(a.get("/admin/tables/public/items/count?fc=id&fo=lte&fv=100")).await;
    assert!(r.body.contains("exactly 51 rows"), "50 even ids and the inserted 1: {}", r.body);
    let r = db.send(a.get("/admin/tables/public/items?n=7")).await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST);
    db.drop().await;
}

#[tokio::test]
async fn inline_edit_saves_valid_values_and_shows_the_databases_error_for_bad_ones() {
    let db = TestDb::new().await;
    let a = Admin::new(&db).await;
    let su = db.su().await;
    su.batch_execute(
        "CREATE TABLE things (id int PRIMARY KEY, n int CHECK (n >= 0), ok boolean, doc jsonb, note text, day date);
         INSERT INTO things VALUES (1, 5, true, '{\"a\": 1}', 'hello', '2024-01-02');
         GRANT SELECT, INSERT, UPDATE, DELETE ON things TO fluxbase_dashboard",
    )
    .await
    .unwrap();
    let pk = r#"{"id":"1"}"#;
    let r = db.send(a.get(&format!("/admin/tables/public/things/cell?pk={}&col=n", urlenc(pk)))).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    assert!(r.body.contains("data-editor=\"number\""), "{}", r.body);
    let r = db.send(a.get(&format!("/admin/tables/public/things/cell?pk={}&col=ok", urlenc(pk)))).await;
    assert!(r.body.contains("<select name=\"value\""), "bool editor: {}", r.body);
    let r = db.send(a.get(&format!("/admin/tables/public/things/cell?pk={}&col=doc", urlenc(pk)))).await;
    assert!(r.body.contains("data-json-check"), "json editor");
    let r = db.send(a.get(&format!("/admin/tables/public/things/cell?pk={}&col=day", urlenc(pk)))).await;
    assert!(r.body.contains("type=\"date\""), "date editor");

    let edit = |col: &str, value: &str| form(&[("pk", pk), ("col", col), ("value", value)]);
    for (col, value, shown) in [("n", "42", ">42<"), ("ok", "false", ">false<"), ("doc", "{\"b\": [1, 2]}", "[1,2]"), ("note", "", "class=\"empty\""), ("day", "2025-03-04", "2025-03-04")] {
        let r = db.send(a.post("/admin/tables/public/things/cell", &edit(col, value))).await;
        assert_eq!(r.status, StatusCode::OK, "{col}: {}", r.body);
        assert!(r.body.contains(shown), "{col}: {}", r.body);
        assert!(!r.body.contains("class=\"error"), "{col}: {}", r.body);
    }
    let row = || async {
        let r = db.su().await.query_one("SELECT to_jsonb(t)::text FROM things t", &[]).await.unwrap();
        r.get::<_, String>(0)
    };
    let saved = row().await;
    assert!(saved.contains("\"n\": 42") && saved.contains("\"note\": \"\"") && saved.contains("\"ok\": false"), "{saved}");
    for (col, value, msg) in [("n", "abc", "column &#34;n&#34;: invalid input for type integer"), ("n", "-1", "check"), ("doc", "{not json", "not valid JSON")] {
        let r = db.send(a.post("/admin/tables/public/things/cell", &edit(col, value))).await;
        assert_eq!(r.status, StatusCode::OK);
        assert!(r.body.contains("cell-error") && r.body.to_lowercase().contains(&msg.to_lowercase()), "{col}={value}: {}", r.body);
    }
    assert_eq!(row().await, saved, "nothing saved");
    // NULL is not ''.
    let r = db.send(a.post("/admin/tables/public/things/cell", &form(&[("pk", pk), ("col", "note"), ("value", ""), ("null", "1")]))).await;
    assert!(r.body.contains("class=\"null\">NULL<"), "{}", r.body);
    // Insert with defaults; a table without a primary key is read-only.
    let r = db.send(a.post("/admin/tables/public/things/insert", &form(&[("c:id", "2"), ("c:n", "3"), ("c:note", "")]))).await;
    assert_eq!(r.status, StatusCode::SEE_OTHER, "{}", r.body);
    let r = db.send(a.post("/admin/tables/public/things/insert", &form(&[("c:id", "x")]))).await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST);
    assert!(r.body.contains("column &#34;id&#34;: invalid input"), "{}", r.body);
    su.batch_execute("CREATE TABLE loose (a int); INSERT INTO loose VALUES (1); GRANT SELECT ON loose TO fluxbase_dashboard").await.unwrap();
    let r = db.send(a.get("/admin/tables/public/loose")).await;
    assert!(r.body.contains("no primary key"), "{}", r.body);
    // Read-only: no cell opens an editor, by mouse or keyboard (issue 34).
    assert!(r.body.contains("role=\"grid\""), "{}", r.body);
    assert!(!r.body.contains("data-editable") && !r.body.contains("hx-trigger=\"dblclick"), "{}", r.body);
    let r = db.send(a.get("/admin/tables/public/things")).await;
    assert!(r.body.contains("hx-trigger=\"dblclick, fbedit\"") && r.body.contains("data-editable"), "{}", r.body);
    db.drop().await;
}

fn urlenc(s: &str) -> String {
    serde_urlencoded::to_string([("x", s)]).unwrap()[2..].to_string()
}

/// alice and bob, each owning notes under an RLS policy on auth.uid().
pub(crate) async fn notes(db: &TestDb) -> (String, String) {
    let su = db.su().await;
    let alice: uuid::Uuid = su.query_one("SELECT user_id FROM dashboard.invite_user('alice@example.com')", &[]).await.unwrap().get(0);
    let bob: uuid::Uuid = su.query_one("SELECT user_id FROM dashboard.invite_user('bob@example.com')", &[]).await.unwrap().get(0);
    su.batch_execute(&format!(
        "CREATE TABLE notes (id int PRIMARY KEY, owner uuid NOT NULL, body text);
         INSERT INTO notes SELECT g, CASE WHEN g % 3 = 0 THEN '{alice}'::uuid ELSE '{bob}'::uuid END, 'note ' || g FROM generate_series(1, 30) g;
         ALTER TABLE notes ENABLE ROW LEVEL SECURITY;
         CREATE POLICY own ON notes TO authenticated USING (owner = auth.uid()) WITH CHECK (owner = auth.uid());
         CREATE POLICY admin_all ON notes TO fluxbase_dashboard USING (true);
         GRANT SELECT, INSERT, UPDATE, DELETE ON notes TO anon, authenticated, service_role, fluxbase_dashboard;"
    ))
    .await
    .unwrap();
    (alice.to_string(), bob.to_string())
}

#[tokio::test]
async fn select_all_matching_delete_as_alice_deletes_only_alices_rows() {
    let db = TestDb::new().await;
    let mut a = Admin::new(&db).await;
    let (alice, _bob) = notes(&db).await;
    // A reason is required.
    let r = db.send(a.post("/admin/tables/view-as", &form(&[("target", "alice@example.com"), ("reason", "")]))).await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST, "{}", r.body);
    assert!(r.cookie("__Host-fluxbase_imp").is_none());
    let r = db.send(a.post("/admin/tables/view-as", &form(&[("target", "alice@example.com"), ("reason", "ticket 42")]))).await;
    assert_eq!(r.status, StatusCode::SEE_OTHER, "{}", r.body);
    a.imp = r.cookie("__Host-fluxbase_imp");
    assert!(a.imp.is_some());
    let c = r.set_cookies().into_iter().find(|c| c.starts_with("__Host-fluxbase_imp=")).unwrap().to_string();
    assert!(c.contains("HttpOnly") && c.contains("Secure") && c.contains("SameSite=Strict"), "{c}");
    // The banner, and a second impersonation refused.
    let r = db.send(a.get("/admin/tables/public/notes?n=100")).await;
    assert!(r.body.contains("imp-banner") && r.body.contains("Viewing as alice@example.com") && r.body.contains("ticket 42"), "{}", r.body);
    assert_eq!(keys(&r.body).len(), 10, "RLS: alice sees her 10 notes");
    let r = db.send(a.post("/admin/tables/view-as", &form(&[("target", "anon"), ("reason", "again")]))).await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST);
    // RLS equivalence: grid, count and export as alice equal what a role
    // with alice's claims sees on its own connection.
    let real: Vec<String> = {
        let mut c = db.su().await;
        let t = c.transaction().await.unwrap();
        t.batch_execute("SET LOCAL ROLE authenticated").await.unwrap();
        let claims = serde_json::json!({"sub": alice, "role": "authenticated"}).to_string();
        t.execute("SELECT set_config('request.jwt.claims', $1, true)", &[&claims]).await.unwrap();
        let rows = t.query("SELECT n.id::text FROM notes n ORDER BY n.id", &[]).await.unwrap();
        rows.iter().map(|r| r.get(0)).collect()
    };
    assert_eq!(real.len(), 10);
    let grid: Vec<String> = keys(&db.send(a.get("/admin/tables/public/notes?n=100")).await.body)
        .iter()
        .map(|k| k["id"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(grid, real, "grid");
    let count = db.send(a.get("/admin/tables/public/notes/count")).await;
    assert!(count.body.contains("exactly 10 rows"), "{}", count.body);
    let export = db.send(a.get("/admin/tables/public/notes/export?format=csv")).await;
    let exported: Vec<String> = export.body.lines().map(|l| l.split(',').next().unwrap().to_string()).collect();
    assert_eq!(exported, real, "export");
    // Preview, then confirm: select all matching (no filter), delete.
    let body = form(&[("action", "delete"), ("scope", "all"), ("view", "")]);
    let r = db.send(a.post("/admin/tables/public/notes/batch/preview", &body)).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    assert!(r.body.contains("class=\"batch-count\">10<"), "preview says 10: {}", r.body);
    let r = db.send(a.post("/admin/tables/public/notes/batch", &body)).await;
    assert!(r.body.contains("Deleted <strong class=\"batch-count\">10<"), "{}", r.body);
    let su = db.su().await;
    let left: Vec<(i64, bool)> = su
        .query("SELECT count(*), bool_and(owner::text <> $1) FROM notes", &[&alice])
        .await
        .unwrap()
        .iter()
        .map(|r| (r.get(0), r.get(1)))
        .collect();
    assert_eq!(left, vec![(20, true)], "only alice's rows went");
    // Stop: the cookie goes, the admin's own view is back.
    let r = db.send(a.post("/admin/tables/view-as/stop", "")).await;
    assert_eq!(r.status, StatusCode::SEE_OTHER);
    assert_eq!(r.cookie("__Host-fluxbase_imp").as_deref(), Some(""));
    let ended: bool = su.query_one("SELECT ended_at IS NOT NULL FROM auth.impersonation_sessions", &[]).await.unwrap().get(0);
    assert!(ended);
    let stale = db.send(a.get("/admin/tables/public/notes?n=100")).await;
    assert!(!stale.body.contains("imp-banner"));
    assert_eq!(stale.cookie("__Host-fluxbase_imp").as_deref(), Some(""), "a stale cookie is cleared");
    assert_eq!(keys(&stale.body).len(), 20, "the admin's view");
    db.drop().await;
}

#[tokio::test]
async fn impersonation_expiry_and_rls_equivalence_for_anon_and_service_role() {
    let db = TestDb::new().await;
    let mut a = Admin::new(&db).await;
    notes(&db).await;
    let su = db.su().await;
    for (target, want) in [("service_role", 30usize), ("anon", 0)] {
        let r = db.send(a.post("/admin/tables/view-as", &form(&[("target", target), ("reason", "rls check")]))).await;
        a.imp = r.cookie("__Host-fluxbase_imp");
        let r = db.send(a.get("/admin/tables/public/notes?n=100")).await;
        assert_eq!(r.status, StatusCode::OK, "{target}: {}", r.body);
        assert_eq!(keys(&r.body).len(), want, "{target}");
        // The same as that role sees on its own connection.
        let real: i64 = {
            let mut c = db.su().await;
            let t = c.transaction().await.unwrap();
            t.batch_execute(&format!("SET LOCAL ROLE {target}")).await.unwrap();
            t.query_one("SELECT count(*) FROM notes", &[]).await.unwrap().get(0)
        };
        assert_eq!(real as usize, want, "{target} on its own connection");
        let count = db.send(a.get("/admin/tables/public/notes/count")).await;
        assert!(count.body.contains(&format!("exactly {want} rows")), "{target}: {}", count.body);
        // Expiry: the banner goes and calls run as the admin again.
        su.batch_execute("UPDATE auth.impersonation_sessions SET expires_at = now() - interval '1 second' WHERE ended_at IS NULL").await.unwrap();
        let r = db.send(a.get("/admin/tables/public/notes?n=100")).await;
        assert!(!r.body.contains("imp-banner"), "{target}");
        assert_eq!(keys(&r.body).len(), 30);
        assert_eq!(r.cookie("__Host-fluxbase_imp").as_deref(), Some(""));
        a.imp = None;
    }
    db.drop().await;
}

const HOSTILE: [&str; 2] = ["<img src=x onerror=alert(1)>", "\"; drop table x; --"];

#[tokio::test]
async fn hostile_names_render_as_text_and_browse_and_edit_safely() {
    let db = TestDb::new().await;
    let a = Admin::new(&db).await;
    let su = db.su().await;
    let [img, drop] = HOSTILE;
    let q = |s: &str| format!("\"{}\"", s.replace('"', "\"\""));
    su.batch_execute(&format!(
        "CREATE SCHEMA {s}; CREATE TABLE {s}.{t} (id int PRIMARY KEY, {c} text);
         INSERT INTO {s}.{t} VALUES (1, {v});
         GRANT USAGE ON SCHEMA {s} TO fluxbase_dashboard; GRANT SELECT, UPDATE ON {s}.{t} TO fluxbase_dashboard;
         CREATE TABLE x (a int);",
        s = q(img),
        t = q(drop),
        c = q(img),
        v = "'<script>alert(2)</script>'"
    ))
    .await
    .unwrap();
    let r = db.send(a.get("/admin/tables")).await;
    assert_eq!(r.status, StatusCode::OK);
    assert!(!r.body.contains("<img src=x"), "escaped");
    assert!(r.body.contains("&lt;img src=x onerror=alert(1)&gt;") || r.body.contains("&#60;img"), "{}", r.body);
    let path = format!("/admin/tables/{}/{}", urlenc(img).replace('+', "%20"), urlenc(drop).replace('+', "%20"));
    assert!(r.body.contains(&path.replace('&', "&amp;")) || r.body.contains(&path), "link to {path}");
    let r = db.send(a.get(&path)).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    assert!(!r.body.contains("<img src=x") && !r.body.contains("<script>alert(2)"), "{}", r.body);
    assert_eq!(keys(&r.body).len(), 1);
    let r = db.send(a.post(&format!("{path}/cell"), &form(&[("pk", r#"{"id":"1"}"#), ("col", img), ("value", drop)]))).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    let v: String = su.query_one(&format!("SELECT {} FROM {}.{}", q(img), q(img), q(drop)), &[]).await.unwrap().get(0);
    assert_eq!(v, drop);
    let x: bool = su.query_one("SELECT to_regclass('public.x') IS NOT NULL", &[]).await.unwrap().get(0);
    assert!(x, "table x is still there");
    db.drop().await;
}

#[tokio::test]
async fn export_of_100000_rows_equals_copy_csv_byte_for_byte() {
    let db = TestDb::new().await;
    let a = Admin::new(&db).await;
    let su = db.su().await;
    su.batch_execute(
        "CREATE TABLE big (id int PRIMARY KEY, name text, price numeric(12,2), ok boolean, at timestamptz, doc jsonb, blob bytea);
         INSERT INTO big SELECT g,
             CASE g % 5 WHEN 0 THEN NULL WHEN 1 THEN '' WHEN 2 THEN 'a,b \"q\"' || g WHEN 3 THEN E'line\\nbreak' ELSE 'plain ' || g END,
             g / 7.0, g % 2 = 0, timestamptz '2024-01-01 00:00:00+00' + g * interval '1 minute',
             CASE WHEN g % 4 = 0 THEN jsonb_build_object('g', g, 's', 'x,y') END, CASE WHEN g % 6 = 0 THEN '\\x00ff'::bytea END
         FROM generate_series(1, 100000) g;
         GRANT SELECT ON big TO fluxbase_dashboard",
    )
    .await
    .unwrap();
    let r = db.send(a.get("/admin/tables/public/big/export?format=csv&csv=copy")).await;
    assert_eq!(r.status, StatusCode::OK);
    assert!(r.header("content-disposition").unwrap().contains("big.csv"));
    let mut copy = Vec::new();
    {
        use futures_util::StreamExt;
        let s = su.copy_out("COPY (SELECT * FROM big ORDER BY id) TO STDOUT CSV").await.unwrap();
        let mut s = std::pin::pin!(s);
        while let Some(chunk) = s.next().await {
            copy.extend_from_slice(&chunk.unwrap());
        }
    }
    let copy = String::from_utf8(copy).unwrap();
    if let Some((i, (a, b))) = r.body.lines().zip(copy.lines()).enumerate().find(|(_, (a, b))| a != b) {
        panic!("line {i} differs:\n export: {a}\n copy:   {b}");
    }
    assert_eq!(r.body.len(), copy.len());
    assert!(r.body == copy, "byte for byte");
    let r = db.send(a.get("/admin/tables/public/big/export?format=json&fc=id&fo=lte&fv=3")).await;
    let v: serde_json::Value = serde_json::from_str(&r.body).expect("valid JSON");
    assert_eq!(v.as_array().unwrap().len(), 3);
    assert_eq!(v[0]["name"], "", "'' stays ''");
    assert_eq!(v[4]["name"], serde_json::Value::Null, "NULL is null");
    db.drop().await;
}

#[tokio::test]
async fn a_foreign_key_value_links_to_a_filtered_view_of_the_referenced_table() {
    let db = TestDb::new().await;
    let a = Admin::new(&db).await;
    db.su()
        .await
        .batch_execute(
            "CREATE SCHEMA zoo; CREATE TABLE zoo.\"Owners\" (id int PRIMARY KEY, name text);
             CREATE TABLE pets (id int PRIMARY KEY, owner_id int REFERENCES zoo.\"Owners\");
             INSERT INTO zoo.\"Owners\" VALUES (7, 'ann'), (8, 'bo'); INSERT INTO pets VALUES (1, 7), (2, NULL);
             GRANT USAGE ON SCHEMA zoo TO fluxbase_dashboard;
             GRANT SELECT ON pets, zoo.\"Owners\" TO fluxbase_dashboard",
        )
        .await
        .unwrap();
    let r = db.send(a.get("/admin/tables/public/pets")).await;
    let link = "/admin/tables/zoo/Owners?fc=id&#38;fo=eq&#38;fv=7";
    assert!(r.body.contains(&format!("<a class=\"fk\" href=\"{link}\">7</a>")), "{}", r.body);
    let r = db.send(a.get(&unescape(link))).await;
    assert_eq!(keys(&r.body), vec![serde_json::json!({"id": "7"})]);
    db.drop().await;
}

#[tokio::test]
async fn the_event_stream_checks_rights_first_and_ends_at_shutdown() {
    let db = TestDb::new().await;
    let a = Admin::new(&db).await;
    db.su().await.batch_execute("CREATE TABLE secret (id int PRIMARY KEY); CREATE TABLE open (id int PRIMARY KEY); GRANT SELECT ON open TO fluxbase_dashboard").await.unwrap();
    // (an admin reads a user schema's table as its owner, issue 30: `secret`
    // streams; the extension's credentials never do)
    let r = db.send(a.get("/admin/tables/dashboard_auth/credentials/events")).await;
    assert_eq!(r.status, StatusCode::FORBIDDEN, "no stream without rights: {}", r.body);
    let app = db.app.clone();
    tokio::spawn(async move {
        tokio::time::sleep(std::time::Duration::from_millis(300)).await;
        app.live.close();
    });
    let r = tokio::time::timeout(std::time::Duration::from_secs(10), db.send(a.get("/admin/tables/public/open/events")))
        .await
        .expect("the stream ends when the server shuts down");
    assert_eq!(r.status, StatusCode::OK);
    assert_eq!(r.header("content-type"), Some("text/event-stream"));
    db.drop().await;
}
