//! Litestream replication: where each database is replicated (`config`), what Litestream has
//! written locally and what the replica holds (`position`), and the watcher that lists replicas
//! off the poll path (`watcher`, reading each with `replica`) and posts on the `board` the
//! poller reads; the monitor computes the lag from these positions and the commits it has seen.

pub mod board;
pub mod chain;
pub mod config;
pub mod metrics;
pub mod position;
pub mod replica;
pub mod watcher;
