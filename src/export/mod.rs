//! Outputs built from snapshots: Prometheus text (`metrics`, from `exposition`, with the fleet
//! series of `fleet`), the HTTP server (`http`, secured by `web_config` and `basic_auth`) and its
//! status page (`status_page`, charts by `chart`), and the Prometheus rules (`prom_rules`).
//! Notifications live in `crate::notify`.

pub mod basic_auth;
pub mod chart;
pub mod exposition;
pub mod fleet;
pub mod http;
pub mod metrics;
pub mod process;
pub mod prom_rules;
pub mod status_page;
pub mod web_config;
