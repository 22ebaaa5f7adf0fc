//! Pure parsers of SQLite's (and Litestream's) on-disk formats: bytes in, typed values or typed errors out. No I/O
//! here; `probe` reads the files and hands the bytes in, so every parser is unit-tested and
//! fuzzable on literals.

pub mod db_header;
pub mod go_buildinfo;
pub mod litestream;
pub mod mountinfo;
pub mod proc_locks;
pub mod shm;
pub mod wal;

#[cfg(test)]
pub(crate) mod oracle;
