//! The Tables section's export and exact count (issue 19): the CSV export is
//! `COPY ... TO STDOUT CSV` byte for byte for every kind of value, also under
//! an impersonation; the JSON export is one object per row; the count runs
//! under a statement timeout and says so when it runs out.

use axum::http::StatusCode;

use crate::common::*;
use crate::tables::{notes, Admin};

/// What `COPY (query) TO STDOUT CSV` writes, run on `c`.
async fn copy_csv(c: &tokio_postgres::Client, query: &str) -> String {
    use futures_util::StreamExt;
    let s = c.copy_out(&format!("COPY ({query}) TO STDOUT CSV")).await.unwrap();
    let mut s = std::pin::pin!(s);
    let mut out = Vec::new();
    while let Some(chunk) = s.next().await {
        out.extend_from_slice(&chunk.unwrap());
    }
    String::from_utf8(out).unwrap()
}

fn same(export: &str, copy: &str) {
    if let Some((i, (a, b))) = export.lines().zip(copy.lines()).enumerate().find(|(_, (a, b))| a != b) {
        panic!("line {i} differs:\n export: {a:?}\n copy:   {b:?}");
    }
    assert_eq!(export.len(), copy.len());
    assert!(export == copy, "byte for byte");
}

/// Every kind of value COPY prints its own way, and a hostile column name.
const RICH: &str = include_str!("../../../tests/fixtures/export_rich.sql");

#[tokio::test]
async fn csv_export_of_every_kind_of_value_equals_copy_and_json_is_one_object_per_row() {
    let db = TestDb::new().await;
    let a = Admin::new(&db).await;
    let su = db.su().await;
    su.batch_execute(RICH).await.unwrap();
    let r = db.send(a.get("/admin/tables/public/rich/export?format=csv&csv=copy")).await;
    assert_eq!(r.status, StatusCode::OK);
    assert!(r.header("content-type").unwrap().starts_with("text/csv"));
    same(&r.body, &copy_csv(&su, "SELECT * FROM rich ORDER BY id").await);
    // By default spreadsheet-safe: COPY's text with a ' before every value
    // that would start a formula (issue 28 item 5).
    let r = db.send(a.get("/admin/tables/public/rich/export?format=csv")).await;
    same(&r.body, &fluxbase_web::csv_safe::spreadsheet_safe(&copy_csv(&su, "SELECT * FROM rich ORDER BY id").await));
    // The view's filters, sort and search apply.
    let r = db.send(a.get("/admin/tables/public/rich/export?fc=id&fo=lte&fv=2000&s=-n&q=row&csv=copy")).await;
    same(&r.body, &copy_csv(&su, "SELECT * FROM rich WHERE id <= 2000 AND t ILIKE '%row%' ORDER BY n DESC NULLS FIRST, id").await);
    // A single column: `\.` is quoted (it was COPY's end-of-data marker).
    let r = db.send(a.get("/admin/tables/public/one/export?csv=copy")).await;
    same(&r.body, &copy_csv(&su, "SELECT v FROM one ORDER BY ctid").await);
    assert!(r.body.starts_with("\"\\.\"\n"), "{}", r.body);
    // JSON: an array of to_json of each row, in order.
    let r = db.send(a.get("/admin/tables/public/rich/export?format=json")).await;
    assert_eq!(r.status, StatusCode::OK);
    let got: serde_json::Value = serde_json::from_str(&r.body).expect("valid JSON");
    let want: serde_json::Value =
        su.query_one("SELECT json_agg(to_json(r) ORDER BY id) FROM rich r", &[]).await.unwrap().get(0);
    assert_eq!(got, want);
    let r = db.send(a.get("/admin/tables/public/rich/export?format=json&fc=id&fo=gt&fv=5000")).await;
    assert_eq!(serde_json::from_str::<serde_json::Value>(&r.body).unwrap(), serde_json::json!([]), "{}", r.body);
    // Refused before the download starts: a status, not a cut-off file.
    // (a user schema's table is read as its owner, issue 30, grant or not; the
    // extension's credentials never)
    su.batch_execute("REVOKE SELECT ON one FROM fluxbase_dashboard").await.unwrap();
    let r = db.send(a.get("/admin/tables/public/one/export")).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    let r = db.send(a.get("/admin/tables/dashboard_auth/credentials/export")).await;
    assert_eq!(r.status, StatusCode::FORBIDDEN, "{}", r.body);
    // An unknown filter column: the caller's mistake, 400 naming it (not a 500, not a file).
    let r = db.send(a.get("/admin/tables/public/rich/export?fc=nope&fo=eq&fv=1")).await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST, "{}", r.body);
    assert!(r.body.contains("nope"), "{}", r.body);
    assert!(r.header("content-disposition").is_none());
    db.drop().await;
}

#[tokio::test]
async fn export_and_count_as_alice_equal_what_her_own_login_sees() {
    let db = TestDb::new().await;
    let mut a = Admin::new(&db).await;
    let (alice, _) = notes(&db).await;
    let r = db.send(a.post("/admin/tables/view-as", &form(&[("target", "alice@example.com"), ("reason", "export check")]))).await;
    a.imp = r.cookie("__Host-fluxbase_imp");
    assert!(a.imp.is_some());
    // alice's own login: the role and claims PostgREST would give her
    let c = db.su().await;
    c.batch_execute("SET ROLE authenticated").await.unwrap();
    let claims = serde_json::json!({"sub": alice, "role": "authenticated"}).to_string();
    c.execute("SELECT set_config('request.jwt.claims', $1, false)", &[&claims]).await.unwrap();
    let real = copy_csv(&c, "SELECT * FROM notes ORDER BY id").await;
    assert_eq!(real.lines().count(), 10);
    let r = db.send(a.get("/admin/tables/public/notes/export?csv=copy")).await;
    same(&r.body, &real);
    let r = db.send(a.get("/admin/tables/public/notes/count?fc=id&fo=gt&fv=15")).await;
    assert!(r.body.contains("exactly 5 rows"), "{}", r.body);
    db.drop().await;
}

#[tokio::test]
async fn an_exact_count_that_runs_out_of_time_says_so_and_shows_the_estimate() {
    let db = TestDb::new().await;
    let a = Admin::new(&db).await;
    let su = db.su().await;
    su.batch_execute(
        "CREATE TABLE t (id int PRIMARY KEY); INSERT INTO t SELECT generate_series(1, 1000); ANALYZE t;
         CREATE VIEW slow AS SELECT id FROM t WHERE pg_sleep(0.02)::text = '';
         GRANT SELECT ON t, slow TO fluxbase_dashboard",
    )
    .await
    .unwrap();
    let started = std::time::Instant::now();
    let r = db.send(a.get("/admin/tables/public/slow/count")).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    assert!(r.body.contains("count-timeout") && r.body.contains("5 s"), "{}", r.body);
    assert!(started.elapsed() < std::time::Duration::from_secs(15));
    // the table itself counts, and the transaction was not spoilt by the timeout
    let r = db.send(a.get("/admin/tables/public/t/count?fc=id&fo=gt&fv=10")).await;
    assert!(r.body.contains("exactly 990 rows"), "{}", r.body);
    db.drop().await;
}

/// Issue 28 item 5: the CSV download is spreadsheet-safe by default (a ' before
/// every value that would start a formula: = + - @ tab CR, as the Audit CSV);
/// `csv=copy` is COPY's text exactly.
#[tokio::test]
async fn csv_export_is_spreadsheet_safe_by_default_and_copy_exact_on_request() {
    let db = TestDb::new().await;
    let a = Admin::new(&db).await;
    let su = db.su().await;
    su.batch_execute(
        "CREATE TABLE f (id int PRIMARY KEY, v text);
         INSERT INTO f VALUES (1, '=HYPERLINK(\"http://x\",\"y\")'), (2, '+cmd|'' /C calc''!A0'), (3, '@SUM(1)'),
                              (4, '-2'), (5, E'\\tx'), (6, E'\\rx'), (7, 'plain'), (-8, NULL);
         GRANT SELECT ON f TO fluxbase_dashboard",
    )
    .await
    .unwrap();
    let r = db.send(a.get("/admin/tables/public/f/export")).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    assert_eq!(
        r.body,
        "'-8,\n1,\"'=HYPERLINK(\"\"http://x\"\",\"\"y\"\")\"\n2,'+cmd|' /C calc'!A0\n3,'@SUM(1)\n4,'-2\n5,'\tx\n6,\"'\rx\"\n7,plain\n"
    );
    let r = db.send(a.get("/admin/tables/public/f/export?csv=copy")).await;
    same(&r.body, &copy_csv(&su, "SELECT * FROM f ORDER BY id").await);
    assert!(r.body.contains("\n1,\"=HYPERLINK("), "{}", r.body);
    db.drop().await;
}
