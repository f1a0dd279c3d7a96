//! A read replica (`App::with_replica`), at the handler level. The "replica"
//! here is a copy of the test database made with CREATE DATABASE ... TEMPLATE
//! (the same admin and session, then data that differs from the primary's),
//! so which server answered shows in the page; tests/test_replica.py does the
//! same with a real streaming standby.

use axum::http::StatusCode;
use fluxbase_web::{App, Config};

use crate::common::{form, get, pg, post, su, TestDb};

/// `db`'s copy, taken now (its connections closed first).
async fn copy_of(db: &TestDb) -> String {
    db.app.db.pool.close();
    db.app.db.reserved.close();
    let copy = format!("{}_replica", db.name);
    let c = su("postgres").await;
    for _ in 0..50 {
        // the template must have no other connection: wait for closed ones to go
        match c.batch_execute(&format!("CREATE DATABASE {copy} TEMPLATE {}", db.name)).await {
            Ok(()) => return copy,
            Err(_) => tokio::time::sleep(std::time::Duration::from_millis(100)).await,
        }
    }
    panic!("could not copy {}", db.name);
}

fn app_with_replica(db: &TestDb, replica_db: &str) -> App {
    let cfg = Config { pg: pg("fb_web", &db.name), behind_proxy: false, tls: false, pool_size: 4 };
    App::with_replica(cfg, Some(pg("fb_web", replica_db))).unwrap()
}

use crate::common::send_to as send;

#[tokio::test]
async fn gets_read_the_replica_posts_write_the_primary_and_sessions_are_the_primarys() {
    let db = TestDb::new().await;
    let token = db.setup().await;
    let other = {
        let su = db.su().await;
        su.batch_execute(
            "CREATE TABLE items (id int PRIMARY KEY, label text);
             INSERT INTO items VALUES (1, 'on both');
             GRANT SELECT, INSERT, UPDATE, DELETE ON items TO fluxbase_dashboard",
        )
        .await
        .unwrap();
        let row = su
            .query_one("SELECT session_token FROM dashboard_auth.login('root@example.com', $1)", &[&crate::common::PASSWORD])
            .await
            .unwrap();
        row.get::<_, String>(0)
    };
    let copy = copy_of(&db).await;
    db.su().await.batch_execute("INSERT INTO items VALUES (2, 'only on the primary')").await.unwrap();
    let app = app_with_replica(&db, &copy);

    // A GET: the replica's data.
    let r = send(&app, get("/admin/tables/public/items/grid", Some(&token))).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    assert!(r.body.contains("on both"));
    assert!(!r.body.contains("only on the primary"), "the grid came from the replica");

    // A POST: the primary's (it edits the row only the primary has) and its
    // answer shows the primary's state.
    let csrf = send(&app, get("/admin/tables", Some(&token))).await.csrf();
    let r = send(
        &app,
        post(
            "/admin/tables/public/items/cell",
            &form(&[("pk", r#"{"id": 2}"#), ("col", "label"), ("value", "edited on the primary")]),
            Some((&token, &csrf)),
        ),
    )
    .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    assert!(r.body.contains("edited on the primary"), "{}", r.body);
    let label: String = db.su().await.query_one("SELECT label FROM items WHERE id = 2", &[]).await.unwrap().get(0);
    assert_eq!(label, "edited on the primary");

    // A streamed export reads the replica too (its pages are read after the
    // handler returned, while the body streams).
    let r = send(&app, get("/admin/tables/public/items/export", Some(&token))).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    assert!(r.body.contains("on both") && !r.body.contains("edited on the primary"), "{}", r.body);

    // A session revoked on the primary (still live on the replica) is
    // refused at once: sessions are validated on the primary.
    db.su()
        .await
        .execute("UPDATE dashboard_auth.sessions SET revoked_at = now() WHERE token_digest = sha256(convert_to($1, 'UTF8'))", &[&other])
        .await
        .unwrap();
    let r = send(&app, get("/admin/users", Some(&other))).await;
    assert_eq!(r.status, StatusCode::SEE_OTHER, "{}", r.body);
    assert!(r.header("location").unwrap_or("").contains("/admin/login"));

    app.db.pool.close();
    app.db.reserved.close();
    if let Some(rep) = &app.db.replica {
        rep.pool.close();
    }
    su("postgres").await.batch_execute(&format!("DROP DATABASE {copy} WITH (FORCE)")).await.unwrap();
    db.drop().await;
}

#[tokio::test]
async fn a_replica_that_cannot_be_reached_leaves_the_pages_to_the_primary() {
    let db = TestDb::new().await;
    let token = db.setup().await;
    db.su()
        .await
        .batch_execute(
            "CREATE TABLE items (id int PRIMARY KEY, label text);
             INSERT INTO items VALUES (1, 'served by the primary');
             GRANT SELECT ON items TO fluxbase_dashboard",
        )
        .await
        .unwrap();
    let app = app_with_replica(&db, "no_such_database_here");
    for path in ["/admin/tables/public/items/grid", "/admin/users", "/admin/admins", "/admin/audit", "/admin/settings", "/admin"] {
        let r = send(&app, get(path, Some(&token))).await;
        assert_eq!(r.status, StatusCode::OK, "{path}: {}", r.body);
    }
    let r = send(&app, get("/admin/tables/public/items/grid", Some(&token))).await;
    assert!(r.body.contains("served by the primary"));
    // A streamed export too (its body is read after the handler returned).
    let r = send(&app, get("/admin/tables/public/items/export", Some(&token))).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    assert!(r.body.contains("served by the primary"), "{}", r.body);
    app.db.pool.close();
    app.db.reserved.close();
    db.drop().await;
}
