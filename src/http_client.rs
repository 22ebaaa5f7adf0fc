//! The one HTTP/1 client of the daemon: Alertmanager (POST), Litestream's metrics endpoint
//! (GET), webhooks and the heartbeat. Every exchange has a deadline, and every error names the
//! URL, or what stands for it when the URL holds a secret, and keeps its cause.

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::{Request, StatusCode};
use hyper_rustls::HttpsConnector;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;
use std::sync::Arc;
use std::time::Duration;

pub type Client = hyper_util::client::legacy::Client<HttpsConnector<HttpConnector>, Full<Bytes>>;

/// The client: plain HTTP or HTTPS (rustls, with the Mozilla roots built in, so a container
/// with no CA bundle can still reach hooks.slack.com).
pub fn client() -> Client {
    let roots = rustls::RootCertStore::from_iter(webpki_roots::TLS_SERVER_ROOTS.iter().cloned());
    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    let tls = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .expect("the aws-lc-rs provider supports the default TLS versions")
        .with_root_certificates(roots)
        .with_no_client_auth();
    let connector = hyper_rustls::HttpsConnectorBuilder::new()
        .with_tls_config(tls)
        .https_or_http()
        .enable_http1()
        .build();
    hyper_util::client::legacy::Client::builder(TokioExecutor::new()).build(connector)
}

/// Why an exchange with a peer failed.
#[derive(Debug, thiserror::Error)]
pub enum HttpError {
    #[error("bad request for {url}: {source}")]
    Request {
        url: String,
        source: hyper::http::Error,
    },
    #[error("{url}: {source}")]
    Transport {
        url: String,
        source: hyper_util::client::legacy::Error,
    },
    #[error("{url}: reading the answer: {source}")]
    Body { url: String, source: hyper::Error },
    #[error("{url}: no answer within {}", humantime::format_duration(*.timeout))]
    Timeout { url: String, timeout: Duration },
    /// The peer answered with an error status; `text` is the start of its answer.
    #[error("{url}: {status}{}", if .text.is_empty() { String::new() } else { format!(": {}", .text) })]
    Status {
        url: String,
        status: StatusCode,
        text: String,
    },
}

/// Sends a request to `url` (`builder` adds method and headers) and returns the body of a
/// successful answer within `timeout`; an error status is an error with the start of the
/// answer.
pub async fn send(
    client: &Client,
    url: &str,
    builder: hyper::http::request::Builder,
    body: Bytes,
    timeout: Duration,
) -> Result<Bytes, HttpError> {
    send_as(client, (url, url), builder, body, timeout).await
}

/// As [`send`] to `url`, naming it `shown` in errors (a webhook's URL is its password).
pub async fn send_as(
    client: &Client,
    (url, shown): (&str, &str),
    builder: hyper::http::request::Builder,
    body: Bytes,
    timeout: Duration,
) -> Result<Bytes, HttpError> {
    let req = builder
        .uri(url)
        .body(Full::new(body))
        .map_err(|source| HttpError::Request {
            url: shown.to_string(),
            source,
        })?;
    let (status, answer) = exchange(client, shown, req, timeout).await?;
    if status.is_success() {
        Ok(answer)
    } else {
        let text = String::from_utf8_lossy(&answer[..answer.len().min(200)])
            .trim()
            .to_string();
        Err(HttpError::Status {
            url: shown.to_string(),
            status,
            text,
        })
    }
}

/// Sends `req` and reads the whole answer within `timeout`.
async fn exchange(
    client: &Client,
    url: &str,
    req: Request<Full<Bytes>>,
    timeout: Duration,
) -> Result<(StatusCode, Bytes), HttpError> {
    let work = async {
        let resp = client
            .request(req)
            .await
            .map_err(|source| HttpError::Transport {
                url: url.to_string(),
                source,
            })?;
        let status = resp.status();
        let body = resp
            .into_body()
            .collect()
            .await
            .map_err(|source| HttpError::Body {
                url: url.to_string(),
                source,
            })?
            .to_bytes();
        Ok((status, body))
    };
    tokio::time::timeout(timeout, work)
        .await
        .map_err(|_| HttpError::Timeout {
            url: url.to_string(),
            timeout,
        })?
}

/// A URL the client cannot be pointed at.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum UrlError {
    #[error("{url:?} is not a URL ({reason}); expected https://host/path")]
    NotAUrl { url: String, reason: String },
    #[error("{0:?} is not an http or https URL with a host; expected https://host/path")]
    NotHttp(String),
}

/// Whether `u` is an http(s) URL with a host, as the client takes it (https is verified against
/// the Mozilla roots built in): checked when the config is read, not at the first send.
pub fn check_url(u: &str) -> Result<(), UrlError> {
    let uri: hyper::Uri =
        u.parse()
            .map_err(|e: hyper::http::uri::InvalidUri| UrlError::NotAUrl {
                url: u.into(),
                reason: e.to_string(),
            })?;
    match (uri.scheme_str(), uri.host()) {
        (Some("http" | "https"), Some(h)) if !h.is_empty() => Ok(()),
        _ => Err(UrlError::NotHttp(u.into())),
    }
}
