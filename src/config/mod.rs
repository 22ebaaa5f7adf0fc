//! The YAML configuration as written: its shape and defaults (checked and resolved in `resolve`).
//! Errors name the file, the field and what was expected; unknown fields are rejected.

use crate::monitor::Declared;
use serde::Deserialize;
use std::fmt;
use std::path::{Path, PathBuf};
use std::time::Duration;

mod invalid;
mod resolve;
mod thresholds;
pub use crate::drill::config::DrillConfig;
pub use crate::notify::config::{
    AlertmanagerConfig, HeartbeatConfig, NotifyConfig, WebhookConfig, WebhookFormat,
};
pub use invalid::InvalidValue;
pub use resolve::{
    load_litestream, load_litestream_text, parse_listen_address, validate_telemetry_path,
};
pub use thresholds::{LevelsConfig, ThresholdsConfig};

/// Shortest poll interval accepted.
const MIN_POLL_INTERVAL: Duration = Duration::from_millis(10);

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// How often every database is polled.
    #[serde(default = "default_poll_interval", with = "humantime_serde")]
    pub poll_interval: Duration,
    /// How often the write lock of a busy database is sampled between polls (idle databases
    /// are sampled once per poll).
    #[serde(default = "default_lock_sample_interval", with = "humantime_serde")]
    pub lock_sample_interval: Duration,
    #[serde(default)]
    pub web: WebConfig,
    #[serde(default)]
    pub databases: Vec<DatabaseConfig>,
    /// Overrides of the default thresholds, for every database (see `sqlite-ops rules`).
    #[serde(default)]
    pub thresholds: ThresholdsConfig,
    /// The groups of per-database series exported (see `monitor::groups`), for every
    /// database: `all` when absent.
    pub metrics: Option<Vec<String>>,
    /// Declared facts behind two migration signals, for every database.
    #[serde(default)]
    pub team: Declared,
    /// Where alerts are pushed; none when absent.
    pub alertmanager: Option<AlertmanagerConfig>,
    /// Litestream integration: where its config is, how often replicas are read.
    pub litestream: Option<LitestreamConfig>,
    /// The runbook document; each alert links to the section named after it.
    #[serde(default = "default_runbook_base_url")]
    pub runbook_base_url: String,
    /// Processes other than Litestream that take the database's locks for their own purposes
    /// (a backup job, another replication agent): their writes and read transactions are
    /// theirs, not the application's.
    #[serde(default)]
    pub replicators: Vec<ReplicatorConfig>,
    /// The application's `PRAGMA wal_autocheckpoint` (pages), for every database: a checkpoint
    /// is due once more frames than this wait.
    #[serde(default = "default_wal_autocheckpoint")]
    pub wal_autocheckpoint: u32,
    /// Where pending and firing alerts are kept across restarts, so that a restart neither
    /// resolves a true alert in Alertmanager nor restarts its `for` (see `state`). None: alerts
    /// start afresh after a restart.
    pub state_file: Option<PathBuf>,
    /// How often `glob:` entries are walked again (SIGHUP walks them at once too).
    #[serde(default = "default_discover_interval", with = "humantime_serde")]
    pub discover_interval: Duration,
    /// How long a glob match that is gone stays, down, before its series are dropped.
    #[serde(default = "default_discover_grace", with = "humantime_serde")]
    pub discover_grace: Duration,
    /// The history kept in memory for the status page and `/api/v1/history`.
    #[serde(default)]
    pub history: HistoryConfig,
    /// Webhooks and a heartbeat, for those without Alertmanager.
    pub notify: Option<NotifyConfig>,
    /// Restore drills of the replicated databases (off unless an interval is set).
    pub restore_drill: Option<DrillConfig>,
}

/// `history:`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HistoryConfig {
    /// How many databases keep a history (the first ones, in the order they are listed and
    /// found); 0 keeps none. Each costs a fixed 17.1 KiB, 2.7 KiB more per replica (see `history`).
    #[serde(default = "default_history_databases")]
    pub databases: usize,
}

impl Default for HistoryConfig {
    fn default() -> Self {
        HistoryConfig {
            databases: default_history_databases(),
        }
    }
}

fn default_history_databases() -> usize {
    crate::history::DEFAULT_DATABASES
}

/// One `replicators:` entry.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ReplicatorConfig {
    /// Shown as the process's replicator name in status and `check`.
    pub name: String,
    /// A regular expression matched against the process's command line (arguments joined by
    /// spaces).
    pub command: String,
}

/// Litestream integration settings.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LitestreamConfig {
    /// Litestream's own config (litestream.yml): the databases it replicates and where.
    pub config: Option<PathBuf>,
    /// How often local state and each replica are read (S3: one LIST and one ranged GET).
    #[serde(default = "default_litestream_interval", with = "humantime_serde")]
    pub interval: Duration,
    /// How often a replica is read when nothing new can be in it: it held everything Litestream
    /// had locally at the last read, and Litestream's local position has not moved since (an
    /// idle database, or a stopped Litestream). Compaction, retention and damage show then.
    #[serde(default = "default_litestream_idle_interval", with = "humantime_serde")]
    pub idle_interval: Duration,
}

fn default_litestream_idle_interval() -> Duration {
    defaults::LITESTREAM_IDLE_INTERVAL
}

fn default_litestream_interval() -> Duration {
    defaults::LITESTREAM_INTERVAL
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WebConfig {
    /// `host:port`, or `:port` for every interface.
    #[serde(default = "default_listen_address")]
    pub listen_address: String,
    #[serde(default = "default_telemetry_path")]
    pub telemetry_path: String,
    /// TLS and basic auth, in exporter-toolkit's web config format (`--web.config.file`).
    pub config_file: Option<PathBuf>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DatabaseConfig {
    /// One database file. Exactly one of `path` and `glob` is given.
    pub path: Option<PathBuf>,
    /// Every SQLite file matching this pattern (`*`, `?`, `**` for any depth of folders), now
    /// and later: walked again every `discover_interval`. A match's `db` label is its path
    /// below the pattern's fixed folder, without the extension.
    pub glob: Option<String>,
    /// The `db` label of a `path:` entry; defaults to the file name without its extension.
    pub name: Option<String>,
    /// Threshold overrides for this database only.
    #[serde(default)]
    pub thresholds: ThresholdsConfig,
    /// The groups of series exported for this database (or each match), overriding the
    /// global `metrics:`.
    pub metrics: Option<Vec<String>>,
    /// Declared facts for this database, overriding the global `team:` field by field.
    pub team: Option<Declared>,
    /// The application's `PRAGMA wal_autocheckpoint` for this database, overriding the global.
    pub wal_autocheckpoint: Option<u32>,
    /// Restore drills of this database (or each match), overriding the global field by field.
    pub restore_drill: Option<DrillConfig>,
}

/// The defaults of the daemon's timing, in one place: the config file, `run` and `demo` take
/// them from here.
pub mod defaults {
    use std::time::Duration;
    /// How often every database is polled.
    pub const POLL_INTERVAL: Duration = Duration::from_secs(1);
    /// How often a busy database's write lock is sampled between polls.
    pub const LOCK_SAMPLE_INTERVAL: Duration = Duration::from_millis(10);
    /// How often Litestream's local state and replicas are read.
    pub const LITESTREAM_INTERVAL: Duration = Duration::from_secs(1);
    pub const LITESTREAM_IDLE_INTERVAL: Duration = Duration::from_secs(60);
    /// How often `glob:` entries are walked again for new and removed databases.
    pub const DISCOVER_INTERVAL: Duration = Duration::from_secs(10);
    /// How long a glob match that is gone stays (down) before it is forgotten: shorter than
    /// SQLiteDatabaseDown's `for` (1 m), so that deleting a tenant does not page.
    pub const DISCOVER_GRACE: Duration = Duration::from_secs(30);
}

fn default_wal_autocheckpoint() -> u32 {
    crate::monitor::DEFAULT_AUTOCHECKPOINT
}
fn default_discover_interval() -> Duration {
    defaults::DISCOVER_INTERVAL
}
fn default_discover_grace() -> Duration {
    defaults::DISCOVER_GRACE
}
fn default_poll_interval() -> Duration {
    defaults::POLL_INTERVAL
}
fn default_lock_sample_interval() -> Duration {
    defaults::LOCK_SAMPLE_INTERVAL
}
pub fn default_listen_address() -> String {
    ":9934".into()
}
pub fn default_telemetry_path() -> String {
    "/metrics".into()
}
pub fn default_runbook_base_url() -> String {
    "https://github.com/sqlite-ops/sqlite-ops/blob/main/docs/runbooks.md".into()
}

impl Default for WebConfig {
    fn default() -> Self {
        WebConfig {
            listen_address: default_listen_address(),
            telemetry_path: default_telemetry_path(),
            config_file: None,
        }
    }
}

impl Default for Config {
    fn default() -> Self {
        Config {
            poll_interval: default_poll_interval(),
            lock_sample_interval: default_lock_sample_interval(),
            web: WebConfig::default(),
            databases: Vec::new(),
            thresholds: ThresholdsConfig::new(),
            metrics: None,
            team: Declared::default(),
            alertmanager: None,
            litestream: None,
            runbook_base_url: default_runbook_base_url(),
            replicators: Vec::new(),
            wal_autocheckpoint: default_wal_autocheckpoint(),
            state_file: None,
            discover_interval: default_discover_interval(),
            discover_grace: default_discover_grace(),
            history: HistoryConfig::default(),
            notify: None,
            restore_drill: None,
        }
    }
}

/// A configuration problem: where, which field, what was expected.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigError {
    /// The file (or `command line`).
    pub source: String,
    /// The field, as a path like `databases[1].name`; empty when the file itself is the problem.
    pub field: String,
    pub message: String,
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.field.is_empty() {
            write!(f, "{}: {}", self.source, self.message)
        } else {
            write!(f, "{}: {}: {}", self.source, self.field, self.message)
        }
    }
}

impl std::error::Error for ConfigError {}

pub(crate) fn error(source: &str, field: impl Into<String>, message: impl ToString) -> ConfigError {
    ConfigError {
        source: source.to_string(),
        field: field.into(),
        message: message.to_string(),
    }
}

/// Parses YAML text into `T` (its default when the text is empty); errors name the field.
pub(crate) fn parse_yaml<T: serde::de::DeserializeOwned + Default>(
    text: &str,
    source: &str,
) -> Result<T, ConfigError> {
    if text.trim().is_empty() {
        return Ok(T::default());
    }
    serde_yaml::from_str(text).map_err(|e| {
        // serde_yaml leads with the field path ("databases[0]: unknown field ..."), and ends
        // with the line and column.
        let msg = e.to_string();
        match msg.split_once(": ") {
            Some((field, rest)) if !field.contains(' ') => error(source, field, rest),
            _ => error(source, "", msg),
        }
    })
}

impl Config {
    /// Reads and validates a config file.
    pub fn load(path: &Path) -> Result<Config, ConfigError> {
        let source = path.display().to_string();
        let text = std::fs::read_to_string(path)
            .map_err(|e| error(&source, "", format!("cannot read the config file: {e}")))?;
        Config::parse(&text, &source)
    }

    /// Parses and validates config text; `source` names it in errors.
    pub fn parse(text: &str, source: &str) -> Result<Config, ConfigError> {
        let config: Config = parse_yaml(text, source)?;
        config.validate(source)?;
        Ok(config)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_and_durations() {
        let c = Config::parse(
            "poll_interval: 250ms\ndatabases:\n  - path: /data/app.db\n",
            "c.yaml",
        )
        .unwrap();
        assert_eq!(c.poll_interval, Duration::from_millis(250));
        assert_eq!(c.web.listen_address, ":9934");
        assert_eq!(c.web.telemetry_path, "/metrics");
        let t = c
            .targets(&[PathBuf::from("/x/other.sqlite")], "c.yaml")
            .unwrap();
        assert_eq!(t[0].name, "app");
        assert_eq!(t[1].name, "other");
        assert_eq!(Config::parse("", "empty.yaml").unwrap().databases.len(), 0);
        // The file's database named again on the command line is the file's entry.
        let t = c
            .targets(&[PathBuf::from("/data/app.db")], "c.yaml")
            .unwrap();
        assert_eq!(t.len(), 1);
        assert_eq!(t[0].name, "app");
    }

    /// A fleet listed database by database holds the file's thresholds once, shared by those
    /// without their own; one with its own gets them over the file's.
    #[test]
    fn databases_without_thresholds_of_their_own_share_the_file_s() {
        let c = Config::parse(
            "thresholds:\n  wal_size: {warning: 1GB}\ndatabases:\n  - path: /a.db\n  - path: /b.db\n  - path: /c.db\n    thresholds:\n      wal_size: {warning: 2GB}\n",
            "c.yaml",
        )
        .unwrap();
        let t = c.targets(&[], "c.yaml").unwrap();
        let wal = |i: usize| {
            let r = t[i].thresholds.rules.iter();
            r.clone()
                .find(|r| r.rule.key == "wal_size")
                .unwrap()
                .warning
        };
        assert!(std::sync::Arc::ptr_eq(
            &t[0].thresholds.rules,
            &t[1].thresholds.rules
        ));
        assert_eq!((wal(0), wal(1), wal(2)), (Some(1e9), Some(1e9), Some(2e9)));
    }

    #[test]
    fn errors_name_file_field_and_expectation() {
        let e =
            Config::parse("databases:\n  - path: /a.db\n    nme: x\n", "/etc/s.yaml").unwrap_err();
        assert_eq!(e.source, "/etc/s.yaml");
        assert_eq!(e.field, "databases[0]");
        assert!(
            e.message.contains("unknown field `nme`") && e.message.contains("expected"),
            "{e}"
        );
        let e = Config::parse("poll_interval: soon\n", "c.yaml").unwrap_err();
        assert_eq!(e.field, "poll_interval");
        let e = Config::parse("poll_interval: 1ms\n", "c.yaml").unwrap_err();
        assert!(
            e.to_string()
                .starts_with("c.yaml: poll_interval: 1ms is too short"),
            "{e}"
        );
        let e = Config::parse("web: {listen_address: 'nope'}\n", "c.yaml").unwrap_err();
        assert_eq!(e.field, "web.listen_address");
        let e = Config::parse("web: {telemetry_path: 'metrics'}\n", "c.yaml").unwrap_err();
        assert_eq!(e.field, "web.telemetry_path");
        let e = Config::parse(
            "databases: [{path: /a/app.db}, {path: /b/app.db}]\n",
            "c.yaml",
        )
        .unwrap_err();
        assert_eq!(e.field, "databases[1].name");
        assert!(e.message.contains("unique"), "{e}");
    }

    #[test]
    fn listen_addresses() {
        assert_eq!(
            parse_listen_address(":9934").unwrap(),
            "0.0.0.0:9934".parse().unwrap()
        );
        assert_eq!(parse_listen_address("127.0.0.1:0").unwrap().port(), 0);
        assert!(parse_listen_address("9934").is_err());
    }
}

/// `notify:` read from a file, its errors named with the file.
#[cfg(test)]
mod notify_tests {
    use crate::config::Config;

    fn err(yaml: &str) -> String {
        Config::parse(yaml, "c.yml").unwrap_err().to_string()
    }

    #[test]
    fn the_issue_s_example_parses_with_its_defaults() {
        let c = Config::parse(
            "notify:\n  webhooks: [{url: https://hooks.example/x, format: slack}]\n  heartbeat: {url: https://hc-ping.example/uuid, interval: 1m}\n",
            "c.yml",
        )
        .unwrap();
        let n = c.notify.unwrap();
        assert_eq!(
            n.webhooks[0].format,
            crate::notify::config::WebhookFormat::Slack
        );
        assert_eq!(n.webhook_name(0), "webhooks[0]");
        assert_eq!(n.heartbeat.unwrap().interval.as_secs(), 60);
    }

    #[test]
    fn bad_alertmanager_settings_name_the_field() {
        assert_eq!(
            err("alertmanager: {urls: []}\n"),
            "c.yml: alertmanager.urls: is empty; expected at least one URL like http://127.0.0.1:9093"
        );
        assert!(err("alertmanager: {urls: [http://am:9093, 'ftp://x']}\n")
            .starts_with("c.yml: alertmanager.urls[1]: \"ftp://x\" is not an http or https URL"));
        assert!(
            err("alertmanager: {urls: [http://am:9093], external_url: am.example}\n")
                .contains("alertmanager.external_url: \"am.example\" is not a URL")
        );
        assert_eq!(
            err("alertmanager: {urls: [http://am:9093], resend_interval: 10ms}\n"),
            "c.yml: alertmanager.resend_interval: is too short; expected a duration of at least 1s, like 1m"
        );
    }

    #[test]
    fn bad_entries_name_the_field_and_what_was_expected() {
        assert_eq!(
            err("notify:\n  webhooks: [{url: ftp://x/y}]\n"),
            "c.yml: notify.webhooks[0].url: \"ftp://x/y\" is not an http or https URL with a host; expected https://host/path"
        );
        assert!(
            err("notify:\n  webhooks: [{url: http://x, format: teams}]\n")
                .contains("unknown variant `teams`, expected one of `json`, `slack`, `discord`")
        );
        assert!(
            err("notify:\n  webhooks: [{url: http://x, headers: {\"a b\": c}}]\n")
                .contains("notify.webhooks[0].headers: \"a b\" is not a header name")
        );
        assert!(
            err("notify:\n  webhooks: [{url: http://x, name: a}, {url: http://y, name: a}]\n")
                .contains("notify.webhooks[1].name: \"a\" names two webhooks")
        );
        assert_eq!(
            err("notify:\n  heartbeat: {url: http://x, interval: 10ms}\n"),
            "c.yml: notify.heartbeat.interval: 10ms is too short; expected at least 1s, like 1m"
        );
        assert!(err("notify:\n  heartbeat: {url: http://x, every: 1m}\n")
            .contains("unknown field `every`"));
    }
}

/// `restore_drill:` read from a file, its errors named with the file.
#[cfg(test)]
mod drill_tests {
    use crate::config::Config;

    #[test]
    fn off_unless_an_interval_is_set_and_per_database_over_global() {
        let c = Config::parse("databases: [{path: /a.db}]\n", "c.yml").unwrap();
        assert_eq!(c.targets(&[], "c.yml").unwrap()[0].restore_drill, None);
        let c = Config::parse(
            "restore_drill: {interval: 24h, scratch_dir: /scratch}\n\
             databases: [{path: /a.db}, {path: /b.db, restore_drill: {interval: 1h, timeout: 5m}}]\n",
            "c.yml",
        )
        .unwrap();
        let t = c.targets(&[], "c.yml").unwrap();
        let (a, b) = (
            t[0].restore_drill.clone().unwrap(),
            t[1].restore_drill.clone().unwrap(),
        );
        assert_eq!((a.interval.as_secs(), a.timeout.as_secs()), (86_400, 3600));
        assert_eq!(a.litestream.to_str(), Some("litestream"));
        assert_eq!((b.interval.as_secs(), b.timeout.as_secs()), (3600, 300));
        assert_eq!(
            b.scratch_dir.to_str(),
            Some("/scratch"),
            "the rest from the global"
        );
    }

    #[test]
    fn bad_settings_name_the_field() {
        let err = |y: &str| Config::parse(y, "c.yml").unwrap_err().to_string();
        assert_eq!(
            err("restore_drill: {interval: 10ms}\ndatabases: [{path: /a.db}]\n"),
            "c.yml: restore_drill.interval: is too short; expected at least 1s, like 24h"
        );
        assert!(err(
            "restore_drill: {interval: 1h, scratch_dir: tmp}\ndatabases: [{path: /a.db}]\n"
        )
        .contains("restore_drill.scratch_dir: tmp is not an absolute path"));
        assert!(err("restore_drill: {every: 1h}\n").contains("unknown field `every`"));
    }
}
