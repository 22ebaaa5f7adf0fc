//! How sqlite-ops writes a figure for people (the status page, `check`, logs, alert texts):
//! the units of the thresholds, bytes in SI units, durations rounded to what they can tell; and
//! a time as the seconds since the Unix epoch that every timestamp series and record carries.

use std::time::SystemTime;

/// `t` in seconds since the Unix epoch (0 for a time before it). Pure: the caller reads the clock.
pub fn epoch_seconds(t: SystemTime) -> f64 {
    t.duration_since(SystemTime::UNIX_EPOCH)
        .map_or(0.0, |d| d.as_secs_f64())
}

/// The unit of a figure (a rule's value): decides how config values are parsed and values are
/// shown.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Unit {
    Bytes,
    Seconds,
    /// A fraction; written as a percentage in config and text.
    Ratio,
    PerSecond,
    Count,
}

/// Shows a value in its unit, as people read it.
pub fn format_value(unit: Unit, v: f64) -> String {
    match unit {
        Unit::Bytes => format_bytes(v),
        Unit::Seconds => {
            if v < 60.0 {
                format!("{}s", trim(v, 1))
            } else {
                humantime::format_duration(std::time::Duration::from_secs(v.round() as u64))
                    .to_string()
            }
        }
        Unit::Ratio => format!("{}%", trim(v * 100.0, 1)),
        Unit::PerSecond => format!("{}/s", trim(v, 1)),
        Unit::Count => trim(v, 0),
    }
}

/// Bytes in decimal (SI) units, the one system sqlite-ops shows bytes in (the page, `check`,
/// logs, alert texts, docs), as the migration thresholds are written (50 GB): the largest
/// unit `v` reaches, with one decimal unless whole.
fn format_bytes(v: f64) -> String {
    const UNITS: [(f64, &str); 4] = [(1e12, "TB"), (1e9, "GB"), (1e6, "MB"), (1e3, "kB")];
    for (size, name) in UNITS {
        if v >= size {
            return format!("{} {name}", trim(v / size, 1));
        }
    }
    format!("{} B", trim(v, 0))
}

/// `value` as [`format_value`] shows it, with more decimals where rounding would show it equal
/// to the `threshold` it breaches ("10s, above 10s" reads as no breach at all).
pub fn format_against(unit: Unit, value: f64, threshold: f64) -> String {
    let shown = format_value(unit, value);
    if value == threshold || shown != format_value(unit, threshold) {
        return shown;
    }
    // As many decimals as it takes to tell the two apart (a clock just past its threshold is
    // 10.004s), up to nine.
    let (scale, suffix, least) = match unit {
        Unit::Seconds => (1.0, "s", 2),
        Unit::Bytes => (1.0, " B", 0),
        Unit::Ratio => (100.0, "%", 3),
        Unit::PerSecond => (1.0, "/s", 3),
        Unit::Count => (1.0, "", 2),
    };
    let decimals = (least..=9)
        .find(|&d| trim(value * scale, d) != trim(threshold * scale, d))
        .unwrap_or(9);
    format!("{}{suffix}", trim(value * scale, decimals))
}

/// `v` with at most `decimals` decimals and no trailing zeros.
fn trim(v: f64, decimals: usize) -> String {
    let s = format!("{v:.decimals$}");
    if s.contains('.') {
        s.trim_end_matches('0').trim_end_matches('.').to_string()
    } else {
        s
    }
}

/// A duration for people, rounded to what the pace can tell: "41 days", "5 h", "12 min".
pub fn human_duration(secs: f64) -> String {
    let plural = |n: f64, unit: &str| {
        let n = n.round().max(1.0);
        if n == 1.0 {
            format!("1 {unit}")
        } else {
            format!("{n} {unit}s")
        }
    };
    match secs {
        s if s < 90.0 => plural(s, "second"),
        s if s < 90.0 * 60.0 => plural(s / 60.0, "minute"),
        s if s < 36.0 * 3600.0 => plural(s / 3600.0, "hour"),
        s if s < 60.0 * 86_400.0 => plural(s / 86_400.0, "day"),
        s if s < 2.0 * 365.0 * 86_400.0 => plural(s / (30.44 * 86_400.0), "month"),
        s => plural(s / (365.25 * 86_400.0), "year"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn values_read_as_written() {
        assert_eq!(format_value(Unit::Bytes, 50e9), "50 GB");
        assert_eq!(format_value(Unit::Bytes, 1_073_741_824.0), "1.1 GB");
        assert_eq!(format_value(Unit::Bytes, 4096.0), "4.1 kB");
        assert_eq!(format_value(Unit::Bytes, 1_234_567.0), "1.2 MB");
        assert_eq!(format_value(Unit::Bytes, 12.0), "12 B");
        assert_eq!(format_value(Unit::Seconds, 5.25), "5.2s");
        assert_eq!(format_value(Unit::Seconds, 300.0), "5m");
        assert_eq!(format_value(Unit::Ratio, 0.05), "5%");
        assert_eq!(format_value(Unit::PerSecond, 512.34), "512.3/s");
        assert_eq!(format_value(Unit::Count, 3.0), "3");
        // Beside the threshold it breaches, never the same words.
        assert_eq!(format_against(Unit::Seconds, 10.04, 10.0), "10.04s");
        assert_eq!(format_against(Unit::Seconds, 12.0, 10.0), "12s");
        assert_eq!(format_against(Unit::Seconds, 10.0004, 10.0), "10.0004s");
        assert_eq!(format_against(Unit::Seconds, 300.4, 300.0), "300.4s");
        assert_eq!(format_against(Unit::Bytes, 1e9 + 1.0, 1e9), "1000000001 B");
    }

    #[test]
    fn durations_read_as_people_say_them() {
        assert_eq!(human_duration(1.0), "1 second");
        assert_eq!(human_duration(600.0), "10 minutes");
        assert_eq!(human_duration(5.0 * 3600.0), "5 hours");
        assert_eq!(human_duration(41.0 * 86_400.0), "41 days");
        assert_eq!(human_duration(200.0 * 86_400.0), "7 months");
        assert_eq!(human_duration(5.0 * 365.25 * 86_400.0), "5 years");
    }
}
