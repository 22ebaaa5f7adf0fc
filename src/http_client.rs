//! The one HTTP/1 client of the daemon, for its peers on a private network: Alertmanager (POST)
//! and Litestream's metrics endpoint (GET). Every exchange has a deadline, and every error
//! names the URL and keeps its cause.

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::{Request, StatusCode};
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;
use std::time::Duration;

pub type Client = hyper_util::client::legacy::Client<HttpConnector, Full<Bytes>>;

pub fn client() -> Client {
    hyper_util::client::legacy::Client::builder(TokioExecutor::new()).build_http()
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
    let req = builder
        .uri(url)
        .body(Full::new(body))
        .map_err(|source| HttpError::Request {
            url: url.to_string(),
            source,
        })?;
    let (status, answer) = exchange(client, url, req, timeout).await?;
    if status.is_success() {
        Ok(answer)
    } else {
        let text = String::from_utf8_lossy(&answer[..answer.len().min(200)])
            .trim()
            .to_string();
        Err(HttpError::Status {
            url: url.to_string(),
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
