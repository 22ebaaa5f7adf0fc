//! Would a restore of a v0.3 replica find every WAL index from its newest snapshot on? Pure:
//! over the names of the listing that already gives the replica's position.

use super::chain::Chain;
use crate::format::litestream::{parse_segment_name, parse_snapshot_name};
use std::collections::BTreeMap;

/// Judges `generation`'s snapshots and WAL segments among `keys`
/// (`…/generations/<gen>/snapshots/<index>.snapshot.lz4`, `…/wal/<index>_<offset>.wal.lz4`).
///
/// Our reading of Litestream 0.3.13's restore (`Replica.Restore`, `walSegmentMap`): it starts
/// from the generation's newest snapshot, at its WAL index, and replays every index from there
/// to the highest one with a segment. It refuses an index there with no segment ("missing WAL
/// index") and any index whose first segment does not start at offset 0 ("missing initial wal
/// segment"). A segment missing from the middle of an index cannot be told from names (their
/// sizes are compressed): the restore does not refuse it either, and a restore drill finds it.
pub fn check<'a>(keys: impl IntoIterator<Item = &'a str>, generation: &str) -> Chain {
    let mut snapshot: Option<u32> = None;
    // By index, the segment with the lowest offset: (offset, key).
    let mut first: BTreeMap<u32, (u32, &str)> = BTreeMap::new();
    for key in keys {
        let mut parts = key.rsplit('/');
        let (name, kind, gen) = match (parts.next(), parts.next(), parts.next()) {
            (Some(n), Some(k), Some(g)) => (n, k, g),
            _ => continue,
        };
        if gen != generation || parts.next() != Some("generations") {
            continue;
        }
        match kind {
            "snapshots" => {
                if let Some(index) = parse_snapshot_name(name) {
                    snapshot = snapshot.max(Some(index));
                }
            }
            "wal" => {
                if let Some(pos) = parse_segment_name(name) {
                    let e = first.entry(pos.index).or_insert((pos.offset, key));
                    if pos.offset < e.0 {
                        *e = (pos.offset, key);
                    }
                }
            }
            _ => {}
        }
    }
    let Some(start) = snapshot else {
        return match first.values().next() {
            Some((_, key)) => Chain::NoSnapshot {
                generation: generation.to_string(),
                next: key.to_string(),
            },
            None => Chain::NotLtx,
        };
    };
    // Every index the restore reads starts at offset 0 (those before the snapshot too: it
    // lists them all), and none is missing from the snapshot's to the highest.
    if let Some((&index, (_, key))) = first.iter().find(|(_, (offset, _))| *offset != 0) {
        return Chain::WalMissing {
            generation: generation.to_string(),
            index,
            next: key.to_string(),
        };
    }
    // With no segment from the snapshot's index on, the restore is of the snapshot alone.
    let highest = match first.keys().next_back() {
        Some(&h) if h >= start => h,
        _ => return Chain::WalWhole { index: start },
    };
    for index in start..=highest {
        if !first.contains_key(&index) {
            let (_, (_, next)) = first.range(index..).next().expect("highest is present");
            return Chain::WalMissing {
                generation: generation.to_string(),
                index,
                next: next.to_string(),
            };
        }
    }
    Chain::WalWhole { index: highest }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    const GEN: &str = "19c19ebf760dedb6";

    fn snap(index: u32) -> String {
        format!("generations/{GEN}/snapshots/{index:08x}.snapshot.lz4")
    }
    fn seg(index: u32, offset: u32) -> String {
        format!("generations/{GEN}/wal/{index:08x}_{offset:08x}.wal.lz4")
    }
    fn judge(keys: &[String]) -> Chain {
        check(keys.iter().map(String::as_str), GEN)
    }

    #[test]
    fn every_index_from_the_snapshot_on_is_whole() {
        let keys = [
            seg(0, 0),
            seg(0, 0x1000),
            snap(1),
            seg(1, 0),
            seg(1, 0x60b0),
            seg(2, 0),
            // Another generation's gaps do not matter.
            "generations/aaaaaaaaaaaaaaaa/wal/00000009_00001000.wal.lz4".to_string(),
        ];
        assert_eq!(judge(&keys), Chain::WalWhole { index: 2 });
        assert_eq!(judge(&[snap(3)]), Chain::WalWhole { index: 3 });
        assert_eq!(judge(&[]), Chain::NotLtx);
    }

    #[test]
    fn a_missing_index_names_the_segment_after_it() {
        let keys = [snap(1), seg(1, 0), seg(3, 0), seg(3, 0x1000)];
        assert_eq!(
            judge(&keys),
            Chain::WalMissing {
                generation: GEN.into(),
                index: 2,
                next: seg(3, 0)
            }
        );
        let said = judge(&keys).describe().unwrap();
        assert!(
            said.contains("00000002") && said.contains(&seg(3, 0)),
            "{said}"
        );
    }

    #[test]
    fn an_index_without_its_first_segment_and_a_generation_without_snapshot_are_broken() {
        let keys = [snap(1), seg(1, 0), seg(2, 0x1000), seg(2, 0x2000)];
        assert_eq!(
            judge(&keys),
            Chain::WalMissing {
                generation: GEN.into(),
                index: 2,
                next: seg(2, 0x1000)
            }
        );
        assert!(judge(&keys).describe().unwrap().contains("first segment"));
        assert_eq!(
            judge(&[seg(0, 0)]),
            Chain::NoSnapshot {
                generation: GEN.into(),
                next: seg(0, 0)
            }
        );
    }

    proptest! {
        /// Whatever the names, a verdict; and a whole run of indices from the snapshot on is
        /// judged whole whatever is taken away before the snapshot's index.
        #[test]
        fn any_names_and_any_whole_run(
            names in proptest::collection::vec("[0-9a-z_./]{0,40}", 0..20),
            start in 0u32..5, len in 0u32..5, offsets in 1u32..4,
        ) {
            let _ = check(names.iter().map(String::as_str), GEN);
            let mut keys = vec![snap(start)];
            for index in start..start + len {
                keys.extend((0..offsets).map(|o| seg(index, o * 0x1000)));
            }
            let whole = judge(&keys);
            prop_assert_eq!(whole, Chain::WalWhole { index: (start + len).saturating_sub(1).max(start) });
        }
    }
}
