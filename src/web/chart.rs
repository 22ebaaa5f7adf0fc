//! Line charts drawn on the server as inline SVG, so that the status page needs nothing from
//! outside the daemon (no script library, no font, no network). Pure.

use super::html::esc;
use crate::rules::Unit;
use crate::units::format_value;
use std::fmt::Write;

/// Drawing area, in SVG user units (the chart scales to its box).
const WIDTH: f64 = 320.0;
const HEIGHT: f64 = 110.0;
/// Room for the labels above and below the plot.
const TOP: f64 = 18.0;
const BOTTOM: f64 = 14.0;

/// One chart: what it shows and the buckets to draw.
pub struct Chart<'a> {
    /// Named in `data-` attributes, for tests and scripts.
    pub db: &'a str,
    pub key: &'a str,
    pub title: &'a str,
    pub unit: Unit,
    /// (bucket start, value or NaN), oldest first, evenly spaced.
    pub points: &'a [(f64, f64)],
    /// A threshold drawn as a dashed line when it is within reach of the values.
    pub threshold: Option<f64>,
    /// How the left end of the time axis reads ("-1h").
    pub span_label: &'a str,
    /// What the figure at the top right is: "now", "peak of the last 10s".
    pub newest_is: &'a str,
}

/// The top of the y axis: a little above the highest value, and the threshold when it is at
/// most twice that (a threshold far above the values would flatten them into the floor).
fn y_max(max: f64, threshold: Option<f64>) -> (f64, bool) {
    let max = if max > 0.0 { max * 1.1 } else { 1.0 };
    match threshold {
        Some(t) if t > 0.0 && t <= max * 2.0 => (max.max(t * 1.05), true),
        _ => (max, false),
    }
}

/// The chart as an `<svg>` element.
pub fn svg(c: &Chart) -> String {
    let values = || c.points.iter().map(|&(_, v)| v).filter(|v| !v.is_nan());
    let drawn = values().count();
    let max = values().fold(0.0_f64, f64::max);
    let last = c.points.iter().rev().map(|&(_, v)| v).find(|v| !v.is_nan());
    let (top, show_threshold) = y_max(max, c.threshold);
    let n = c.points.len().max(2) as f64 - 1.0;
    let plot = HEIGHT - TOP - BOTTOM;
    let x = |i: usize| i as f64 / n * WIDTH;
    let y = |v: f64| TOP + plot - (v / top).clamp(0.0, 1.0) * plot;
    // One path; a bucket with no sample lifts the pen, so a gap shows as a gap. Whole units:
    // the box is about as many pixels wide, and a page of a hundred databases stays small.
    let mut d = String::new();
    let mut pen_down = false;
    for (i, &(_, v)) in c.points.iter().enumerate() {
        if v.is_nan() {
            pen_down = false;
            continue;
        }
        let _ = write!(
            d,
            "{}{:.0},{:.0}",
            if pen_down { "L" } else { "M" },
            x(i),
            y(v)
        );
        // A lone bucket still shows, as a dot-long line.
        if !pen_down && c.points.get(i + 1).is_none_or(|&(_, n)| n.is_nan()) {
            let _ = write!(d, "h1");
        }
        pen_down = true;
    }
    let shown = |v: f64| esc(&format_value(c.unit, v));
    let mut out = format!(
        "<svg class=\"chart\" viewBox=\"0 0 {WIDTH} {HEIGHT}\" role=\"img\" data-db=\"{db}\" \
data-figure=\"{key}\" data-points=\"{drawn}\" aria-label=\"{title}\">\
<title>{title}</title>\
<text x=\"0\" y=\"11\" class=\"t\">{title}</text>\
<text x=\"{WIDTH}\" y=\"11\" class=\"v\" text-anchor=\"end\">{now} <tspan class=\"l\">({newest_is})</tspan></text>\
<line x1=\"0\" y1=\"{base:.1}\" x2=\"{WIDTH}\" y2=\"{base:.1}\" class=\"axis\"/>",
        db = esc(c.db),
        key = esc(c.key),
        title = esc(c.title),
        now = last.map_or_else(|| "no data".to_string(), shown),
        newest_is = esc(c.newest_is),
        base = TOP + plot,
    );
    if show_threshold {
        let t = c.threshold.expect("shown only when set");
        let _ = write!(
            out,
            "<line x1=\"0\" y1=\"{ty:.1}\" x2=\"{WIDTH}\" y2=\"{ty:.1}\" class=\"limit\"/>\
<text x=\"2\" y=\"{ly:.1}\" class=\"l\">{label}</text>",
            ty = y(t),
            ly = y(t) - 2.0,
            label = shown(t),
        );
    }
    let _ = write!(
        out,
        "<path d=\"{d}\" class=\"line\"/>\
<text x=\"0\" y=\"{HEIGHT}\" class=\"a\">{span}</text>\
<text x=\"{WIDTH}\" y=\"{HEIGHT}\" class=\"a\" text-anchor=\"end\">now · max {max}</text></svg>",
        span = esc(c.span_label),
        max = if drawn > 0 { shown(max) } else { "–".into() },
    );
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn chart<'a>(points: &'a [(f64, f64)], threshold: Option<f64>) -> Chart<'a> {
        Chart {
            db: "app<1>",
            key: "write_transactions_per_second",
            title: "Write transactions/s",
            unit: Unit::PerSecond,
            points,
            threshold,
            span_label: "-1h",
            newest_is: "now",
        }
    }

    #[test]
    fn draws_every_bucket_with_a_value_and_lifts_the_pen_over_gaps() {
        let nan = f64::NAN;
        let points = [
            (0.0, 1.0),
            (10.0, 2.0),
            (20.0, nan),
            (30.0, 4.0),
            (40.0, 2.0),
        ];
        let s = svg(&chart(&points, None));
        assert!(s.contains("data-points=\"4\""), "{s}");
        assert!(s.contains("data-db=\"app&lt;1&gt;\""), "escaped: {s}");
        let d = s.split("d=\"").nth(1).unwrap().split('"').next().unwrap();
        assert_eq!(d.matches('M').count(), 2, "two runs: {d}");
        assert_eq!(d.matches('L').count(), 2, "{d}");
        assert!(
            s.contains(">2/s <tspan class=\"l\">(now)</tspan><"),
            "the last value, saying what it is: {s}"
        );
        assert!(s.contains("max 4/s"), "{s}");
        assert!(!s.contains("class=\"limit\""), "no threshold given");
    }

    #[test]
    fn a_threshold_within_reach_is_drawn_and_one_far_above_is_not() {
        let points = [(0.0, 300.0), (10.0, 320.0), (20.0, 310.0)];
        let s = svg(&chart(&points, Some(500.0)));
        assert!(
            s.contains("class=\"limit\"") && s.contains(">500/s<"),
            "{s}"
        );
        let low = [(0.0, 3.0), (10.0, 5.0), (20.0, 4.0)];
        assert!(!svg(&chart(&low, Some(500.0))).contains("class=\"limit\""));
    }

    #[test]
    fn no_data_and_one_lone_bucket_still_draw() {
        let nan = f64::NAN;
        let s = svg(&chart(&[(0.0, nan), (10.0, nan)], None));
        assert!(
            s.contains("data-points=\"0\"") && s.contains("no data"),
            "{s}"
        );
        let s = svg(&chart(&[(0.0, nan), (10.0, 0.0), (20.0, nan)], None));
        assert!(s.contains("d=\"M160,96h1\""), "{s}");
        assert!(s.contains("data-points=\"1\""));
    }
}
