//! The forecasts of one database: when its size reaches each migrate-to-Postgres threshold,
//! when its disk fills, and its peak write rate of the day against the sustained-rate signal.
//! Pure; shared by the status page, `/api/v1/history` and `check`.

use super::forecast::{self, Eta};
use super::{DbHistory, Range, FIGURES};
use crate::monitor::DbSnapshot;
use crate::rules::{DbThresholds, Severity, Unit};
use crate::units::format_value;
use serde::{Deserialize, Serialize};

/// One forecast.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Forecast {
    /// What it is about: a threshold's key under `thresholds:` (`database_size`,
    /// `write_tx_per_sec`) or `disk_full`.
    pub signal: String,
    pub severity: Option<Severity>,
    /// The limit it is about.
    pub limit: f64,
    /// The last value measured (the peak, for the write rate).
    pub value: f64,
    /// Whether the value is past the limit now.
    pub reached: bool,
    /// At the recent pace, in how many seconds the limit is reached; `None` when the figure is
    /// not moving toward it, or nothing can be said yet.
    pub eta_seconds: Option<f64>,
    /// Seconds of history the forecast was drawn from.
    pub basis_seconds: f64,
    /// When the pace points past what the history can tell ([`forecast::reach`] of it): the
    /// limit is at least this many seconds away, and no more is claimed.
    #[serde(default)]
    pub eta_beyond_seconds: Option<f64>,
    /// The same, for people.
    pub text: String,
}

/// The shortest history a trend is drawn from, per range: a line through less says little.
fn min_span(range: Range) -> f64 {
    match range {
        Range::Hour => 60.0,
        Range::Day => 2.0 * 3600.0,
        Range::Week => 86_400.0,
    }
}

/// The points of `figure` over the longest range that holds enough of them.
fn basis(h: &DbHistory, figure: usize, now: f64) -> Option<Vec<(f64, f64)>> {
    [Range::Week, Range::Day, Range::Hour]
        .into_iter()
        .filter_map(|range| {
            let points: Vec<_> = h.ring(figure, range)?.points(now).collect();
            let span = points.last()?.0 - points.first()?.0;
            (points.len() >= 3 && span >= min_span(range)).then_some(points)
        })
        .next()
}

fn figure(key: &str) -> usize {
    FIGURES
        .iter()
        .position(|f| f.key == key)
        .expect("a figure of FIGURES")
}

/// "the last 7 days'", "the last 2 hours'".
fn over(span: f64) -> String {
    if span >= 6.5 * 86_400.0 {
        "the last 7 days'".to_string()
    } else {
        format!("the last {}'", crate::units::human_duration(span))
    }
}

/// Every forecast for `s`, as of `now` (seconds since the epoch): drawn from its
/// [`super::DbHistory`], its latest snapshot and its thresholds.
pub fn forecasts(
    h: &DbHistory,
    s: &DbSnapshot,
    thresholds: &DbThresholds,
    now: f64,
) -> Vec<Forecast> {
    let mut out = Vec::new();
    let setting = |key: &str| thresholds.rules.iter().find(|r| r.rule.key == key);
    if let (Some(size), Some(setting)) = (s.database_size_bytes, setting("database_size")) {
        let levels: Vec<_> = setting.levels().collect();
        for (severity, limit) in levels.into_iter().rev() {
            out.push(toward(
                h,
                ("database_size", "database_size_bytes", "Database size"),
                (size as f64, limit, Some(severity)),
                now,
            ));
        }
    }
    if let Some(free) = s.filesystem.as_ref().and_then(|f| f.free_bytes) {
        out.push(toward(
            h,
            ("disk_full", "filesystem_free_bytes", "Free disk"),
            (free as f64, 0.0, None),
            now,
        ));
    }
    if let Some(setting) = setting("write_tx_per_sec") {
        if let Some((severity, limit)) = setting.levels().last() {
            out.extend(peak_write_rate(h, (severity, limit), setting.for_, now));
        }
    }
    out
}

/// When the figure `key` reaches `limit` (rising toward it, or falling to it for free space).
fn toward(
    h: &DbHistory,
    (signal, key, label): (&'static str, &str, &str),
    (value, limit, severity): (f64, f64, Option<Severity>),
    now: f64,
) -> Forecast {
    let rising = signal != "disk_full";
    let shown = |v| format_value(Unit::Bytes, v);
    let level = severity.map_or(String::new(), |s| format!(" ({})", s.as_str()));
    let goal = if rising {
        format!("{}{level}", shown(limit))
    } else {
        "full".to_string()
    };
    let mut f = Forecast {
        signal: signal.to_string(),
        severity,
        limit,
        value,
        reached: false,
        eta_seconds: None,
        basis_seconds: 0.0,
        eta_beyond_seconds: None,
        text: String::new(),
    };
    let Some(points) = basis(h, figure(key), now) else {
        return without_history(f, label, &goal, rising);
    };
    let trend = forecast::trend(&points).expect("a basis has 3 points over some time");
    f.basis_seconds = trend.span;
    let pace = ["pace", "growth"][usize::from(rising)];
    f.text = match steady_eta(&points, &trend, value, limit, rising) {
        Eta::Reached => {
            f.reached = true;
            format!("{label} {}: past {goal}", shown(value))
        }
        Eta::In(secs) if secs > forecast::reach(trend.span) => {
            let reach = forecast::reach(trend.span);
            f.eta_beyond_seconds = Some(reach);
            // Said as what is known (not within the reach), never as a near deadline:
            // "full more than 8 minutes away" read as a disk about to fill.
            let not = match rising {
                true => format!("not at {goal}"),
                false => "not full".to_string(),
            };
            format!(
                "{label} {}: {not} within {}, as far as {} of history can tell",
                shown(value),
                crate::units::human_duration(reach),
                crate::units::human_duration(trend.span)
            )
        }
        Eta::In(secs) => {
            f.eta_seconds = Some(secs);
            let verb = if rising { "reaches " } else { "" };
            format!(
                "{label} {}: at {} {pace}, {verb}{goal} in {}",
                shown(value),
                over(trend.span),
                crate::units::human_duration(secs)
            )
        }
        Eta::NotApproaching => {
            let toward = match rising {
                true => format!("not growing toward {goal}"),
                false => "not filling".to_string(),
            };
            format!(
                "{label} {}: {toward} over {}",
                shown(value),
                over(trend.span).trim_end_matches('\'')
            )
        }
    };
    f
}

/// The ETA at the trend's pace, if the later half of `points` heads the same way: a single step
/// (a bulk import, a file copied onto the disk) followed by a flat line is no pace to forecast
/// from.
fn steady_eta(
    points: &[(f64, f64)],
    trend: &forecast::Trend,
    value: f64,
    limit: f64,
    rising: bool,
) -> Eta {
    let recent = &points[points.len() / 2..];
    let steady = recent.len() < 3
        || forecast::trend(recent).is_none_or(|t| {
            !matches!(forecast::eta(&t, value, limit, rising), Eta::NotApproaching)
        });
    if steady {
        forecast::eta(trend, value, limit, rising)
    } else {
        Eta::NotApproaching
    }
}

/// A forecast with too little history for a trend: past the limit, or not forecast yet.
fn without_history(mut f: Forecast, label: &str, goal: &str, rising: bool) -> Forecast {
    let shown = format_value(Unit::Bytes, f.value);
    f.reached = match rising {
        true => f.value >= f.limit,
        false => f.value <= f.limit,
    };
    f.text = match f.reached {
        true => format!("{label} {shown}: past {goal}"),
        false => {
            format!("{label} {shown}: {goal} not forecast yet (a minute of history is needed)")
        }
    };
    f
}

/// The highest write rate of the last 24 hours against the sustained-rate threshold.
fn peak_write_rate(
    h: &DbHistory,
    (severity, limit): (Severity, f64),
    for_: std::time::Duration,
    now: f64,
) -> Option<Forecast> {
    let key = figure("write_transactions_per_second");
    let since = now - 86_400.0;
    let points = |r: Range| -> Vec<(f64, f64)> {
        h.ring(key, r)
            .map(|ring| ring.points(now).filter(|&(t, _)| t >= since).collect())
            .unwrap_or_default()
    };
    let (hour, day) = (points(Range::Hour), points(Range::Day));
    let peak = hour
        .iter()
        .chain(&day)
        .map(|&(_, v)| v)
        .fold(
            f64::NAN,
            |peak, v| if peak.is_nan() { v } else { peak.max(v) },
        );
    // Since when the peak was looked for: a day's 5-minute step begins before the daemon did,
    // so while the hour's 10 s steps hold the whole history they date its start.
    let first_of = |p: &[(f64, f64)]| p.first().map(|&(t, _)| t);
    let first = match (first_of(&hour), first_of(&day)) {
        // Nothing in the day older than the hour (and its step): the history is younger.
        (Some(h), Some(d)) if d > now - 3_600.0 - 300.0 => h,
        (h, d) => h.into_iter().chain(d).fold(f64::INFINITY, f64::min),
    };
    if peak.is_nan() {
        return None;
    }
    // A step's start is not when recording began: a 5 s sample is not "the last 12 seconds".
    let first = h.first_at.map_or(first, |f| first.max(f));
    let basis = (now - first).max(0.0);
    let when = if basis >= 23.0 * 3600.0 {
        "today".to_string()
    } else {
        format!(
            "in the last {}",
            crate::units::human_duration(basis.max(1.0))
        )
    };
    let rate = |v| format_value(Unit::PerSecond, v);
    Some(Forecast {
        signal: "write_tx_per_sec".to_string(),
        severity: Some(severity),
        limit,
        value: peak,
        reached: peak > limit,
        eta_seconds: None,
        basis_seconds: basis,
        eta_beyond_seconds: None,
        text: format!(
            "Peak write rate {when}: {} of {} ({}, when sustained for {})",
            rate(peak),
            rate(limit),
            severity.as_str(),
            humantime::format_duration(for_)
        ),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::monitor::Declared;
    use crate::probe::filesystem::FsStat;
    use std::path::Path;

    const GB: f64 = 1e9;

    fn snapshot(at: f64, size: f64, free: f64, rate: f64) -> DbSnapshot {
        let mut s = DbSnapshot::new("app", Path::new("/x"), Declared::default());
        s.polled_at = at;
        s.up = true;
        s.database_size_bytes = Some(size as u64);
        s.write_transactions_per_second = Some(rate);
        s.filesystem = Some(FsStat {
            mount_point: Path::new("/").into(),
            fs_type: "ext4".into(),
            free_bytes: Some(free as u64),
            size_bytes: Some(1000.0 as u64 * GB as u64),
        });
        s
    }

    /// Eight days, one sample every 10 minutes: the size grows 2 GB a day, the disk loses
    /// 2 GB a day, the write rate peaks at 320/s once.
    fn eight_days() -> (DbHistory, DbSnapshot, f64) {
        let mut h = DbHistory::default();
        let t0 = 1_800_000_000.0;
        let mut last = None;
        for i in 0..(8 * 144) {
            let t = t0 + f64::from(i) * 600.0;
            let days = f64::from(i) / 144.0;
            let rate = if i == 8 * 144 - 10 { 320.0 } else { 12.0 };
            let s = snapshot(
                t,
                9.0 * GB + 2.0 * days * GB,
                40.0 * GB - 2.0 * days * GB,
                rate,
            );
            h.record(&s);
            last = Some(s);
        }
        let s = last.unwrap();
        let now = s.polled_at;
        (h, s, now)
    }

    #[test]
    fn a_week_of_growth_gives_the_days_to_each_threshold_and_to_a_full_disk() {
        let (h, s, now) = eight_days();
        let f = forecasts(&h, &s, &DbThresholds::default(), now);
        let text: Vec<&str> = f.iter().map(|f| f.text.as_str()).collect();
        // 50 GB at 2 GB a day from ~25 GB: 13 days; 100 GB: 38 days, past the 4 weeks that
        // 7 days of history can tell; 40 - 16 GB free at 2 GB a day: 12 days.
        assert!(
            text[0].contains("at the last 7 days' growth, reaches 50 GB (info) in 13 days"),
            "{text:?}"
        );
        assert_eq!(
            text[1],
            "Database size 25 GB: not at 100 GB (warning) within 28 days, as far as 7 days of history can tell"
        );
        assert_eq!(f[1].eta_seconds, None);
        assert!((f[1].eta_beyond_seconds.unwrap() / 86_400.0 - 28.0).abs() < 0.5);
        assert!(
            text[2].starts_with("Free disk 24 GB: at the last 7 days' pace, full in 12 days"),
            "{text:?}"
        );
        assert_eq!(
            text[3],
            "Peak write rate today: 320/s of 500/s (warning, when sustained for 10m)"
        );
        assert!((f[0].eta_seconds.unwrap() / 86_400.0 - 12.6).abs() < 0.5);
        assert!(f[0].basis_seconds > 6.5 * 86_400.0);
        assert_eq!(f[3].value, 320.0);
        assert!(!f[3].reached);
    }

    /// A daemon two minutes old after a burst: a line through two minutes reaches eight
    /// minutes ahead and no further, whatever it points at.
    #[test]
    fn no_forecast_reaches_past_four_times_its_history() {
        let mut h = DbHistory::default();
        let t0 = 1_800_000_000.0;
        let mut s = snapshot(t0, 0.0, 0.0, 0.0);
        for i in 0..=12 {
            let t = t0 + f64::from(i) * 10.0;
            s = snapshot(
                t,
                2e6 + f64::from(i) * 1e5,
                80.1 * GB - f64::from(i) * 1e8,
                5.0,
            );
            h.record(&s);
        }
        let f = forecasts(&h, &s, &DbThresholds::default(), s.polled_at);
        for x in &f[..3] {
            assert_eq!(x.eta_seconds, None, "{x:?}");
            assert_eq!(x.eta_beyond_seconds, Some(4.0 * x.basis_seconds), "{x:?}");
        }
        assert_eq!(
            f[2].text,
            "Free disk 78.9 GB: not full within 8 minutes, as far as 2 minutes of history can tell"
        );
        // And an ETA within the reach is given as it is: 10 MB a second toward a 3 GB limit.
        let mut near = DbHistory::default();
        for i in 0..=12 {
            s = snapshot(t0 + f64::from(i) * 10.0, 1e9, 3e9 - f64::from(i) * 1e8, 0.0);
            near.record(&s);
        }
        let f = forecasts(&near, &s, &DbThresholds::default(), s.polled_at);
        assert!(
            f[2].eta_seconds.unwrap() <= 4.0 * f[2].basis_seconds,
            "{:?}",
            f[2]
        );
    }

    /// A daemon 31 s old, its first samples in a day step that began minutes earlier: the peak
    /// is said of the 31 s it has, not of the step.
    #[test]
    fn the_peak_is_said_of_the_history_there_is() {
        let mut h = DbHistory::default();
        let t0 = 1_800_000_045.0; // 45 s into a 5-minute step, 5 s into a 10 s one
        let mut s = snapshot(t0, 1e6, 50.0 * GB, 50.0);
        for i in 0..=31 {
            s = snapshot(t0 + f64::from(i), 1e6, 50.0 * GB, 50.0);
            h.record(&s);
        }
        let f = forecasts(&h, &s, &DbThresholds::default(), s.polled_at);
        let peak = f.last().unwrap();
        assert_eq!(peak.basis_seconds, 31.0, "{peak:?}");
        assert!(
            peak.text
                .starts_with("Peak write rate in the last 31 seconds"),
            "{}",
            peak.text
        );
    }

    #[test]
    fn too_little_history_says_so_and_a_past_threshold_says_past() {
        let mut h = DbHistory::default();
        let s = snapshot(1_800_000_000.0, 60.0 * GB, 5.0 * GB, 1.0);
        h.record(&s);
        let f = forecasts(&h, &s, &DbThresholds::default(), s.polled_at);
        assert_eq!(f[0].text, "Database size 60 GB: past 50 GB (info)");
        assert!(f[0].reached);
        assert!(
            f[1].text.contains("100 GB (warning) not forecast yet"),
            "{:?}",
            f[1]
        );
        assert_eq!(
            f[3].text,
            "Peak write rate in the last 1 second: 1/s of 500/s (warning, when sustained for 10m)"
        );
    }

    #[test]
    fn a_step_then_a_flat_line_is_no_pace() {
        // A walkthrough: one file copied onto a small disk, then nothing; the fit over the
        // whole range said "full in 8 seconds".
        let mut h = DbHistory::default();
        let t0 = 1_800_000_000.0;
        let mut s = snapshot(t0, 0.0, 0.0, 0.0);
        for i in 0..18 {
            let free = if i < 3 { 4.0e6 } else { 0.2e6 };
            s = snapshot(t0 + f64::from(i) * 10.0, 1e6, free, 0.0);
            h.record(&s);
        }
        let f = forecasts(&h, &s, &DbThresholds::default(), s.polled_at);
        assert_eq!(f[2].eta_seconds, None, "{}", f[2].text);
        assert!(f[2].text.contains("not filling"), "{}", f[2].text);
    }

    #[test]
    fn a_shrinking_database_is_not_growing_toward_anything() {
        let mut h = DbHistory::default();
        let t0 = 1_800_000_000.0;
        let mut s = snapshot(t0, 0.0, 0.0, 0.0);
        for i in 0..30 {
            s = snapshot(
                t0 + f64::from(i) * 10.0,
                2.0 * GB - f64::from(i) * 1e6,
                50.0 * GB,
                0.0,
            );
            h.record(&s);
        }
        let f = forecasts(&h, &s, &DbThresholds::default(), s.polled_at);
        assert_eq!(f[0].eta_seconds, None);
        assert!(
            f[0].text
                .contains("not growing toward 50 GB (info) over the last 5 minutes"),
            "{}",
            f[0].text
        );
        assert_eq!(
            f[2].text,
            "Free disk 50 GB: not filling over the last 5 minutes"
        );
    }
}
