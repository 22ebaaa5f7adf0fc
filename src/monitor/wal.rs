//! The WAL-mode part of a poll: its figures from commit frames counted in the WAL, from the
//! wal-index header, or from nothing at all (see `Monitor::apply_wal`).

use super::counter::{Continuity, Source};
use super::lag::LagClock;
use super::rebuild::IndexWatch;
use super::{pins, starvation, DbSnapshot, Monitor, PinnedBy, PollTime, WalSnapshot};
use crate::format::litestream::WalMark;
use crate::format::shm::WalIndex;
use crate::format::wal::FRAME_HEADER_SIZE;
use crate::probe::file::FileStatus;
use crate::probe::locks::LockKind;
use crate::probe::{FrameCount, WalSample};

/// The WAL as the previous poll left it.
#[derive(Debug, Clone, Copy)]
struct WalPosition {
    salt: [u32; 2],
    frames: u64,
}

/// What WAL mode keeps across polls.
#[derive(Debug, Default)]
pub(super) struct WalState {
    index: IndexWatch,
    position: Option<WalPosition>,
    pub(super) lag: LagClock,
    pins: pins::PinClock,
    starvation: starvation::StarvationClock,
    /// When a checkpoint last made progress, in Unix seconds.
    last_checkpoint_at: Option<f64>,
    /// Where the WAL's last commit ends, and its salts, as the last poll read them: a replica
    /// whose newest file records this very mark holds every commit (see
    /// `Monitor::observe_replicas`). `None` when no WAL was read.
    pub(super) mark: Option<WalMark>,
}

impl WalState {
    /// The database was unreadable: no reader or checkpoint was watched meanwhile. Nothing is
    /// assumed of the wal-index: what comes back says it (another file is `db_replaced`, a new
    /// `-shm` is a rebuild, a counter below the last one restarted). Assuming a rebuild here
    /// would count every commit since the wal-index was built again, a spike that fires
    /// SQLiteWriteRateHigh on a healthy database after a file was briefly unreadable.
    pub(super) fn went_down(&mut self) {
        self.pins.reset();
        self.starvation.reset();
    }

    /// The database path names another file: its WAL has nothing to do with the last one.
    pub(super) fn db_replaced(&mut self) {
        self.lag.reset();
        self.position = None;
        self.starvation.reset();
        self.last_checkpoint_at = None;
        self.mark = None;
    }

    /// Counts WAL resets from the salt pair (salt-1 goes up by one per reset, so a jump of a
    /// few counts the resets between two polls) and returns how many resets it saw.
    fn note_position(&mut self, salt: [u32; 2], frames: u64) -> u64 {
        let resets = match self.position {
            Some(prev) if prev.salt != salt => {
                let step = salt[0].wrapping_sub(prev.salt[0]);
                if (1..=1000).contains(&step) {
                    u64::from(step)
                } else {
                    1
                }
            }
            _ => 0,
        };
        self.position = Some(WalPosition { salt, frames });
        resets
    }

    /// Frames written since the last poll: the growth in the same WAL generation, or the whole
    /// new generation after a reset. Nothing on the first sight.
    fn frames_written(&self, salt: [u32; 2], frames: u64) -> u64 {
        match self.position {
            Some(p) if p.salt == salt => frames.saturating_sub(p.frames),
            Some(_) => frames,
            None => 0,
        }
    }
}

/// `exclusive` when a connection holds the database in `locking_mode=EXCLUSIVE` and no
/// connection shares the wal-index.
fn locking_mode(ws: &WalSample) -> &'static str {
    if ws.exclusive_lock && ws.shm_in_use != Some(true) {
        "exclusive"
    } else {
        "normal"
    }
}

/// The read marks of the reader slots held by a read transaction.
fn held_read_marks(ws: &WalSample) -> Vec<u32> {
    ws.read_locks
        .iter()
        .enumerate()
        .filter(|(_, l)| l.is_some_and(|h| h.kind == LockKind::Read))
        .map(|(i, _)| ws.index.map_or(0, |idx| idx.ckpt.read_marks[i]))
        .collect()
}

impl Monitor {
    /// The WAL-mode part of a poll. The figures come from one of three places, tried in order:
    /// commit frames counted in the WAL itself (exclusive locking mode, no shared wal-index), the
    /// wal-index header (the usual case), or nothing at all (no connection open, nothing waits).
    /// A torn wal-index repeats the last figures for one poll.
    pub(super) fn apply_wal(
        &mut self,
        s: &mut DbSnapshot,
        ws: &WalSample,
        db_replaced: bool,
        at: PollTime,
    ) {
        let page_size = u64::from(s.page_size_bytes.unwrap_or(0));
        let wal_size = match ws.wal_file {
            FileStatus::Present { size, .. } => size,
            FileStatus::Missing => 0,
        };
        s.locking_mode = Some(locking_mode(ws));
        let wal = if let Some(fc) = ws.frames {
            self.count_frames(fc, page_size)
        } else if let Some(idx) = ws.index {
            self.read_index(s, ws, idx, page_size, db_replaced, at)
        } else if ws.index_error.is_some() {
            // Torn beyond retries: keep the last figures for this poll (the error is counted).
            self.wal.index.torn(ws);
            self.last.wal.clone().unwrap_or_default()
        } else {
            self.without_index()
        };
        let readers = held_read_marks(ws);
        s.wal = Some(WalSnapshot {
            size_bytes: wal_size,
            readers: readers.len() as u64,
            reader_marks: readers,
            ..wal
        });
    }

    /// Exclusive locking mode (or no -shm at all): commits are the commit frames in the WAL.
    fn count_frames(&mut self, fc: FrameCount, page_size: u64) -> WalSnapshot {
        let w = &mut self.wal;
        w.pins.reset();
        w.starvation.reset();
        w.index.forget();
        self.tx.add_frames(fc.commits);
        self.totals.wal_written_bytes += fc.frames * (page_size + FRAME_HEADER_SIZE as u64);
        self.totals.wal_resets += w.note_position(fc.salt, fc.committed_frames);
        w.mark = Some(WalMark::after(fc.salt, fc.committed_frames, page_size));
        WalSnapshot {
            frames: fc.committed_frames,
            ..WalSnapshot::default()
        }
    }

    /// No -shm and no valid WAL: no connection is open and nothing waits to be copied.
    fn without_index(&mut self) -> WalSnapshot {
        self.tx.absent(Source::WalIndex);
        let w = &mut self.wal;
        w.mark = None;
        w.index.expect_rebuild();
        w.pins.reset();
        w.starvation.reset();
        WalSnapshot {
            oldest_snapshot_age_seconds: Some(0.0),
            checkpoint_starved_seconds: Some(0.0),
            snapshot_pinned_seconds: Some(0.0),
            last_checkpoint_at: w.last_checkpoint_at,
            checkpointed_frames: Some(0),
            checkpoint_lag_frames: Some(0),
            checkpoint_lag_bytes: Some(0),
            checkpoint_lag_seconds: Some(0.0),
            ..WalSnapshot::default()
        }
    }

    /// The usual case: the wal-index header counts commits, frames and checkpoints, and the
    /// read marks say which snapshots readers hold.
    fn read_index(
        &mut self,
        s: &mut DbSnapshot,
        ws: &WalSample,
        idx: WalIndex,
        page_size: u64,
        db_replaced: bool,
        at: PollTime,
    ) -> WalSnapshot {
        let hdr = idx.header;
        let continuity = self.wal.index.follow(ws, hdr, db_replaced);
        if continuity != Continuity::Continues {
            tracing::debug!(db = %self.name, ?continuity, wal = ?ws.wal_file, shm = ?ws.shm_file, shm_in_use = ?ws.shm_in_use, index_error = ?ws.index_error, change = hdr.change, "wal-index continuity");
        }
        self.tx.observe(Source::WalIndex, hdr.change, continuity);

        let frames = u64::from(hdr.max_frame);
        let grown = self.wal.frames_written(hdr.salt, frames);
        self.totals.wal_written_bytes += grown * (page_size + FRAME_HEADER_SIZE as u64);
        self.totals.wal_resets += self.wal.note_position(hdr.salt, frames);
        self.wal.mark = Some(hdr.wal_mark());
        if hdr.max_frame > 0 && hdr.page_count > 0 {
            s.pages = Some(u64::from(hdr.page_count));
        }
        let lag_frames = u64::from(idx.checkpoint_lag_frames());
        let age = self
            .wal
            .lag
            .observe(hdr.salt, hdr.max_frame, idx.ckpt.backfill, at.instant);
        WalSnapshot {
            frames,
            checkpointed_frames: Some(u64::from(idx.ckpt.backfill)),
            checkpoint_lag_frames: Some(lag_frames),
            checkpoint_lag_bytes: Some(lag_frames * page_size),
            checkpoint_lag_seconds: Some(age.as_secs_f64()),
            ..self.readers_and_checkpoints(ws, idx, at)
        }
    }

    /// Which readers pin old snapshots, and whether a due checkpoint is starved by them.
    fn readers_and_checkpoints(
        &mut self,
        ws: &WalSample,
        idx: WalIndex,
        at: PollTime,
    ) -> WalSnapshot {
        let hdr = idx.header;
        let held = std::array::from_fn(|i| {
            ws.read_locks[i]
                .filter(|h| h.kind == LockKind::Read)
                .map(|h| (idx.ckpt.read_marks[i], Some(h.pid)))
        });
        let w = &mut self.wal;
        let mut reader_slots = w
            .pins
            .observe(at.instant, &held, hdr.max_frame, idx.ckpt.backfill);
        let harm = w.starvation.observe(
            at.instant,
            starvation::Observation {
                salt: hdr.salt,
                max_frame: hdr.max_frame,
                backfill: idx.ckpt.backfill,
                held: held.map(|h| h.map(|(mark, _)| mark)),
            },
            self.autocheckpoint,
        );
        for r in &mut reader_slots {
            r.holding_back_seconds = harm.pinned[r.slot].map_or(0.0, |d| d.as_secs_f64());
        }
        if harm.progressed {
            w.last_checkpoint_at = Some(at.unix);
        }
        let worst = harm.worst_pin();
        WalSnapshot {
            oldest_snapshot_age_seconds: Some(pins::oldest(&reader_slots)),
            checkpoint_starved_seconds: Some(harm.starved.as_secs_f64()),
            snapshot_pinned_seconds: Some(worst.map_or(0.0, |(_, d)| d.as_secs_f64())),
            pinned_by: worst.map(|(slot, _)| PinnedBy {
                slot,
                pid: held[slot].and_then(|(_, pid)| pid),
                role: None,
            }),
            last_checkpoint_at: w.last_checkpoint_at,
            reader_slots,
            ..WalSnapshot::default()
        }
    }
}
