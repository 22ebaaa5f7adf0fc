//! One file per subcommand (and `workload`, the demo's application, run by the hidden
//! `demo-workload` subcommand). `main.rs` parses the command line and calls these. Here, and
//! only here and in `main.rs`, the library's typed errors become `anyhow` messages and the
//! process's exit code is decided.

pub mod check;
pub mod demo;
pub mod migrate_check;
pub mod rules;
pub mod run;
pub mod workload;
