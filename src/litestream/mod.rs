//! Litestream replication: its `config`, what it wrote locally and the replica holds (`position`,
//! `local_state`, `storage` by level, the `chain` and v0.3's `wal_chain`), read off the poll path
//! by `watcher` (with `replica`) onto the `board` the poller reads for the monitor's lag.

pub mod board;
pub mod chain;
pub mod config;
pub mod listing;
pub mod local_state;
pub mod metrics;
pub mod position;
pub mod replica;
pub mod storage;
pub mod wal_chain;
pub mod watcher;
