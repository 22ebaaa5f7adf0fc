//! `check --restore-drill`: one restore drill of each replicated database, now, reported as a
//! finding (`restore_drill`): critical when the replica does not restore to a sound copy,
//! unknown when the drill could not run (and why); with what the chain check had predicted.

use super::{Finding, Status};
use crate::drill::restore::{self, Outcome};
use crate::drill::{DrillRecord, DrillResult, DrillSettings};
use crate::litestream::board::Board;
use crate::litestream::chain::Verdict;
use crate::monitor::DbSnapshot;
use crate::rules::Unit;
use crate::target::Target;
use crate::units::format_value;
use std::path::Path;
use std::sync::atomic::AtomicBool;

/// The finding of one drill of `target` (sampled as `s`); `None` when it is not replicated.
pub fn finding(
    target: &Target,
    s: &DbSnapshot,
    litestream_yml: Option<&Path>,
    board: &Board,
) -> Option<Finding> {
    target.replicas().into_iter().next()?;
    let Some(yml) = litestream_yml else {
        return Some(Finding::new(
            "restore_drill",
            Status::Unknown,
            "no litestream.yml to restore with: give --litestream-config or litestream.config",
        ));
    };
    let settings = target
        .restore_drill
        .clone()
        .unwrap_or_else(DrillSettings::one_off);
    let job = target.drill_job(yml, settings)?;
    let before = s.live_figures();
    // What the sample's watcher last read of the replica: where its newest file says the live
    // WAL stood.
    let seen = || board.get(&target.name, &job.replica.0);
    let outcome = restore::run(&job, before, seen, &AtomicBool::new(false));
    Some(match outcome {
        Outcome::Refused(why) | Outcome::NotYet(why) => refused(&why),
        Outcome::Stopped => Finding::new("restore_drill", Status::Unknown, "the drill was stopped"),
        Outcome::Ran(r) => {
            // What the chain check of the sample's listing said, a gap seen once included: a
            // check has no second listing to confirm it with, and the drill is the judge here.
            let chain = seen().and_then(|o| o.chain.or(o.chain_unconfirmed.map(Verdict::Broken)));
            let mut f = from_result(&r, "now");
            if let Some(said) = predicted(chain.as_ref(), r.success) {
                f.summary = format!("{}. {said}", f.summary);
            }
            f
        }
    })
}

/// What the chain check of the replica's listing, which costs no restore, said of the drill's
/// result. Pure.
fn predicted(chain: Option<&Verdict>, restored: bool) -> Option<String> {
    Some(match (chain?, restored) {
        (Verdict::Broken(gap), false) => format!(
            "The chain check of the replica's listing predicted this without a restore: {gap}"
        ),
        (Verdict::Broken(gap), true) => format!(
            "The chain check of the replica's listing saw a gap the restore did not trip on: {gap}"
        ),
        (Verdict::Whole, false) => "The replica's chain of LTX files is whole: what failed is in a file's content, the integrity check or the rows, which only a restore finds".to_string(),
        (Verdict::Whole, true) => "The chain check of the replica's listing predicted it: its chain of LTX files is whole".to_string(),
    })
}

fn refused(why: &str) -> Finding {
    Finding::new(
        "restore_drill",
        Status::Unknown,
        format!("the drill did not run: {why}"),
    )
    .fix("Give the drill a usable Litestream binary and a scratch folder with room (restore_drill: in config).")
}

/// The finding of a drill that ran `when` ("now", or how long ago the daemon ran it).
fn from_result(r: &DrillResult, when: &str) -> Finding {
    let took = format!("{:.1} s", r.duration_seconds);
    let bytes = r
        .restored_bytes
        .map_or("–".into(), |b| format_value(Unit::Bytes, b as f64));
    if r.success {
        let age = r
            .data_age_seconds
            .map_or("unknown".into(), |a| format_value(Unit::Seconds, a));
        Finding::new(
            "restore_drill",
            Status::Ok,
            format!(
                "drill {when}: restored {bytes} in {took}; {} rows in {} tables; data age {age}; {}",
                r.rows.unwrap_or(0),
                r.tables.unwrap_or(0),
                r.compared
            ),
        )
        .value(format!("restored in {took}"))
        .threshold("a sound copy")
    } else {
        Finding::new(
            "restore_drill",
            Status::Critical,
            format!("drill {when}: {}", r.error.as_deref().unwrap_or("")),
        )
        .value(format!("failed after {took}"))
        .threshold("a sound copy")
        .fix("The backup does not restore: look at the replica (litestream restore by hand), fix what is missing, and drill again.")
    }
}

/// The finding of what a running daemon's drills of the database last found (`check --daemon`
/// without `--restore-drill`).
pub fn from_daemon(d: &DrillRecord, now: f64) -> Finding {
    match (&d.last, &d.refused) {
        (_, Some(why)) => refused(why),
        (None, None) => Finding::new(
            "restore_drill",
            Status::Info,
            "the daemon has not drilled this database yet",
        ),
        (Some(r), None) => {
            let ago = crate::units::human_duration((now - r.finished_at).max(1.0));
            from_result(r, &format!("by the daemon {ago} ago"))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_chain_check_said_what_the_drill_found_or_not() {
        let gap = Verdict::Broken("the next file, ltx/0/9-9.ltx".into());
        let said = predicted(Some(&gap), false).unwrap();
        assert!(
            said.contains("predicted this") && said.contains("ltx/0/9-9.ltx"),
            "{said}"
        );
        assert!(predicted(Some(&gap), true)
            .unwrap()
            .contains("did not trip on"));
        assert!(predicted(Some(&Verdict::Whole), false)
            .unwrap()
            .contains("only a restore finds"));
        assert!(predicted(Some(&Verdict::Whole), true)
            .unwrap()
            .contains("predicted it"));
        assert_eq!(
            predicted(None, false),
            None,
            "v0.3, or not listed: nothing said"
        );
    }
}
