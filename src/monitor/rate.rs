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
/// between `span` and `span + span / STEPS` long (`span` where the counter held still at its
/// start); the latest value always counts.
#[derive(Debug)]
pub struct RateWindow {
    span: Duration,
    step: Duration,
    points: VecDeque<(Instant, f64)>,
    /// While every point holds the same value: that value, and when it was last observed. The
    /// window then records nothing (an idle tenant's three windows cost a comparison a poll),
    /// and the point the last look stands for is kept once the counter moves.
    flat: Option<(f64, Instant)>,
}

impl RateWindow {
    pub fn new(span: Duration) -> Self {
        RateWindow {
            span,
            step: span / STEPS,
            points: VecDeque::new(),
            flat: None,
        }
    }

    /// How many seconds before `now` the window reaches back (0 when empty).
    pub fn covered(&self, now: Instant) -> f64 {
        self.points.front().map_or(0.0, |&(t0, _)| {
            let covered = now.saturating_duration_since(t0);
            // A flat window holds its oldest point past the span: it reaches back the span.
            match self.flat {
                Some(_) => covered.min(self.span),
                None => covered,
            }
            .as_secs_f64()
        })
    }

    /// Records the counter's value at `now` and returns its rate per second over the window,
    /// `None` until two points at least 100 ms apart exist.
    pub fn observe(&mut self, now: Instant, value: f64) -> Option<f64> {
        if let Some((held, seen)) = self.flat.as_mut() {
            if *held == value {
                *seen = now;
                return Some(0.0);
            }
            // The counter moved since `seen`, when it still held the window's value.
            let (held, seen) = (*held, *seen);
            self.flat = None;
            if self.points.back().is_none_or(|&(t, _)| seen > t) {
                self.points.push_back((seen, held));
            }
        }
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
        // Between two points of the same value the counter held it: the oldest point may stand
        // at any time between them, so it stands a span back where it can (the window's points
        // may be far apart after a flat stretch).
        if self.points.len() >= 2 && self.points[0].1 == self.points[1].1 {
            let (t0, t1) = (self.points[0].0, self.points[1].0);
            self.points[0].0 = now.checked_sub(self.span).unwrap_or(t0).clamp(t0, t1);
        }
        let &(t0, v0) = self.points.front()?;
        let dt = now.saturating_duration_since(t0).as_secs_f64();
        let rate = (dt >= 0.1).then(|| (value - v0).max(0.0) / dt);
        // A counter that did not move over the window (monotonic: its first point and the
        // latest value are equal) leaves it flat until it moves.
        if rate == Some(0.0) && v0 == value {
            self.flat = Some((value, now));
        }
        rate
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
    fn after_an_idle_stretch_the_first_writes_count_over_the_span_as_if_every_poll_were_kept() {
        let t0 = Instant::now();
        let span = Duration::from_secs(300);
        let at = |s: u64| t0 + Duration::from_secs(s);
        let mut r = RateWindow::new(span);
        for s in 0..=10 {
            r.observe(at(s), (s * 10) as f64);
        }
        // An hour without a write: the window goes flat a span after the last one (its oldest point
        // stands a span back), and records nothing.
        for s in 11..=3600 {
            let rate = r.observe(at(s), 100.0);
            assert_eq!(rate == Some(0.0), s >= 10 + 300, "{s}: {rate:?}");
        }
        assert!(r.flat.is_some());
        let kept = r.points.len();
        for s in 3601..=7200 {
            r.observe(at(s), 100.0);
        }
        assert_eq!(r.points.len(), kept, "a flat window records nothing");
        assert_eq!(r.covered(at(7200)), 300.0);
        // 600 writes in the next second: 600 over the span, as a window that kept every poll
        // would say (give or take a step).
        let rate = r.observe(at(7201), 700.0).unwrap();
        assert!((600.0 / 310.0..=600.0 / 300.0).contains(&rate), "{rate}");
        assert!(r.flat.is_none());
        // And it leaves the window a span and a step later.
        let mut last = None;
        for s in 7202..=7201 + 300 + 10 + 1 {
            last = r.observe(at(s), 700.0);
        }
        assert_eq!(last, Some(0.0));
        // Writes while the window is not flat count as before.
        let busy = r.observe(at(7600), 1000.0).unwrap();
        assert!((300.0 / 310.0..=300.0 / 300.0).contains(&busy), "{busy}");
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
