//! One monotonic write-transaction total per database, fed by whichever raw source the journal
//! mode offers: the wal-index `iChange`, the database header's change counter, or commit frames
//! counted in the WAL.

/// Where a raw count came from. A change of source starts a new baseline.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Source {
    /// `iChange` in the wal-index header (WAL mode).
    WalIndex,
    /// The file change counter at database header offset 24 (rollback mode).
    ChangeCounter,
    /// Commit frames counted in the WAL (WAL mode without a shared wal-index).
    WalFrames,
}

/// How a raw value relates to the previous one of the same source.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Continuity {
    /// Same counter as before: the difference is new commits (modulo 2^32).
    Continues,
    /// The counter was rebuilt and started again from 0: the value itself is new commits.
    RestartedFromZero,
    /// An unrelated counter (the file was replaced): take it as a new baseline.
    Unrelated,
}

/// The monotonic total. Raw sources are 32-bit, wrap, restart from zero when the wal-index is
/// rebuilt, and change when the file is replaced; the total never goes down.
#[derive(Debug, Clone, Default)]
pub struct TxCounter {
    total: Option<u64>,
    last: Option<(Source, u32)>,
}

impl TxCounter {
    /// The total so far; `None` until the first observation.
    pub fn total(&self) -> Option<u64> {
        self.total
    }

    /// Observes a raw 32-bit counter and returns the commits it adds. The first observation
    /// ever sets the total to the raw value (commits the source has seen so far).
    pub fn observe(&mut self, source: Source, raw: u32, continuity: Continuity) -> u64 {
        let delta = match (self.total, self.last) {
            (None, _) => {
                self.total = Some(u64::from(raw));
                0
            }
            (Some(_), Some((s, last))) if s == source => match continuity {
                Continuity::Unrelated => 0,
                Continuity::RestartedFromZero => u64::from(raw),
                Continuity::Continues if raw >= last => u64::from(raw - last),
                // Went down by more than half the range: the counter wrapped past 2^32.
                Continuity::Continues if last - raw > 1 << 31 => u64::from(raw.wrapping_sub(last)),
                // Went down otherwise: a rebuild we did not see coming.
                Continuity::Continues => u64::from(raw),
            },
            (Some(_), _) => 0,
        };
        self.last = Some((source, raw));
        self.add(delta);
        delta
    }

    /// A source that does not exist yet (a WAL database whose wal-index no connection has
    /// created): nothing was committed through it, so the total starts at 0 now and the
    /// counter's first value, once it exists, is commits made since. A database nobody writes
    /// has a `sqlite_write_transactions_total` from its first poll, so that rates over a fleet
    /// leave nobody out. Does nothing once a total exists.
    pub fn absent(&mut self, source: Source) {
        if self.total.is_none() {
            self.total = Some(0);
            self.last = Some((source, 0));
        }
    }

    /// Adds commits counted directly (commit frames in the WAL). The first count after a change
    /// of source is a baseline unless nothing was counted before.
    pub fn add_frames(&mut self, commits: u64) -> u64 {
        let first = self.last.map(|(s, _)| s) != Some(Source::WalFrames);
        self.last = Some((Source::WalFrames, 0));
        if first && self.total.is_some() {
            return 0;
        }
        self.total.get_or_insert(0);
        self.add(commits);
        commits
    }

    fn add(&mut self, n: u64) {
        if let Some(t) = self.total.as_mut() {
            *t += n;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use Continuity::*;
    use Source::*;

    #[test]
    fn counts_differences_and_starts_from_the_first_value() {
        let mut c = TxCounter::default();
        assert_eq!(c.observe(WalIndex, 40, Continues), 0);
        assert_eq!(c.total(), Some(40));
        assert_eq!(c.observe(WalIndex, 177, Continues), 137);
        assert_eq!(c.total(), Some(177));
    }

    #[test]
    fn a_source_seen_absent_first_counts_from_zero() {
        let mut c = TxCounter::default();
        c.absent(WalIndex);
        assert_eq!(c.total(), Some(0));
        // The wal-index appears, rebuilt from nothing, after 3 commits.
        assert_eq!(c.observe(WalIndex, 3, RestartedFromZero), 3);
        assert_eq!(c.total(), Some(3));
        c.absent(WalIndex);
        assert_eq!(c.total(), Some(3), "a total is never reset");
    }

    #[test]
    fn survives_wrap_rebuild_and_replacement() {
        let mut c = TxCounter::default();
        c.observe(ChangeCounter, u32::MAX - 2, Continues);
        assert_eq!(c.observe(ChangeCounter, 4, Continues), 7, "wrap past 2^32");
        assert_eq!(
            c.observe(ChangeCounter, 2, Continues),
            2,
            "unforeseen restart"
        );
        assert_eq!(c.observe(ChangeCounter, 9, RestartedFromZero), 9);
        assert_eq!(
            c.observe(ChangeCounter, 5000, Unrelated),
            0,
            "replaced file"
        );
        let before = c.total().unwrap();
        assert_eq!(
            c.observe(WalIndex, 12, Continues),
            0,
            "new source is a baseline"
        );
        assert_eq!(c.total(), Some(before));
    }

    #[test]
    fn frame_counts_add_after_a_baseline() {
        let mut c = TxCounter::default();
        assert_eq!(c.add_frames(3), 3, "nothing counted before: take it all");
        assert_eq!(c.add_frames(2), 2);
        c.observe(WalIndex, 100, Continues);
        assert_eq!(c.add_frames(50), 0, "switching back is a baseline");
        assert_eq!(c.add_frames(1), 1);
        assert_eq!(c.total(), Some(6));
    }
}
