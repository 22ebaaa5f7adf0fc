//! The monitor on literal samples: every way the wal-index change counter can continue,
//! restart or start over, without a file or a second process.

use super::*;
use crate::format::db_header::{DbHeader, JournalKind, TextEncoding};
use crate::format::shm::{CheckpointInfo, IndexHeader, ShmError, WalIndex};
use crate::probe::file::FileStatus;
use crate::probe::locks::{Holder, LockKind};
use crate::probe::{FrameCount, IndexError, WalSample};

const PRESENT: FileStatus = FileStatus::Present {
    size: 4096,
    replaced: false,
};
const REAPPEARED: FileStatus = FileStatus::Present {
    size: 4096,
    replaced: true,
};

fn header(journal: JournalKind) -> DbHeader {
    DbHeader {
        page_size: 4096,
        journal,
        reserved_bytes: 0,
        change_counter: 0,
        page_count: Some(2),
        freelist_pages: 0,
        schema_cookie: 1,
        auto_vacuum: false,
        incremental_vacuum: false,
        text_encoding: TextEncoding::Utf8,
        application_id: 0,
        sqlite_version_number: 3_046_001,
    }
}

fn index(change: u32, max_frame: u32) -> WalIndex {
    WalIndex {
        header: IndexHeader {
            change,
            page_size: 4096,
            max_frame,
            page_count: 2,
            salt: [7, 99],
        },
        ckpt: CheckpointInfo {
            backfill: 0,
            read_marks: [0; crate::format::shm::READ_SLOTS],
            backfill_attempted: 0,
        },
    }
}

/// A WAL-mode database with a live wal-index whose change counter reads `change`, its
/// "dead man switch" held by a connection.
fn wal(change: u32) -> Sample {
    Sample {
        db_size_bytes: 8192,
        db_replaced: false,
        header: header(JournalKind::Wal),
        wal: Some(WalSample {
            wal_file: PRESENT,
            shm_file: PRESENT,
            index: Some(index(change, change)),
            index_error: None,
            shm_in_use: Some(true),
            exclusive_lock: false,
            read_locks: [None; crate::format::shm::READ_SLOTS],
            frames: None,
        }),
        filesystem: None,
        errors: Vec::new(),
        write_lock: Ok(None),
    }
}

fn with_wal(mut s: Sample, f: impl FnOnce(&mut WalSample)) -> Sample {
    f(s.wal.as_mut().unwrap());
    s
}

/// Polls once a second, starting at a fixed instant.
struct Clock {
    start: Instant,
    polls: u64,
}

impl Clock {
    fn new() -> Self {
        Clock {
            start: Instant::now(),
            polls: 0,
        }
    }

    fn tick(&mut self) -> PollTime {
        self.polls += 1;
        PollTime {
            instant: self.start + Duration::from_secs(self.polls),
            unix: 1_700_000_000.0 + self.polls as f64,
        }
    }
}

/// One test case: a monitor and its clock. Each case is the trace SQLite leaves between two
/// polls (see `rebuild.rs`); the integration tests make the same traces with real connections.
struct Case {
    monitor: Monitor,
    clock: Clock,
}

impl Case {
    fn new() -> Self {
        Case {
            monitor: Monitor::new("app", Path::new("/srv/app.db"), Declared::default()),
            clock: Clock::new(),
        }
    }

    fn poll(&mut self, sample: Result<Sample, ProbeError>) -> DbSnapshot {
        let at = self.clock.tick();
        self.monitor.apply(sample, at)
    }

    /// Polls and returns the write-transaction total.
    fn total(&mut self, sample: Sample) -> u64 {
        let s = self.poll(Ok(sample));
        assert!(s.up);
        s.write_transactions_total.expect("a total")
    }
}

#[test]
fn the_first_sight_is_the_count_so_far_and_commits_add_up() {
    let mut c = Case::new();
    assert_eq!(c.total(wal(10)), 10);
    assert_eq!(c.total(wal(13)), 13);
    assert_eq!(c.total(wal(13)), 13, "an unchanged header adds nothing");
    assert_eq!(c.total(wal(20)), 20);
}

#[test]
fn the_change_counter_wraps_past_u32_max() {
    let mut c = Case::new();
    assert_eq!(c.total(wal(u32::MAX - 1)), u64::from(u32::MAX - 1));
    // MAX-1 -> MAX -> 0 -> 1 -> 2 -> 3: five commits.
    assert_eq!(c.total(wal(3)), u64::from(u32::MAX - 1) + 5);
}

#[test]
fn a_replaced_shm_is_a_rebuilt_index_counting_from_zero() {
    let mut c = Case::new();
    assert_eq!(c.total(wal(100)), 100);
    let rebuilt = with_wal(wal(4), |w| w.shm_file = REAPPEARED);
    assert_eq!(c.total(rebuilt), 104);
    assert_eq!(c.total(wal(6)), 106, "the rebuilt counter then continues");
}

#[test]
fn a_replaced_wal_is_a_rebuilt_index_too() {
    let mut c = Case::new();
    c.total(wal(100));
    assert_eq!(c.total(with_wal(wal(1), |w| w.wal_file = REAPPEARED)), 101);
}

#[test]
fn dead_man_switch_released_then_a_changed_header_is_a_rebuild() {
    let mut c = Case::new();
    assert_eq!(c.total(wal(100)), 100);
    // Every connection closed: nobody holds the -shm, the header stays as it was.
    let closed = with_wal(wal(100), |w| w.shm_in_use = Some(false));
    assert_eq!(c.total(closed), 100);
    // A new connection rebuilt the wal-index in place and committed twice (a counter that
    // went up, so without the sign it would read as 100 -> 2 wrapping, or as a drop).
    let reopened = wal(2);
    assert_eq!(c.total(reopened), 102);
    assert_eq!(c.total(wal(3)), 103);
}

#[test]
fn dead_man_switch_released_then_a_higher_counter_is_still_a_rebuild() {
    // The rebuilt counter can land above the old one (many commits between two polls): the
    // sign, not the direction, decides.
    let mut c = Case::new();
    c.total(wal(5));
    c.total(with_wal(wal(5), |w| w.shm_in_use = Some(false)));
    assert_eq!(c.total(wal(9)), 14);
}

#[test]
fn a_header_that_moves_without_the_dead_man_switch_is_not_a_rebuild() {
    // A writer that lost its locks (its process closed another descriptor of the file) keeps
    // committing: the header moves while nobody seems to hold the -shm. Not a rebuild.
    let mut c = Case::new();
    assert_eq!(c.total(wal(100)), 100);
    let unlocked = |n| with_wal(wal(n), |w| w.shm_in_use = Some(false));
    assert_eq!(c.total(unlocked(105)), 105);
    assert_eq!(c.total(unlocked(110)), 110);
    assert_eq!(c.total(wal(112)), 112, "not 110 + 112");
}

#[test]
fn dead_man_switch_held_and_header_unchanged_counts_nothing() {
    let mut c = Case::new();
    for _ in 0..5 {
        assert_eq!(c.total(wal(42)), 42);
    }
}

#[test]
fn a_replaced_database_is_a_new_baseline() {
    let mut c = Case::new();
    assert_eq!(c.total(wal(100)), 100);
    let mut other = with_wal(wal(7), |w| {
        w.shm_file = REAPPEARED;
        w.wal_file = REAPPEARED;
    });
    other.db_replaced = true;
    assert_eq!(
        c.total(other),
        100,
        "the new file's count is not new commits"
    );
    assert_eq!(c.total(wal(9)), 102);
}

#[test]
fn a_vanished_shm_means_nothing_waits_and_its_return_counts_from_zero() {
    let mut c = Case::new();
    c.total(wal(100));
    let gone = with_wal(wal(0), |w| {
        w.shm_file = FileStatus::Missing;
        w.wal_file = FileStatus::Missing;
        w.index = None;
        w.shm_in_use = None;
    });
    let s = c.poll(Ok(gone));
    assert_eq!(s.write_transactions_total, Some(100));
    let w = s.wal.expect("WAL figures");
    assert_eq!(
        (w.checkpoint_lag_frames, w.checkpoint_starved_seconds),
        (Some(0), Some(0.0))
    );
    // The next connection creates a new -shm (a new inode: "reappeared").
    assert_eq!(c.total(with_wal(wal(3), |w| w.shm_file = REAPPEARED)), 103);
}

#[test]
fn a_vanished_shm_that_returns_as_the_same_inode_still_counts_from_zero() {
    // Truncated rather than deleted: same inode, but the sign was seen and the header moved.
    let mut c = Case::new();
    c.total(wal(100));
    c.total(with_wal(wal(0), |w| {
        w.shm_file = FileStatus::Missing;
        w.index = None;
        w.shm_in_use = None;
    }));
    assert_eq!(c.total(wal(3)), 103);
}

#[test]
fn a_torn_header_repeats_the_last_figures_and_counts_the_error() {
    let mut c = Case::new();
    let before = c.poll(Ok(wal(50))).wal.unwrap();
    let mut torn = with_wal(wal(0), |w| {
        w.index = None;
        w.index_error = Some(IndexError::Format(ShmError::ChecksumMismatch));
    });
    torn.errors.push(ProbeError {
        probe: "wal_index",
        message: "checksum".into(),
    });
    let s = c.poll(Ok(torn));
    assert_eq!(s.write_transactions_total, Some(50));
    assert_eq!(s.wal.unwrap().frames, before.frames);
    assert_eq!(s.poll_errors_total.get("wal_index"), Some(&1));
    assert_eq!(c.total(wal(52)), 52, "a torn read is not a rebuild");
}

#[test]
fn a_torn_header_being_built_is_a_sign_of_rebuild() {
    let mut c = Case::new();
    c.total(wal(50));
    c.total(with_wal(wal(0), |w| {
        w.index = None;
        w.index_error = Some(IndexError::Format(ShmError::NotInitialised));
    }));
    assert_eq!(c.total(wal(2)), 52);
}

#[test]
fn a_database_down_keeps_its_total_and_comes_back_where_it_is() {
    let down = || {
        Err(ProbeError {
            probe: "database",
            message: "file not found".into(),
        })
    };
    let mut c = Case::new();
    c.total(wal(100));
    let s = c.poll(down());
    assert!(!s.up);
    assert_eq!(
        s.write_transactions_total,
        Some(100),
        "counters keep counting"
    );
    assert_eq!(s.poll_errors_total.get("database"), Some(&1));
    assert_eq!(s.wal, None);
    // Back with the same wal-index, 7 commits later (the file was briefly unreadable while
    // the application went on): 7, not the 107 a rebuild would count.
    assert_eq!(c.total(wal(107)), 107);
    // Back with a rebuilt one (its counter below the last): counted from zero.
    c.poll(down());
    assert_eq!(c.total(wal(2)), 109);
    // Back with a new -shm: a rebuild, whatever the counter.
    c.poll(down());
    assert_eq!(
        c.total(with_wal(wal(500), |w| w.shm_file = REAPPEARED)),
        609
    );
}

#[test]
fn exclusive_mode_counts_commit_frames() {
    let mut c = Case::new();
    let frames = |commits, salt| {
        with_wal(wal(0), |w| {
            w.index = None;
            w.shm_file = FileStatus::Missing;
            w.shm_in_use = None;
            w.exclusive_lock = true;
            w.frames = Some(FrameCount {
                new_generation: false,
                salt,
                commits,
                frames: commits * 2,
                committed_frames: commits * 2,
            });
        })
    };
    let s = c.poll(Ok(frames(3, [1, 1])));
    assert_eq!(s.locking_mode, Some("exclusive"));
    assert_eq!(s.write_transactions_total, Some(3));
    let s = c.poll(Ok(frames(4, [3, 1])));
    assert_eq!(s.write_transactions_total, Some(7));
    assert_eq!(s.wal_resets_total, 2, "salt-1 went from 1 to 3: two resets");
    assert_eq!(s.wal_written_bytes_total, (6 + 8) * (4096 + 24));
}

#[test]
fn rollback_mode_counts_the_header_change_counter() {
    let mut c = Case::new();
    let rollback = |n| {
        let mut s = wal(0);
        s.wal = None;
        s.header = DbHeader {
            change_counter: n,
            ..header(JournalKind::Rollback)
        };
        s
    };
    assert_eq!(c.total(rollback(40)), 40);
    assert_eq!(c.total(rollback(41)), 41);
    let mut replaced = rollback(5);
    replaced.db_replaced = true;
    assert_eq!(c.total(replaced), 41);
}

#[test]
fn the_write_lock_holder_and_hold_time_come_from_the_samples() {
    let mut c = Case::new();
    let held = |s: Sample| Sample {
        write_lock: Ok(Some(Holder {
            pid: 4242,
            kind: LockKind::Write,
        })),
        ..s
    };
    c.poll(Ok(held(wal(1))));
    let s = c.poll(Ok(held(wal(1))));
    let wl = s.write_lock.expect("write lock figures");
    assert_eq!(wl.holder_pid, Some(4242));
    assert_eq!(wl.holder_held_seconds, Some(1.0));
    assert_eq!(wl.writer_pids, vec![4242]);
}

/// A database that cannot be read (deleted) while a writer held its lock: nobody is seen
/// holding it since, and its writers leave the last minute as it passes.
#[test]
fn a_database_gone_down_keeps_no_writer_for_ever() {
    let mut c = Case::new();
    let held = |pid| Sample {
        write_lock: Ok(Some(Holder {
            pid,
            kind: LockKind::Write,
        })),
        ..wal(1)
    };
    c.poll(Ok(held(4242)));
    c.poll(Ok(held(4343)));
    let gone = || {
        Err(ProbeError {
            probe: "database",
            message: "No such file or directory".into(),
        })
    };
    let s = c.poll(gone());
    let wl = s.write_lock.expect("write lock figures");
    assert_eq!(
        wl.holder_pid, None,
        "nobody holds a lock on what cannot be read"
    );
    assert_eq!(wl.writer_pids.len(), 2, "both wrote within the minute");
    let mut last = c.poll(gone());
    for _ in 0..60 {
        last = c.poll(gone());
    }
    let wl = last.write_lock.expect("write lock figures");
    assert!(wl.writer_pids.is_empty(), "{wl:?}");
    assert_eq!(wl.holder_held_seconds, None);
}

#[test]
fn a_vanished_wal_beside_a_live_shm_is_a_sign_of_rebuild() {
    // The last connection closed and deleted the WAL; the -shm it left behind is rebuilt by
    // the next one, whose counter is then higher than the last (3 commits since).
    let mut c = Case::new();
    c.total(wal(1));
    c.total(with_wal(wal(1), |w| w.wal_file = FileStatus::Missing));
    assert_eq!(c.total(wal(3)), 4);
}

#[test]
fn a_repeated_snapshot_is_brought_up_to_the_time_and_counts_nothing() {
    // Ten commits left in the WAL, then nothing: what moves with time alone must move while
    // the snapshot is repeated (the database settled), and nothing else.
    let mut c = Case::new();
    c.poll(Ok(wal(0)));
    let held = Sample {
        write_lock: Ok(Some(Holder {
            pid: 4242,
            kind: LockKind::Write,
        })),
        ..wal(10)
    };
    c.poll(Ok(held));
    let last = c.poll(Ok(wal(10)));
    let lag = |s: &DbSnapshot| s.wal.as_ref().unwrap().checkpoint_lag_seconds.unwrap();
    assert_eq!(lag(&last), 1.0);
    assert!(last.write_transactions_per_second.unwrap() > 0.0);
    assert_eq!(last.write_lock.as_ref().unwrap().longest_hold_seconds, 1.0);
    let mut s = last.clone();
    for _ in 0..70 {
        let at = c.clock.tick();
        s = c.monitor.repeat(&last, at);
    }
    assert_eq!(s.polled_at, last.polled_at + 70.0);
    assert_eq!(s.files_read_at, last.files_read_at, "no file was read");
    assert_eq!(lag(&s), 71.0, "the waiting frames keep ageing");
    assert_eq!(
        s.write_transactions_per_second,
        Some(0.0),
        "the rate decays"
    );
    assert!(s.sustained.write_transactions_per_second.unwrap() > 0.0);
    let wl = s.write_lock.as_ref().unwrap();
    assert!(wl.writer_pids.is_empty() && wl.writers.is_empty(), "{wl:?}");
    assert_eq!(
        wl.longest_hold_seconds, 0.0,
        "the hold left the last minute"
    );
    assert_eq!(s.write_transactions_total, Some(10), "nothing counted");
    // The next full poll carries on from the repeated state.
    assert_eq!(c.total(wal(12)), 12);
}

/// A case whose database Litestream replicates to one file replica.
fn replicated() -> Case {
    let monitor = Monitor::new("app", Path::new("/srv/app.db"), Declared::default());
    Case {
        monitor: monitor.with_replicas(&[("file".into(), "file".into())]),
        clock: Clock::new(),
    }
}

/// A replica whose newest file was made where the live WAL stands holds every commit, even when
/// its timestamp (another process's clock, truncated to the millisecond) is older than the poll
/// before the last commit; one commit short, the clocks decide and the lag grows.
#[test]
fn a_replica_at_the_live_wal_position_holds_every_commit_whatever_its_clock() {
    let observe = |c: &mut Case, change: u32, replica_at: u32| {
        let mut s = c.poll(Ok(wal(change)));
        let seen = crate::litestream::board::Observation {
            kind: "file".into(),
            replicated_at: Some(1_700_000_000.5),
            replica_wal: Some(index(replica_at, replica_at).header.wal_mark()),
            read_at: Some(s.polled_at),
            ..Default::default()
        };
        let replication = Replication {
            observations: Some(vec![("file".to_string(), seen)]),
            process: None,
            drill: None,
        };
        c.monitor.observe_replicas(&mut s, replication);
        s.litestream[0].lag_seconds
    };
    let mut c = replicated();
    assert_eq!(observe(&mut c, 5, 5), Some(0.0));
    // A commit seen at the second poll, whose previous poll (1,700,000,001) is after the
    // replica's timestamp: by the clocks alone, not replicated.
    assert_eq!(observe(&mut c, 6, 6), Some(0.0), "the WAL positions agree");
    assert_eq!(observe(&mut c, 6, 6), Some(0.0));
    let mut c = replicated();
    observe(&mut c, 5, 5);
    observe(&mut c, 6, 5);
    assert_eq!(
        observe(&mut c, 6, 5),
        Some(1.0),
        "one commit short: waiting since the poll that saw it"
    );
}
