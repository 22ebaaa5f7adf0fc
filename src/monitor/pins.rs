//! Readers that pin old snapshots: for each WAL read slot held by a read transaction, since when
//! its snapshot has kept checkpoints from reaching the end of the WAL. Pure: fed with what each
//! poll saw.

use crate::format::shm::READ_SLOTS;
use serde::Serialize;
use std::time::Instant;

/// One held reader slot, as shown in status.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ReaderSlot {
    pub slot: usize,
    /// The `mxFrame` its snapshot was taken at.
    pub mark: u32,
    /// A process holding the slot (F_GETLK names one holder).
    pub pid: Option<i32>,
    /// How long this snapshot has kept checkpoints from the end of the WAL; 0 when it does not.
    pub pinning_seconds: f64,
    /// How long it has stopped a due checkpoint while writes went on (see `starvation`).
    pub holding_back_seconds: f64,
}

/// Since when each held read slot has pinned the WAL. A reader in slots 1-4 holds the
/// checkpointer back at its read mark once newer frames exist; a reader in slot 0 reads the
/// database file alone, and the checkpointer cannot copy anything while it holds it. That wait
/// is the cause of runaway WAL growth.
#[derive(Debug, Default)]
pub struct PinClock {
    /// Per slot: the mark last seen held there, and since when it has been blocking.
    slots: [Option<(u32, Option<Instant>)>; READ_SLOTS],
}

impl PinClock {
    /// Records one poll: `held[i]` is `Some((mark, pid))` when slot `i` is held. Returns the held
    /// slots with how long each has pinned the WAL.
    pub fn observe(
        &mut self,
        now: Instant,
        held: &[Option<(u32, Option<i32>)>; READ_SLOTS],
        max_frame: u32,
        backfill: u32,
    ) -> Vec<ReaderSlot> {
        let mut out = Vec::new();
        for (i, h) in held.iter().enumerate() {
            let Some((mark, pid)) = *h else {
                self.slots[i] = None;
                continue;
            };
            let blocking = if i == 0 {
                backfill < max_frame
            } else {
                mark < max_frame
            };
            let since = match self.slots[i] {
                Some((m, since)) if m == mark => since,
                _ => None,
            };
            let since = if blocking { since.or(Some(now)) } else { None };
            self.slots[i] = Some((mark, since));
            out.push(ReaderSlot {
                slot: i,
                mark,
                pid,
                pinning_seconds: since
                    .map_or(0.0, |s| now.saturating_duration_since(s).as_secs_f64()),
                holding_back_seconds: 0.0,
            });
        }
        out
    }

    pub fn reset(&mut self) {
        self.slots = Default::default();
    }
}

/// The oldest pin among `slots`, in seconds (0 when none pins).
pub fn oldest(slots: &[ReaderSlot]) -> f64 {
    slots.iter().map(|s| s.pinning_seconds).fold(0.0, f64::max)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn a_reader_pins_from_when_newer_frames_exist_until_it_moves_on() {
        let t0 = Instant::now();
        let at = |s: u64| t0 + Duration::from_secs(s);
        let mut c = PinClock::default();
        let mut held = [None; READ_SLOTS];
        held[1] = Some((10, Some(42)));
        // At the end of the WAL: not pinning yet.
        let r = c.observe(at(0), &held, 10, 10);
        assert_eq!(r[0].pinning_seconds, 0.0);
        assert_eq!(r[0].pid, Some(42));
        // New frames arrive; the reader stays on mark 10.
        c.observe(at(5), &held, 20, 10);
        let r = c.observe(at(65), &held, 30, 10);
        assert_eq!(oldest(&r), 60.0);
        // It starts a new transaction at the end: no longer pinning.
        held[1] = Some((30, Some(42)));
        assert_eq!(oldest(&c.observe(at(70), &held, 30, 10)), 0.0);
        // Released.
        held[1] = None;
        assert!(c.observe(at(71), &held, 30, 30).is_empty());
    }

    #[test]
    fn slot_zero_pins_while_anything_is_left_to_copy() {
        let t0 = Instant::now();
        let mut c = PinClock::default();
        let mut held = [None; READ_SLOTS];
        held[0] = Some((0, None));
        c.observe(t0, &held, 5, 0);
        let r = c.observe(t0 + Duration::from_secs(3), &held, 8, 0);
        assert_eq!(oldest(&r), 3.0);
        assert_eq!(
            oldest(&c.observe(t0 + Duration::from_secs(4), &held, 8, 8)),
            0.0
        );
    }
}
