//! `notify:`: where alerts go without an Alertmanager (webhooks), and the heartbeat that tells
//! a dead-man's-switch service the daemon is alive and nothing critical fires.

use super::invalid::{at_least, check_url};
use super::{error, ConfigError};
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

impl NotifyConfig {
    pub fn validate(&self, source: &str) -> Result<(), ConfigError> {
        let mut names = std::collections::HashSet::new();
        for (i, w) in self.webhooks.iter().enumerate() {
            let field = |f: &str| format!("notify.webhooks[{i}].{f}");
            check_url(&w.url).map_err(|m| error(source, field("url"), m))?;
            for (name, value) in &w.headers {
                hyper::header::HeaderName::from_bytes(name.as_bytes()).map_err(|_| {
                    error(
                        source,
                        field("headers"),
                        format!("{name:?} is not a header name; expected one like Authorization"),
                    )
                })?;
                hyper::header::HeaderValue::from_str(value).map_err(|_| {
                    error(
                        source,
                        format!("notify.webhooks[{i}].headers.{name}"),
                        "is not a header value (control characters or a line break)",
                    )
                })?;
            }
            at_least(w.timeout, Duration::from_millis(100), "10s")
                .map_err(|m| error(source, field("timeout"), m))?;
            let name = self.webhook_name(i);
            if name.trim().is_empty() {
                return Err(error(
                    source,
                    field("name"),
                    "is empty; expected a name like ops-slack",
                ));
            }
            if !names.insert(name.clone()) {
                return Err(error(
                    source,
                    field("name"),
                    format!("{name:?} names two webhooks; expected a name of its own"),
                ));
            }
        }
        if let Some(h) = &self.heartbeat {
            check_url(&h.url).map_err(|m| error(source, "notify.heartbeat.url", m))?;
            at_least(h.interval, Duration::from_secs(1), "1m")
                .map_err(|m| error(source, "notify.heartbeat.interval", m))?;
            at_least(h.timeout, Duration::from_millis(100), "10s")
                .map_err(|m| error(source, "notify.heartbeat.timeout", m))?;
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

#[cfg(test)]
mod tests {
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
        assert_eq!(n.webhooks[0].format, super::WebhookFormat::Slack);
        assert_eq!(n.webhook_name(0), "webhooks[0]");
        assert_eq!(n.heartbeat.unwrap().interval.as_secs(), 60);
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
