//! Webhooks: a POST to each configured URL when an alert fires and when it resolves, as JSON
//! (the fields of `/api/v1/alerts`), or as a Slack or Discord message.

use super::config::{WebhookConfig, WebhookFormat};
use super::delivery::{self, Channel, Destination, Post};
use crate::poller::Store;
use crate::rules::{Alert, AlertState, Severity};
use bytes::Bytes;
use hyper::header::{HeaderName, HeaderValue, CONTENT_TYPE};
use hyper::Request;
use std::future::Future;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

/// The longest wait between two tries of a failing webhook.
const MAX_BACKOFF: Duration = Duration::from_secs(300);
/// Discord refuses a message over 2,000 characters.
const DISCORD_LIMIT: usize = 2000;

/// One webhook, ready to use.
#[derive(Debug, Clone)]
pub struct Webhook {
    /// How it is shown: never its URL, which is a secret.
    pub name: String,
    pub url: String,
    pub format: WebhookFormat,
    pub headers: Vec<(HeaderName, HeaderValue)>,
    pub timeout: Duration,
}

impl Webhook {
    /// From validated config (a header that does not parse was refused by validation).
    pub fn from_config(name: String, c: &WebhookConfig) -> Self {
        Webhook {
            name,
            url: c.url.clone(),
            format: c.format,
            headers: c
                .headers
                .iter()
                .filter_map(|(k, v)| {
                    Some((
                        HeaderName::from_bytes(k.as_bytes()).ok()?,
                        HeaderValue::from_str(v).ok()?,
                    ))
                })
                .collect(),
            timeout: c.timeout,
        }
    }

    /// What identifies its delivery state across reloads: a webhook whose URL, format and
    /// name stay keeps what it was told.
    pub fn key(&self) -> (String, String) {
        (
            format!("{:?} {} {}", self.format, self.name, self.url),
            self.name.clone(),
        )
    }
}

/// The request body for `batch` in `format`. Pure.
pub fn body(format: WebhookFormat, batch: &[&Alert], instance: &str) -> Bytes {
    let json = match format {
        WebhookFormat::Json => serde_json::json!({
            "source": "sqlite-ops",
            "instance": instance,
            "alerts": batch,
        }),
        WebhookFormat::Slack => serde_json::json!({ "text": lines(batch, instance, slack_line) }),
        WebhookFormat::Discord => {
            let mut text = lines(batch, instance, discord_line);
            if text.chars().count() > DISCORD_LIMIT {
                text = text.chars().take(DISCORD_LIMIT - 1).collect::<String>() + "…";
            }
            serde_json::json!({ "content": text })
        }
    };
    Bytes::from(json.to_string())
}

fn lines(batch: &[&Alert], instance: &str, line: fn(&Alert) -> String) -> String {
    let mut out = format!("sqlite-ops on {instance}:");
    for a in batch {
        out.push('\n');
        out.push_str(&line(a));
    }
    out
}

fn headline(a: &Alert) -> (&'static str, &'static str) {
    match (a.state, a.severity) {
        (AlertState::Resolved, _) => ("RESOLVED", "✅"),
        (_, Severity::Critical) => ("FIRING", "🚨"),
        (_, Severity::Warning) => ("FIRING", "⚠️"),
        (_, Severity::Info) => ("FIRING", "ℹ️"),
    }
}

/// What a line says of the alert: its summary while it fires, what it was once resolved (the
/// summary is the last breach's, which read alone says the problem goes on).
fn said(a: &Alert) -> String {
    match a.state {
        AlertState::Resolved => format!("resolved; it was: {}", a.summary),
        _ => a.summary.clone(),
    }
}

/// Slack's mrkdwn: `&`, `<` and `>` are escaped, links are `<url|text>`.
fn slack_line(a: &Alert) -> String {
    let esc = |s: &str| {
        s.replace('&', "&amp;")
            .replace('<', "&lt;")
            .replace('>', "&gt;")
    };
    let (state, mark) = headline(a);
    format!(
        "{mark} *{state}* {} {} on `{}`: {} (<{}|runbook>)",
        a.severity.as_str(),
        a.alert,
        esc(&a.db),
        esc(&said(a)),
        a.runbook_url
    )
}

/// Discord's markdown: links are `[text](<url>)` (the angle brackets stop the preview).
fn discord_line(a: &Alert) -> String {
    let (state, mark) = headline(a);
    format!(
        "{mark} **{state}** {} {} on `{}`: {} ([runbook](<{}>))",
        a.severity.as_str(),
        a.alert,
        a.db.replace('`', "'"),
        said(a),
        a.runbook_url
    )
}

/// A webhook as a [`Destination`].
struct Hook {
    webhook: Webhook,
    instance: String,
}

impl Destination for Hook {
    fn resend(&self) -> Option<Duration> {
        None
    }
    fn max_batch(&self) -> usize {
        match self.webhook.format {
            WebhookFormat::Json => 64,
            WebhookFormat::Slack => 20,
            WebhookFormat::Discord => 5,
        }
    }
    fn timeout(&self) -> Duration {
        self.webhook.timeout
    }
    fn max_backoff(&self) -> Duration {
        MAX_BACKOFF
    }
    fn kind(&self) -> &'static str {
        "webhook"
    }
    fn post(&self, batch: &[&Alert], _now: SystemTime) -> Post {
        let mut builder = Request::post(&self.webhook.url).header(CONTENT_TYPE, "application/json");
        for (k, v) in &self.webhook.headers {
            builder = builder.header(k, v);
        }
        Post {
            url: self.webhook.url.clone(),
            builder,
            body: body(self.webhook.format, batch, &self.instance),
        }
    }
}

/// Each webhook has its own task and delivery state ([`super::delivery`]): told once per firing
/// and once per resolution, retried with backoff while it fails, never blocking the poller or
/// another webhook.
///
/// Delivers alerts to every webhook (`channels` in the same order) until `shutdown` completes.
pub async fn run(
    webhooks: Vec<Webhook>,
    instance: String,
    store: Arc<Store>,
    channels: Vec<Arc<Channel>>,
    shutdown: impl Future<Output = ()>,
) {
    let destinations = webhooks
        .into_iter()
        .zip(channels)
        .map(|(webhook, channel)| {
            let hook: Arc<dyn Destination> = Arc::new(Hook {
                webhook,
                instance: instance.clone(),
            });
            (hook, channel)
        })
        .collect();
    delivery::run(destinations, store, shutdown).await
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::notify::delivery::tests::alert;

    #[test]
    fn json_carries_the_alerts_as_the_api_serves_them() {
        let (f, r) = (alert(AlertState::Firing), alert(AlertState::Resolved));
        let b = body(WebhookFormat::Json, &[&f, &r], "host:9934");
        let v: serde_json::Value = serde_json::from_slice(&b).unwrap();
        assert_eq!(v["instance"], "host:9934");
        let api = serde_json::to_value(&f).unwrap();
        assert_eq!(v["alerts"][0], api, "the fields of /api/v1/alerts");
        assert_eq!(v["alerts"][1]["state"], "resolved");
    }

    #[test]
    fn slack_and_discord_get_one_line_each_with_the_runbook() {
        let mut f = alert(AlertState::Firing);
        f.summary = "a <b> & c".into();
        let b = body(WebhookFormat::Slack, &[&f], "h");
        let v: serde_json::Value = serde_json::from_slice(&b).unwrap();
        assert_eq!(
            v["text"],
            "sqlite-ops on h:\n⚠️ *FIRING* warning SQLiteDatabaseLarge on `app`: a &lt;b&gt; &amp; c (<https://x/runbooks.md#sqlitedatabaselarge|runbook>)"
        );
        let r = alert(AlertState::Resolved);
        let b = body(WebhookFormat::Discord, &[&r], "h");
        let v: serde_json::Value = serde_json::from_slice(&b).unwrap();
        assert_eq!(
            v["content"],
            "sqlite-ops on h:\n✅ **RESOLVED** warning SQLiteDatabaseLarge on `app`: resolved; it was: s ([runbook](<https://x/runbooks.md#sqlitedatabaselarge>))"
        );
    }

    #[test]
    fn discord_messages_stay_under_its_limit() {
        let mut f = alert(AlertState::Firing);
        f.summary = "x".repeat(3000);
        let b = body(WebhookFormat::Discord, &[&f], "h");
        let v: serde_json::Value = serde_json::from_slice(&b).unwrap();
        assert_eq!(
            v["content"].as_str().unwrap().chars().count(),
            DISCORD_LIMIT
        );
    }
}
