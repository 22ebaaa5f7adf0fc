//! The groups a database's series are exported in. A `databases:` entry (or the whole file)
//! chooses them with `metrics:`, so that ten thousand tenants export only what their operator
//! can afford; which metric is in which group is `export::metrics::group_of`.

/// One group of per-database series.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Group {
    /// Up, sizes, the write count, the checkpoint lag's age, free space: what the fleet
    /// dashboard's table shows.
    Health,
    /// Header facts and declared facts (`sqlite_info`, page size, pages, freelist, team).
    Info,
    /// The WAL, checkpoints and the readers holding them back.
    Wal,
    /// Who holds the locks, the write lock's figures.
    Locks,
    /// Litestream's replicas and process.
    Litestream,
    /// The poll's own duration and errors.
    Poll,
}

impl Group {
    pub const ALL: [Group; 6] = [
        Group::Health,
        Group::Info,
        Group::Wal,
        Group::Locks,
        Group::Litestream,
        Group::Poll,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Group::Health => "health",
            Group::Info => "info",
            Group::Wal => "wal",
            Group::Locks => "locks",
            Group::Litestream => "litestream",
            Group::Poll => "poll",
        }
    }

    fn bit(self) -> u8 {
        1 << (self as u8)
    }
}

/// A set of groups.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Groups(u8);

impl Default for Groups {
    /// Every group: what a database exported before groups existed.
    fn default() -> Self {
        Groups::ALL
    }
}

impl Groups {
    pub const ALL: Groups = Groups(0b11_1111);
    pub const NONE: Groups = Groups(0);

    pub fn contains(self, g: Group) -> bool {
        self.0 & g.bit() != 0
    }

    /// Parses a `metrics:` list: group names, or `all`. An empty list is no group at all
    /// (the database still counts in the fleet series and its alerts are still exported).
    /// The error names the position of the bad entry and what was expected.
    pub fn parse<S: AsRef<str>>(names: &[S]) -> Result<Groups, (usize, String)> {
        let mut set = Groups::NONE;
        for (i, name) in names.iter().enumerate() {
            let name = name.as_ref();
            if name == "all" {
                set = Groups::ALL;
                continue;
            }
            let g = Group::ALL
                .into_iter()
                .find(|g| g.name() == name)
                .ok_or_else(|| {
                    let known: Vec<_> = Group::ALL.iter().map(|g| g.name()).collect();
                    (
                        i,
                        format!(
                            "unknown metric group {name:?}; expected one of {} or all",
                            known.join(", ")
                        ),
                    )
                })?;
            set.0 |= g.bit();
        }
        Ok(set)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_names_all_and_nothing() {
        assert_eq!(Groups::parse(&["all"]), Ok(Groups::ALL));
        assert_eq!(Groups::parse::<&str>(&[]), Ok(Groups::NONE));
        let g = Groups::parse(&["health", "litestream"]).unwrap();
        assert!(g.contains(Group::Health) && g.contains(Group::Litestream));
        assert!(!g.contains(Group::Wal) && !g.contains(Group::Poll));
        let every: Vec<&str> = Group::ALL.iter().map(|g| g.name()).collect();
        assert_eq!(Groups::parse(&every), Ok(Groups::ALL));
        let (at, msg) = Groups::parse(&["health", "wall"]).unwrap_err();
        assert_eq!(at, 1);
        assert!(
            msg.contains("\"wall\"") && msg.contains("health, info, wal"),
            "{msg}"
        );
    }
}
