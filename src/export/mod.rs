//! Snapshots turned into Prometheus's formats: the text exposition (`metrics`, from what one
//! scrape shows, `exposition`, with the fleet series of `fleet` and the daemon's own `process`
//! series) and the alerting rules (`prom_rules`). Served by `crate::web`.

pub mod exposition;
pub mod fleet;
pub mod metrics;
pub mod process;
pub mod prom_rules;
