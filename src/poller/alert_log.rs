//! One log line when an alert goes pending, fires, resolves or stops pending, naming the alert,
//! the database, the value and the threshold: an operator following the log sees what the pages
//! say.

use crate::rules::{Alert, AlertState, RULES};
use crate::units::{format_against, format_value};
use std::collections::HashMap;

/// The state each alert was last logged in, by (db, alert, severity).
#[derive(Debug, Default)]
pub struct AlertLog {
    told: HashMap<(String, &'static str, &'static str), AlertState>,
}

impl AlertLog {
    /// Logs the alerts whose state changed since the last call, and forgets those gone.
    pub fn tell(&mut self, alerts: &[Alert]) {
        let mut seen = HashMap::with_capacity(alerts.len());
        for a in alerts {
            let key = (a.db.clone(), a.alert, a.severity.as_str());
            if self.told.get(&key) != Some(&a.state) {
                log(a);
            }
            seen.insert(key, a.state);
        }
        // A pending alert whose condition cleared before its `for` leaves the list unresolved.
        for ((db, alert, severity), state) in &self.told {
            if *state == AlertState::Pending && !seen.contains_key(&(db.clone(), *alert, *severity))
            {
                tracing::info!(alert, db = %db, severity, "alert no longer pending: the condition cleared before it fired");
            }
        }
        self.told = seen;
    }
}

fn log(a: &Alert) {
    let unit = RULES.iter().find(|r| r.alert == a.alert).map(|r| r.unit);
    let shown = |v: f64| unit.map_or_else(|| v.to_string(), |u| format_value(u, v));
    let value = unit.map_or_else(
        || a.value.to_string(),
        |u| format_against(u, a.value, a.threshold),
    );
    let threshold = shown(a.threshold);
    let severity = a.severity.as_str();
    // The subject under its own label: `db=app`, or `mountpoint=/var/lib` for the disk.
    macro_rules! log {
        ($subject:ident) => {
            match a.state {
                AlertState::Pending => {
                    tracing::info!(alert = a.alert, $subject = %a.db, severity, value = %value, threshold = %threshold, "alert pending")
                }
                AlertState::Firing => {
                    tracing::warn!(alert = a.alert, $subject = %a.db, severity, value = %value, threshold = %threshold, "alert firing")
                }
                AlertState::Resolved => {
                    tracing::info!(alert = a.alert, $subject = %a.db, severity, last_breach = %value, threshold = %threshold, "alert resolved")
                }
            }
        };
    }
    if crate::rules::catalogue::subject_label(a.alert) == "db" {
        log!(db)
    } else {
        log!(mountpoint)
    }
}
