//! Thresholds to alert states, one truth for `sqlite_alert`, the pushes, `check` and `sqlite-ops
//! rules`: [`catalogue`]: each rule, once; [`thresholds`]: config applied; [`engine`]: states
//! across polls; [`itself`]: alerts about the daemon; [`fleet`]: recording rules across hosts.

pub mod catalogue;
pub mod engine;
pub mod fleet;
pub mod itself;
pub mod thresholds;

pub use catalogue::{Group, RuleDef, Scope, Severity, Unit, RULES};
pub use engine::{Alert, AlertState, Engine};
pub use thresholds::{DbThresholds, Layer, Levels, RuleSetting, ThresholdError, Written};

use crate::monitor::DbSnapshot;

/// One rule read against one snapshot.
#[derive(Debug, Clone)]
pub struct Condition<'a> {
    pub setting: &'a RuleSetting,
    /// `None` when the figure is not measured (the database is down, or not in WAL mode).
    pub value: Option<f64>,
    /// The most severe level breached, with its threshold.
    pub breached: Option<(Severity, f64)>,
}

/// Reads every rule against `snapshot`, ignoring `for` (the engine adds that; `check` is a
/// single look).
pub fn conditions<'a>(snapshot: &DbSnapshot, thresholds: &'a DbThresholds) -> Vec<Condition<'a>> {
    thresholds
        .rules
        .iter()
        .map(|setting| {
            let value = (setting.rule.value)(snapshot);
            let breached = value.and_then(|v| {
                setting
                    .levels()
                    .find(|&(_, t)| setting.rule.op.breached(v, t))
            });
            Condition {
                setting,
                value,
                breached,
            }
        })
        .collect()
}

/// What an alert of `rule` read from `snapshot` is about: the database's name, or the mount
/// point of its filesystem (`None` when that is not known).
pub fn subject(rule: &RuleDef, snapshot: &DbSnapshot) -> Option<String> {
    match rule.scope {
        Scope::Database => Some(snapshot.name.to_string()),
        Scope::Filesystem => snapshot
            .filesystem
            .as_ref()
            .map(|fs| fs.mount_point.display().to_string()),
    }
}

/// The summary and description of a breach, with the values filled in.
pub fn render_text(
    setting: &RuleSetting,
    snapshot: &DbSnapshot,
    value: f64,
    threshold: f64,
) -> (String, String) {
    let rule = setting.rule;
    let holder = snapshot.wal.as_ref().map_or("none", |w| w.pinned_holder());
    // How long the pinning reader's snapshot has been pinned (the oldest's when it is not
    // known which reader pins).
    let reader_open = snapshot.wal.as_ref().and_then(|w| {
        let slot = w.pinned_by.as_ref().map(|p| p.slot);
        w.reader_slots
            .iter()
            .find(|r| Some(r.slot) == slot)
            .map(|r| r.pinning_seconds)
            .or(w.oldest_snapshot_age_seconds)
    });
    // Where the first broken replica's chain breaks, as the listing showed it.
    let gap = snapshot
        .litestream
        .iter()
        .find_map(|r| r.chain.as_ref().and_then(|c| c.gap()))
        .map_or("a file of its chain is missing".to_string(), |g| {
            g.trim_start_matches("LTX files are missing: ").to_string()
        });
    let fill = |template: &str| {
        template
            .replace("{db}", &snapshot.name)
            .replace(
                "{mountpoint}",
                &subject(rule, snapshot).unwrap_or_else(|| "?".into()),
            )
            .replace("{holder}", holder)
            .replace("{gap}", &gap)
            .replace(
                "{level}",
                &catalogue::stalled_level(snapshot).unwrap_or_else(|| "a compacted level".into()),
            )
            .replace(
                "{reader_open}",
                &reader_open.map_or("a while".into(), |s| {
                    crate::units::format_value(Unit::Seconds, s)
                }),
            )
            .replace(
                "{value}",
                &crate::units::format_against(rule.unit, value, threshold),
            )
            .replace(
                "{threshold}",
                &crate::units::format_value(rule.unit, threshold),
            )
            .replace(
                "{for}",
                &humantime::format_duration(setting.for_).to_string(),
            )
            .replace("WINDOW", &catalogue::window())
    };
    (fill(rule.summary), fill(rule.description))
}
