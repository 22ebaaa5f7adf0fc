//! Why one value of the config cannot be used, each saying what was expected; `ConfigError`
//! adds the file and the field.

use std::time::Duration;

#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum InvalidValue {
    #[error("{0:?} is not an address; expected host:port or :port, like :9934 or 127.0.0.1:9934")]
    Address(String),
    #[error("{0:?} cannot be used; expected an absolute path other than /, /healthz and /api/..., like /metrics")]
    TelemetryPath(String),
    #[error("{url:?} is not a URL ({reason}); expected https://host/path")]
    Url { url: String, reason: String },
    #[error("{0:?} is not an http or https URL with a host; expected https://host/path")]
    NotHttp(String),
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
}

/// An http(s) URL with a host (an Alertmanager's too; https is verified against the Mozilla
/// roots built in).
pub fn check_url(u: &str) -> Result<(), InvalidValue> {
    let uri: hyper::Uri =
        u.parse()
            .map_err(|e: hyper::http::uri::InvalidUri| InvalidValue::Url {
                url: u.into(),
                reason: e.to_string(),
            })?;
    match (uri.scheme_str(), uri.host()) {
        (Some("http" | "https"), Some(h)) if !h.is_empty() => Ok(()),
        _ => Err(InvalidValue::NotHttp(u.into())),
    }
}

/// `given` is at least `least` (`example` shows a good value).
pub fn at_least(
    given: Duration,
    least: Duration,
    example: &'static str,
) -> Result<(), InvalidValue> {
    match given < least {
        true => Err(InvalidValue::TooShort {
            given,
            least,
            example,
        }),
        false => Ok(()),
    }
}
