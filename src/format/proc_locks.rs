//! Linux's `/proc/locks`: every file lock held on the machine, one per line, with the holder's
//! pid, the file's device and inode, and the byte range. `F_GETLK` names one holder of a byte;
//! this names all of them (every reader sharing a slot, every process with a WAL database open).

/// One held lock.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LockLine {
    /// POSIX (`fcntl`) locks; SQLite's unix VFS uses these. Others (flock, OFD) are skipped.
    pub write: bool,
    pub pid: i32,
    pub major: u32,
    pub minor: u32,
    pub inode: u64,
    pub start: u64,
    /// Inclusive end; `None` for `EOF` (to the end of the file and beyond).
    pub end: Option<u64>,
}

impl LockLine {
    pub fn covers(&self, byte: u64) -> bool {
        self.start <= byte && self.end.is_none_or(|e| byte <= e)
    }
}

/// Parses one line; `None` for waiters, non-POSIX locks and anything malformed.
///
/// ```text
/// 1: POSIX  ADVISORY  WRITE 4321 08:01:1835023 120 120
/// 2: POSIX  ADVISORY  READ  4321 08:01:1835023 128 128
/// 2: -> POSIX  ADVISORY  WRITE 999 08:01:1835023 120 120     (a waiter, not a holder)
/// 3: OFDLCK ADVISORY  READ  -1 00:2d:42 0 EOF
/// ```
pub fn parse_line(line: &str) -> Option<LockLine> {
    let mut f = line.split_whitespace();
    let _ordinal = f.next()?;
    let kind = f.next()?;
    if kind != "POSIX" {
        return None; // "->" (a blocked waiter), FLOCK, OFDLCK, LEASE
    }
    let _advisory = f.next()?;
    let write = match f.next()? {
        "WRITE" => true,
        "READ" => false,
        _ => return None,
    };
    let pid: i32 = f.next()?.parse().ok()?;
    let mut dev = f.next()?.split(':');
    let major = u32::from_str_radix(dev.next()?, 16).ok()?;
    let minor = u32::from_str_radix(dev.next()?, 16).ok()?;
    let inode: u64 = dev.next()?.parse().ok()?;
    let start: u64 = f.next()?.parse().ok()?;
    let end = match f.next()? {
        "EOF" => None,
        e => Some(e.parse().ok()?),
    };
    Some(LockLine {
        write,
        pid,
        major,
        minor,
        inode,
        start,
        end,
    })
}

/// Every POSIX lock held, from the whole file's text.
pub fn parse(text: &str) -> Vec<LockLine> {
    text.lines().filter_map(parse_line).collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn holders_not_waiters() {
        let text = "1: POSIX  ADVISORY  WRITE 4321 08:01:1835023 120 120\n\
                    2: POSIX  ADVISORY  READ  4321 fd:1b:1835023 128 128\n\
                    2: -> POSIX  ADVISORY  WRITE 999 08:01:1835023 120 120\n\
                    3: OFDLCK ADVISORY  READ  -1 00:2d:42 0 EOF\n\
                    4: POSIX  ADVISORY  READ  77 00:2d:42 1073741826 EOF\n\
                    5: FLOCK  ADVISORY  WRITE 12 00:2d:9 0 EOF\n";
        let locks = parse(text);
        assert_eq!(locks.len(), 3);
        assert_eq!(
            locks[0],
            LockLine {
                write: true,
                pid: 4321,
                major: 8,
                minor: 1,
                inode: 1835023,
                start: 120,
                end: Some(120)
            }
        );
        assert_eq!((locks[1].major, locks[1].minor), (0xfd, 0x1b));
        assert!(locks[2].covers(1073741826) && locks[2].covers(u64::MAX) && !locks[2].covers(5));
    }

    proptest! {
        #[test]
        fn never_panics(s in ".{0,120}") {
            let _ = parse(&s);
        }

        /// A line as the kernel prints it (fs/locks.c: "%d: POSIX  ADVISORY  %s %d
        /// %02x:%02x:%lu %lld %s") reads back as printed.
        #[test]
        fn kernel_lines_read_back(n in 1u32..1000, write: bool, pid in 1i32.., major in 0u32..256,
                                  minor in 0u32..256, inode: u64, start: u64, end: Option<u64>) {
            let line = format!(
                "{n}: POSIX  ADVISORY  {} {pid} {major:02x}:{minor:02x}:{inode} {start} {}",
                if write { "WRITE" } else { "READ " },
                end.map_or("EOF".to_string(), |e| e.to_string())
            );
            prop_assert_eq!(
                parse_line(&line),
                Some(LockLine { write, pid, major, minor, inode, start, end })
            );
        }
    }
}
