//! Litestream replication: where each database is replicated (`config`), what Litestream has
//! written locally and what the replica holds (`position`), and the watcher that lists replicas
//! off the poll path (`watcher`, reading each with `replica`) and posts on the `board` the
//! poller reads. The lag itself is computed by the monitor from these
//! positions and the commits it has seen. Restore drills post there too (`drill`: their
//! settings and results; `crate::drill` runs them).

pub mod board;
pub mod chain;
pub mod config;
pub mod drill;
pub mod metrics;
pub mod position;
pub mod replica;
pub mod watcher;
