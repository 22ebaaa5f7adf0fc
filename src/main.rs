//! The `sqlite-ops` binary: command-line parsing, logging setup and exit codes. The work is in
//! the library (`sqlite_ops::cmd`).

use anyhow::Context;
use clap::{CommandFactory, FromArgMatches, Parser, Subcommand};
use sqlite_ops::cmd;
use std::path::PathBuf;
use std::process::ExitCode;

// glibc's allocator spent a third of a ten-thousand-database poll in malloc_consolidate and
// unlink_chunk, and kept twice the heap resident; mimalloc does neither (BENCHMARKS.md, Fleet).
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[derive(Parser)]
#[command(
    name = "sqlite-ops",
    version,
    about = "Operations and health monitoring for SQLite used as a server database"
)]
struct Cli {
    /// Log level: error, warn, info, debug or trace (or a tracing filter directive)
    /// [default: info; error for check, whose findings say it all].
    #[arg(long = "log.level", global = true, env = "SQLITE_OPS_LOG")]
    log_level: Option<String>,
    /// Log format: logfmt-like text, or json for log shippers.
    #[arg(long = "log.format", global = true, value_enum, default_value_t = LogFormat::Text)]
    log_format: LogFormat,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Watch databases and serve Prometheus metrics.
    Run(cmd::run::RunOptions),
    /// Audit databases once: thresholds, journal mode, freelist, foreign keys, permissions,
    /// filesystem, SQLite version, Litestream. Exit code: 0 OK, 1 WARNING, 2 CRITICAL, 3 UNKNOWN.
    Check(cmd::check::Args),
    /// What will break when this database moves to Postgres: proposed types and DDL, values
    /// Postgres would reject, the cost of the copy. Exit 0 ready, 1 work, 2 blocked.
    MigrateCheck(cmd::migrate_check::Args),
    /// Print Prometheus alerting rules for the configured (or default) thresholds.
    Rules(cmd::rules::Args),
    /// Print a config to start from: the SQLite databases this host's processes hold open, and
    /// Litestream's config at its default path, each with how it was found.
    Init(cmd::init::Args),
    /// Run a built-in demo: an application writing to a WAL database, watched live.
    Demo(cmd::demo::DemoOptions),
    /// Print a shell completion script (bash, zsh, fish, elvish, powershell).
    Completions {
        #[arg(value_enum)]
        shell: clap_complete::Shell,
    },
    /// Print the man page (roff), generated from these definitions.
    Man,
    /// The demo's application (run by `demo` in a child process).
    #[command(hide = true)]
    DemoWorkload {
        #[arg(long)]
        db: PathBuf,
        #[arg(long)]
        rate: u32,
        #[arg(long)]
        readers: usize,
    },
}

#[derive(Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
enum LogFormat {
    Text,
    Json,
}

fn init_logging(level: &str, format: LogFormat) {
    let filter = tracing_subscriber::EnvFilter::try_new(level).unwrap_or_else(|_| {
        eprintln!("sqlite-ops: --log.level: {level:?} is not a level; using info");
        tracing_subscriber::EnvFilter::new("info")
    });
    // Colour only on a terminal: escape codes in a journal or a log file are noise.
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .with_writer(std::io::stderr);
    match format {
        LogFormat::Text => builder.init(),
        LogFormat::Json => builder.json().init(),
    }
}

/// Raises the soft limit on open files to the hard limit, as Go and Prometheus do: the daemon
/// keeps three descriptors per watched database open for its whole life.
fn raise_open_files_limit() {
    // SAFETY: getrlimit/setrlimit read and write the struct we pass.
    unsafe {
        let mut lim: libc::rlimit = std::mem::zeroed();
        if libc::getrlimit(libc::RLIMIT_NOFILE, &mut lim) == 0 && lim.rlim_cur < lim.rlim_max {
            lim.rlim_cur = lim.rlim_max;
            let _ = libc::setrlimit(libc::RLIMIT_NOFILE, &lim);
        }
    }
}

/// mimalloc asks the kernel for transparent huge pages on its arenas (`MADV_HUGEPAGE`), and a
/// 2 MiB page stays resident while any of its 64 KiB mimalloc pages is in use: a 2,000-tenant
/// fleet rested at 126 MiB with them, 68 MiB without (BENCHMARKS.md, Fleet). The daemon's heap
/// is many small long-lived objects, where huge pages buy no speed. Set before the runtime
/// allocates; inherited by the Litestream a drill runs, which only lowers its footprint too.
fn no_transparent_huge_pages() {
    // SAFETY: PR_SET_THP_DISABLE takes plain integers and touches no memory of ours.
    unsafe {
        let _ = libc::prctl(libc::PR_SET_THP_DISABLE, 1, 0, 0, 0);
    }
}

fn runtime() -> anyhow::Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .context("cannot start the async runtime")
}

/// The command-line definition, with a version that names the bundled SQLite.
fn command() -> clap::Command {
    let version: &'static str = Box::leak(
        format!(
            "{} (bundled SQLite {})",
            env!("CARGO_PKG_VERSION"),
            rusqlite::version()
        )
        .into_boxed_str(),
    );
    Cli::command().version(version)
}

fn main() -> ExitCode {
    let cli = Cli::from_arg_matches(&command().get_matches()).unwrap_or_else(|e| e.exit());
    let quiet = !matches!(cli.command, Command::Run(_) | Command::Demo(_));
    let level = cli
        .log_level
        .unwrap_or_else(|| if quiet { "error" } else { "info" }.to_string());
    init_logging(&level, cli.log_format);
    raise_open_files_limit();
    no_transparent_huge_pages();
    let result = match cli.command {
        Command::Completions { shell } => {
            clap_complete::generate(shell, &mut command(), "sqlite-ops", &mut std::io::stdout());
            Ok(())
        }
        Command::Man => clap_mangen::Man::new(command())
            .render(&mut std::io::stdout())
            .map_err(anyhow::Error::from),
        Command::Check(args) => return ExitCode::from(cmd::check::run(args)),
        Command::MigrateCheck(args) => return ExitCode::from(cmd::migrate_check::run(args)),
        Command::Rules(args) => cmd::rules::run(&args),
        Command::Init(args) => cmd::init::run(&args),
        Command::Run(opts) => runtime().and_then(|rt| rt.block_on(cmd::run::run(opts))),
        Command::Demo(opts) => runtime().and_then(|rt| rt.block_on(cmd::demo::run(opts))),
        Command::DemoWorkload { db, rate, readers } => {
            sqlite_ops::cmd::workload::run(&db, rate, readers)
        }
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        // `sqlite-ops man | head`: the reader had what it wanted.
        Err(e) if cmd::is_broken_pipe(&e) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("sqlite-ops: {e:#}");
            ExitCode::FAILURE
        }
    }
}
