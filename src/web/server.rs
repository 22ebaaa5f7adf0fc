//! The HTTP server: `/metrics` (path configurable), the status page at `/`, `/healthz`,
//! `/api/v1/status`, `/api/v1/alerts` and `/api/v1/history`. TLS and basic auth come from
//! `--web.config.file` ([`super::web_config`]).

use super::web_config::WebSecurity;
use crate::export::metrics::{self, BuildInfo};
use crate::history::{History, Range};
use crate::notify::delivery::NotifierStats;
use crate::poller::Store;
use bytes::Bytes;
use http_body_util::Full;
use hyper::header::{HeaderValue, ALLOW, AUTHORIZATION, CONTENT_TYPE, WWW_AUTHENTICATE};
use hyper::{Method, Request, Response, StatusCode};
use hyper_util::rt::{TokioIo, TokioTimer};
use std::future::Future;
use std::sync::Arc;
use std::time::{Duration, SystemTime};
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::TcpListener;

/// How long a client may take to send its request headers (and, with TLS, to finish the
/// handshake).
const HEADER_READ_TIMEOUT: Duration = Duration::from_secs(10);
/// How long open connections get to finish once shutdown starts.
const SHUTDOWN_GRACE: Duration = Duration::from_secs(1);
/// Request line and headers larger than this are refused (Prometheus sends well under 1 KiB).
const MAX_REQUEST_HEAD: usize = 16 * 1024;
/// Connections served at once; more wait in the listen backlog until one closes. Fewer when the
/// descriptor limit is low (half the reserve, see `probe::descriptors`).
const MAX_CONNECTIONS: usize = 512;

/// What the handlers need. Handlers only read the last published snapshots: a scrape never
/// waits on file I/O.
pub struct WebState {
    /// The config's global thresholds, exported as `sqlite_threshold`.
    pub thresholds: crate::rules::DbThresholds,
    pub store: Arc<Store>,
    pub telemetry_path: String,
    pub poll_interval: Duration,
    pub build: BuildInfo,
    pub started: SystemTime,
    pub alertmanagers: Vec<Arc<NotifierStats>>,
    /// Whether a litestream.yml was given, and why it could not be used if so.
    pub litestream_config: Option<Result<(), crate::config::ConfigError>>,
    /// The exposition of the last poll cycle, rendered once and served to every scraper until
    /// the next cycle publishes (so 200 concurrent scrapes cost one render).
    pub exposition: std::sync::Mutex<Option<(u64, Bytes)>>,
    /// TLS, basic auth and extra response headers (`--web.config.file`).
    pub security: Arc<WebSecurity>,
    /// The recent past of the databases, for the status page and `/api/v1/history`.
    pub history: Arc<std::sync::RwLock<History>>,
    /// Delivery counters of the webhooks, and of the heartbeat.
    pub webhooks: Vec<Arc<NotifierStats>>,
    pub heartbeat: Option<Arc<crate::notify::heartbeat::HeartbeatStats>>,
}

impl WebState {
    fn exposition(&self, published: &crate::poller::Published) -> Bytes {
        let mut cached = self.exposition.lock().unwrap_or_else(|e| e.into_inner());
        match &*cached {
            Some((cycle, body)) if *cycle == published.cycles => body.clone(),
            _ => {
                let body = Bytes::from(metrics::render(&metrics::Exposition {
                    snapshots: &published.snapshots,
                    per_db: &published.per_db,
                    alerts: &published.alerts,
                    build: &self.build,
                    alertmanagers: &self.alertmanagers,
                    webhooks: &self.webhooks,
                    heartbeat: self.heartbeat.as_deref(),
                    litestream_config: self.litestream_config.as_ref(),
                    thresholds: &self.thresholds,
                    cycles: metrics::PollCycles {
                        total: published.cycles,
                        late: published.late_cycles,
                        last_seconds: published.cycle_seconds,
                        interval_seconds: self.poll_interval.as_secs_f64(),
                    },
                    descriptors: crate::probe::descriptors::usage(),
                    history: {
                        let h = self.history.read().unwrap_or_else(|e| e.into_inner());
                        (h.len(), h.bytes())
                    },
                    walks: crate::discovery::WALKS.read(),
                    drills: crate::drill::ACTIVITY.read(),
                }));
                *cached = Some((published.cycles, body.clone()));
                body
            }
        }
    }
}

/// What the server answers with: the running daemon's state. A reload replaces it while the
/// server, its listener and its open connections carry on, so a SIGHUP drops no scrape, and
/// new TLS settings apply from the next connection.
#[derive(Default)]
pub struct Site {
    current: std::sync::RwLock<Option<Arc<WebState>>>,
    /// Told when the first state is set (a stored permit if nobody waits yet).
    ready: tokio::sync::Notify,
}

impl Site {
    pub fn set(&self, state: Arc<WebState>) {
        *self.current.write().unwrap_or_else(|e| e.into_inner()) = Some(state);
        self.ready.notify_one();
    }

    pub fn get(&self) -> Option<Arc<WebState>> {
        self.current
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }
}

/// Serves until `shutdown` completes, then lets open connections finish briefly. It takes an
/// already-bound listener and a shutdown future, so tests bind `127.0.0.1:0`.
pub async fn serve(
    listener: &TcpListener,
    site: Arc<Site>,
    shutdown: impl Future<Output = ()>,
) -> std::io::Result<()> {
    let graceful = hyper_util::server::graceful::GracefulShutdown::new();
    let max_connections = crate::probe::descriptors::plan().map_or(MAX_CONNECTIONS, |p| {
        p.http_connections().clamp(1, MAX_CONNECTIONS)
    });
    let slots = Arc::new(tokio::sync::Semaphore::new(max_connections));
    let mut accept_failing = false;
    tokio::pin!(shutdown);
    // Accept only once there is something to serve: early clients wait in the backlog.
    if site.get().is_none() {
        tokio::select! {
            _ = site.ready.notified() => {}
            _ = &mut shutdown => return Ok(()),
        }
    }
    loop {
        // At the limit, stop accepting until a connection closes.
        let slot = tokio::select! {
            slot = slots.clone().acquire_owned() => slot.expect("the semaphore is never closed"),
            _ = &mut shutdown => break,
        };
        tokio::select! {
            accepted = listener.accept() => {
                let (stream, _) = match accepted {
                    Ok(c) => c,
                    Err(e) => {
                        // Out of descriptors and the like: keep serving the connections we
                        // have, try again shortly, and say so once, not ten times a second.
                        if !accept_failing {
                            tracing::warn!(error = %e, "cannot accept connections; retrying every 100ms");
                            accept_failing = true;
                        }
                        tokio::time::sleep(Duration::from_millis(100)).await;
                        continue;
                    }
                };
                if accept_failing {
                    tracing::info!("accepting connections again");
                    accept_failing = false;
                }
                let Some(state) = site.get() else {
                    continue; // not reached: serving starts once a state is set
                };
                let site = site.clone();
                let watcher = graceful.watcher();
                tokio::spawn(async move {
                    match state.security.tls.clone() {
                        None => serve_connection(stream, site, watcher).await,
                        Some(tls) => {
                            // A client that never finishes its handshake is dropped like one
                            // that never sends its headers.
                            match tokio::time::timeout(HEADER_READ_TIMEOUT, tls.accept(stream)).await {
                                Ok(Ok(stream)) => serve_connection(stream, site, watcher).await,
                                Ok(Err(e)) => tracing::debug!(error = %e, "TLS handshake failed"),
                                Err(_) => tracing::debug!("TLS handshake timed out"),
                            }
                        }
                    }
                    drop(slot);
                });
            }
            _ = &mut shutdown => break,
        }
    }
    let _ = tokio::time::timeout(SHUTDOWN_GRACE, graceful.shutdown()).await;
    Ok(())
}

/// Serves one connection (plain or TLS) until it closes or shutdown ends it.
async fn serve_connection<I>(io: I, site: Arc<Site>, watcher: hyper_util::server::graceful::Watcher)
where
    I: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    // Each request reads the state current at that moment (a reload may have replaced it).
    let service = hyper::service::service_fn(move |req| {
        let state = site.get();
        async move {
            Ok::<_, std::convert::Infallible>(match state {
                Some(state) => authorized(&state, req).await,
                None => response(
                    StatusCode::SERVICE_UNAVAILABLE,
                    "text/plain; charset=utf-8",
                    "starting\n",
                ),
            })
        }
    });
    let conn = hyper::server::conn::http1::Builder::new()
        .timer(TokioTimer::new())
        .header_read_timeout(HEADER_READ_TIMEOUT)
        .max_buf_size(MAX_REQUEST_HEAD)
        .serve_connection(TokioIo::new(io), service);
    let _ = watcher.watch(conn).await;
}

/// Checks basic auth (off the runtime: bcrypt is slow on purpose), then answers; adds the
/// configured headers to every response. `/healthz` stays open so that liveness probes need no
/// credentials (it tells nothing but "ok").
async fn authorized(
    state: &Arc<WebState>,
    req: Request<hyper::body::Incoming>,
) -> Response<Full<Bytes>> {
    let open = req.uri().path() == "/healthz";
    let allowed = match (&state.security.auth, open) {
        (Some(auth), false) => {
            let _slot = auth.slots.acquire().await;
            let header = req
                .headers()
                .get(AUTHORIZATION)
                .map(|v| v.as_bytes().to_vec());
            let state = state.clone();
            tokio::task::spawn_blocking(move || {
                state
                    .security
                    .auth
                    .as_ref()
                    .is_some_and(|a| a.allows(header.as_deref()))
            })
            .await
            .unwrap_or(false)
        }
        _ => true,
    };
    let mut r = if allowed {
        handle(state, req)
    } else {
        let mut r = response(
            StatusCode::UNAUTHORIZED,
            "text/plain; charset=utf-8",
            "Unauthorized\n",
        );
        r.headers_mut().insert(
            WWW_AUTHENTICATE,
            HeaderValue::from_static("Basic realm=\"sqlite-ops\", charset=\"UTF-8\""),
        );
        r
    };
    for (name, value) in &state.security.headers {
        r.headers_mut().insert(name.clone(), value.clone());
    }
    r
}

fn response(
    status: StatusCode,
    content_type: &'static str,
    body: impl Into<Bytes>,
) -> Response<Full<Bytes>> {
    let mut r = Response::new(Full::new(body.into()));
    *r.status_mut() = status;
    r.headers_mut()
        .insert(CONTENT_TYPE, HeaderValue::from_static(content_type));
    r
}

fn handle(state: &WebState, req: Request<hyper::body::Incoming>) -> Response<Full<Bytes>> {
    let head = req.method() == Method::HEAD;
    if req.method() != Method::GET && !head {
        let mut r = response(
            StatusCode::METHOD_NOT_ALLOWED,
            "text/plain; charset=utf-8",
            "only GET and HEAD\n",
        );
        r.headers_mut()
            .insert(ALLOW, HeaderValue::from_static("GET, HEAD"));
        return r;
    }
    let published = state.store.latest();
    let path = req.uri().path();
    let mut r = if path == state.telemetry_path {
        response(
            StatusCode::OK,
            metrics::CONTENT_TYPE,
            state.exposition(&published),
        )
    } else {
        match path {
            "/" => match query_range(req.uri().query()) {
                Ok(range) => response(
                    StatusCode::OK,
                    "text/html; charset=utf-8",
                    status_page(state, &published, range),
                ),
                Err(e) => response(
                    StatusCode::BAD_REQUEST,
                    "text/plain; charset=utf-8",
                    e.to_string(),
                ),
            },
            "/healthz" => {
                // Healthy while the poller keeps publishing.
                let fresh = published.at.is_some_and(|t| {
                    t.elapsed() < state.poll_interval * 3 + Duration::from_secs(2)
                });
                if fresh {
                    response(StatusCode::OK, "text/plain; charset=utf-8", "ok\n")
                } else {
                    response(
                        StatusCode::SERVICE_UNAVAILABLE,
                        "text/plain; charset=utf-8",
                        "poller is not publishing\n",
                    )
                }
            }
            "/api/v1/status" => response(
                StatusCode::OK,
                "application/json",
                status_json(state, &published),
            ),
            "/api/v1/history" => match history_json(state, &published, req.uri().query()) {
                Ok(body) => response(StatusCode::OK, "application/json", body),
                Err((status, e)) => response(status, "text/plain; charset=utf-8", e),
            },
            "/api/v1/alerts" => {
                let body = serde_json::json!({ "alerts": &*published.alerts });
                response(StatusCode::OK, "application/json", body.to_string())
            }
            _ => response(
                StatusCode::NOT_FOUND,
                "text/plain; charset=utf-8",
                "not found\n",
            ),
        }
    };
    if head {
        *r.body_mut() = Full::new(Bytes::new());
    }
    r
}

/// `/api/v1/status`: the daemon and every database's last snapshot.
#[derive(serde::Serialize)]
struct Status<'a> {
    version: &'a str,
    sqlite_version: &'a str,
    started_at: f64,
    poll_interval_seconds: f64,
    poll_cycles: u64,
    litestream_config_error: Option<String>,
    databases: &'a [crate::monitor::DbSnapshot],
}

/// `/api/v1/status`, written straight from the snapshots: through a `serde_json::Value` a
/// fleet's answer built a transient tree first (about 30 MB at heaptrack's peak for 2,000
/// replicated databases, which an allocator may keep resident).
fn status_json(state: &WebState, published: &crate::poller::Published) -> String {
    let status = Status {
        version: state.build.version,
        sqlite_version: state.build.sqlite_version,
        started_at: crate::units::epoch_seconds(state.started),
        poll_interval_seconds: state.poll_interval.as_secs_f64(),
        poll_cycles: published.cycles,
        litestream_config_error: state
            .litestream_config
            .as_ref()
            .and_then(|r| r.as_ref().err())
            .map(ToString::to_string),
        databases: &published.snapshots,
    };
    serde_json::to_string(&status).expect("a snapshot serializes")
}

/// Bytes in binary units, for people.
pub fn human_bytes(n: u64) -> String {
    crate::units::format_value(crate::units::Unit::Bytes, n as f64)
}

/// The query's `name=value` pairs, decoded as a form is.
fn query_pairs(query: Option<&str>) -> impl Iterator<Item = (String, String)> + '_ {
    form_urlencoded::parse(query.unwrap_or("").as_bytes())
        .map(|(k, v)| (k.into_owned(), v.into_owned()))
}

/// `range=1h|1d|7d` of the query (the last hour when absent).
fn query_range(query: Option<&str>) -> Result<Range, BadRange> {
    match query_pairs(query).find(|(k, _)| k == "range") {
        None => Ok(Range::Hour),
        Some((_, v)) => Range::parse(&v).ok_or(BadRange(v)),
    }
}

/// A `range=` the history does not keep.
#[derive(Debug, thiserror::Error)]
#[error("range={0:?} is not a range; expected 1h, 1d or 7d\n")]
struct BadRange(String);

fn now_seconds() -> f64 {
    crate::units::epoch_seconds(SystemTime::now())
}

fn status_page(state: &WebState, published: &crate::poller::Published, range: Range) -> String {
    let history = state.history.read().unwrap_or_else(|e| e.into_inner());
    super::status_page::render(&super::status_page::Page {
        version: state.build.version,
        sqlite_version: state.build.sqlite_version,
        telemetry_path: &state.telemetry_path,
        snapshots: &published.snapshots,
        per_db: &published.per_db,
        alerts: &published.alerts,
        history: &history,
        range: if range == Range::Week {
            Range::Day
        } else {
            range
        },
        now: now_seconds(),
        refresh_seconds: refresh_seconds(state.poll_interval, history.len()),
    })
}

/// How often the page reloads: every poll (5 s at least) for a few databases; a page of many
/// weighs 17 kB each, so less often for more (30 s past 10, 60 s past 50).
fn refresh_seconds(poll: Duration, charted: usize) -> u64 {
    let floor = match charted {
        0..=10 => 5,
        11..=50 => 30,
        _ => 60,
    };
    poll.as_secs().clamp(floor, 60)
}

/// `/api/v1/history[?db=NAME][&range=1h|1d|7d]`: per database with a history, its ranges and
/// forecasts. A database watched without a history (beyond `history.databases`, or before
/// its first poll) is left out; one not watched is a 404.
fn history_json(
    state: &WebState,
    published: &crate::poller::Published,
    query: Option<&str>,
) -> Result<String, (StatusCode, String)> {
    let db = query_pairs(query).find(|(k, _)| k == "db").map(|(_, v)| v);
    let ranges = match query_pairs(query).find(|(k, _)| k == "range") {
        None => Range::ALL.to_vec(),
        Some(_) => vec![query_range(query).map_err(|e| (StatusCode::BAD_REQUEST, e.to_string()))?],
    };
    let history = state.history.read().unwrap_or_else(|e| e.into_inner());
    let now = now_seconds();
    let databases: Vec<_> = published
        .snapshots
        .iter()
        .enumerate()
        .filter(|(_, s)| db.as_ref().is_none_or(|d| **d == *s.name))
        .filter_map(|(i, s)| {
            let h = history.get(&s.name)?;
            let thresholds = published
                .per_db
                .thresholds
                .get(i)
                .cloned()
                .unwrap_or_default();
            let ranges: serde_json::Map<String, serde_json::Value> = ranges
                .iter()
                .map(|r| {
                    (
                        r.as_str().to_string(),
                        serde_json::json!(h.range_data(*r, now)),
                    )
                })
                .collect();
            Some(serde_json::json!({
                "db": s.name,
                "ranges": ranges,
                "forecasts": crate::history::outlook::forecasts(h, s, &thresholds, now),
            }))
        })
        .collect();
    if let Some(d) = &db {
        if !published.snapshots.iter().any(|s| *s.name == **d) {
            return Err((
                StatusCode::NOT_FOUND,
                format!("no database is named {d:?}\n"),
            ));
        }
    }
    Ok(serde_json::json!({
        "now": now,
        "history_databases": history.limit(),
        "databases": databases,
    })
    .to_string())
}
