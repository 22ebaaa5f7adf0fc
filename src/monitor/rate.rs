//! Rate of a counter over a sliding window: a short one for live displays (the landing page,
//! the demo), [`super::SUSTAINED_WINDOW`] for the thresholds.

use std::collections::VecDeque;
use std::time::{Duration, Instant};

#[derive(Debug)]
pub struct RateWindow {
    span: Duration,
    points: VecDeque<(Instant, f64)>,
}

impl RateWindow {
    pub fn new(span: Duration) -> Self {
        RateWindow {
            span,
            points: VecDeque::new(),
        }
    }

    /// Records the counter's value at `now` and returns its rate per second over the window,
    /// `None` until two points at least 100 ms apart exist.
    pub fn observe(&mut self, now: Instant, value: f64) -> Option<f64> {
        self.points.push_back((now, value));
        while self.points.len() > 2 && now.duration_since(self.points[1].0) >= self.span {
            self.points.pop_front();
        }
        let &(t0, v0) = self.points.front()?;
        let dt = now.duration_since(t0).as_secs_f64();
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
}
