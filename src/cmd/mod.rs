//! One file per subcommand. `main.rs` parses the command line and calls these.

pub mod check;
pub mod demo;
pub mod migrate_check;
pub mod rules;
pub mod run;
