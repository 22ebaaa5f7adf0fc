//! A fixed ring of time buckets: the memory of one figure at one resolution. Pure (time is
//! passed in); its size is set when it is made and never grows, so history costs the same on
//! the first day and the hundredth.

/// What a bucket keeps of the samples that fall into it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Keep {
    /// The last sample: sizes, free space (a level at the end of the step).
    Last,
    /// The highest sample: rates and lags, so that a peak shorter than the step still shows.
    Max,
}

/// `len` buckets of `step` seconds each, aligned on the Unix epoch, newest last. A bucket no
/// sample fell into holds NaN (a gap on a chart, not a zero).
#[derive(Debug, Clone)]
pub struct Ring {
    step: u32,
    keep: Keep,
    values: Box<[f32]>,
    /// The bucket number (seconds since the epoch / step) of the newest bucket written.
    newest: Option<i64>,
}

impl Ring {
    pub fn new(step: u32, len: usize, keep: Keep) -> Self {
        assert!(step > 0 && len > 0, "a ring has buckets of some length");
        Ring {
            step,
            keep,
            values: vec![f32::NAN; len].into_boxed_slice(),
            newest: None,
        }
    }

    /// Seconds per bucket.
    pub fn step(&self) -> u32 {
        self.step
    }

    /// Bytes this ring holds, whatever it has recorded.
    pub fn bytes(&self) -> usize {
        std::mem::size_of::<Self>() + std::mem::size_of_val(&*self.values)
    }

    /// Adds a sample taken at `at` (seconds since the epoch). A sample older than the ring
    /// (the clock stepped back) is dropped; one in a later bucket clears the buckets skipped.
    pub fn record(&mut self, at: f64, value: f64) {
        if !at.is_finite() || !value.is_finite() {
            return;
        }
        let len = self.values.len() as i64;
        let bucket = (at / f64::from(self.step)).floor() as i64;
        let newest = *self.newest.get_or_insert(bucket);
        if bucket <= newest - len {
            return;
        }
        if bucket > newest {
            // Clear what the ring skipped, at most once round.
            let first = (newest + 1).max(bucket - len + 1);
            for b in first..=bucket {
                self.values[b.rem_euclid(len) as usize] = f32::NAN;
            }
            self.newest = Some(bucket);
        }
        let slot = &mut self.values[bucket.rem_euclid(len) as usize];
        let value = value as f32;
        *slot = match self.keep {
            Keep::Last => value,
            Keep::Max if slot.is_nan() => value,
            Keep::Max => slot.max(value),
        };
    }

    /// The buckets as of `now` (seconds since the epoch), oldest first: (start of the bucket
    /// in seconds since the epoch, value or NaN). Always `len` of them, ending at `now`'s
    /// bucket, so that charts of the same range line up.
    pub fn window(&self, now: f64) -> impl Iterator<Item = (f64, f64)> + '_ {
        let len = self.values.len() as i64;
        let last = (now / f64::from(self.step)).floor() as i64;
        let newest = self.newest;
        (last - len + 1..=last).map(move |b| {
            let held = newest.is_some_and(|n| b <= n && b > n - len);
            let v = if held {
                f64::from(self.values[b.rem_euclid(len) as usize])
            } else {
                f64::NAN
            };
            (b as f64 * f64::from(self.step), v)
        })
    }

    /// The buckets that hold a value as of `now`, oldest first.
    pub fn points(&self, now: f64) -> impl Iterator<Item = (f64, f64)> + '_ {
        self.window(now).filter(|(_, v)| !v.is_nan())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn values(r: &Ring, now: f64) -> Vec<Option<f64>> {
        r.window(now)
            .map(|(_, v)| (!v.is_nan()).then_some(v))
            .collect()
    }

    #[test]
    fn keeps_the_last_or_the_highest_sample_of_each_bucket() {
        let mut last = Ring::new(10, 3, Keep::Last);
        let mut max = Ring::new(10, 3, Keep::Max);
        for (t, v) in [(100.0, 5.0), (104.0, 9.0), (109.9, 7.0), (110.0, 1.0)] {
            last.record(t, v);
            max.record(t, v);
        }
        assert_eq!(values(&last, 115.0), [None, Some(7.0), Some(1.0)]);
        assert_eq!(values(&max, 115.0), [None, Some(9.0), Some(1.0)]);
        let starts: Vec<f64> = last.window(115.0).map(|(t, _)| t).collect();
        assert_eq!(starts, [90.0, 100.0, 110.0]);
    }

    #[test]
    fn a_gap_clears_the_buckets_it_skips_and_old_buckets_fall_off() {
        let mut r = Ring::new(10, 4, Keep::Last);
        for i in 0..4 {
            r.record(f64::from(i) * 10.0, f64::from(i));
        }
        assert_eq!(
            values(&r, 30.0),
            [Some(0.0), Some(1.0), Some(2.0), Some(3.0)]
        );
        r.record(60.0, 6.0); // 40 and 50 had no sample
        assert_eq!(values(&r, 60.0), [Some(3.0), None, None, Some(6.0)]);
        r.record(1000.0, 7.0); // more than once round: everything before is gone
        assert_eq!(values(&r, 1000.0), [None, None, None, Some(7.0)]);
        // Read later than the newest sample: the recent buckets are gaps.
        assert_eq!(values(&r, 1020.0), [None, Some(7.0), None, None]);
        assert_eq!(r.points(1020.0).count(), 1);
    }

    #[test]
    fn the_clock_stepping_back_neither_panics_nor_rewrites_more_than_its_bucket() {
        let mut r = Ring::new(10, 3, Keep::Max);
        r.record(100.0, 1.0);
        r.record(85.0, 4.0); // two buckets back: still in the ring
        r.record(0.0, 9.0); // older than the ring: dropped
        r.record(f64::NAN, 9.0);
        r.record(100.0, f64::INFINITY);
        assert_eq!(values(&r, 100.0), [Some(4.0), None, Some(1.0)]);
        // Before the epoch.
        let mut r = Ring::new(10, 3, Keep::Last);
        r.record(-15.0, 2.0);
        assert_eq!(values(&r, -15.0), [None, None, Some(2.0)]);
    }

    #[test]
    fn its_size_is_fixed() {
        let mut r = Ring::new(10, 360, Keep::Last);
        let before = r.bytes();
        for i in 0..100_000 {
            r.record(f64::from(i), 1.0);
        }
        assert_eq!(r.bytes(), before);
        assert_eq!(before, std::mem::size_of::<Ring>() + 360 * 4);
    }
}
