//! One file per subcommand (and `workload`, the demo's application, run by the hidden
//! `demo-workload` subcommand), called by `main.rs`, which parses the command line. Only here and
//! in `main.rs` are the library's typed errors made `anyhow` messages and the exit code decided.

pub mod check;
pub mod demo;
pub mod init;
pub mod migrate_check;
pub mod rules;
pub mod run;
pub mod workload;

/// Writes `text` to standard output; a reader that went away (`| head`) is no error, as with
/// other Unix tools: the output was wanted only so far.
pub fn print_out(text: &str) -> std::io::Result<()> {
    use std::io::Write;
    let mut out = std::io::stdout().lock();
    match out.write_all(text.as_bytes()).and_then(|()| out.flush()) {
        Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => Ok(()),
        other => other,
    }
}

/// Whether `e` comes from writing to a reader that went away.
pub fn is_broken_pipe(e: &anyhow::Error) -> bool {
    e.chain().any(|c| {
        c.downcast_ref::<std::io::Error>()
            .is_some_and(|io| io.kind() == std::io::ErrorKind::BrokenPipe)
    })
}
