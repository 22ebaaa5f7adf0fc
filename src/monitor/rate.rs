//! Rate of a counter over a sliding window: a short one for live displays (the landing page,
//! the demo), [`super::SUSTAINED_WINDOW`] for the thresholds.

use std::collections::VecDeque;
use std::time::{Duration, Instant};

/// How many points a window keeps at most, give or take two.
const STEPS: u32 = 30;

/// Rate of a counter over a sliding window.
///
/// Points are kept at most every `STEPS`th of the window, not at every poll: a rate needs only
/// the counter's value at the window's start, and ten thousand databases polled every second
/// would otherwise keep 300 points each (7 KB) per five-minute window. The window read is then
/// between `span` and `span + span / STEPS` long; the latest value always counts.
#[derive(Debug)]
pub struct RateWindow {
    span: Duration,
    step: Duration,
    points: VecDeque<(Instant, f64)>,
}

impl RateWindow {
    pub fn new(span: Duration) -> Self {
        RateWindow {
            span,
            step: span / STEPS,
            points: VecDeque::new(),
        }
    }

    /// How many seconds before `now` the window reaches back (0 when empty).
    pub fn covered(&self, now: Instant) -> f64 {
        self.points.front().map_or(0.0, |&(t0, _)| {
            now.saturating_duration_since(t0).as_secs_f64()
        })
    }

    /// Records the counter's value at `now` and returns its rate per second over the window,
    /// `None` until two points at least 100 ms apart exist.
    pub fn observe(&mut self, now: Instant, value: f64) -> Option<f64> {
        if self
            .points
            .back()
            .is_none_or(|&(t, _)| now.saturating_duration_since(t) >= self.step)
        {
            self.points.push_back((now, value));
        }
        while self.points.len() > 2 && now.saturating_duration_since(self.points[1].0) >= self.span
        {
            self.points.pop_front();
        }
        let &(t0, v0) = self.points.front()?;
        let dt = now.saturating_duration_since(t0).as_secs_f64();
        (dt >= 0.1).then(|| (value - v0).max(0.0) / dt)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rate_over_the_window() {
        let t0 = Instant::now();
        let mut r = RateWindow::new(Duration::from_secs(5));
        assert_eq!(r.observe(t0, 0.0), None);
        assert_eq!(r.observe(t0 + Duration::from_secs(1), 100.0), Some(100.0));
        for i in 2..=20u64 {
            r.observe(
                t0 + Duration::from_secs(i),
                (i * 100 + if i > 15 { (i - 15) * 100 } else { 0 }) as f64,
            );
        }
        // Over the last 5 s the counter gained 200/s.
        let rate = r.observe(t0 + Duration::from_secs(21), 2700.0).unwrap();
        assert!((rate - 200.0).abs() < 1e-9, "{rate}");
    }

    #[test]
    fn polled_every_second_a_long_window_keeps_few_points_and_stays_exact_for_a_steady_rate() {
        let t0 = Instant::now();
        let mut r = RateWindow::new(Duration::from_secs(300));
        let mut last = None;
        for i in 0..=3600u64 {
            last = r.observe(t0 + Duration::from_secs(i), (i * 7) as f64);
            assert!(r.points.len() <= STEPS as usize + 2, "{}", r.points.len());
        }
        assert!((last.unwrap() - 7.0).abs() < 1e-9);
        // A burst then silence: the burst stays in the rate for the window, at most a step more.
        let start = t0 + Duration::from_secs(3601);
        r.observe(start, 3600.0 * 7.0 + 3000.0);
        let total = 3600.0 * 7.0 + 3000.0;
        let shown = r.observe(start + Duration::from_secs(1), total).unwrap();
        assert!(shown > 9.0, "the burst shows: {shown}");
        let mut gone = None;
        for s in 2..=300 + 10 + 1 {
            gone = r.observe(start + Duration::from_secs(s), total);
        }
        let gone = gone.unwrap();
        assert_eq!(gone, 0.0, "a window and a step later it is gone");
    }
}
