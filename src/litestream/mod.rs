//! Litestream replication: where each database is replicated (`config`), what Litestream wrote
//! locally and what the replica holds (`position`), how much it keeps locally (`local_state`) and the replica level by level (`storage`), read off the poll path by `watcher` (with
//! `replica`) onto the `board` the poller reads; the monitor computes lag from these and commits.

pub mod board;
pub mod chain;
pub mod config;
pub mod local_state;
pub mod metrics;
pub mod position;
pub mod replica;
pub mod storage;
pub mod watcher;
