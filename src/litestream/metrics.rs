//! Litestream's own metrics endpoint (`addr:` in litestream.yml), the fourth source: whether the
//! Litestream process is alive, its sync error count, and its local TXID (v0.5). Parsing is
//! pure; the fetch is a plain HTTP GET on loopback with a timeout.

use crate::http_client::{self, Client, HttpError};
use bytes::Bytes;
use serde::Serialize;
use std::collections::HashMap;
use std::time::Duration;

/// What Litestream's metrics say about one database. They say whether the Litestream process
/// is alive at all, which the replica cannot say: a replica looks the same whether Litestream
/// is dead or merely idle.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct Process {
    /// Whether the endpoint answered and listed this database.
    pub up: bool,
    /// `litestream_txid` (v0.5).
    pub txid: Option<u64>,
    /// `litestream_sync_error_count`.
    pub sync_errors: Option<f64>,
    pub error: Option<String>,
}

/// The value of label `name` in a `{...}` label set, unescaped.
fn label(labels: &str, name: &str) -> Option<String> {
    let mut rest = labels;
    loop {
        let eq = rest.find("=\"")?;
        let key = rest[..eq].trim_start_matches([',', ' ']).trim();
        let mut value = String::new();
        let mut chars = rest[eq + 2..].char_indices();
        let end = loop {
            match chars.next()? {
                (_, '\\') => value.push(chars.next()?.1),
                (i, '"') => break eq + 2 + i + 1,
                (_, c) => value.push(c),
            }
        };
        if key == name {
            return Some(value);
        }
        rest = &rest[end..];
    }
}

/// Reads `litestream_txid` and `litestream_sync_error_count` per `db` label (the database
/// path) from Prometheus text. Pure.
pub fn parse(text: &str) -> HashMap<String, Process> {
    let mut out: HashMap<String, Process> = HashMap::new();
    for line in text.lines().filter(|l| !l.starts_with('#')) {
        let Some((series, value)) = line.rsplit_once(' ') else {
            continue;
        };
        let Some((name, labels)) = series.split_once('{') else {
            continue;
        };
        if name != "litestream_txid" && name != "litestream_sync_error_count" {
            continue;
        }
        let (Some(db), Ok(v)) = (
            label(labels.trim_end_matches('}'), "db"),
            value.parse::<f64>(),
        ) else {
            continue;
        };
        let p = out.entry(db).or_default();
        p.up = true;
        if name == "litestream_txid" {
            p.txid = Some(v as u64);
        } else {
            p.sync_errors = Some(v);
        }
    }
    out
}

/// GETs `url` and returns the body.
pub async fn fetch(client: &Client, url: &str, timeout: Duration) -> Result<String, HttpError> {
    let body =
        http_client::send(client, url, hyper::Request::get(url), Bytes::new(), timeout).await?;
    Ok(String::from_utf8_lossy(&body).into_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_txid_and_sync_errors_per_database() {
        let text = r#"# HELP litestream_txid Current transaction ID
# TYPE litestream_txid gauge
litestream_txid{db="/tmp/lsx/app.db"} 8
litestream_sync_error_count{db="/tmp/lsx/app.db"} 0
litestream_sync_error_count{db="/data/we \"quoted\".db"} 3
litestream_db_size{db="/tmp/lsx/app.db"} 8192
go_goroutines 12
"#;
        let m = parse(text);
        let app = &m["/tmp/lsx/app.db"];
        assert!(app.up);
        assert_eq!((app.txid, app.sync_errors), (Some(8), Some(0.0)));
        assert_eq!(m[r#"/data/we "quoted".db"#].sync_errors, Some(3.0));
        assert_eq!(m.len(), 2);
        assert_eq!(label(r#"a="x",db="/p",c="y""#, "db").as_deref(), Some("/p"));
    }
}
