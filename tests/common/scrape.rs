//! HTTP from the tests: GET with a timeout, a parsed scrape, waiting for `/-/ready`.

use super::{wait_for, STEP};
use std::collections::HashMap;
use std::time::Duration;

/// GET over HTTP with a timeout; returns status and body (also for 4xx and 5xx).
pub fn get(url: &str) -> (u16, String) {
    let agent: ureq::Agent = ureq::Agent::config_builder()
        .timeout_global(Some(Duration::from_secs(10)))
        .http_status_as_error(false)
        .build()
        .into();
    let mut resp = agent
        .get(url)
        .call()
        .unwrap_or_else(|e| panic!("GET {url}: {e}"));
    let status = resp.status().as_u16();
    // A fleet's /metrics runs to tens of megabytes (the fleet bench reads 10,000 databases').
    let body = resp
        .body_mut()
        .with_config()
        .limit(1 << 30)
        .read_to_string()
        .unwrap();
    (status, body)
}

/// Samples of a scrape, keyed by `name{labels}` exactly as exposed.
pub struct Metrics {
    pub text: String,
    pub samples: HashMap<String, f64>,
}

impl Metrics {
    pub fn parse(text: &str) -> Self {
        let samples = text
            .lines()
            .filter(|l| !l.starts_with('#') && !l.trim().is_empty())
            .map(|l| {
                let (k, v) = l.rsplit_once(' ').expect("sample line has a value");
                (k.to_string(), v.parse::<f64>().expect("value is a number"))
            })
            .collect();
        Metrics {
            text: text.to_string(),
            samples,
        }
    }

    /// The sample keyed `name{labels}` exactly as exposed.
    pub fn get(&self, key: &str) -> Option<f64> {
        self.samples.get(key).copied()
    }

    /// The sample of `name` for database `db` (its only label).
    pub fn db(&self, name: &str, db: &str) -> Option<f64> {
        self.samples.get(&format!("{name}{{db=\"{db}\"}}")).copied()
    }

    /// The one series of `name` for `db` whatever its other labels (the filesystem's carry
    /// `mountpoint`); `None` when there is none.
    pub fn of_db(&self, name: &str, db: &str) -> Option<f64> {
        let prefix = format!("{name}{{db=\"{db}\"");
        let mut found = self.samples.iter().filter(|(k, _)| k.starts_with(&prefix));
        let (_, v) = found.next()?;
        assert!(found.next().is_none(), "one {name} series for {db}");
        Some(*v)
    }

    /// Metric names present in the scrape.
    pub fn names(&self) -> std::collections::BTreeSet<String> {
        self.samples
            .keys()
            .map(|k| k.split('{').next().unwrap().to_string())
            .collect()
    }
}

/// Waits until `{base}/-/ready` answers 200, as Prometheus and Alertmanager do once started.
pub fn wait_ready(base: &str) {
    let agent: ureq::Agent = ureq::Agent::config_builder()
        .timeout_global(Some(Duration::from_secs(2)))
        .http_status_as_error(false)
        .build()
        .into();
    wait_for(STEP, &format!("{base} ready"), || {
        agent
            .get(format!("{base}/-/ready"))
            .call()
            .is_ok_and(|r| r.status() == 200)
            .then_some(())
    });
}
