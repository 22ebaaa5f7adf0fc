//! One file per subcommand. `main.rs` parses the command line and calls these.

pub mod demo;
pub mod run;
