//! Why one value of the config cannot be used, each saying what was expected; `ConfigError`
//! adds the file and the field.

#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum InvalidValue {
    #[error("{0:?} is not an address; expected host:port or :port, like :9934 or 127.0.0.1:9934")]
    Address(String),
    #[error("{0:?} cannot be used; expected an absolute path other than /, /healthz and /api/..., like /metrics")]
    TelemetryPath(String),
}
