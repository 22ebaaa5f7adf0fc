//! Was the wal-index rebuilt? A rebuilt wal-index starts its change counter (`iChange`) again
//! from 0, and between two polls only the traces are left. This module reads them and says how
//! each header's counter follows the last.

use super::counter::Continuity;
use crate::format::shm::IndexHeader;
use crate::probe::file::FileStatus;
use crate::probe::WalSample;

/// The last wal-index header seen, and whether some sign said a rebuild is coming.
///
/// The wal-index's change counter (`iChange`) is the exact commit count in WAL mode, but a
/// rebuilt wal-index starts it again from 0. SQLite rebuilds the wal-index when the last
/// connection closes and a new one opens, when `-shm` is deleted or truncated, or when the WAL
/// is removed.
#[derive(Debug, Default)]
pub struct IndexWatch {
    last: Option<IndexHeader>,
    /// Some signal said the wal-index will be rebuilt (no connection left, `-shm` truncated,
    /// WAL gone): the next changed header restarted `iChange` from 0.
    rebuild_pending: bool,
}

fn replaced(f: FileStatus) -> bool {
    matches!(f, FileStatus::Present { replaced: true, .. })
}

impl IndexWatch {
    /// There is no wal-index for now (no `-shm` and no valid WAL): the next one is a rebuilt
    /// one.
    pub fn expect_rebuild(&mut self) {
        self.rebuild_pending = true;
    }

    /// Commits are counted from the WAL's frames instead (exclusive locking mode): the next
    /// header seen is a new baseline, not a continuation.
    pub fn forget(&mut self) {
        self.last = None;
    }

    /// Signs in `ws` that the wal-index will be rebuilt before the next header is written.
    fn rebuild_coming(&self, ws: &WalSample) -> bool {
        // No process holding the -shm "dead man switch" means every connection closed, but
        // only while nothing writes: a header that keeps changing without it means a writer
        // lost its locks (a process closed a descriptor of the file), not a rebuild, and is
        // not trusted.
        let index_changed = match (ws.index, self.last) {
            (Some(idx), Some(last)) => idx.header != last,
            _ => false,
        };
        let nobody_connected = ws.shm_in_use == Some(false) && !index_changed;
        ws.wal_file == FileStatus::Missing
            || ws.shm_file == FileStatus::Missing
            || nobody_connected
            || ws.index_error.as_ref().is_some_and(|e| e.is_rebuild())
    }

    /// How the change counter of `hdr`, read from `ws`, follows the last header seen.
    pub fn follow(&mut self, ws: &WalSample, hdr: IndexHeader, db_replaced: bool) -> Continuity {
        let coming = self.rebuild_coming(ws);
        let rebuilt_now = replaced(ws.wal_file) || replaced(ws.shm_file);
        let changed = self.last.is_some_and(|last| last != hdr);
        let continuity = if db_replaced {
            Continuity::Unrelated
        } else if rebuilt_now || (self.rebuild_pending && changed && ws.shm_in_use != Some(false)) {
            // A rebuilt wal-index is held by the connection that rebuilt it. Without that,
            // a drop of the counter below its last value still reads as a restart.
            Continuity::RestartedFromZero
        } else {
            Continuity::Continues
        };
        self.rebuild_pending = (self.rebuild_pending && !changed) || coming;
        self.last = Some(hdr);
        continuity
    }

    /// The header was torn beyond retries: nothing to follow, but the signs still count.
    pub fn torn(&mut self, ws: &WalSample) {
        self.rebuild_pending |= self.rebuild_coming(ws);
    }
}
