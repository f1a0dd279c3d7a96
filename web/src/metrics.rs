//! The last hour of a few figures, sampled in the server's memory for the
//! Analytics charts: a background task (`spawn_sampler`, started by
//! `serve`) takes one sample every `EVERY`, and a viewed Analytics page adds
//! one when the newest is older than that. Nothing is stored anywhere else.

use std::collections::VecDeque;
use std::sync::Mutex;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use crate::api;
use crate::db::Db;

/// Sampling interval; an hour of samples is 240 points.
pub const EVERY: Duration = Duration::from_secs(15);
const KEEP_SECS: u64 = 3600;

#[derive(Clone, Copy, Debug)]
pub struct Sample {
    /// Unix seconds.
    pub at: u64,
    pub connections: i64,
    pub active: i64,
    pub admin_sessions: i64,
    /// Buffer cache hit ratio of the database, in percent.
    pub cache_hit_pct: f64,
    pub pool_in_use: i64,
    /// Size of the database in MB (its growth over the hour).
    pub db_mb: f64,
}

#[derive(Default)]
pub struct Samples(Mutex<VecDeque<Sample>>);

fn now() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_secs()).unwrap_or(0)
}

impl Samples {
    pub fn push(&self, s: Sample) {
        let mut q = self.0.lock().unwrap_or_else(|e| e.into_inner());
        q.push_back(s);
        while q.front().is_some_and(|f| f.at + KEEP_SECS < s.at) {
            q.pop_front();
        }
    }

    pub fn all(&self) -> Vec<Sample> {
        self.0.lock().unwrap_or_else(|e| e.into_inner()).iter().copied().collect()
    }

    /// True when no sample is newer than `EVERY`.
    pub fn stale(&self) -> bool {
        let q = self.0.lock().unwrap_or_else(|e| e.into_inner());
        q.back().is_none_or(|b| b.at + EVERY.as_secs() <= now())
    }
}

/// Take one sample through the API (as the server's own login, no admin
/// session: a reader call recorded as nobody's action).
pub async fn sample(db: &Db) -> Option<Sample> {
    let (conns, cache, sessions, storage) = db
        .without_session(async |tx| {
            Ok((
                api::analytics::connection_breakdown(tx).await?,
                api::analytics::cache_hit_ratio(tx).await?,
                api::analytics::active_sessions(tx).await?,
                api::analytics::storage_usage(tx).await?,
            ))
        })
        .await
        .ok()?;
    let st = db.pool.status();
    Some(Sample {
        at: now(),
        connections: conns.iter().map(|c| c.connections).sum(),
        active: conns.iter().filter(|c| c.state == "active").map(|c| c.connections).sum(),
        admin_sessions: sessions.iter().filter(|s| s.kind == "admin_session").count() as i64,
        cache_hit_pct: cache.iter().find(|c| c.scope == "database").and_then(|c| c.ratio).unwrap_or(0.0) * 100.0,
        pool_in_use: st.size as i64 - st.available as i64,
        db_mb: storage.iter().find(|s| s.kind == "database").map(|s| s.total_bytes as f64 / 1048576.0).unwrap_or(0.0),
    })
}

/// Sample every `EVERY` while the server runs.
pub fn spawn_sampler(app: crate::App) {
    let weak = std::sync::Arc::downgrade(&app.0);
    drop(app);
    tokio::spawn(async move {
        loop {
            let Some(inner) = weak.upgrade() else { return };
            if let Some(s) = sample(&inner.db).await {
                inner.samples.push(s);
            }
            drop(inner);
            tokio::time::sleep(EVERY).await;
        }
    });
}

/// A small line chart: the polyline's points in a `W`×`H` box.
pub struct Chart {
    pub title: &'static str,
    pub points: String,
    pub last: String,
    pub max: String,
    pub count: usize,
}

pub const W: f64 = 300.0;
pub const H: f64 = 60.0;

pub fn chart(title: &'static str, samples: &[Sample], value: impl Fn(&Sample) -> f64, unit: &str) -> Chart {
    let end = now() as f64;
    let start = end - KEEP_SECS as f64;
    let max = samples.iter().map(&value).fold(0.0f64, f64::max).max(1.0);
    let points = samples
        .iter()
        .map(|s| {
            let x = ((s.at as f64 - start) / KEEP_SECS as f64 * W).clamp(0.0, W);
            let y = H - (value(s) / max * (H - 4.0)) - 2.0;
            format!("{x:.1},{y:.1}")
        })
        .collect::<Vec<_>>()
        .join(" ");
    let fmt = |v: f64| if v.fract() == 0.0 { format!("{v:.0}{unit}") } else { format!("{v:.1}{unit}") };
    Chart {
        title,
        points,
        last: samples.last().map(|s| fmt(value(s))).unwrap_or_else(|| "—".into()),
        max: fmt(max),
        count: samples.len(),
    }
}

// ---- Prometheus (issue 35): the database figures of `prom`, sampled here
// (this module already reads the database for Analytics; `prom` stays a leaf
// that `db` may count into).

/// The database figures, in one transaction as the server's own login
/// (reader calls, no admin session).
pub async fn sample_prometheus(app: &crate::App) -> bool {
    let got = app.db.without_session(async |tx| crate::api::ops::figures(tx).await).await;
    let m = &*crate::prom::METRICS;
    match got {
        Ok(f) => {
            m.admin_sessions.set(f.admin_sessions);
            m.impersonations.set(f.impersonations);
            m.audit_chain_length.set(f.audit_last_id.unwrap_or(0));
            if let Some(at) = f.audit_newest_at {
                m.audit_newest_at.store(at as i64, std::sync::atomic::Ordering::Relaxed);
            }
            m.db_sample_ok.set(1);
            true
        }
        Err(e) => {
            m.db_sample_ok.set(0);
            crate::prom::event("warn", &format!("metrics: cannot sample the database figures: {e:?}"));
            false
        }
    }
}

/// Serve the metrics on `addr` and sample the database every `crate::prom::SAMPLE_EVERY`
/// until `stop` resolves.
pub async fn serve_metrics(
    app: crate::App,
    addr: std::net::SocketAddr,
    stop: impl std::future::Future<Output = ()> + Send + 'static,
) -> anyhow::Result<tokio::task::JoinHandle<()>> {
    let listener = tokio::net::TcpListener::bind(addr)
        .await
        .map_err(|e| anyhow::anyhow!("cannot listen on {addr} (--metrics-listen): {e}"))?;
    crate::prom::ACTIVE.fetch_or(2, std::sync::atomic::Ordering::Relaxed);
    let sampler = app.clone();
    tokio::spawn(async move {
        loop {
            sample_prometheus(&sampler).await;
            tokio::time::sleep(crate::prom::SAMPLE_EVERY).await;
        }
    });
    let router = crate::prom::router(app);
    Ok(tokio::spawn(async move {
        if let Err(e) = axum::serve(listener, router).with_graceful_shutdown(stop).await {
            crate::prom::event("error", &format!("metrics listener: {e}"));
        }
    }))
}
