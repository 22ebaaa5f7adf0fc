//! Outputs built from snapshots: Prometheus text (`metrics`), the HTTP server (`http`, secured by
//! `web_config` and `basic_auth`), the Alertmanager push and the Prometheus rules.

pub mod alertmanager;
pub mod basic_auth;
pub mod fleet;
pub mod http;
pub mod metrics;
pub mod prom_rules;
pub mod web_config;
