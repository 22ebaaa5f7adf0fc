//! The `sqlite-ops` binary: command-line parsing, logging setup and exit codes. The work is in
//! the library (`sqlite_ops::cmd`).

use anyhow::Context;
use clap::{CommandFactory, FromArgMatches, Parser, Subcommand};
use sqlite_ops::cmd;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

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
    Run {
        /// YAML config file (see config.example.yaml).
        #[arg(long)]
        config: Option<PathBuf>,
        /// A database to watch (repeatable); named after its file stem.
        #[arg(long = "db", value_name = "PATH")]
        databases: Vec<PathBuf>,
        /// Address to listen on: host:port, or :port for every interface [default: :9934].
        #[arg(long = "web.listen-address", value_name = "ADDRESS")]
        listen_address: Option<String>,
        /// Path under which to expose metrics [default: /metrics].
        #[arg(long = "web.telemetry-path", value_name = "PATH")]
        telemetry_path: Option<String>,
        /// TLS and basic auth: a web config file in Prometheus exporter-toolkit's format
        /// (tls_server_config, basic_auth_users, http_server_config) [default: web.config_file
        /// from --config].
        #[arg(long = "web.config.file", value_name = "FILE")]
        web_config_file: Option<PathBuf>,
        /// How often to poll every database, like 1s or 250ms [default: 1s].
        #[arg(long = "poll-interval", value_name = "DURATION", value_parser = humantime::parse_duration)]
        poll_interval: Option<Duration>,
        /// Litestream's config file: measure replication of the databases it lists (and watch
        /// them) [default: litestream.config from --config].
        #[arg(long = "litestream-config", value_name = "FILE")]
        litestream_config: Option<PathBuf>,
    },
    /// Audit databases once: thresholds, journal mode, freelist, foreign keys, permissions,
    /// filesystem, SQLite version, Litestream. Exit code: 0 OK, 1 WARNING, 2 CRITICAL, 3 UNKNOWN.
    Check {
        /// YAML config file: its databases, thresholds and declared team facts.
        #[arg(long)]
        config: Option<PathBuf>,
        /// Databases to check (besides those of --config).
        #[arg(value_name = "DB")]
        databases: Vec<PathBuf>,
        /// How long to watch each database for write rate and lock figures, like 5s or 0s.
        #[arg(long, default_value = "5s", value_parser = humantime::parse_duration)]
        sample: Duration,
        /// Also run PRAGMA quick_check (read-only, but reads the whole file).
        #[arg(long)]
        integrity: bool,
        /// Longest any one SQL statement of the check may run (its read transaction pins the
        /// WAL meanwhile).
        #[arg(long = "statement-timeout", default_value = "10s", value_parser = humantime::parse_duration)]
        statement_timeout: Duration,
        /// Output format.
        #[arg(long, value_enum, default_value_t = cmd::check::Format::Human)]
        format: cmd::check::Format,
        /// Litestream's config file: judge the replication of the databases it lists.
        #[arg(long = "litestream-config", value_name = "FILE")]
        litestream_config: Option<PathBuf>,
    },
    /// What will break when this database moves to Postgres: proposed types and DDL, values
    /// Postgres would reject, the cost of the copy. Exit 0 ready, 1 work, 2 blocked.
    MigrateCheck(cmd::migrate_check::Args),
    /// Print Prometheus alerting rules for the configured (or default) thresholds.
    Rules {
        /// YAML config file whose thresholds to use.
        #[arg(long)]
        config: Option<PathBuf>,
        /// A rules file for Prometheus, or a PrometheusRule for the Prometheus Operator.
        #[arg(long, value_enum, default_value_t = cmd::rules::Format::Prometheus)]
        format: cmd::rules::Format,
        /// metadata.name of the PrometheusRule.
        #[arg(long, default_value = "sqlite-ops")]
        name: String,
    },
    /// Run a built-in demo: an application writing to a WAL database, watched live.
    Demo {
        /// Stop after this long, like 30s (default: run until Ctrl-C).
        #[arg(long, value_parser = humantime::parse_duration)]
        duration: Option<Duration>,
        /// Write transactions per second of the demo application.
        #[arg(long, default_value_t = 200)]
        rate: u32,
        /// Reader threads of the demo application.
        #[arg(long, default_value_t = 2)]
        readers: usize,
        /// Address for the metrics endpoint [default: 127.0.0.1:9934, or a free port].
        #[arg(long = "web.listen-address", value_name = "ADDRESS")]
        listen_address: Option<String>,
    },
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
    let quiet = !matches!(cli.command, Command::Run { .. } | Command::Demo { .. });
    let level = cli
        .log_level
        .unwrap_or_else(|| if quiet { "error" } else { "info" }.to_string());
    init_logging(&level, cli.log_format);
    raise_open_files_limit();
    let result = match cli.command {
        Command::Completions { shell } => {
            clap_complete::generate(shell, &mut command(), "sqlite-ops", &mut std::io::stdout());
            Ok(())
        }
        Command::Man => clap_mangen::Man::new(command())
            .render(&mut std::io::stdout())
            .map_err(anyhow::Error::from),
        Command::Check {
            config,
            databases,
            sample,
            integrity,
            statement_timeout,
            format,
            litestream_config,
        } => {
            let opts = sqlite_ops::check::CheckOptions {
                config,
                databases,
                sample,
                integrity,
                statement_timeout,
                litestream_config,
            };
            return ExitCode::from(cmd::check::run(&opts, format));
        }
        Command::MigrateCheck(args) => return ExitCode::from(cmd::migrate_check::run(args)),
        Command::Rules {
            config,
            format,
            name,
        } => cmd::rules::render(config.as_deref(), format, &name).map(|rules| print!("{rules}")),
        Command::Run {
            config,
            databases,
            listen_address,
            telemetry_path,
            web_config_file,
            poll_interval,
            litestream_config,
        } => runtime().and_then(|rt| {
            rt.block_on(cmd::run::run(cmd::run::RunOptions {
                config,
                databases,
                listen_address,
                telemetry_path,
                web_config_file,
                poll_interval,
                litestream_config,
            }))
        }),
        Command::Demo {
            duration,
            rate,
            readers,
            listen_address,
        } => runtime().and_then(|rt| {
            rt.block_on(cmd::demo::run(cmd::demo::DemoOptions {
                duration,
                rate,
                readers,
                listen_address,
            }))
        }),
        Command::DemoWorkload { db, rate, readers } => {
            sqlite_ops::workload::run(&db, rate, readers)
        }
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("sqlite-ops: {e:#}");
            ExitCode::FAILURE
        }
    }
}
