//! When a figure will cross a threshold at its recent pace: a least-squares line through its
//! history. Pure. A forecast always says what it was drawn from ("at the last 7 days'
//! growth"), because a line through ten minutes says much less than one through a week.

/// A straight line fitted to (time, value) points.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Trend {
    /// Change per second.
    pub slope: f64,
    /// The value the line gives at `until`.
    pub now_value: f64,
    /// The time of the last point (seconds since the epoch).
    pub until: f64,
    /// Seconds between the first and the last point.
    pub span: f64,
}

/// The least-squares line through `points`; `None` with fewer than 3 points or no time
/// between them.
pub fn trend(points: &[(f64, f64)]) -> Option<Trend> {
    if points.len() < 3 {
        return None;
    }
    let n = points.len() as f64;
    // Centred on the first point so that epoch seconds squared do not swamp the sums.
    let t0 = points[0].0;
    let (mut st, mut sv) = (0.0, 0.0);
    for &(t, v) in points {
        st += t - t0;
        sv += v;
    }
    let (mt, mv) = (st / n, sv / n);
    let (mut stt, mut stv) = (0.0, 0.0);
    for &(t, v) in points {
        let dt = t - t0 - mt;
        stt += dt * dt;
        stv += dt * (v - mv);
    }
    if stt <= 0.0 {
        return None;
    }
    let slope = stv / stt;
    let until = points[points.len() - 1].0;
    Some(Trend {
        slope,
        now_value: mv + slope * (until - t0 - mt),
        until,
        span: until - t0,
    })
}

/// Where a figure stands against a limit it moves toward.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Eta {
    /// Already past it.
    Reached,
    /// At this pace, in this many seconds.
    In(f64),
    /// Not moving toward it (or not within ten years at this pace).
    NotApproaching,
}

/// Longest forecast worth a number: beyond it the pace says "not approaching".
pub const HORIZON_SECONDS: f64 = 10.0 * 365.0 * 86_400.0;

/// How far ahead a forecast may reach, in multiples of the history it is drawn from: a line
/// through two minutes says nothing of next month. Four, as the node-mixin's disk alert
/// predicts 24 h from 6 h of data (`predict_linear(...[6h], 24*3600)`).
pub const EVIDENCE_MULTIPLE: f64 = 4.0;

/// The furthest ahead a history of `span` seconds may forecast.
pub fn reach(span: f64) -> f64 {
    EVIDENCE_MULTIPLE * span
}

/// When `trend` reaches `limit`, coming from below when `rising`, from above otherwise.
/// `latest` is the last value measured (it decides "already past", not the fitted line).
pub fn eta(trend: &Trend, latest: f64, limit: f64, rising: bool) -> Eta {
    let (gap, pace) = if rising {
        (limit - latest, trend.slope)
    } else {
        (latest - limit, -trend.slope)
    };
    if gap <= 0.0 {
        return Eta::Reached;
    }
    if pace <= 0.0 {
        return Eta::NotApproaching;
    }
    let secs = gap / pace;
    if secs > HORIZON_SECONDS {
        Eta::NotApproaching
    } else {
        Eta::In(secs)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fits_a_line_exactly_and_ignores_where_time_starts() {
        let t0 = 1.8e9;
        let points: Vec<_> = (0..10)
            .map(|i| (t0 + f64::from(i) * 3600.0, 1e9 + f64::from(i) * 1e6))
            .collect();
        let t = trend(&points).unwrap();
        assert!((t.slope - 1e6 / 3600.0).abs() < 1e-6, "{t:?}");
        assert!((t.now_value - 1.009e9).abs() < 1e-3, "{t:?}");
        assert_eq!(t.span, 9.0 * 3600.0);
        assert_eq!(t.until, t0 + 9.0 * 3600.0);
    }

    #[test]
    fn too_few_points_or_no_time_give_no_trend() {
        assert!(trend(&[]).is_none());
        assert!(trend(&[(1.0, 1.0), (2.0, 2.0)]).is_none());
        assert!(trend(&[(1.0, 1.0), (1.0, 2.0), (1.0, 3.0)]).is_none());
    }

    #[test]
    fn noise_around_a_slope_still_gives_the_slope() {
        let points: Vec<_> = (0..100)
            .map(|i| {
                let noise = if i % 2 == 0 { 5.0 } else { -5.0 };
                (f64::from(i), 2.0 * f64::from(i) + noise)
            })
            .collect();
        let t = trend(&points).unwrap();
        assert!((t.slope - 2.0).abs() < 0.01, "{t:?}");
    }

    #[test]
    fn eta_counts_from_the_latest_value_at_the_fitted_pace() {
        let t = Trend {
            slope: 10.0,
            now_value: 0.0,
            until: 0.0,
            span: 100.0,
        };
        assert_eq!(eta(&t, 50.0, 100.0, true), Eta::In(5.0));
        assert_eq!(eta(&t, 150.0, 100.0, true), Eta::Reached);
        assert_eq!(eta(&t, 150.0, 100.0, false), Eta::NotApproaching);
        let falling = Trend { slope: -2.0, ..t };
        assert_eq!(eta(&falling, 100.0, 0.0, false), Eta::In(50.0));
        assert_eq!(eta(&falling, 50.0, 100.0, true), Eta::NotApproaching);
        let crawling = Trend { slope: 1e-9, ..t };
        assert_eq!(eta(&crawling, 0.0, 1e9, true), Eta::NotApproaching);
    }
}
