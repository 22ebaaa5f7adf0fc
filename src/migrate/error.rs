//! Why `migrate-check` could not report: each error names the database (or the file it was
//! writing) and keeps its cause.

use std::path::PathBuf;

#[derive(Debug, thiserror::Error)]
pub enum MigrateError {
    #[error("{}: cannot read the database: {source}", .path.display())]
    Metadata {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{}: not a regular file", .0.display())]
    NotAFile(PathBuf),
    /// Opening, reading the schema or scanning the data (`step`) failed.
    #[error("{}: {step}: {source}", .path.display())]
    Sql {
        path: PathBuf,
        step: &'static str,
        source: rusqlite::Error,
    },
    #[error("{}: online backup into {}: {source}", .path.display(), .dir.display())]
    Backup {
        path: PathBuf,
        dir: PathBuf,
        source: BackupError,
    },
    #[error("{}: the database changed while it was read without locks (nobody had it open when the scan began); run again", .0.display())]
    ChangedWhileRead(PathBuf),
    #[error("{}: cannot write the DDL: {source}", .path.display())]
    WriteDdl {
        path: PathBuf,
        source: std::io::Error,
    },
}

/// Why the online backup of `--from-backup` failed.
#[derive(Debug, thiserror::Error)]
pub enum BackupError {
    #[error("the copy needs about {need_mb} MB and {} has {free_mb} MB free; give --backup-dir on a larger filesystem", .dir.display())]
    NoSpace {
        need_mb: u64,
        dir: PathBuf,
        free_mb: u64,
    },
    #[error("cannot measure the free space: {0}")]
    FreeSpace(#[source] std::io::Error),
    #[error("cannot create the copy: {0}")]
    Create(#[source] std::io::Error),
    #[error(transparent)]
    Sqlite(#[from] rusqlite::Error),
    #[error("the database changed during every attempt ({0} restarts); scan it live, or a Litestream restore")]
    Restarts(u64),
}
