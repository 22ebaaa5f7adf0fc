//! `sqlite-ops run`: the exporter daemon. SIGINT and SIGTERM stop it; SIGHUP reloads the
//! config (and litestream.yml).

use crate::config::{self, Config};
use crate::daemon::{self, Settings, Stopped};
use crate::discovery::Discovery;
use crate::notify::alertmanager::NotifierSettings;
use crate::notify::heartbeat::HeartbeatSettings;
use crate::notify::webhook::Webhook;
use crate::poller::Store;
use crate::web::web_config::WebSecurity;
use anyhow::Context;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

/// The command line of `run` (its values win over the config file).
#[derive(Debug, Clone, Default, clap::Args)]
pub struct RunOptions {
    /// YAML config file (see config.example.yaml).
    #[arg(long)]
    pub config: Option<PathBuf>,
    /// A database to watch (repeatable); named after its file stem.
    #[arg(long = "db", value_name = "PATH")]
    pub databases: Vec<PathBuf>,
    /// Address to listen on: host:port, or :port for every interface [default: :9934].
    #[arg(long = "web.listen-address", value_name = "ADDRESS")]
    pub listen_address: Option<String>,
    /// Once listening, write the address bound (host:port, the port chosen when :0 was
    /// asked) to this file, for scripts and supervisors that start it on port 0.
    #[arg(long = "web.address-file", value_name = "FILE")]
    pub address_file: Option<PathBuf>,
    /// Path under which to expose metrics [default: /metrics].
    #[arg(long = "web.telemetry-path", value_name = "PATH")]
    pub telemetry_path: Option<String>,
    /// TLS and basic auth: a web config file in Prometheus exporter-toolkit's format
    /// (tls_server_config, basic_auth_users, http_server_config) [default: web.config_file
    /// from --config].
    #[arg(long = "web.config.file", value_name = "FILE")]
    pub web_config_file: Option<PathBuf>,
    /// How often to poll every database, like 1s or 250ms [default: 1s].
    #[arg(long = "poll-interval", value_name = "DURATION", value_parser = humantime::parse_duration)]
    pub poll_interval: Option<Duration>,
    /// Litestream's config file: measure replication of the databases it lists (and watch
    /// them) [default: litestream.config from --config].
    #[arg(long = "litestream-config", value_name = "FILE")]
    pub litestream_config: Option<PathBuf>,
    /// Also watch every SQLite database under this folder, at any depth, looked for again
    /// every discover_interval (repeatable); each named by its whole path.
    #[arg(long = "discover", value_name = "DIR")]
    pub discover: Vec<PathBuf>,
}

/// What one reading of the config gives: the listen address, the databases and the settings.
struct Loaded {
    addr: SocketAddr,
    replicators: Vec<crate::probe::process::ReplicatorMatch>,
    discovery: Discovery,
    /// What the first walk found: the descriptor budget is planned for it, and the daemon
    /// starts with it rather than walk the globs again.
    found: Vec<crate::target::Target>,
    cfg: Config,
    telemetry_path: String,
    litestream_config: Option<Result<(), crate::config::ConfigError>>,
    /// The litestream.yml drills restore with: the file, or while it is broken a copy of the
    /// one read last.
    litestream_path: Option<PathBuf>,
    /// What litestream.yml listed when it was last read whole: a reload that finds it broken
    /// keeps measuring replication and drilling restores by it (and says the file is broken)
    /// rather than stop.
    litestream: Option<ReadWhole>,
    security: Arc<WebSecurity>,
    /// The config's global thresholds, exported as `sqlite_threshold`.
    thresholds: crate::rules::DbThresholds,
}

/// litestream.yml as last read whole: what it lists, its text, and (while the file is broken)
/// a copy of that text the drills restore with, as Litestream would refuse the file too.
#[derive(Clone)]
struct ReadWhole {
    listed: crate::litestream::config::Litestream,
    text: Arc<str>,
    copy: Option<Arc<tempfile::TempPath>>,
}

impl ReadWhole {
    /// The same, with a copy of its text written for the drills (kept as long as this is).
    fn kept(&self) -> std::io::Result<ReadWhole> {
        let copy = match &self.copy {
            Some(c) => c.clone(),
            None => {
                let mut f = tempfile::Builder::new()
                    .prefix("sqlite-ops-litestream-")
                    .suffix(".yml")
                    .tempfile()?;
                std::io::Write::write_all(&mut f, self.text.as_bytes())?;
                Arc::new(f.into_temp_path())
            }
        };
        Ok(ReadWhole {
            copy: Some(copy),
            ..self.clone()
        })
    }
}

/// Reads and validates the config and litestream.yml; `previous` is what the running config
/// read of litestream.yml, kept when it is broken now.
fn load(opts: &RunOptions, previous: Option<&ReadWhole>) -> anyhow::Result<Loaded> {
    // Nothing given: what the host shows (the databases its processes hold open, looked for
    // again every discover_interval, and Litestream's config where Litestream looks for it).
    let nothing_given =
        opts.config.is_none() && opts.databases.is_empty() && opts.litestream_config.is_none();
    let (cfg, source) = match &opts.config {
        Some(p) => (Config::load(p)?, p.display().to_string()),
        None if nothing_given => (Config::default(), "found on this host".to_string()),
        None => (Config::default(), "command line".to_string()),
    };
    let mut discovery = cfg.discovery(&opts.databases, &source)?;
    if nothing_given {
        cfg.watch_host(&source, &mut discovery)?;
    }
    cfg.discover_under(&opts.discover, &source, &mut discovery)?;
    let litestream_path = cfg
        .litestream_path(opts.litestream_config.as_deref())
        .or_else(|| nothing_given.then(super::init::host_litestream).flatten());
    let (litestream, litestream_config, drill_yml) = read_litestream(litestream_path, previous);
    if let Some(whole) = &litestream {
        cfg.attach_litestream(&source, whole.listed.clone(), &mut discovery)?;
    }
    if discovery.is_empty() {
        anyhow::bail!("no database to watch: give --db PATH or a --config file with databases: (`sqlite-ops init` prints one from what this host shows)");
    }
    let found = discovery.scan(std::time::Instant::now());
    if nothing_given && found.is_empty() {
        let folders = match opts.discover.is_empty() {
            true => "",
            false => ", nor is one under the --discover folders",
        };
        tracing::warn!(every = ?cfg.discover_interval, "nothing to watch yet: no process this user may look into holds an SQLite database open{folders}, and Litestream's config is not where Litestream looks for it; looking again every discover_interval (`sqlite-ops init` shows what this host shows)");
    }
    let listen = opts
        .listen_address
        .clone()
        .unwrap_or_else(|| cfg.web.listen_address.clone());
    let addr = config::parse_listen_address(&listen)
        .map_err(|m| anyhow::anyhow!("--web.listen-address: {m}"))?;
    let telemetry_path = opts
        .telemetry_path
        .clone()
        .unwrap_or_else(|| cfg.web.telemetry_path.clone());
    config::validate_telemetry_path(&telemetry_path)
        .map_err(|m| anyhow::anyhow!("--web.telemetry-path: {m}"))?;
    // Read on every (re)load, so a renewed certificate or a changed password takes a SIGHUP.
    let security = match opts
        .web_config_file
        .as_ref()
        .or(cfg.web.config_file.as_ref())
    {
        Some(path) => WebSecurity::load(path)?,
        None => WebSecurity::default(),
    };
    Ok(Loaded {
        replicators: cfg.replicator_matches(&source)?,
        thresholds: cfg.global_thresholds(&source)?,
        security: Arc::new(security),
        addr,
        discovery,
        found,
        cfg,
        telemetry_path,
        litestream_path: drill_yml,
        litestream_config,
        litestream,
    })
}

/// What litestream.yml (at `litestream_path`, when there is one) lists now or, when it is
/// broken, as `previous` read it; whether it was read whole; and the file drills restore with.
type LitestreamRead = (
    Option<ReadWhole>,
    Option<Result<(), crate::config::ConfigError>>,
    Option<PathBuf>,
);

fn read_litestream(
    litestream_path: Option<PathBuf>,
    previous: Option<&ReadWhole>,
) -> LitestreamRead {
    // A broken litestream.yml is reported (log, status, metric) while every database is served,
    // and replication measured by the last one read whole, if any.
    let read = litestream_path.as_deref().map(config::load_litestream_text);
    let litestream = match read {
        Some(Ok((listed, text))) => {
            if previous.is_some_and(|p| p.copy.is_some()) {
                tracing::info!(path = %litestream_path.as_deref().unwrap_or(Path::new("")).display(), "Litestream's config is read whole again");
            }
            Ok(Some(ReadWhole {
                listed,
                text: text.into(),
                copy: None,
            }))
        }
        Some(Err(e)) => Err((e, previous.map(ReadWhole::kept).transpose())),
        None => Ok(None),
    };
    match litestream {
        Ok(whole) => (
            whole,
            litestream_path.as_ref().map(|_| Ok(())),
            litestream_path,
        ),
        Err((e, Ok(Some(kept)))) => {
            let copy = kept.copy.as_deref().map(|c| c.to_path_buf());
            tracing::error!(error = %e, drills_restore_with = %copy.as_deref().unwrap_or(Path::new("")).display(), "cannot use Litestream's config; replication is measured, and restores drilled, by the one read last");
            (Some(kept), Some(Err(e)), copy)
        }
        Err((e, kept)) => {
            if let Err(io) = kept {
                tracing::error!(error = %io, "cannot keep a copy of the Litestream config read last for the drills");
            }
            tracing::error!(error = %e, "cannot use Litestream's config; replication is not measured and restores not drilled");
            (None, Some(Err(e)), None)
        }
    }
}

fn settings(opts: &RunOptions, l: &Loaded, bound: SocketAddr) -> Settings {
    let alertmanager = l.cfg.alertmanager.as_ref().map(|am| {
        let instance = am
            .instance
            .clone()
            .unwrap_or_else(|| format!("{}:{}", host_name(), bound.port()));
        NotifierSettings {
            urls: am.urls.clone(),
            resend_interval: am.resend_interval,
            timeout: am.timeout,
            external_url: am
                .external_url
                .clone()
                .unwrap_or_else(|| format!("http://{instance}")),
            instance,
            job: am.job.clone(),
            labels: am.labels.clone(),
        }
    });
    let notify = l.cfg.notify.clone().unwrap_or_default();
    let webhooks: Vec<Webhook> = notify
        .webhooks
        .iter()
        .enumerate()
        .map(|(i, w)| Webhook::from_config(notify.webhook_name(i), w))
        .collect();
    let heartbeat = notify.heartbeat.as_ref().map(|h| HeartbeatSettings {
        url: h.url.clone(),
        interval: h.interval,
        timeout: h.timeout,
    });
    Settings {
        thresholds: l.thresholds.clone(),
        poll_interval: opts.poll_interval.unwrap_or(l.cfg.poll_interval),
        lock_sample_interval: l.cfg.lock_sample_interval,
        telemetry_path: l.telemetry_path.clone(),
        runbook_base_url: l.cfg.runbook_base_url.clone(),
        alertmanager,
        litestream_pace: l.cfg.litestream.as_ref().map_or(
            crate::litestream::watcher::Pace {
                every: config::defaults::LITESTREAM_INTERVAL,
                idle: config::defaults::LITESTREAM_IDLE_INTERVAL,
            },
            |l| crate::litestream::watcher::Pace {
                every: l.interval,
                idle: l.idle_interval.max(l.interval),
            },
        ),
        litestream_config: l.litestream_config.clone(),
        security: l.security.clone(),
        replicators: l.replicators.clone(),
        state_file: l.cfg.state_file.clone(),
        discover_interval: l.cfg.discover_interval,
        history_databases: l.cfg.history.databases,
        webhooks,
        heartbeat,
        instance: format!("{}:{}", host_name(), bound.port()),
        litestream_config_path: l.litestream_path.clone(),
    }
}

/// Runs the daemon. On SIGHUP the new config is validated first, and a bad one is logged and
/// ignored, so a typo never takes monitoring down. The HTTP server (and its socket) runs
/// through reloads: a reload replaces what it serves.
pub async fn run(opts: RunOptions) -> anyhow::Result<()> {
    let mut loaded = load(&opts, None)?;
    plan_descriptors(loaded.found.len());
    let listener = tokio::net::TcpListener::bind(loaded.addr)
        .await
        .with_context(|| format!("cannot listen on {}", loaded.addr))?;
    let bound = listener.local_addr()?;
    if let Some(path) = &opts.address_file {
        write_address(path, bound)
            .with_context(|| format!("cannot write the address to {}", path.display()))?;
    }
    let store = Arc::new(Store::default());
    // One HTTP server for the whole process: reloads replace what it serves, not the server.
    let server = daemon::Server::start(listener);
    let mut signals = daemon::Signals::install()?;
    let mut carried = daemon::Carried::default();
    let mut first = true;
    loop {
        let settings = settings(&opts, &loaded, bound);
        if std::mem::take(&mut first) {
            let scheme = if settings.security.tls.is_some() {
                "https"
            } else {
                "http"
            };
            tracing::info!(
                address = %bound,
                databases = loaded.found.len(),
                poll_interval = %humantime::format_duration(settings.poll_interval),
                basic_auth = settings.security.auth.is_some(),
                "listening on {scheme}://{bound}/ (the status page; metrics at {scheme}://{bound}{})",
                settings.telemetry_path
            );
            if let Some(am) = &settings.alertmanager {
                tracing::info!(urls = %am.urls.join(", "), instance = %am.instance, job = %am.job, "pushing alerts to Alertmanager");
            }
            for w in &settings.webhooks {
                tracing::info!(webhook = %w.name, format = ?w.format, "posting alerts to a webhook");
            }
        }
        // A failed reload runs again with the loaded discovery, which walks afresh.
        let first = std::mem::take(&mut loaded.found);
        let (stopped, kept) = daemon::run(
            (
                loaded.discovery.clone(),
                (!first.is_empty()).then_some(first),
            ),
            &settings,
            server.site(),
            store.clone(),
            std::mem::take(&mut carried),
            signals.stopped(),
        )
        .await?;
        carried = kept;
        match stopped {
            Stopped::Terminated => break,
            Stopped::Reload => match load(&opts, loaded.litestream.as_ref()) {
                Ok(new) => {
                    if new.addr != loaded.addr {
                        tracing::warn!(address = %new.addr, "the listen address changes only on restart");
                    }
                    plan_descriptors(new.found.len());
                    loaded = new;
                    carried.reloaded = true;
                }
                Err(e) => {
                    carried.reloaded = false;
                    tracing::error!(error = %format!("{e:#}"), "config not reloaded; keeping the running one")
                }
            },
        }
    }
    server.stop().await.context("the HTTP server failed")?;
    tracing::info!("stopped");
    Ok(())
}

/// Writes `addr` to `path` whole: a reader that sees the file sees the complete address
/// (written beside it, then renamed over it).
fn write_address(path: &std::path::Path, addr: SocketAddr) -> std::io::Result<()> {
    let dir = path
        .parent()
        .filter(|d| !d.as_os_str().is_empty())
        .unwrap_or(std::path::Path::new("."));
    let mut tmp = tempfile::NamedTempFile::new_in(dir)?;
    std::io::Write::write_all(&mut tmp, format!("{addr}\n").as_bytes())?;
    tmp.persist(path).map_err(|e| e.error)?;
    Ok(())
}

/// Shares the open-file limit between watched files and everything else, and says how.
fn plan_descriptors(databases: usize) {
    use crate::probe::descriptors;
    match descriptors::configure() {
        Ok(plan) => {
            let per = descriptors::PER_DATABASE;
            let need = per * databases as u64;
            tracing::info!(
                limit = plan.limit,
                reserve = plan.reserve,
                for_files = plan.for_files,
                http_connections = plan.http_connections(),
                databases,
                "open files: {} databases would keep up to {need} descriptors ({per} per WAL database); {} are theirs{}",
                databases, plan.for_files,
                if need > plan.for_files { ": quiet databases open their files at each poll instead" } else { "" }
            );
            if plan.for_files < per {
                tracing::warn!(
                    limit = plan.limit,
                    "the open-file limit is too low for any database to be watched: raise it to at least {} (LimitNOFILE= in the systemd unit, `ulimit -n`)",
                    per + plan.reserve + plan.in_use
                );
            }
        }
        Err(e) => {
            tracing::warn!(error = %e, "cannot read the open-file limit; descriptors are not budgeted")
        }
    }
}

/// This machine's name, for the `instance` label of pushed alerts.
fn host_name() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|s| s.trim().to_string())
        .ok()
        .filter(|s| !s.is_empty())
        .unwrap_or_else(|| "localhost".into())
}
