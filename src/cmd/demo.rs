//! `sqlite-ops demo`: a self-contained tour: a small application (`workload`) writing to a WAL
//! database, watched by the daemon.

use crate::config;
use crate::daemon::{self, Settings};
use crate::discovery::Discovery;
use crate::monitor::DbSnapshot;
use crate::poller::Store;
use crate::target::Target;
use crate::web::server::human_bytes;
use anyhow::{bail, Context};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader, Lines};
use tokio::process::{ChildStdout, Command};

#[derive(Debug, Clone, clap::Args)]
pub struct DemoOptions {
    /// Stop after this long, like 30s (default: run until Ctrl-C).
    #[arg(long, value_parser = humantime::parse_duration)]
    pub duration: Option<Duration>,
    /// Write transactions per second of the demo application.
    #[arg(long, default_value_t = 200)]
    pub rate: u32,
    /// Reader threads of the demo application.
    #[arg(long, default_value_t = 2)]
    pub readers: usize,
    /// Address for the metrics endpoint [default: 127.0.0.1:9934, or a free port].
    #[arg(long = "web.listen-address", value_name = "ADDRESS")]
    pub listen_address: Option<String>,
}

async fn next_line(
    lines: &mut Lines<BufReader<ChildStdout>>,
    within: Duration,
) -> anyhow::Result<String> {
    match tokio::time::timeout(within, lines.next_line()).await {
        Ok(Ok(Some(l))) => Ok(l),
        Ok(Ok(None)) => bail!("the demo workload exited early (see its messages above)"),
        Ok(Err(e)) => Err(e).context("reading from the demo workload"),
        Err(_) => bail!("the demo workload did not answer within {within:?}"),
    }
}

async fn bind(requested: Option<&str>) -> anyhow::Result<tokio::net::TcpListener> {
    let addr = config::parse_listen_address(requested.unwrap_or("127.0.0.1:9934"))
        .map_err(anyhow::Error::msg)?;
    match tokio::net::TcpListener::bind(addr).await {
        Ok(l) => Ok(l),
        Err(e) if requested.is_none() && e.kind() == std::io::ErrorKind::AddrInUse => {
            Ok(tokio::net::TcpListener::bind("127.0.0.1:0").await?)
        }
        Err(e) => Err(e).with_context(|| format!("cannot listen on {addr}")),
    }
}

/// Waits until the poller has published a readable snapshot of the demo database.
async fn first_snapshot(store: &Store) -> anyhow::Result<DbSnapshot> {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        if let Some(s) = store
            .latest()
            .snapshots
            .first()
            .filter(|s| s.up && s.write_transactions_total.is_some())
        {
            return Ok(s.clone());
        }
        if Instant::now() > deadline {
            bail!("the demo database was not readable within 10 s");
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Waits for `n` more poll cycles and returns the newest snapshot.
async fn after_cycles(store: &Store, n: u64) -> Option<DbSnapshot> {
    let target = store.latest().cycles + n;
    for _ in 0..100 {
        let p = store.latest();
        if p.cycles >= target {
            return p.snapshots.first().cloned();
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    None
}

fn live_line(elapsed: Duration, s: &DbSnapshot) -> String {
    let wal = s.wal.clone().unwrap_or_default();
    format!(
        "{:>4}s  tx/s {:>7.1}  db {:>10}  wal {:>10}  checkpoint lag {:>5} frames {:>10} {:>5.1} s  readers {}",
        elapsed.as_secs(),
        s.write_transactions_per_second.unwrap_or(0.0),
        human_bytes(s.database_size_bytes.unwrap_or(0)),
        human_bytes(wal.size_bytes),
        wal.checkpoint_lag_frames.unwrap_or(0),
        human_bytes(wal.checkpoint_lag_bytes.unwrap_or(0)),
        wal.checkpoint_lag_seconds.unwrap_or(0.0),
        wal.readers,
    )
}

/// The demo application in a child process, and the pipes it is driven through.
struct Workload {
    child: tokio::process::Child,
    stdin: tokio::process::ChildStdin,
    lines: Lines<BufReader<ChildStdout>>,
}

impl Workload {
    /// Starts the application on `db` and waits until it has created the database.
    async fn start(db: &std::path::Path, opts: &DemoOptions) -> anyhow::Result<Self> {
        let mut child = Command::new(std::env::current_exe()?)
            .arg("demo-workload")
            .arg("--db")
            .arg(db)
            .arg("--rate")
            .arg(opts.rate.to_string())
            .arg("--readers")
            .arg(opts.readers.to_string())
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            // Its own process group: Ctrl-C reaches only us, and we stop the workload in order.
            .process_group(0)
            .kill_on_drop(true)
            .spawn()
            .context("starting the demo workload")?;
        let stdin = child.stdin.take().context("the workload's stdin")?;
        let stdout = child.stdout.take().context("the workload's stdout")?;
        let mut w = Workload {
            child,
            stdin,
            lines: BufReader::new(stdout).lines(),
        };
        if next_line(&mut w.lines, Duration::from_secs(60)).await? != "ready" {
            bail!("the demo workload did not start");
        }
        Ok(w)
    }

    async fn go(&mut self) -> anyhow::Result<()> {
        Ok(self.stdin.write_all(b"go\n").await?)
    }

    /// Stops committing and returns how many write transactions the application committed.
    /// The application keeps the database open until [`Self::finish`].
    async fn stop(&mut self) -> anyhow::Result<u64> {
        self.stdin.write_all(b"stop\n").await?;
        let reply = next_line(&mut self.lines, Duration::from_secs(10)).await?;
        reply
            .strip_prefix("committed ")
            .and_then(|n| n.parse().ok())
            .with_context(|| format!("unexpected reply from the demo workload: {reply:?}"))
    }

    /// Closes its stdin, which makes it exit, and waits up to 10 s for that.
    async fn finish(self) {
        let Workload {
            mut child, stdin, ..
        } = self;
        drop(stdin);
        let _ = tokio::time::timeout(Duration::from_secs(10), child.wait()).await;
    }
}

/// The daemon watching the demo database, with the defaults of `run`.
fn start_daemon(
    listener: tokio::net::TcpListener,
    db: &std::path::Path,
    store: Arc<Store>,
    stop: tokio::sync::oneshot::Receiver<()>,
) -> tokio::task::JoinHandle<std::io::Result<()>> {
    let databases = Discovery::fixed(vec![Target::new("demo", db)]);
    tokio::spawn(async move {
        let server = daemon::Server::start(listener);
        let ran = daemon::run(
            (databases, None),
            &Settings::default(),
            server.site(),
            store,
            Default::default(),
            async {
                let _ = stop.await;
                daemon::Stopped::Terminated
            },
        )
        .await;
        let served = server.stop().await;
        ran.map(drop).and(served)
    })
}

/// Prints one live line a second until `duration` has passed, Ctrl-C, or the workload dies.
async fn live(
    store: &Store,
    workload: &mut Workload,
    duration: Option<Duration>,
) -> anyhow::Result<()> {
    let started = Instant::now();
    let mut tick = tokio::time::interval_at(
        tokio::time::Instant::now() + Duration::from_secs(1),
        Duration::from_secs(1),
    );
    let end = async {
        match duration {
            Some(d) => tokio::time::sleep(d).await,
            None => std::future::pending().await,
        }
    };
    tokio::pin!(end);
    let mut signals = daemon::Signals::install()?;
    let interrupted = signals.terminated();
    tokio::pin!(interrupted);
    loop {
        tokio::select! {
            _ = tick.tick() => {
                if let Some(s) = store.latest().snapshots.first() {
                    println!("{}", live_line(started.elapsed(), s));
                }
            }
            _ = &mut end => return Ok(()),
            _ = &mut interrupted => return Ok(()),
            status = workload.child.wait() => bail!("the demo workload exited unexpectedly: {status:?}"),
        }
    }
}

/// The closing line: what the application committed against what sqlite-ops counted.
fn verdict(committed: u64, counted: Option<u64>) -> String {
    let said = format!("the workload committed {committed} write transactions; sqlite-ops");
    match counted {
        Some(c) if c == committed => format!("{said} counted {c}: exact"),
        Some(c) => format!("{said} counted {c}"),
        None => format!("{said} has no count"),
    }
}

/// Creates a WAL database in a temporary directory, runs a small application against it in a
/// child process (see `workload`), watches it with the daemon, prints one live line per second,
/// and at the end compares the transactions the application committed with what sqlite-ops
/// counted.
pub async fn run(opts: DemoOptions) -> anyhow::Result<()> {
    let dir = tempfile::Builder::new()
        .prefix("sqlite-ops-demo-")
        .tempdir()?;
    let db = dir.path().join("app.db");
    let mut workload = Workload::start(&db, &opts).await?;
    let listener = bind(opts.listen_address.as_deref()).await?;
    let addr = listener.local_addr()?;
    let url = format!("http://{addr}/metrics");
    let store = Arc::new(Store::default());
    let (stop_daemon, daemon_stop) = tokio::sync::oneshot::channel::<()>();
    let daemon = start_daemon(listener, &db, store.clone(), daemon_stop);
    let baseline = first_snapshot(&store)
        .await?
        .write_transactions_total
        .unwrap_or(0);

    println!(
        "sqlite-ops demo: {} write tx/s and {} readers on {}",
        opts.rate,
        opts.readers,
        db.display()
    );
    println!("status page: http://{addr}/   (charts of the last hour, alerts, forecasts)");
    println!(
        "metrics: {url}   (Ctrl-C to stop{})",
        opts.duration.map_or(String::new(), |d| format!(
            ", or after {}",
            humantime::format_duration(d)
        ))
    );
    workload.go().await?;
    live(&store, &mut workload, opts.duration).await?;
    let committed = workload.stop().await?;
    // Two more polls, so the last commits are surely seen, while the workload still holds the
    // database open (closing the last connection deletes the wal-index).
    let last = after_cycles(&store, 2).await;
    let counted = last
        .as_ref()
        .and_then(|s| s.write_transactions_total)
        .map(|t| t - baseline);
    println!();
    println!("{}", verdict(committed, counted));
    workload.finish().await;
    let _ = stop_daemon.send(());
    daemon.await.context("the daemon task failed")??;
    Ok(())
}
