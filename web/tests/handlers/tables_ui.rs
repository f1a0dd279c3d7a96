//! The Tables section's enum select editor and *View as…* returning to the
//! page it was started from (issue 19).

use axum::http::StatusCode;

use crate::common::*;
use crate::tables::{keys, unescape, Admin};

const HOSTILE: &str = r#"<img src=x onerror=alert(1)> "q" 'q'"#;

async fn moods(db: &TestDb) {
    let su = db.su().await;
    su.execute(&format!("CREATE TYPE mood AS ENUM ('sad', 'ok', {})", quote(HOSTILE)), &[]).await.unwrap();
    su.batch_execute(
        "ALTER TYPE mood ADD VALUE 'meh' BEFORE 'ok';
         CREATE DOMAIN strict_mood AS mood;
         CREATE TABLE feelings (id int PRIMARY KEY, m mood, sm strict_mood NOT NULL DEFAULT 'ok');
         INSERT INTO feelings VALUES (1, 'sad', 'sad'), (2, NULL, 'ok');
         GRANT SELECT, INSERT, UPDATE ON feelings TO fluxbase_dashboard; GRANT SELECT ON feelings TO service_role",
    )
    .await
    .unwrap();
}

fn quote(s: &str) -> String {
    format!("'{}'", s.replace('\'', "''"))
}

/// The labels a `<select>` offers, as sent (`value="..."`), in order.
fn options(body: &str) -> Vec<String> {
    body.split("<option value=\"").skip(1).map(|rest| unescape(&rest[..rest.find('"').unwrap()])).collect()
}

async fn m_of(db: &TestDb, id: i32) -> Option<String> {
    db.su().await.query_one("SELECT m::text FROM feelings WHERE id = $1", &[&id]).await.unwrap().get(0)
}

#[tokio::test]
async fn the_enum_editor_offers_the_labels_in_order_and_saves_one() {
    let db = TestDb::new().await;
    let a = Admin::new(&db).await;
    moods(&db).await;
    let r = db.send(a.get("/admin/tables/public/feelings/cell?pk=%7B%22id%22%3A%221%22%7D&col=m")).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    assert!(r.body.contains("<select name=\"choice\""), "{}", r.body);
    assert_eq!(options(&r.body), ["l:sad", "l:meh", "l:ok", &format!("l:{HOSTILE}"), "null"], "in the enum's order, NULL last");
    assert!(!r.body.contains("<img"), "a label is text: {}", r.body);
    assert!(r.body.contains("value=\"l:sad\" selected"), "the current label is chosen");
    // NOT NULL through the domain: no NULL to choose.
    let r = db.send(a.get("/admin/tables/public/feelings/cell?pk=%7B%22id%22%3A%222%22%7D&col=sm")).await;
    assert_eq!(options(&r.body), ["l:sad", "l:meh", "l:ok", &format!("l:{HOSTILE}")]);
    // Save the hostile label, then NULL.
    let body = form(&[("pk", r#"{"id":"1"}"#), ("col", "m"), ("choice", &format!("l:{HOSTILE}"))]);
    let r = db.send(a.post("/admin/tables/public/feelings/cell", &body)).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    assert!(!r.body.contains("<img") && unescape(&r.body).contains(HOSTILE), "{}", r.body);
    assert_eq!(m_of(&db, 1).await.as_deref(), Some(HOSTILE));
    let body = form(&[("pk", r#"{"id":"1"}"#), ("col", "m"), ("choice", "null")]);
    let r = db.send(a.post("/admin/tables/public/feelings/cell", &body)).await;
    assert!(r.body.contains("class=\"null\""), "{}", r.body);
    assert_eq!(m_of(&db, 1).await, None);
    // The insert form has the select too; its label is inserted.
    let r = db.send(a.get("/admin/tables/public/feelings/insert")).await;
    assert!(r.body.contains("<select name=\"e:m\"") && r.body.contains("<select name=\"e:sm\""), "{}", r.body);
    let r = db.send(a.post("/admin/tables/public/feelings/insert", &form(&[("c:id", "3"), ("e:m", "l:meh"), ("e:sm", "")]))).await;
    assert_eq!(r.status, StatusCode::SEE_OTHER, "{}", r.body);
    let row: (Option<String>, String) = {
        let su = db.su().await;
        let r = su.query_one("SELECT m::text, sm::text FROM feelings WHERE id = 3", &[]).await.unwrap();
        (r.get(0), r.get(1))
    };
    assert_eq!(row, (Some("meh".into()), "ok".into()), "the chosen label, and the default");
    db.drop().await;
}

#[tokio::test]
async fn a_label_not_in_the_enum_shows_the_databases_error_and_changes_nothing() {
    let db = TestDb::new().await;
    let a = Admin::new(&db).await;
    moods(&db).await;
    let audit_before: i64 = db.su().await.query_one("SELECT count(*) FROM dashboard_auth.audit_log", &[]).await.unwrap().get(0);
    for field in ["choice", "value"] {
        let v = if field == "choice" { "l:happy" } else { "happy" };
        let body = form(&[("pk", r#"{"id":"1"}"#), ("col", "m"), (field, v)]);
        let r = db.send(a.post("/admin/tables/public/feelings/cell", &body)).await;
        assert_eq!(r.status, StatusCode::OK, "{}", r.body);
        assert!(r.body.contains("cell-error"), "{}", r.body);
        assert!(unescape(&r.body).contains(r#"column "m": invalid input for type public.mood: "happy""#), "the database's words: {}", r.body);
        assert!(r.body.contains("<select name=\"choice\""), "the editor again: {}", r.body);
        assert_eq!(m_of(&db, 1).await.as_deref(), Some("sad"), "nothing saved");
    }
    let body = form(&[("pk", r#"{"id":"1"}"#), ("col", "m"), ("choice", "sad")]);
    let r = db.send(a.post("/admin/tables/public/feelings/cell", &body)).await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST, "a choice is `l:` and a label, or `null`");
    let audit_after: i64 = db.su().await.query_one("SELECT count(*) FROM dashboard_auth.audit_log", &[]).await.unwrap().get(0);
    assert_eq!(audit_after, audit_before, "no edit was recorded");
    db.drop().await;
}

#[tokio::test]
async fn view_as_and_stop_return_to_the_page_they_came_from_and_nowhere_else() {
    let db = TestDb::new().await;
    let mut a = Admin::new(&db).await;
    moods(&db).await;
    let here = r#"/admin/tables/public/feelings?fc=id&fo=gte&fv=1&n=25&after=%7B%22after%22%3A%5B%221%22%5D%2C%22order%22%3A%22id+al%22%7D&p=2"#;
    let r = db.send(a.post("/admin/tables/view-as", &form(&[("target", "service_role"), ("reason", "check"), ("back", here)]))).await;
    assert_eq!(r.status, StatusCode::SEE_OTHER, "{}", r.body);
    assert_eq!(r.header("location"), Some(here));
    a.imp = r.cookie("__Host-fluxbase_imp");
    let r = db.send(a.get(here)).await;
    assert!(r.body.contains("imp-banner"), "{}", r.body);
    assert!(r.body.contains("name=\"back\""), "the Stop form says where it was");
    let r = db.send(a.post("/admin/tables/view-as/stop", &form(&[("back", "/admin/users?q=x")]))).await;
    assert_eq!(r.header("location"), Some("/admin/users?q=x"));
    a.imp = None;
    // Anything that is not a path of this dashboard goes to the tables list.
    for evil in [
        "//evil.example",
        "https://evil.example/admin/",
        "/admin/../x",
        "/admin/tables/%2e%2e/%2E%2E/x",
        "/admin/./tables",
        "/admin\\evil",
        "/\\evil.example",
        "/admin/\\\\evil.example",
        "/admin//evil.example",
        "/admin/%5C%5Cevil",
        "/administrator",
        "/admin/t\u{e9}st",
        "/admin/x\r\nSet-Cookie: a=b",
        "javascript:alert(1)",
        "",
    ] {
        let r = db.send(a.post("/admin/tables/view-as", &form(&[("target", "anon"), ("reason", "r"), ("back", evil)]))).await;
        assert_eq!(r.status, StatusCode::SEE_OTHER, "{evil:?}: {}", r.body);
        assert_eq!(r.header("location"), Some("/admin/tables"), "{evil:?}");
        a.imp = r.cookie("__Host-fluxbase_imp");
        let r = db.send(a.post("/admin/tables/view-as/stop", &form(&[("back", evil)]))).await;
        assert_eq!(r.header("location"), Some("/admin/tables"), "stop, {evil:?}");
        a.imp = None;
    }
    // A viewer who may not read the table sees why, under the banner (its
    // Stop is there), instead of a bare error page.
    let r = db.send(a.post("/admin/tables/view-as", &form(&[("target", "anon"), ("reason", "r"), ("back", here)]))).await;
    a.imp = r.cookie("__Host-fluxbase_imp");
    let r = db.send(a.get(here)).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    assert!(r.body.contains("imp-banner") && r.body.contains("class=\"error denied\""), "{}", r.body);
    assert!(r.body.contains("permission denied for table feelings"), "{}", r.body);
    let r = db.send(a.post("/admin/tables/view-as/stop", &form(&[("back", here)]))).await;
    assert_eq!(r.header("location"), Some(here));
    a.imp = None;
    // (the admin's own view again)
    assert_eq!(keys(&db.send(a.get("/admin/tables/public/feelings")).await.body).len(), 2);
    db.drop().await;
}

#[tokio::test]
async fn the_list_says_how_many_policies_a_table_with_rls_has() {
    let db = TestDb::new().await;
    let a = Admin::new(&db).await;
    db.su()
        .await
        .batch_execute(
            "CREATE TABLE guarded (id int PRIMARY KEY); ALTER TABLE guarded ENABLE ROW LEVEL SECURITY;
             CREATE POLICY p1 ON guarded USING (true); CREATE POLICY p2 ON guarded FOR DELETE USING (false);
             CREATE TABLE single (id int PRIMARY KEY); ALTER TABLE single ENABLE ROW LEVEL SECURITY;
             CREATE POLICY p_only ON single USING (true);
             CREATE TABLE open (id int PRIMARY KEY);
             GRANT SELECT ON guarded, single, open TO fluxbase_dashboard",
        )
        .await
        .unwrap();
    let r = db.send(a.get("/admin/tables")).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    let row = |name: &str| {
        let i = r.body.find(&format!(">{name}</a>")).unwrap();
        r.body[i..i + r.body[i..].find("</tr>").unwrap()].to_string()
    };
    assert!(row("guarded").contains("2 policies"), "{}", row("guarded"));
    assert!(row("single").contains("1 policy<"), "{}", row("single"));
    assert!(row("open").contains(">off<") && !row("open").contains("polic"), "{}", row("open"));
    db.drop().await;
}

#[tokio::test]
async fn view_as_finds_app_users_by_email() {
    let db = TestDb::new().await;
    let a = Admin::new(&db).await;
    db.su()
        .await
        .batch_execute(
            "SELECT dashboard.invite_user('alice@example.com'); SELECT dashboard.invite_user('bob@example.com')",
        )
        .await
        .unwrap();
    let r = db.send(a.get("/admin/tables/view-as/users?target=alice")).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    assert!(r.body.contains("<option value=\"alice@example.com\">alice@example.com · authenticated · "), "{}", r.body);
    assert!(!r.body.contains("bob@") && r.body.contains("value=\"anon\"") && r.body.contains("value=\"service_role\""), "{}", r.body);
    let r = db.send(a.get("/admin/tables/view-as/users")).await;
    assert_eq!(r.body.matches("@example.com\">").count(), 2, "{}", r.body);
    db.drop().await;
}
