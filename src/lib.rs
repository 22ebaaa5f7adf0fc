//! sqlite-ops: an operations and health-monitoring sidecar for SQLite used as a server
//! database. It watches database files from the outside (stat, pread, F_GETLK; no SQL in the
//! poll path), exports what it measures as Prometheus metrics, and never changes what it watches.
//!
//! # Flow
//! probe → monitor → rules → export / web / notify. `config` and `discovery` say what to watch
//! ([`target`]); at each poll `probe` reads a database's files, `monitor` turns the sample into a
//! snapshot, `rules` judges it, and the `poller` publishes snapshots and alerts, which `export`
//! renders for Prometheus, `web` serves and `notify` pushes. Off the poll path, `litestream`
//! reads the replicas and `drill` restores them; the poller hands what they found to `monitor`.
//!
//! # Layout
//! Each module uses only those listed above it; `scripts/module_cycles.py` fails on an import
//! that points down this list, on a cycle at any depth, and on a module the list leaves out:
//! - [`format`](mod@format): pure parsers of the database header, the WAL and the wal-index (`-shm`),
//!   Litestream's files, `/proc/locks`, `/proc/self/mountinfo` and Go build information.
//! - [`units`]: how a figure is written for people (bytes, durations, rates).
//! - [`http_client`]: the one HTTP client (Alertmanager pushes, Litestream's metrics).
//! - [`probe`]: the I/O for one database (files kept open, `pread`, lock tests, disk space),
//!   returning plain samples; who holds the locks, and in what role (`probe::process`: the
//!   application, Litestream, a configured replicator); the open-file budget
//!   (`probe::descriptors`).
//! - [`readonly`]: read-only SQL connections to a database others use (a read-only VFS, no
//!   checkpoint on close, retries), shared by `check` and `migrate`.
//! - [`litestream`]: litestream.yml, replica positions, the watchers that read replicas off the
//!   poll path, and the board they post on.
//! - [`drill`]: restore drills: the real `litestream restore` into a scratch folder, the copy
//!   checked and deleted, one database at a time; their settings and what they found
//!   ([`drill::Records`]).
//! - [`monitor`]: state across polls (monotonic counters, checkpoint-lag age, rates), turning
//!   each probe sample into one plain [`monitor::DbSnapshot`] per database; reads nothing: the
//!   poll time, the sample and the replicas' observations are handed in
//!   (`Monitor::apply(sample, at)`, `Monitor::observe_replicas`).
//! - [`rules`]: every threshold defined once; alert states across polls.
//! - [`target`]: a database to watch, resolved (name, path, declared facts, thresholds, replicas,
//!   drills): built by `config` and `discovery`, consumed by the poller, drills and `check`.
//! - [`state`]: the state file that carries alerts across restarts.
//! - [`history`]: the recent past of each database in fixed rings (the last hour, day and
//!   week), and the forecasts drawn from it; pure.
//! - [`poller`]: polls every database on schedule (`poller/watched.rs`: one database's probe and
//!   monitor, where the I/O and the clocks meet the pure monitor), evaluates the rules,
//!   publishes the result.
//! - [`notify`]: the Alertmanager push, webhooks and the heartbeat, each with its own delivery
//!   task and counters, and their settings.
//! - [`discovery`]: which databases to watch now: the fixed ones, the SQLite files matching
//!   `glob:` entries (walked again on an interval), those Litestream lists, those the host's
//!   processes hold open (`run` given nothing, `discovery::host`); the grace of a tenant gone
//!   from disk.
//! - [`config`]: the YAML file, read and checked, each section handed to its concept
//!   (`drill::config`, `notify::config`, thresholds as `rules` layers) and resolved into targets;
//!   its errors name the file and the field.
//! - [`export`]: snapshots turned into Prometheus text (and the fleet and `process_*` series)
//!   and into Prometheus rules.
//! - [`web`]: the HTTP server (`/metrics`, the status page and its charts, the JSON API), TLS
//!   and basic auth.
//! - [`check`]: the one-shot audit of `sqlite-ops check`.
//! - [`migrate`]: `sqlite-ops migrate-check`, what will break when the database moves to
//!   Postgres.
//! - [`daemon`]: poller plus HTTP server, shared by the `run` and `demo` subcommands in [`cmd`].
//! - [`cmd`]: one file per subcommand, and the demo's application; the only place, with
//!   `main.rs`, where errors become `anyhow` messages and exit codes.
//!
//! # Where each figure on `/metrics` comes from
//! Names, help texts and rendering are in `export/metrics.rs`; the value is computed in:
//! - `sqlite_up`, `sqlite_info`, sizes, pages, freelist, `sqlite_write_transactions_total`:
//!   `monitor/mod.rs` (from `probe/mod.rs`'s samples; the counter in `monitor/counter.rs`, which
//!   `monitor/rebuild.rs` tells when the wal-index restarted it).
//! - `sqlite_wal_*`, `sqlite_checkpoint_lag_*`: `monitor/wal.rs` (the lag clock in
//!   `monitor/lag.rs`).
//! - `sqlite_wal_readers`, `sqlite_oldest_snapshot_age_seconds`: `monitor/pins.rs`.
//! - `sqlite_checkpoint_starved_seconds`, `sqlite_snapshot_pinned_seconds`,
//!   `sqlite_checkpoint_last_progress_timestamp_seconds`: `monitor/starvation.rs`.
//! - `sqlite_write_lock_*`, `sqlite_writer_processes`: `monitor/write_lock.rs`, with roles from
//!   `probe/process.rs`; `sqlite_lock_holder_processes`: `poller/watched.rs` (the holders in
//!   `/proc/locks`, `probe/who.rs`).
//! - `sqlite_filesystem_*`: `probe/filesystem.rs`.
//! - `sqlite_declared_*`: `config` (`team:`).
//! - `sqlite_alert`: `rules/engine.rs`, thresholds in `rules/catalogue.rs`.
//! - `sqlite_litestream_*`: `monitor/replication.rs` (lag) from `litestream/replica.rs` (read
//!   by `litestream/watcher.rs`) and `litestream/metrics.rs` (Litestream's own figures);
//!   `sqlite_litestream_chain_intact`: `litestream/chain.rs`; `sqlite_litestream_replica_files`,
//!   `_bytes` and the file timestamps: `litestream/storage.rs`; `sqlite_litestream_local_*`
//!   (but the positions): `litestream/local_state.rs`.
//! - `sqlite_restore_drill_*`: `drill/restore.rs` (one drill), kept in `drill/record.rs`.
//! - `sqlite_fleet_*`: `export/fleet.rs`; `process_*`: `export/process.rs`.
//! - `sqlite_ops_poll_errors_total`: `monitor/mod.rs`; `sqlite_ops_poll_duration_seconds`:
//!   `poller/watched.rs`; `sqlite_ops_alertmanager_*`:
//!   `notify/alertmanager.rs`; `sqlite_ops_litestream_config_up`: `cmd/run.rs`;
//!   `sqlite_ops_build_info`: `export/metrics.rs`.

pub mod check;
pub mod cmd;
pub mod config;
pub mod daemon;
pub mod discovery;
pub mod drill;
pub mod export;
pub mod format;
pub mod history;
pub mod http_client;
pub mod litestream;
pub mod migrate;
pub mod monitor;
pub mod notify;
pub mod poller;
pub mod probe;
pub mod readonly;
pub mod rules;
pub mod state;
pub mod target;
pub mod units;
pub mod web;
