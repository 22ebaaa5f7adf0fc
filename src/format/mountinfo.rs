//! `/proc/self/mountinfo`: every mount this process sees, network filesystems included (sysinfo
//! leaves those out). Pure: text in, mounts out; lines that do not parse are skipped.

use std::path::{Path, PathBuf};

/// One mount: where it is and what filesystem it is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Mount {
    pub mount_point: PathBuf,
    pub fs_type: String,
}

/// The mounts listed in `text`, in the kernel's order (a later mount on the same point hides an
/// earlier one).
pub fn parse(text: &str) -> Vec<Mount> {
    text.lines().filter_map(parse_line).collect()
}

/// `36 35 98:0 /mnt1 /mnt2 rw,noatime master:1 - ext3 /dev/root rw`: the fifth field is the
/// mount point; after the lone `-`, the filesystem type.
fn parse_line(line: &str) -> Option<Mount> {
    let (before, after) = line.split_once(" - ")?;
    let mount_point = before.split(' ').nth(4)?;
    let fs_type = after.split(' ').next().filter(|t| !t.is_empty())?;
    Some(Mount {
        mount_point: PathBuf::from(unescape(mount_point)),
        fs_type: fs_type.to_string(),
    })
}

/// Undoes the kernel's octal escapes (`\040` for a space, `\134` for a backslash).
fn unescape(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        let octal = b
            .get(i + 1..i + 4)
            .filter(|d| d.iter().all(|c| (b'0'..=b'7').contains(c)));
        match (b[i], octal) {
            (b'\\', Some(d)) => {
                let v = d.iter().fold(0u32, |v, c| v * 8 + u32::from(c - b'0'));
                out.push(v as u8);
                i += 4;
            }
            (c, _) => {
                out.push(c);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// The mount holding `dir` (absolute and canonical): the longest mount point that is a prefix
/// of it, the last listed among equals.
pub fn containing<'a>(mounts: &'a [Mount], dir: &Path) -> Option<&'a Mount> {
    mounts
        .iter()
        .enumerate()
        .filter(|(_, m)| dir.starts_with(&m.mount_point))
        .max_by_key(|(i, m)| (m.mount_point.as_os_str().len(), *i))
        .map(|(_, m)| m)
}

#[cfg(test)]
mod tests {
    use super::*;

    const SAMPLE: &str = "\
22 1 0:21 / / rw,relatime - overlay overlay rw,lowerdir=/l
25 22 0:23 / /proc rw,nosuid - proc proc rw
40 22 0:35 / /srv/data rw - nfs4 10.0.0.5:/export rw,vers=4.2
41 40 8:1 / /srv/data/local\\040disk rw - ext4 /dev/sda1 rw
42 22 0:36 / /srv/data rw - tmpfs tmpfs rw
broken line
";

    #[test]
    fn parses_points_and_types_with_escapes() {
        let m = parse(SAMPLE);
        assert_eq!(m.len(), 5, "{m:?}");
        assert_eq!(m[2].fs_type, "nfs4");
        assert_eq!(m[3].mount_point, Path::new("/srv/data/local disk"));
    }

    #[test]
    fn the_longest_prefix_wins_and_a_later_mount_hides_an_earlier_one() {
        let m = parse(SAMPLE);
        let at = |p: &str| containing(&m, Path::new(p)).map(|m| m.fs_type.as_str());
        assert_eq!(at("/srv/data/local disk/app"), Some("ext4"));
        assert_eq!(at("/srv/data/app"), Some("tmpfs"), "mounted over the share");
        assert_eq!(
            at("/srv/database"),
            Some("overlay"),
            "a prefix of bytes is not a parent"
        );
        assert_eq!(at("/home"), Some("overlay"));
        assert_eq!(containing(&[], Path::new("/x")), None);
    }

    proptest::proptest! {
        #[test]
        fn never_panics(text in ".{0,400}") {
            for m in parse(&text) {
                let _ = containing(std::slice::from_ref(&m), &m.mount_point);
            }
        }
    }
}
