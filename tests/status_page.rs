//! The status page in a real browser (issue 20): Debian's headless Chromium loads `/` from a
//! `sqlite-ops run` child watching three databases, one written by an application. Its DOM holds
//! a chart per figure of each database with a history, with the points of the last minutes, the
//! firing alert with its runbook link, the signals and the forecasts; Chromium's own network log
//! shows that the page fetched nothing but the daemon. Screenshots at a phone's and a desktop's
//! width are kept in `target/tmp/` for people to look at. `/api/v1/history` serves the same
//! figures.

use crate::common;

use common::{wait_for, wal_db, ConfigFile, Daemon, Guard, Writer};
use serde_json::json;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// Runs headless Chromium on `url` with `args`, to completion (within a minute). Chromium's own
/// background requests go to a proxy on a closed local port, so nothing leaves the machine;
/// the page's requests to 127.0.0.1 bypass it.
fn chromium(url: &str, dir: &Path, args: &[&str]) -> String {
    let out = dir.join(format!("chromium-{}.out", args.len()));
    let mut child = Guard::spawn(
        Command::new("chromium")
            .args([
                "--headless",
                "--no-sandbox",
                "--disable-gpu",
                "--no-first-run",
                "--disable-background-networking",
                "--disable-component-update",
                "--proxy-server=http://127.0.0.1:9",
            ])
            .arg(format!("--user-data-dir={}", dir.join("profile").display()))
            .args(args)
            .arg(url)
            .stdout(std::fs::File::create(&out).unwrap())
            .stderr(Stdio::null()),
    )
    .expect("chromium runs (scripts/test installs Debian's chromium)");
    let deadline = Instant::now() + Duration::from_secs(60);
    let status = loop {
        if let Some(s) = child.try_wait() {
            break s;
        }
        assert!(
            Instant::now() < deadline,
            "chromium did not finish within a minute"
        );
        std::thread::sleep(Duration::from_millis(50));
    };
    assert!(status.success(), "chromium failed: {status}");
    std::fs::read_to_string(&out).unwrap()
}

/// The URLs the page itself requested, from Chromium's network log: requests whose network
/// isolation key's top frame is this site (the browser's own requests carry none, or
/// Google's).
fn page_requests(net_log: &Path) -> Vec<String> {
    let log: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(net_log).unwrap()).unwrap();
    let start_job = log["constants"]["logEventTypes"]["URL_REQUEST_START_JOB"].clone();
    log["events"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["type"] == start_job)
        .filter(|e| {
            let key = e["params"]["network_isolation_key"].as_str().unwrap_or("");
            key.split(' ').next() == Some("http://127.0.0.1")
        })
        .map(|e| e["params"]["url"].as_str().unwrap().to_string())
        .collect()
}

/// The `<svg>` charts of `db` in the DOM.
fn charts_of<'a>(dom: &'a str, db: &str) -> Vec<&'a str> {
    dom.split("<svg ")
        .skip(1)
        .filter_map(|t| t.split("</svg>").next())
        .filter(|t| t.contains(&format!("data-db=\"{db}\"")))
        .collect()
}

fn points(chart: &str) -> usize {
    chart
        .split("data-points=\"")
        .nth(1)
        .and_then(|r| r.split('"').next())
        .and_then(|n| n.parse().ok())
        .unwrap()
}

#[test]
fn the_page_in_chromium_has_a_chart_per_database_and_loads_nothing_from_outside() {
    let dir = tempfile::tempdir().unwrap();
    let (app, quiet, extra) = (
        dir.path().join("app.db"),
        dir.path().join("quiet.db"),
        dir.path().join("extra.db"),
    );
    let _conns = (wal_db(&app), wal_db(&quiet), wal_db(&extra));
    let _writer = Writer::start(&app);
    let config = ConfigFile::new()
        .set("history", json!({"databases": 2}))
        .no_disk_alert()
        .database(&app, "app")
        .entry(json!({"path": quiet, "name": "quiet",
                      "thresholds": {"database_size": {"warning": "1KB", "for": "0s"}}}))
        .database(&extra, "extra")
        .write(&dir.path().join("sqlite-ops.yaml"));
    let daemon = Daemon::start(&["--config", config.to_str().unwrap()]);
    let base = format!("http://{}", daemon.addr);

    // Two 10 s steps of the application's writes in the history.
    let history = wait_for(Duration::from_secs(45), "two steps of history", || {
        let (status, body) = daemon.get("/api/v1/history?db=app&range=1h");
        if status == 404 {
            return None; // not polled yet
        }
        assert_eq!(status, 200, "{body}");
        let v: serde_json::Value = serde_json::from_str(&body).unwrap();
        assert!(v["databases"].as_array().unwrap().len() <= 1, "{v}");
        let rates =
            v["databases"][0]["ranges"]["1h"]["series"]["write_transactions_per_second"].clone();
        let filled = rates
            .as_array()?
            .iter()
            .filter(|x| x.as_f64().is_some_and(|r| r > 0.0))
            .count();
        (filled >= 2).then_some(v)
    });
    let app_history = &history["databases"][0];
    assert_eq!(app_history["db"], "app");
    assert_eq!(app_history["ranges"]["1h"]["step_seconds"], 10);
    assert!(app_history["forecasts"]
        .as_array()
        .unwrap()
        .iter()
        .any(|f| f["signal"] == "write_tx_per_sec"));
    let (_, all) = daemon.get("/api/v1/history");
    let all: serde_json::Value = serde_json::from_str(&all).unwrap();
    let names: Vec<_> = all["databases"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| d["db"].clone())
        .collect();
    assert_eq!(
        names,
        ["app", "quiet"],
        "history.databases: 2 keeps the first two"
    );
    assert_eq!(daemon.get("/api/v1/history?range=2h").0, 400);
    let (status, extra_history) = daemon.get("/api/v1/history?db=extra");
    assert_eq!(
        (status, extra_history.contains("\"databases\":[]")),
        (200, true),
        "{extra_history}"
    );
    assert_eq!(daemon.get("/api/v1/history?db=nope").0, 404);

    let net_log = dir.path().join("net.json");
    let dom = chromium(
        &format!("{base}/"),
        dir.path(),
        &[
            &format!("--log-net-log={}", net_log.display()),
            "--dump-dom",
        ],
    );
    for db in ["app", "quiet"] {
        let charts = charts_of(&dom, db);
        assert_eq!(charts.len(), 6, "a chart per figure of {db}: {dom}");
        assert!(dom.contains(&format!("<section class=\"db\" id=\"db-{db}\"")));
    }
    let writes = charts_of(&dom, "app")
        .into_iter()
        .find(|c| c.contains("data-figure=\"write_transactions_per_second\""))
        .unwrap();
    assert!(
        points(writes) >= 2,
        "the writes of the last minutes: {writes}"
    );
    assert!(writes.contains("<path d=\"M"), "a line is drawn: {writes}");
    assert!(
        charts_of(&dom, "extra").is_empty(),
        "no history beyond history.databases"
    );
    assert!(dom.contains("Databases without charts") && dom.contains("<td>extra</td>"));
    assert!(
        dom.contains("SQLiteDatabaseLarge") && dom.contains("#sqlitedatabaselarge\">runbook</a>"),
        "the firing alert and its runbook"
    );
    assert!(
        dom.contains("Migrate-to-Postgres signals")
            && dom.contains("write transactions per second")
    );
    assert!(dom.contains("Peak write rate in the last"), "the forecasts");

    // It reloads itself: with time made to pass (Chromium's virtual time), its content is
    // fetched again and replaced in place.
    let later = chromium(
        &format!("{base}/"),
        dir.path(),
        &["--virtual-time-budget=12000", "--dump-dom"],
    );
    assert!(
        later.contains("<main data-range=\"1h\" data-reloads=\"")
            || later.contains("data-reloads="),
        "the page reloaded its content: {later}"
    );
    assert_eq!(
        charts_of(&later, "app").len(),
        6,
        "and still has its charts"
    );

    let requested = page_requests(&net_log);
    assert!(requested.contains(&format!("{base}/")), "{requested:?}");
    for url in &requested {
        assert!(
            url.starts_with(&base),
            "the page fetched {url} from outside the daemon"
        );
    }

    // For people: the page at a phone's width and at a desktop's.
    let shots = Path::new(env!("CARGO_TARGET_TMPDIR"));
    for (name, size) in [
        ("status-page-phone.png", "412,2200"),
        ("status-page.png", "1280,1800"),
    ] {
        let shot = shots.join(name);
        let _ = std::fs::remove_file(&shot);
        chromium(
            &format!("{base}/"),
            dir.path(),
            &[
                &format!("--screenshot={}", shot.display()),
                &format!("--window-size={size}"),
                "--hide-scrollbars",
            ],
        );
        let png = std::fs::read(&shot).unwrap();
        assert!(
            png.starts_with(b"\x89PNG") && png.len() > 10_000,
            "{name}: {} bytes",
            png.len()
        );
    }
}

/// The picture in the README: the status page as `render` draws it for a database held open
/// by an application in another process and polled by the library's own poller, with an hour
/// of history. The hour is a fixture: 361 records of that database's snapshot, 10 s apart, the
/// last one the page's own, whose figures follow a scripted hour (a peak of writes, the file
/// growing with them, the WAL checkpointed every few minutes). Set `SQLITE_OPS_SCREENSHOT` to a
/// path to keep the picture (`scripts/screenshot` does).
#[test]
fn the_status_page_with_an_hour_of_history_is_the_readme_s_picture() {
    use sqlite_ops::history::{History, Range};
    use sqlite_ops::web::status_page::{render, Page};
    let dir = tempfile::Builder::new()
        .prefix("app-data.")
        .tempdir()
        .unwrap();
    let db = dir.path().join("app.db");
    wal_db(&db);
    let _app = common::GuideApp::start(&db);
    let mut poller = sqlite_ops::poller::Poller::new(
        &[sqlite_ops::target::Target::new("app", &db)],
        &sqlite_ops::config::default_runbook_base_url(),
    );
    let (mut snapshots, alerts) = poller.cycle(Vec::new());
    let now = snapshots[0].polled_at;
    let mut history = History::new(10);
    for k in 0..=360u32 {
        let mut s = snapshots[0].clone();
        s.polled_at = now - f64::from(360 - k) * 10.0;
        scripted_hour(&mut s, f64::from(k) / 360.0);
        history.record(&[s]);
    }
    scripted_hour(&mut snapshots[0], 1.0);
    let page = render(&Page {
        version: env!("CARGO_PKG_VERSION"),
        sqlite_version: rusqlite::version(),
        telemetry_path: "/metrics",
        snapshots: &snapshots,
        per_db: &poller.per_db(),
        alerts: &alerts,
        history: &history,
        range: Range::Hour,
        now,
        refresh_seconds: 5,
    });
    let charts = charts_of(&page, "app");
    assert_eq!(charts.len(), 6, "a chart per figure: {page}");
    for chart in &charts {
        assert!(points(chart) >= 300, "the whole hour drawn: {chart}");
    }
    assert!(page.contains("python3"), "the application named: {page}");
    let html = dir.path().join("page.html");
    std::fs::write(&html, &page).unwrap();
    let shot = Path::new(env!("CARGO_TARGET_TMPDIR")).join("status-page-hour.png");
    let _ = std::fs::remove_file(&shot);
    chromium(
        &format!("file://{}", html.display()),
        dir.path(),
        &[
            &format!("--screenshot={}", shot.display()),
            "--window-size=1280,1000",
            "--hide-scrollbars",
        ],
    );
    let png = std::fs::read(&shot).unwrap();
    assert!(png.starts_with(b"\x89PNG") && png.len() > 10_000);
    if let Some(keep) = std::env::var_os("SQLITE_OPS_SCREENSHOT") {
        std::fs::write(keep, &png).unwrap();
    }
}

/// The figures of `s` at `t` (0 to 1) through a scripted hour: writes between 120 and 260
/// a second with a peak two thirds in, the file growing by what was written, the WAL filling
/// and checkpointed every five minutes, the writer busy in proportion, the disk filling as the
/// file grows; averages over five minutes.
fn scripted_hour(s: &mut sqlite_ops::monitor::DbSnapshot, t: f64) {
    let peak = 110.0 * (-((t - 0.66) * 12.0).powi(2)).exp();
    let rate = 140.0 + (t * 9.0).sin() * 15.0 + peak;
    s.write_transactions_per_second = Some(rate);
    let written = 3600.0 * t * 150.0 * 180.0;
    s.database_size_bytes = Some((48.0e6 + written) as u64);
    if let Some(w) = s.wal.as_mut() {
        let cycle = (t * 3600.0 % 300.0) / 300.0;
        w.size_bytes = (4096.0 + cycle * 3.9e6) as u64;
        w.checkpoint_lag_bytes = Some((cycle * 0.4e6 + rate * 1000.0) as u64);
    }
    s.sustained.write_transactions_per_second = Some(rate * 0.97);
    s.sustained.write_lock_utilisation = Some(rate / 2000.0);
    s.sustained.window_seconds = Some(300.0);
    if let Some(f) = s.filesystem.as_mut() {
        f.free_bytes = f.free_bytes.map(|b| b.saturating_sub(written as u64));
    }
}
