//! `alertmanager:` and `notify:` as configured: where alerts are pushed, the webhooks, and the
//! heartbeat that tells a dead-man's-switch service the daemon is alive; `config` reads the file.

use crate::http_client::{check_url, UrlError};
use serde::Deserialize;
use std::collections::BTreeMap;
use std::time::Duration;

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NotifyConfig {
    /// Each gets a POST when an alert fires and when it resolves.
    #[serde(default)]
    pub webhooks: Vec<WebhookConfig>,
    /// Requested every `interval` while the daemon polls and no critical alert fires.
    pub heartbeat: Option<HeartbeatConfig>,
}

/// The body a webhook receives.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum WebhookFormat {
    /// The alerts as `/api/v1/alerts` serves them.
    #[default]
    Json,
    /// A Slack incoming webhook's `{"text": ...}`.
    Slack,
    /// A Discord webhook's `{"content": ...}`.
    Discord,
}

#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WebhookConfig {
    pub url: String,
    #[serde(default)]
    pub format: WebhookFormat,
    /// Sent with every request (a token: `Authorization: Bearer ...`).
    #[serde(default)]
    pub headers: BTreeMap<String, String>,
    /// How it is named in logs and in the `webhook` label (its URL is a secret, never shown):
    /// `webhooks[N]` when absent.
    pub name: Option<String>,
    #[serde(default = "default_timeout", with = "humantime_serde")]
    pub timeout: Duration,
}

#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HeartbeatConfig {
    pub url: String,
    #[serde(default = "default_heartbeat_interval", with = "humantime_serde")]
    pub interval: Duration,
    #[serde(default = "default_timeout", with = "humantime_serde")]
    pub timeout: Duration,
}

fn default_timeout() -> Duration {
    Duration::from_secs(10)
}

fn default_heartbeat_interval() -> Duration {
    Duration::from_secs(60)
}

/// Alertmanager push settings.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AlertmanagerConfig {
    /// Alertmanager base URLs (`http://host:port`); each gets every alert (an HA pair).
    pub urls: Vec<String>,
    /// How often firing alerts are sent again.
    #[serde(default = "default_resend_interval", with = "humantime_serde")]
    pub resend_interval: Duration,
    /// Time allowed for one POST.
    #[serde(default = "default_alertmanager_timeout", with = "humantime_serde")]
    pub timeout: Duration,
    /// The `instance` label of pushed alerts; defaults to this host's name and the listen port.
    /// Set it to the address Prometheus scrapes this daemon at, so that the alerts Prometheus
    /// evaluates from `sqlite-ops rules` and the pushed ones are the same alerts to Alertmanager.
    pub instance: Option<String>,
    /// The `job` label of pushed alerts, as Prometheus's scrape job names it.
    #[serde(default = "default_job")]
    pub job: String,
    /// More labels on every pushed alert (what Prometheus adds to its own: external labels,
    /// target labels).
    #[serde(default)]
    pub labels: std::collections::BTreeMap<String, String>,
    /// Base of each alert's generatorURL; defaults to `http://<instance>`.
    pub external_url: Option<String>,
}

fn default_job() -> String {
    "sqlite-ops".to_string()
}

fn default_resend_interval() -> Duration {
    Duration::from_secs(60)
}

fn default_alertmanager_timeout() -> Duration {
    Duration::from_secs(10)
}

impl AlertmanagerConfig {
    pub fn validate(&self) -> Result<(), NotifyConfigError> {
        let error = |field: String, problem: Problem| NotifyConfigError { field, problem };
        if self.urls.is_empty() {
            return Err(error("alertmanager.urls".into(), Problem::NoUrl));
        }
        for (i, u) in self.urls.iter().enumerate() {
            check_url(u).map_err(|e| error(format!("alertmanager.urls[{i}]"), e.into()))?;
        }
        if let Some(u) = &self.external_url {
            if !(u.starts_with("http://") || u.starts_with("https://")) {
                return Err(error(
                    "alertmanager.external_url".into(),
                    Problem::ExternalUrl(u.clone()),
                ));
            }
        }
        if self.resend_interval < Duration::from_secs(1) {
            return Err(error(
                "alertmanager.resend_interval".into(),
                Problem::ResendTooShort,
            ));
        }
        Ok(())
    }
}

/// A setting of `notify:` or `alertmanager:` that cannot be used: where, and why.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("{field}: {problem}")]
pub struct NotifyConfigError {
    pub field: String,
    pub problem: Problem,
}

/// Why, each saying what was expected.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum Problem {
    #[error(transparent)]
    Url(#[from] UrlError),
    #[error("{0:?} is not a header name; expected one like Authorization")]
    HeaderName(String),
    #[error("is not a header value (control characters or a line break)")]
    HeaderValue,
    #[error(
        "{} is too short; expected at least {}, like {example}",
        humantime::format_duration(*given),
        humantime::format_duration(*least)
    )]
    TooShort {
        given: Duration,
        least: Duration,
        example: &'static str,
    },
    #[error("is empty; expected a name like ops-slack")]
    EmptyName,
    #[error("is empty; expected at least one URL like http://127.0.0.1:9093")]
    NoUrl,
    #[error("{0:?} is not a URL; expected http://host:port or https://...")]
    ExternalUrl(String),
    #[error("is too short; expected a duration of at least 1s, like 1m")]
    ResendTooShort,
    #[error("{0:?} names two webhooks; expected a name of its own")]
    SameName(String),
}

fn at_least(given: Duration, least: Duration, example: &'static str) -> Result<(), Problem> {
    match given < least {
        true => Err(Problem::TooShort {
            given,
            least,
            example,
        }),
        false => Ok(()),
    }
}

impl NotifyConfig {
    pub fn validate(&self) -> Result<(), NotifyConfigError> {
        let error = |field: String, problem: Problem| NotifyConfigError { field, problem };
        let mut names = std::collections::HashSet::new();
        for (i, w) in self.webhooks.iter().enumerate() {
            let field = |f: &str| format!("notify.webhooks[{i}].{f}");
            check_url(&w.url).map_err(|e| error(field("url"), e.into()))?;
            for (name, value) in &w.headers {
                hyper::header::HeaderName::from_bytes(name.as_bytes())
                    .map_err(|_| error(field("headers"), Problem::HeaderName(name.clone())))?;
                hyper::header::HeaderValue::from_str(value).map_err(|_| {
                    error(
                        format!("notify.webhooks[{i}].headers.{name}"),
                        Problem::HeaderValue,
                    )
                })?;
            }
            at_least(w.timeout, Duration::from_millis(100), "10s")
                .map_err(|p| error(field("timeout"), p))?;
            let name = self.webhook_name(i);
            if name.trim().is_empty() {
                return Err(error(field("name"), Problem::EmptyName));
            }
            if !names.insert(name.clone()) {
                return Err(error(field("name"), Problem::SameName(name)));
            }
        }
        if let Some(h) = &self.heartbeat {
            let at = |f: &str| format!("notify.heartbeat.{f}");
            check_url(&h.url).map_err(|e| error(at("url"), e.into()))?;
            at_least(h.interval, Duration::from_secs(1), "1m")
                .map_err(|p| error(at("interval"), p))?;
            at_least(h.timeout, Duration::from_millis(100), "10s")
                .map_err(|p| error(at("timeout"), p))?;
        }
        Ok(())
    }

    /// The name webhook `i` is shown by.
    pub fn webhook_name(&self, i: usize) -> String {
        self.webhooks[i]
            .name
            .clone()
            .unwrap_or_else(|| format!("webhooks[{i}]"))
    }
}
