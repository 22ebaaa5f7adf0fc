//! The status page's Litestream part of a database: each replica's state and lag, its chain,
//! what it holds level by level, and Litestream's local state. Pure.

use super::html::esc;
use crate::litestream::storage::{Level, Storage};
use crate::monitor::{DbSnapshot, ReplicaSnapshot};
use crate::rules::Unit;
use crate::units::{format_value, human_duration};
use std::fmt::Write;

/// The database's replicas, or nothing when Litestream does not replicate it.
pub fn replicas(out: &mut String, s: &DbSnapshot, now: f64) {
    if s.litestream.is_empty() {
        return;
    }
    out.push_str("<h3>Litestream</h3>");
    for r in s.litestream.iter() {
        state_line(out, r);
        if let Some(storage) = &r.storage {
            levels(out, storage, now);
        }
    }
    // The same for each replica: said once.
    if let Some(local) = s.litestream.iter().find_map(|r| r.local_state.as_ref()) {
        let oldest = local
            .oldest_at
            .map_or(String::new(), |t| format!(", the oldest {}", ago(now, t)));
        let overdue = match local.overdue_bytes {
            0 => String::new(),
            b => format!(
                "; {} in {} files kept past their time",
                bytes(b),
                local.overdue_files
            ),
        };
        let class = if local.overdue_bytes > 0 {
            "warning"
        } else {
            "muted"
        };
        let _ = write!(
            out,
            "<p class=\"local {class}\">Local state: {} in {} files{oldest}{overdue}</p>",
            bytes(local.bytes),
            local.files,
        );
    }
}

/// "Replica s3 (s3): up, lag 0.4s; chain whole", coloured by the worst of it.
fn state_line(out: &mut String, r: &ReplicaSnapshot) {
    let broken = r.chain.as_ref().and_then(|c| c.gap());
    let (class, state) = match (r.observed, r.up) {
        (false, _) => ("muted", "not read yet".to_string()),
        (true, false) => (
            "critical",
            format!("down: {}", esc(r.error.as_deref().unwrap_or("unreadable"))),
        ),
        (true, true) => (
            if broken.is_some() { "critical" } else { "ok" },
            format!(
                "up, lag {}",
                r.lag_seconds
                    .map_or("unknown".into(), |l| format_value(Unit::Seconds, l))
            ),
        ),
    };
    let chain = match (&r.chain, broken) {
        (None, _) => String::new(),
        (Some(_), None) => "; chain whole".into(),
        (Some(_), Some(gap)) => format!("; chain broken: {}", esc(gap)),
    };
    let _ = write!(
        out,
        "<p class=\"replica {class}\">Replica {} ({}): {state}{chain}</p>",
        esc(&r.replica),
        esc(&r.kind),
    );
}

/// One row a level: files, bytes, its newest file, and how long the oldest change it lacks
/// has waited against its interval (levels Litestream compacts or snapshots into).
fn levels(out: &mut String, storage: &Storage, now: f64) {
    out.push_str(
        "<div class=\"scroll\"><table class=\"levels\"><tr><th>Level</th><th>Files</th>\
<th>Bytes</th><th>Newest file</th><th>Oldest change waiting for it</th></tr>",
    );
    for l in &storage.levels {
        let newest = l.newest_at.map_or("–".into(), |t| ago(now, t));
        let waited = match (l.lag(), l.interval) {
            (Some(lag), Some(every)) => format!(
                "{} (every {})",
                format_value(Unit::Seconds, lag),
                human_duration(every)
            ),
            _ => "–".into(),
        };
        let _ = write!(
            out,
            "<tr><td>{}</td><td>{}</td><td>{}</td><td>{newest}</td><td>{waited}</td></tr>",
            name(l),
            l.files,
            bytes(l.bytes),
        );
    }
    out.push_str("</table></div>");
    if let Some(t) = storage.oldest_at {
        let _ = write!(
            out,
            "<p class=\"muted\">Retention keeps files back to {}</p>",
            ago(now, t)
        );
    }
}

/// "level 0" … "level 9 (snapshots)" (0.5), or 0.3's `snapshots` and `wal`.
fn name(l: &Level) -> String {
    match l.level.parse::<u32>() {
        Ok(_) if l.is_snapshots() => format!("level {} (snapshots)", l.level),
        Ok(_) => format!("level {}", l.level),
        Err(_) => esc(&l.level),
    }
}

fn bytes(b: u64) -> String {
    format_value(Unit::Bytes, b as f64)
}

fn ago(now: f64, t: f64) -> String {
    format!("{} ago", human_duration((now - t).max(1.0)))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::litestream::chain::Verdict;

    fn level(name: &'static str, files: u64, interval: Option<f64>, waited: Option<f64>) -> Level {
        Level {
            level: name.into(),
            files,
            bytes: files * 1000,
            newest_at: Some(990.0),
            max_txid: Some(7),
            interval,
            waiting_since: None,
            source_newest: None,
            waited,
        }
    }

    #[test]
    fn a_broken_chain_is_critical_and_says_where() {
        let mut r = ReplicaSnapshot {
            replica: "s3".into(),
            kind: "s3".into(),
            observed: true,
            up: true,
            lag_seconds: Some(0.5),
            chain: Some(Verdict::Whole),
            ..Default::default()
        };
        let line = |r: &ReplicaSnapshot| {
            let mut out = String::new();
            state_line(&mut out, r);
            out
        };
        assert_eq!(
            line(&r),
            "<p class=\"replica ok\">Replica s3 (s3): up, lag 0.5s; chain whole</p>"
        );
        r.chain = Some(Verdict::Broken("next file <9-9.ltx>".into()));
        let broken = line(&r);
        assert!(
            broken.starts_with("<p class=\"replica critical\">"),
            "{broken}"
        );
        assert!(
            broken.ends_with("chain broken: next file &lt;9-9.ltx&gt;</p>"),
            "{broken}"
        );
        r.observed = false;
        assert!(line(&r).contains("muted\">Replica s3 (s3): not read yet"));
    }

    #[test]
    fn levels_are_named_and_only_scheduled_ones_say_how_long_a_change_waited() {
        let storage = Storage {
            levels: vec![
                level("0", 3, None, None),
                level("1", 2, Some(30.0), Some(12.0)),
                level("9", 1, Some(86400.0), None),
            ],
            oldest_at: Some(400.0),
        };
        let mut out = String::new();
        levels(&mut out, &storage, 1000.0);
        for row in [
            "<tr><td>level 0</td><td>3</td><td>3 kB</td><td>10 seconds ago</td><td>–</td></tr>",
            "<tr><td>level 1</td><td>2</td><td>2 kB</td><td>10 seconds ago</td><td>12s (every 30 seconds)</td></tr>",
            "<tr><td>level 9 (snapshots)</td><td>1</td>",
            "Retention keeps files back to 10 minutes ago",
        ] {
            assert!(out.contains(row), "{row} in {out}");
        }
    }
}
