//! Outputs built from snapshots: Prometheus text (`metrics`) and the HTTP server (`http`).

pub mod alertmanager;
pub mod http;
pub mod metrics;
pub mod prom_rules;
