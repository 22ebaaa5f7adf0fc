//! Outputs built from snapshots: Prometheus text (`metrics`) and the HTTP server (`http`).

pub mod http;
pub mod metrics;
