//! Outputs built from snapshots: Prometheus text (`metrics`), the HTTP server (`http`, secured by
//! `web_config` and `basic_auth`) and its status page (`status_page`, charts by `chart`), the
//! notifications (the Alertmanager push, webhooks and the heartbeat, delivered by `delivery`)
//! and the Prometheus rules.

pub mod alertmanager;
pub mod basic_auth;
pub mod chart;
pub mod delivery;
pub mod exposition;
pub mod fleet;
pub mod heartbeat;
pub mod http;
pub mod metrics;
pub mod prom_rules;
pub mod status_page;
pub mod web_config;
pub mod webhook;
