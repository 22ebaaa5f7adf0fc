//! Whether a restored copy may be compared row for row with the live database: only when its
//! position is proven to be the live one. Anything less is said, never guessed. Pure.

use super::error::DrillError;
use crate::format::shm::IndexHeader;
use crate::litestream::board::Observation;
use crate::litestream::position::Position as Replicated;

/// Where the copy stands against the live database.
///
/// Litestream 0.5 records in each level-0 LTX file where the live WAL stood when it read it
/// (end and salts); when the replica's newest file says the WAL stood exactly where the live
/// `-shm` says it stands, the replica held every commit. Anything less (a lag of a second,
/// v0.3, a checkpoint in between) is said, never guessed.
#[derive(Debug, Clone, PartialEq)]
pub enum Position {
    /// The replica held the live WAL's last commit; the live header then read.
    Proven(IndexHeader),
    /// Why it cannot be shown.
    Unproven(String),
}

impl Position {
    /// Judges the live wal-index header (or why it was not read) against what the replica's
    /// newest file says (`seen`), with the poller's last lag reading for the words.
    pub fn read(
        live: Result<IndexHeader, DrillError>,
        seen: Option<&Observation>,
        lag: Option<f64>,
    ) -> Position {
        let live = match live {
            Ok(h) => h,
            Err(why) => return Position::Unproven(why.to_string()),
        };
        let Some(seen) = seen else {
            return Position::Unproven("the replica had not been read yet".into());
        };
        let Some(mark) = seen.replica_wal else {
            return Position::Unproven(
                match &seen.replica {
                    None => "the replica was empty when last read",
                    Some(Replicated::V3 { .. }) => {
                        "a Litestream 0.3 replica does not record which WAL position it holds"
                    }
                    Some(Replicated::V5 { .. }) => {
                        "the replica's newest file does not record where the live WAL stood"
                    }
                }
                .into(),
            );
        };
        if mark == live.wal_mark() {
            return Position::Proven(live);
        }
        Position::Unproven(behind(seen, lag))
    }

    /// The live header, when the copy's position is proven to be the live one.
    pub fn proven(&self) -> Option<&IndexHeader> {
        match self {
            Position::Proven(h) => Some(h),
            Position::Unproven(_) => None,
        }
    }

    pub fn why_not(&self) -> &str {
        match self {
            Position::Proven(_) => "",
            Position::Unproven(why) => why,
        }
    }
}

/// How far behind the live database the replica was, in the words a reader needs.
fn behind(seen: &Observation, lag: Option<f64>) -> String {
    let lag = lag.filter(|l| *l > 0.0);
    match (&seen.local, &seen.replica) {
        (Some(Replicated::V5 { txid: local }), Some(Replicated::V5 { txid: held }))
            if local > held =>
        {
            let n = local - held;
            let s = if n == 1 { "" } else { "s" };
            let about = lag.map_or(String::new(), |l| format!(" (about {l:.1} s)"));
            format!("the copy is {n} transaction{s}{about} behind")
        }
        _ => match lag {
            Some(l) => format!("the copy is about {l:.1} s behind"),
            None => "the replica's newest file was made at another WAL position than the live one (Litestream had not yet read the newest commits, or a checkpoint reset the WAL)".into(),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::format::litestream::WalMark;

    fn live(max_frame: u32) -> IndexHeader {
        IndexHeader {
            change: max_frame,
            page_size: 4096,
            max_frame,
            page_count: 3,
            salt: [0x989e_9472, 0x3001_0a33],
        }
    }

    fn seen(end: u64, local: u64, held: u64) -> Observation {
        Observation {
            replica_wal: Some(WalMark {
                end,
                salt: [0x98, 0x9e, 0x94, 0x72, 0x30, 0x01, 0x0a, 0x33],
            }),
            local: Some(Replicated::V5 { txid: local }),
            replica: Some(Replicated::V5 { txid: held }),
            ..Default::default()
        }
    }

    #[test]
    fn proven_only_at_the_live_wal_position() {
        // Frame 7 ends at 32 + 7 × 4120 = 28,872.
        let at = Position::read(Ok(live(7)), Some(&seen(28_872, 4, 4)), Some(0.0));
        assert_eq!(at.proven(), Some(&live(7)));
        // A commit the replica lacks: one frame further. The poller had read no lag yet.
        let at = Position::read(Ok(live(8)), Some(&seen(28_872, 5, 4)), Some(0.0));
        assert_eq!(at.proven(), None);
        assert_eq!(at.why_not(), "the copy is 1 transaction behind");
        let at = Position::read(Ok(live(12)), Some(&seen(28_872, 9, 4)), Some(1.25));
        assert_eq!(
            at.why_not(),
            "the copy is 5 transactions (about 1.2 s) behind"
        );
        // Same end, other salts: a WAL reset in between.
        let mut reset = seen(28_872, 4, 4);
        reset.replica_wal.as_mut().unwrap().salt[0] ^= 1;
        let at = Position::read(Ok(live(7)), Some(&reset), None);
        assert!(at.why_not().contains("another WAL position"), "{at:?}");
    }

    #[test]
    fn what_cannot_be_proven_says_why() {
        let why = |live: Result<IndexHeader, DrillError>, o: Option<&Observation>| {
            Position::read(live, o, None).why_not().to_string()
        };
        assert_eq!(
            why(Err(DrillError::NotOpen), None),
            DrillError::NotOpen.to_string()
        );
        assert_eq!(why(Ok(live(7)), None), "the replica had not been read yet");
        let v3 = Observation {
            replica: Some(Replicated::V3 {
                generation: "g".into(),
                index: 1,
                offset: 0,
            }),
            ..Default::default()
        };
        assert!(why(Ok(live(7)), Some(&v3)).contains("0.3"));
        let compacted = Observation {
            replica: Some(Replicated::V5 { txid: 9 }),
            ..Default::default()
        };
        assert!(why(Ok(live(7)), Some(&compacted)).contains("does not record"));
    }
}
