//! Why a drill could not run or found the backup unsound, each said in the words the log, the
//! status page and `check` show.

use std::path::PathBuf;
use std::time::Duration;

#[derive(Debug, thiserror::Error)]
pub enum DrillError {
    #[error("nobody has the database open, so its WAL position cannot be read")]
    NotOpen,
    #[error("cannot read the live database's -shm: {0}")]
    Shm(#[source] std::io::Error),
    #[error("the live database's -shm: {0}")]
    WalIndex(crate::probe::IndexError),
    #[error("the restored copy differs from the live database, which the replica provably held in full: {0}")]
    Differs(String),
    #[error("cannot run the Litestream binary {}: {why}", .path.display())]
    Binary { path: PathBuf, why: String },
    #[error("Litestream {0:?} is not a version restore drills support (0.3 or 0.5)")]
    Version(String),
    #[error(
        "replica {name} is of type {kind}, which restore drills do not restore (file and s3 only)"
    )]
    ReplicaType { name: String, kind: String },
    #[error("cannot make the scratch folder {}: {source}", .path.display())]
    Scratch {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("cannot read the free space of {}: {source}", .path.display())]
    FreeSpace {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error(
        "not enough room in the scratch folder {}: {} free, {} needed for a {} database",
        .path.display(), bytes(*.free), bytes(*.needed), bytes(*.size)
    )]
    NoRoom {
        path: PathBuf,
        free: u64,
        needed: u64,
        size: u64,
    },
    #[error("cannot make a folder in {}: {source}", .path.display())]
    Folder {
        path: PathBuf,
        source: std::io::Error,
    },
    /// What `litestream restore` said when it failed.
    #[error("{0}")]
    Restore(String),
    #[error("cannot open the restored copy: {0}")]
    OpenCopy(#[source] rusqlite::Error),
    #[error("integrity_check of the restored copy: {0}")]
    Integrity(String),
    #[error("cannot read the live database: {0}")]
    OpenLive(#[source] rusqlite::Error),
    #[error("{what} took longer than {}", humantime::format_duration(*.timeout))]
    TooSlow {
        what: &'static str,
        timeout: Duration,
    },
    #[error("{what}: {source}")]
    Sql {
        what: &'static str,
        source: rusqlite::Error,
    },
}

fn bytes(n: u64) -> String {
    crate::units::format_value(crate::units::Unit::Bytes, n as f64)
}
