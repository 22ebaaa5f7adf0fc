//! A `glob:` entry's pattern: the fixed folder it starts from, how deep below it a match can
//! be, which paths match, and the `db` label a match gets. Pure: no I/O.

use globset::{GlobBuilder, GlobMatcher};
use std::path::{Component, Path, PathBuf};

/// A parsed `glob:` pattern, like `/data/tenants/**/*.db`.
#[derive(Debug, Clone)]
pub struct Pattern {
    /// As written in the config.
    pub text: String,
    /// The longest leading folder without a wildcard: where the walk starts, and what a match's
    /// label is relative to.
    pub root: PathBuf,
    /// How many components below `root` a match has; `None` with `**` (any depth).
    pub depth: Option<usize>,
    /// The components below `root`, as written.
    below: Vec<String>,
    matcher: GlobMatcher,
    /// The pattern starts with a wildcard: `root` is `.`, which the pattern does not spell.
    implicit_root: bool,
}

impl PartialEq for Pattern {
    fn eq(&self, other: &Self) -> bool {
        self.text == other.text
    }
}

/// Whether a path component holds a wildcard of globset's syntax.
fn is_wild(component: &str) -> bool {
    component.contains(['*', '?', '[', '{'])
}

/// Why a `glob:` pattern cannot be used; each says what was expected.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum PatternError {
    #[error("{0:?} cannot be used; expected no .. in the pattern")]
    ParentDir(String),
    #[error("{0:?} has no wildcard; expected a pattern like /data/tenants/*.db (use path: for one database)")]
    NoWildcard(String),
    #[error("{text:?} is not a valid pattern: {kind}")]
    Invalid {
        text: String,
        kind: globset::ErrorKind,
    },
}

impl Pattern {
    /// Parses `text`: `*` and `?` within one folder, `**` across folders, `[abc]` and `{a,b}`.
    pub fn parse(text: &str) -> Result<Pattern, PatternError> {
        let path = Path::new(text);
        let mut root = PathBuf::new();
        let mut rest = Vec::new();
        for c in path.components() {
            let s = c.as_os_str().to_string_lossy();
            if rest.is_empty() && !is_wild(&s) {
                if matches!(c, Component::ParentDir) {
                    return Err(PatternError::ParentDir(text.into()));
                }
                root.push(c);
            } else {
                rest.push(s.into_owned());
            }
        }
        if rest.is_empty() {
            return Err(PatternError::NoWildcard(text.into()));
        }
        let implicit_root = root.as_os_str().is_empty();
        if implicit_root {
            root.push(".");
        }
        let depth = (!rest.iter().any(|c| c.contains("**"))).then_some(rest.len());
        // The walk yields paths that start with `root` as written, so the pattern is matched
        // against them as written too (`./x/*.db` keeps its `./`).
        let matcher = GlobBuilder::new(text)
            .literal_separator(true)
            .build()
            .map_err(|e| PatternError::Invalid {
                text: text.into(),
                kind: e.kind().clone(),
            })?
            .compile_matcher();
        Ok(Pattern {
            text: text.to_string(),
            root,
            depth,
            below: rest,
            matcher,
            implicit_root,
        })
    }

    /// Whether `path` (as the walk from `root` gives it) matches.
    pub fn matches(&self, path: &Path) -> bool {
        match self.implicit_root {
            true => self
                .matcher
                .is_match(path.strip_prefix(".").unwrap_or(path)),
            false => self.matcher.is_match(path),
        }
    }

    /// The `db` label of a match: its path below `root` without the file's extension, with `/`
    /// between folders (`/data/tenants/eu/acme.db` under `/data/tenants` is `eu/acme`).
    pub fn label(&self, path: &Path) -> Option<String> {
        let below = path.strip_prefix(&self.root).ok()?;
        let parts: Vec<String> = below
            .components()
            .map(|c| c.as_os_str().to_string_lossy().into_owned())
            .collect();
        let (file, folders) = parts.split_last()?;
        let stem = match file.rsplit_once('.') {
            Some((stem, _)) if !stem.is_empty() => stem,
            _ => file,
        };
        let mut label = folders.join("/");
        if !label.is_empty() {
            label.push('/');
        }
        label.push_str(stem);
        Some(label)
    }
}

impl Pattern {
    /// A regular expression (RE2 syntax, as PromQL takes it, unanchored) matching the `db`
    /// labels of this pattern's matches, for `sqlite-ops rules`. Exact when the last component
    /// ends with a literal extension (`*.db`, `app-?.sqlite3`); otherwise its file part matches
    /// any name in the folder.
    pub fn label_regex(&self) -> String {
        let mut out = String::new();
        let last = self.below.len() - 1;
        for (i, c) in self.below.iter().enumerate() {
            if c == "**" {
                out.push_str(if i == last { ".*" } else { "(?:.*/)?" });
                continue;
            }
            if i < last {
                out.push_str(&glob_to_regex(c));
                out.push('/');
                continue;
            }
            match c.rsplit_once('.') {
                Some((stem, ext)) if !stem.is_empty() && !is_wild(ext) => {
                    out.push_str(&glob_to_regex(stem))
                }
                _ => out.push_str("[^/]*"),
            }
        }
        out
    }
}

/// One path component of globset's syntax as a regular expression.
fn glob_to_regex(glob: &str) -> String {
    let mut out = String::new();
    let mut chars = glob.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '*' => {
                while chars.peek() == Some(&'*') {
                    chars.next();
                }
                out.push_str("[^/]*");
            }
            '?' => out.push_str("[^/]"),
            '[' => {
                out.push('[');
                if chars.peek() == Some(&'!') {
                    chars.next();
                    out.push('^');
                }
                for c in chars.by_ref() {
                    if c == ']' {
                        break;
                    }
                    if c == '\\' || c == '[' {
                        out.push('\\');
                    }
                    out.push(c);
                }
                out.push(']');
            }
            '{' => out.push_str("(?:"),
            '}' => out.push(')'),
            ',' => out.push('|'),
            c => out.push_str(&regex::escape(&c.to_string())),
        }
    }
    out
}

/// SQLite's own files beside a database (`-wal`, `-shm`, `-journal`), never databases
/// themselves, whatever the pattern says.
pub fn is_sidecar(file_name: &str) -> bool {
    ["-wal", "-shm", "-journal"]
        .iter()
        .any(|s| file_name.ends_with(s))
}

/// Litestream's local state folder beside a database (`.<file>-litestream`): never walked.
pub fn is_litestream_folder(name: &str) -> bool {
    name.starts_with('.') && name.ends_with("-litestream")
}

/// Whether the first bytes of a file are an SQLite database's.
pub fn is_sqlite(head: &[u8]) -> bool {
    head.starts_with(crate::format::db_header::MAGIC)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn root_depth_and_labels() {
        let p = Pattern::parse("/data/tenants/*.db").unwrap();
        assert_eq!(p.root, PathBuf::from("/data/tenants"));
        assert_eq!(p.depth, Some(1));
        assert!(p.matches(Path::new("/data/tenants/acme.db")));
        assert!(
            !p.matches(Path::new("/data/tenants/eu/acme.db")),
            "* stays in one folder"
        );
        assert!(!p.matches(Path::new("/data/tenants/acme.sqlite")));
        assert_eq!(p.label(Path::new("/data/tenants/acme.db")).unwrap(), "acme");

        let deep = Pattern::parse("/data/tenants/**/*.db").unwrap();
        assert_eq!(deep.depth, None);
        assert!(deep.matches(Path::new("/data/tenants/eu/west/acme.db")));
        assert!(deep.matches(Path::new("/data/tenants/acme.db")));
        assert_eq!(
            deep.label(Path::new("/data/tenants/eu/west/acme.db"))
                .unwrap(),
            "eu/west/acme"
        );

        let mid = Pattern::parse("/srv/*/data/app-?.sqlite3").unwrap();
        assert_eq!(mid.root, PathBuf::from("/srv"));
        assert_eq!(mid.depth, Some(3));
        assert!(mid.matches(Path::new("/srv/shop/data/app-1.sqlite3")));
        assert!(!mid.matches(Path::new("/srv/shop/data/app-12.sqlite3")));
        assert_eq!(
            mid.label(Path::new("/srv/shop/data/app-1.sqlite3"))
                .unwrap(),
            "shop/data/app-1"
        );
    }

    #[test]
    fn relative_patterns_and_names_without_extension() {
        let p = Pattern::parse("tenants/*").unwrap();
        assert_eq!(p.root, PathBuf::from("tenants"));
        assert!(p.matches(Path::new("tenants/acme")));
        assert_eq!(p.label(Path::new("tenants/acme")).unwrap(), "acme");
        assert_eq!(p.label(Path::new("tenants/.hidden")).unwrap(), ".hidden");
        assert_eq!(p.label(Path::new("tenants/a.b.db")).unwrap(), "a.b");
        let top = Pattern::parse("*.db").unwrap();
        assert_eq!(top.root, PathBuf::from("."));
        assert!(top.matches(Path::new("./x.db")));
        assert_eq!(top.label(Path::new("./x.db")).unwrap(), "x");
        assert_eq!(p.label(Path::new("elsewhere/acme")), None);
    }

    #[test]
    fn label_regexes_match_the_labels_of_matches_and_not_others() {
        let cases: &[(&str, &[&str], &[&str])] = &[
            ("/t/**/*.db", &["/t/a.db", "/t/eu/west/a.b.db"], &[]),
            ("/t/*.db", &["/t/acme.db"], &["eu/acme"]),
            (
                "/srv/*/data/app-?.sqlite3",
                &["/srv/shop/data/app-1.sqlite3"],
                &["shop/data/app-12", "shop/app-1"],
            ),
            (
                "/t/{eu,us}/[a-c]*.db",
                &["/t/eu/acme.db", "/t/us/c.db"],
                &["asia/acme", "eu/dbx"],
            ),
            ("/t/*", &["/t/acme", "/t/x.sqlite"], &["eu/acme"]),
            (
                "/t/tenant-*.db",
                &["/t/tenant-1.db"],
                &["other-1", "tenant-1/x"],
            ),
        ];
        for (pattern, matches, not_labels) in cases {
            let p = Pattern::parse(pattern).unwrap();
            let re = regex::Regex::new(&format!("^(?:{})$", p.label_regex())).unwrap();
            for m in *matches {
                assert!(p.matches(Path::new(m)), "{pattern} matches {m}");
                let label = p.label(Path::new(m)).unwrap();
                assert!(re.is_match(&label), "{pattern}: {re} matches {label}");
            }
            for l in *not_labels {
                assert!(!re.is_match(l), "{pattern}: {re} does not match {l}");
            }
        }
    }

    #[test]
    fn errors_say_what_was_expected() {
        assert!(Pattern::parse("/data/app.db")
            .unwrap_err()
            .to_string()
            .contains("use path: for one database"));
        assert!(Pattern::parse("/data/../*.db")
            .unwrap_err()
            .to_string()
            .contains("no .."));
        assert!(Pattern::parse("/data/[*.db")
            .unwrap_err()
            .to_string()
            .contains("not a valid pattern"));
    }

    #[test]
    fn sqlite_own_files_and_litestream_folders_are_not_databases() {
        for f in ["app.db-wal", "app.db-shm", "app.db-journal"] {
            assert!(is_sidecar(f), "{f}");
        }
        assert!(!is_sidecar("app.db"));
        assert!(is_litestream_folder(".app.db-litestream"));
        assert!(!is_litestream_folder("app.db-litestream"));
        assert!(is_sqlite(b"SQLite format 3\0\x10\x00"));
        assert!(!is_sqlite(b"SQLite format 3"));
        assert!(!is_sqlite(b""));
    }
}
