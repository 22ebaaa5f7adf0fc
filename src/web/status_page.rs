//! The status page at `/`: per database, charts of the last hour or day, the alerts with their
//! runbooks, Litestream's replicas (`replica_view`), the migrate-to-Postgres signals against
//! their thresholds, and the forecasts. Pure.

use super::chart::{self, Chart};
use super::html::esc;
use crate::history::{outlook, History, Range, FIGURES, REPLICATION_LAG};
use crate::monitor::DbSnapshot;
use crate::poller::PerDb;
use crate::rules::catalogue::Settles;
use crate::rules::{Alert, AlertState, DbThresholds, Group, Unit, RULES};
use crate::units::format_value;
use std::fmt::Write;

/// What the page is drawn from.
pub struct Page<'a> {
    pub version: &'a str,
    pub sqlite_version: &'a str,
    pub telemetry_path: &'a str,
    pub snapshots: &'a [DbSnapshot],
    pub per_db: &'a PerDb,
    pub alerts: &'a [Alert],
    pub history: &'a History,
    pub range: Range,
    /// Seconds since the epoch.
    pub now: f64,
    /// How often the page reloads its content, in seconds.
    pub refresh_seconds: u64,
}

/// Databases listed in the summary table beyond those with charts, at most.
const MAX_LISTED: usize = 500;

fn opt(v: Option<String>) -> String {
    v.unwrap_or_else(|| "–".into())
}

const STYLE: &str = "\
body{font-family:system-ui,sans-serif;margin:0;color:#222;background:#f6f7f9}\
header,main{padding:.5em 1em}header{background:#1f2937;color:#eee}header a{color:#9cf}\
h1{font-size:1.3em;margin:.3em 0}h2{font-size:1.15em;margin:.2em 0}\
section{background:#fff;border:1px solid #ddd;border-radius:6px;margin:.8em 0;padding:.6em .8em}\
table{border-collapse:collapse;width:100%}td,th{border-bottom:1px solid #eee;padding:3px 6px;text-align:left;vertical-align:top}\
.scroll{overflow-x:auto}.charts{display:grid;grid-template-columns:repeat(auto-fill,minmax(260px,1fr));gap:.6em}\
svg.chart{width:100%;height:auto;background:#fbfbfd;border:1px solid #eee}\
.line{fill:none;stroke:#2563eb;stroke-width:1.5}.axis{stroke:#bbb}.limit{stroke:#dc2626;stroke-dasharray:4 3}\
.t{font-size:10px;font-weight:600}.v{font-size:10px}.a,.l{font-size:8px;fill:#666}.l{fill:#dc2626}\
.ok{color:#15803d}.down,.critical,.firing{color:#b91c1c;font-weight:600}.warning,.pending{color:#b45309}\
.muted{color:#666}nav a{margin-right:.8em}ul{margin:.3em 0;padding-left:1.2em}";

/// Reloads `main` in place every few seconds (keeping the scroll position), and stops
/// quietly when the daemon cannot be reached; the next reload tries again. Each new `main` is
/// numbered (`data-reloads`), which the browser test reads.
const SCRIPT: &str = "(function(){var s=document.currentScript.dataset.refresh*1000,n=0;\
setInterval(function(){fetch(location.href,{cache:'no-store'}).then(function(r){return r.ok?r.text():null})\
.then(function(t){if(!t)return;var d=new DOMParser().parseFromString(t,'text/html');\
var m=d.querySelector('main');if(m){m.dataset.reloads=++n;document.querySelector('main').replaceWith(m)}}).catch(function(){})},s)})();";

/// The whole page: one HTML document with its SVG drawn here and a few lines of inline script
/// that reload its content; it loads nothing from anywhere, so it works offline and behind the
/// same TLS and basic auth as `/metrics`.
pub fn render(p: &Page) -> String {
    let mut main = String::new();
    alerts_section(&mut main, p);
    let mut charted = 0;
    for (i, s) in p.snapshots.iter().enumerate() {
        let Some(h) = p.history.get(&s.name) else {
            continue;
        };
        charted += 1;
        let thresholds = p.per_db.thresholds.get(i).cloned().unwrap_or_default();
        db_section(&mut main, p, s, h, &thresholds);
    }
    others_section(&mut main, p, charted);
    let other = match p.range {
        Range::Hour => ("?range=1d", "last day"),
        _ => ("?range=1h", "last hour"),
    };
    format!(
        "<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\">\
<meta name=\"viewport\" content=\"width=device-width,initial-scale=1\">\
<title>sqlite-ops</title><style>{STYLE}</style></head><body>\
<header><h1>sqlite-ops {version}</h1><nav>\
<a href=\"{other_href}\">Show the {other_label}</a>\
<a href=\"{metrics}\">Metrics</a><a href=\"/api/v1/history\">History JSON</a>\
<a href=\"/api/v1/status\">Status JSON</a><a href=\"/api/v1/alerts\">Alerts JSON</a></nav></header>\
{main}<script data-refresh=\"{refresh}\">{SCRIPT}</script></body></html>\n",
        version = esc(p.version),
        other_href = other.0,
        other_label = other.1,
        metrics = esc(p.telemetry_path),
        main = format_args!(
            "<main data-range=\"{range}\"><p class=\"muted\">{count} database(s), charts of the {span}; \
bundled SQLite {sqlite}; updated {when} UTC.</p>{main}</main>",
            range = p.range.as_str(),
            count = p.snapshots.len(),
            span = if p.range == Range::Hour { "last hour (10 s steps)" } else { "last day (5 min steps)" },
            sqlite = esc(p.sqlite_version),
            when = clock(p.now),
        ),
        refresh = p.refresh_seconds.max(1),
    )
}

/// `HH:MM:SS` of a time in seconds since the epoch, UTC.
fn clock(t: f64) -> String {
    let s = t.max(0.0) as u64 % 86_400;
    format!("{:02}:{:02}:{:02}", s / 3600, s / 60 % 60, s % 60)
}

/// One alert as a line that wraps on a phone: state, severity, name, database, summary and
/// runbook link.
fn alert_item(out: &mut String, a: &Alert, with_db: bool) {
    let state = match a.state {
        AlertState::Firing => "firing",
        AlertState::Pending => "pending",
        AlertState::Resolved => return,
    };
    let db = if crate::rules::catalogue::subject_label(a.alert) != "db" {
        format!(" on the filesystem at {}", esc(&a.db))
    } else if with_db {
        format!(" on <a href=\"#db-{0}\">{0}</a>", esc(&a.db))
    } else {
        String::new()
    };
    let _ = write!(
        out,
        "<li class=\"alert\"><span class=\"{state}\">{state}</span> <span class=\"{sev}\">{sev}</span> \
<b>{name}</b>{db}: {summary} (<a href=\"{runbook}\">runbook</a>)</li>",
        sev = a.severity.as_str(),
        name = esc(a.alert),
        summary = esc(&a.summary),
        runbook = esc(&a.runbook_url),
    );
}

/// Firing first, critical first; one item per alert and database, at its highest severity
/// (a critical and a warning of the same alert are one condition).
fn active(alerts: &[Alert]) -> Vec<&Alert> {
    let mut active: Vec<&Alert> = alerts
        .iter()
        .filter(|a| a.state != AlertState::Resolved)
        .collect();
    active.sort_by_key(|a| (a.state != AlertState::Firing, std::cmp::Reverse(a.severity)));
    let mut seen = std::collections::HashSet::new();
    active.retain(|a| seen.insert((a.db.as_str(), a.alert)));
    active
}

fn alerts_section(out: &mut String, p: &Page) {
    let mut items = String::new();
    for a in active(p.alerts) {
        alert_item(&mut items, a, true);
    }
    let body = if items.is_empty() {
        "<p class=\"ok\">No alert is firing or pending.</p>".to_string()
    } else {
        format!("<ul class=\"alerts\">{items}</ul>")
    };
    let _ = write!(
        out,
        "<section id=\"alerts\"><h2>Alerts</h2>{body}</section>"
    );
}

fn db_section(
    out: &mut String,
    p: &Page,
    s: &DbSnapshot,
    h: &crate::history::DbHistory,
    thresholds: &DbThresholds,
) {
    let status = if s.up {
        "<span class=\"ok\">up</span>".to_string()
    } else {
        format!(
            "<span class=\"down\">down</span> {}",
            esc(s.error.as_deref().unwrap_or(""))
        )
    };
    let _ = write!(
        out,
        "<section class=\"db\" id=\"db-{name}\" data-db=\"{name}\"><h2>{name} {status}</h2>\
<p class=\"muted\">{path} · {mode}</p>",
        name = esc(&s.name),
        path = esc(&s.path.display().to_string()),
        mode = opt(s.journal_mode.map(|j| format!("{} mode", j.as_str()))),
    );
    // The process whose reader holds checkpoints back is marked: the one to look at.
    let pinning = s
        .wal
        .as_ref()
        .and_then(|w| w.pinned_by.as_ref())
        .and_then(|p| p.pid);
    let holders: Vec<String> = s
        .processes
        .iter()
        .map(|p| match pinning == Some(p.identity.pid) {
            true => format!("{} [holds checkpoints back]", p.describe(false)),
            false => p.describe(false),
        })
        .collect();
    if !holders.is_empty() {
        let _ = write!(
            out,
            "<p class=\"muted\">Processes (pid name: roles): {}</p>",
            esc(&holders.join("; "))
        );
    }
    let mut items = String::new();
    // Its own alerts, and its filesystem's (the disk alert is one per filesystem).
    let about_it = |a: &&Alert| match RULES.iter().find(|r| r.alert == a.alert) {
        Some(rule) => crate::rules::subject(rule, s).as_deref() == Some(a.db.as_str()),
        None => *a.db == *s.name,
    };
    for a in active(p.alerts).into_iter().filter(about_it) {
        alert_item(&mut items, a, false);
    }
    if !items.is_empty() {
        let _ = write!(out, "<ul class=\"alerts\">{items}</ul>");
    }
    if let Some(line) = drill_line(s, p.now) {
        out.push_str(&line);
    }
    super::replica_view::replicas(out, s, p.now);
    signals(out, p, s, thresholds);
    let forecasts = outlook::forecasts(h, s, thresholds, p.now);
    if !forecasts.is_empty() {
        out.push_str("<h3>Forecasts</h3><ul class=\"forecasts\">");
        for f in &forecasts {
            let class = if f.reached { " class=\"warning\"" } else { "" };
            let _ = write!(out, "<li{class}>{}</li>", esc(&f.text));
        }
        out.push_str("</ul>");
    }
    charts(out, p, s, h, thresholds);
    out.push_str("</section>");
}

/// What the restore drills of the database found, when they are configured.
fn drill_line(s: &DbSnapshot, now: f64) -> Option<String> {
    let d = s.restore_drill.as_ref()?;
    let ago = |t: f64| crate::units::human_duration((now - t).max(1.0));
    let secs = |v: f64| esc(&format_value(Unit::Seconds, v));
    let (class, text) = match (&d.refused, &d.last) {
        (Some(why), _) => ("warning", format!("Restore drill skipped: {}", esc(why))),
        (None, None) => ("muted", "Restore drill: the first is due soon".to_string()),
        (None, Some(r)) if r.success => (
            "ok",
            format!(
                "Restore drill {} ago: restored {} in {}, {} rows; recovery point {}; {}",
                ago(r.finished_at),
                r.restored_bytes
                    .map_or("–".into(), |b| esc(&format_value(Unit::Bytes, b as f64))),
                secs(r.duration_seconds),
                r.rows.unwrap_or(0),
                r.data_age_seconds.map_or("unknown".into(), secs),
                esc(&r.compared),
            ),
        ),
        (None, Some(r)) => (
            "critical",
            format!(
                "Restore drill failed {} ago: {}",
                ago(r.finished_at),
                esc(r.error.as_deref().unwrap_or(""))
            ),
        ),
    };
    Some(format!("<p class=\"drill {class}\">{text}</p>"))
}

/// The migrate-to-Postgres signals: value, thresholds, and whether an alert is on.
fn signals(out: &mut String, p: &Page, s: &DbSnapshot, thresholds: &DbThresholds) {
    let mut rows = String::new();
    for c in crate::rules::conditions(s, thresholds) {
        let rule = c.setting.rule;
        if rule.group != Group::Migration {
            continue;
        }
        let shown = |v: Option<f64>| opt(v.map(|v| esc(&format_value(rule.unit, v))));
        let state = p
            .alerts
            .iter()
            .filter(|a| {
                *a.db == *s.name && a.alert == rule.alert && a.state != AlertState::Resolved
            })
            .map(|a| a.state)
            .max_by_key(|st| *st == AlertState::Firing);
        let (class, word) = match (state, c.breached) {
            (Some(AlertState::Firing), _) => ("firing", "firing"),
            (Some(_), _) => ("pending", "pending"),
            (None, Some(_)) => ("pending", "over"),
            (None, None) if c.value.is_none() => ("muted", "not measured"),
            (None, None) => ("ok", "ok"),
        };
        // Each figure says what it is: a window's average, a declared fact, or the last poll.
        let window = match rule.settles {
            Settles::Over(w) => window_label(w, s.sustained.window_seconds),
            _ if matches!(rule.key, "backend_engineers" | "regions") => "declared".into(),
            _ if rule.key == "restore_duration" => "last drill".into(),
            _ => "now".into(),
        };
        let _ = write!(
            rows,
            "<tr><td>{label}</td><td>{value} <span class=\"muted\">({window})</span></td><td>{info}</td><td>{warning}</td><td>{critical}</td><td class=\"{class}\">{word}</td></tr>",
            label = esc(rule.label),
            value = shown(c.value),
            info = shown(c.setting.info),
            warning = shown(c.setting.warning),
            critical = shown(c.setting.critical),
        );
    }
    if !rows.is_empty() {
        let _ = write!(
            out,
            "<h3>Migrate-to-Postgres signals</h3><div class=\"scroll\"><table class=\"signals\">\
<tr><th>Signal</th><th>Value</th><th>Info</th><th>Warning</th><th>Critical</th><th></th></tr>{rows}</table></div>"
        );
    }
}

/// "5m avg" over a full window `w`; over a shorter history, what it covers ("1m 10s avg so
/// far"), as a minute's average is not the sustained figure the signal judges.
fn window_label(w: std::time::Duration, covered: Option<f64>) -> String {
    match covered {
        Some(c) if c < w.as_secs_f64() * 0.95 => format!(
            "{} avg so far",
            humantime::format_duration(std::time::Duration::from_secs(c as u64))
        ),
        _ => format!("{} avg", humantime::format_duration(w)),
    }
}

/// The threshold a chart shows: the mildest level of the rule that reads the same figure.
fn threshold_of(key: &str, thresholds: &DbThresholds) -> Option<f64> {
    let rule = match key {
        "write_transactions_per_second" => "write_tx_per_sec",
        "database_size_bytes" => "database_size",
        "wal_size_bytes" => "wal_size",
        "writer_utilisation" => "writer_utilisation",
        REPLICATION_LAG => "replication_lag",
        _ => return None,
    };
    thresholds
        .rules
        .iter()
        .find(|r| r.rule.key == rule)
        .and_then(|r| r.mildest())
}

/// Buckets a chart shows at least: 5 minutes of the hour, 2 hours of the day.
fn min_shown(range: Range) -> usize {
    match range {
        Range::Hour => 30,
        _ => 24,
    }
}

/// The buckets of a range worth drawing: from the first that holds a value in any of
/// `windows` (a daemon started ten minutes ago has ten minutes to show, not an hour with
/// everything squeezed into its right edge), and at least [`min_shown`].
fn drawn_from(windows: &[Vec<(f64, f64)>], range: Range) -> usize {
    let len = windows.first().map_or(0, Vec::len);
    let first = windows
        .iter()
        .filter_map(|w| w.iter().position(|(_, v)| !v.is_nan()))
        .min()
        .unwrap_or(len);
    first.min(len.saturating_sub(min_shown(range)))
}

/// "-1h", "-25m", "-24h": how long ago the left edge of a chart is.
fn span_label(buckets: usize, range: Range) -> String {
    let secs = buckets as u64 * u64::from(range.shape().0);
    match secs {
        s if s % 3600 == 0 => format!("-{}h", s / 3600),
        s if s >= 3600 => format!("-{}h{}m", s / 3600, s % 3600 / 60),
        s => format!("-{}m", s.div_ceil(60)),
    }
}

fn charts(
    out: &mut String,
    p: &Page,
    s: &DbSnapshot,
    h: &crate::history::DbHistory,
    thresholds: &DbThresholds,
) {
    // (key, title, unit, what its newest figure is) of every chart of this database, and its
    // buckets.
    let mut series: Vec<(&str, String, Unit, String)> = Vec::new();
    let mut windows: Vec<Vec<(f64, f64)>> = Vec::new();
    for (i, f) in FIGURES.iter().enumerate() {
        if let Some(ring) = h.ring(i, p.range) {
            series.push((f.key, f.label.to_string(), f.unit, f.newest_is(p.range)));
            windows.push(ring.window(p.now).collect());
        }
    }
    for r in &h.replicas {
        if let Some(ring) = h.replica_ring(r, p.range) {
            let title = format!("Replication lag ({})", r.replica);
            let newest_is = crate::history::newest_is(crate::history::ring::Keep::Max, p.range);
            series.push((REPLICATION_LAG, title, Unit::Seconds, newest_is));
            windows.push(ring.window(p.now).collect());
        }
    }
    let from = drawn_from(&windows, p.range);
    out.push_str("<div class=\"charts\">");
    for ((key, title, unit, newest_is), window) in series.iter().zip(&windows) {
        let points = &window[from..];
        out.push_str(&chart::svg(&Chart {
            db: &s.name,
            key,
            title,
            unit: *unit,
            points,
            threshold: threshold_of(key, thresholds),
            span_label: &span_label(points.len(), p.range),
            newest_is,
        }));
    }
    out.push_str("</div>");
}

/// The databases without a history: one line each (for a fleet, the first few hundred).
fn others_section(out: &mut String, p: &Page, charted: usize) {
    let others: Vec<&DbSnapshot> = p
        .snapshots
        .iter()
        .filter(|s| p.history.get(&s.name).is_none())
        .collect();
    if others.is_empty() {
        return;
    }
    let mut rows = String::new();
    for s in others.iter().take(MAX_LISTED) {
        let firing = p
            .alerts
            .iter()
            .filter(|a| *a.db == *s.name && a.state == AlertState::Firing)
            .count();
        let _ = write!(
            rows,
            "<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
            esc(&s.name),
            if s.up {
                "up"
            } else {
                "<b class=\"down\">down</b>"
            },
            opt(s.write_transactions_per_second.map(|r| format!("{r:.1}"))),
            opt(s
                .database_size_bytes
                .map(|b| format_value(Unit::Bytes, b as f64))),
            firing,
        );
    }
    let more = others.len().saturating_sub(MAX_LISTED);
    let _ = write!(
        out,
        "<section id=\"others\"><h2>Databases without charts</h2><p class=\"muted\">{charted} database(s) keep a \
history (<code>history.databases: {limit}</code>); {n} other database(s) show their current figures only{more}.</p>\
<div class=\"scroll\"><table><tr><th>Database</th><th>Status</th><th>Write tx/s (last 5s)</th><th>Size (now)</th><th>Firing alerts</th></tr>{rows}</table></div></section>",
        limit = p.history.limit(),
        n = others.len(),
        more = if more > 0 { format!(" ({more} more are on /metrics and the fleet dashboard)") } else { String::new() },
    );
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_window_not_full_yet_says_what_it_covers() {
        let five = std::time::Duration::from_secs(300);
        assert_eq!(window_label(five, Some(61.4)), "1m 1s avg so far");
        assert_eq!(window_label(five, Some(300.0)), "5m avg");
        assert_eq!(window_label(five, Some(330.0)), "5m avg");
        assert_eq!(window_label(five, None), "5m avg");
    }

    #[test]
    fn charts_start_at_the_first_sample_and_show_at_least_a_few_minutes() {
        let nan = f64::NAN;
        let mut w: Vec<(f64, f64)> = (0..360).map(|i| (f64::from(i) * 10.0, nan)).collect();
        assert_eq!(
            drawn_from(&[w.clone()], Range::Hour),
            330,
            "nothing yet: 5 minutes"
        );
        w[350].1 = 1.0;
        assert_eq!(drawn_from(&[w.clone()], Range::Hour), 330);
        w[100].1 = 1.0;
        assert_eq!(drawn_from(&[w.clone()], Range::Hour), 100);
        assert_eq!(span_label(360, Range::Hour), "-1h");
        assert_eq!(span_label(30, Range::Hour), "-5m");
        assert_eq!(span_label(260, Range::Hour), "-44m");
        assert_eq!(span_label(288, Range::Day), "-24h");
        assert_eq!(span_label(30, Range::Day), "-2h30m");
    }
}
