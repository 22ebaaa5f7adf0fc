//! sqlite-ops: an operations and health-monitoring sidecar for SQLite used as a server
//! database. It watches database files from the outside (stat, pread, F_GETLK; no SQL in the
//! poll path), exports what it measures as Prometheus metrics, and never changes what it watches.
//!
//! # Layout
//! - [`format`]: pure parsers of the database header, the WAL and the wal-index (`-shm`),
//!   Litestream's files, `/proc/locks` and Go build information.
//! - [`probe`]: the I/O for one database (files kept open, `pread`, lock tests, disk space),
//!   returning plain samples; who holds the locks, and in what role (`probe::process`: the
//!   application, Litestream, a configured replicator).
//! - [`monitor`]: state across polls (monotonic counters, checkpoint-lag age, rates), producing
//!   one plain [`monitor::DbSnapshot`] per database.
//! - [`poller`]: polls every database on schedule, evaluates the rules, publishes the result.
//! - [`rules`]: every threshold defined once; alert states across polls.
//! - [`check`]: the one-shot audit of `sqlite-ops check`.
//! - [`migrate`]: `sqlite-ops migrate-check`, what will break when the database moves to
//!   Postgres.
//! - [`export`]: Prometheus text, the HTTP server, Alertmanager pushes, Prometheus rules.
//! - [`config`]: the YAML configuration and its validation.
//! - [`daemon`]: poller plus HTTP server, shared by the `run` and `demo` subcommands in [`cmd`].
//! - [`workload`]: the demo's application, run in a child process.

pub mod check;
pub mod cmd;
pub mod config;
pub mod daemon;
pub mod export;
pub mod format;
pub mod http_client;
pub mod litestream;
pub mod migrate;
pub mod monitor;
pub mod poller;
pub mod probe;
pub mod rules;
pub mod state;
pub mod workload;
