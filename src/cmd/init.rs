//! `sqlite-ops init`: a config to start from, written from what this host shows (the SQLite
//! files its processes hold open, Litestream's config where Litestream looks for it); and that
//! config of Litestream's for `run` given nothing.

use crate::discovery::host::{self, OpenDatabases};
use std::path::{Path, PathBuf};

#[derive(Debug, clap::Args)]
pub struct Args {}

/// What this host shows: its open databases, and Litestream's config with where it was.
struct Findings {
    open: OpenDatabases,
    litestream: Option<(PathBuf, String)>,
}

fn look() -> Findings {
    Findings {
        open: host::open_databases(Path::new("/proc"), std::process::id()),
        litestream: host::litestream_config(std::env::var_os(host::LITESTREAM_CONFIG_VAR)),
    }
}

/// Litestream's config where Litestream looks for it, for `run` given nothing; logged with
/// where it was found (the databases the host's processes hold open are the discovery's:
/// `Discovery::watch_host`).
pub fn host_litestream() -> Option<PathBuf> {
    let (yml, how) = host::litestream_config(std::env::var_os(host::LITESTREAM_CONFIG_VAR))?;
    tracing::info!(config = %yml.display(), found = %how, "found Litestream's config: its databases are watched too");
    Some(yml)
}

/// A YAML scalar for `s`, quoted where YAML needs it.
fn scalar(s: &str) -> String {
    serde_yaml::to_string(s).map_or_else(|_| format!("{s:?}"), |t| t.trim_end().to_string())
}

/// The config text `init` prints for `found`.
fn config_text(found: &Findings) -> String {
    let mut out = String::from(
        "# sqlite-ops config, from what this host showed `sqlite-ops init`: the SQLite databases\n\
         # its processes held open, and Litestream's config where Litestream looks for it. Keep\n\
         # what is to be watched; config.example.yaml documents every other field.\n",
    );
    if found.open.found.is_empty() {
        out.push_str(
            "# No process this user may look into held an SQLite database open. Give one:\n",
        );
        out.push_str("#   - path: /var/lib/app/app.db\ndatabases: []\n");
    } else {
        out.push_str("databases:\n");
        for (path, holder) in &found.open.found {
            out.push_str(&format!("  # open by {holder}\n"));
            out.push_str(&format!("  - path: {}\n", scalar(&path.to_string_lossy())));
            out.push_str(&format!("    name: {}\n", scalar(&host::label(path))));
        }
    }
    if let Some((yml, how)) = &found.litestream {
        out.push_str(&format!(
            "# Litestream's config, found at {how}: the databases it lists are watched too,\n"
        ));
        out.push_str("# and each replica read for its lag.\n");
        out.push_str(&format!(
            "litestream:\n  config: {}\n",
            scalar(&yml.to_string_lossy())
        ));
    }
    if let Some(summary) = found.open.hidden_summary() {
        let mut line = String::from("#");
        for word in format!("Note: {summary}.").split(' ') {
            if line.len() + word.len() > 95 {
                out.push_str(&line);
                out.push('\n');
                line = String::from("#");
            }
            line.push(' ');
            line.push_str(word);
        }
        out.push_str(&line);
        out.push('\n');
    }
    out
}

pub fn run(_args: &Args) -> anyhow::Result<()> {
    let found = look();
    super::print_out(&config_text(&found))?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Config;
    use crate::discovery::host::Process;

    #[test]
    fn the_text_is_a_config_run_accepts() {
        let mut open = OpenDatabases::default();
        let holder = Process {
            pid: 812,
            comm: "pocketbase".into(),
            uid: Some(1000),
        };
        open.found
            .insert("/srv/pb data/data.db".into(), holder.clone());
        open.found.insert("/srv/app#1.db".into(), holder.clone());
        open.hidden.push((
            Process {
                pid: 1,
                comm: "systemd".into(),
                uid: Some(0),
            },
            "Permission denied (os error 13)".into(),
        ));
        let found = Findings {
            open,
            litestream: Some((
                "/etc/litestream.yml".into(),
                "Litestream's default path".into(),
            )),
        };
        let text = config_text(&found);
        let cfg = Config::parse(&text, "init").unwrap_or_else(|e| panic!("{e}\n{text}"));
        let paths: Vec<_> = cfg
            .databases
            .iter()
            .map(|d| d.path.clone().unwrap())
            .collect();
        assert_eq!(
            paths,
            [
                PathBuf::from("/srv/app#1.db"),
                "/srv/pb data/data.db".into()
            ]
        );
        assert!(
            text.contains("# open by pid 812 (pocketbase, uid 1000)"),
            "{text}"
        );
        assert!(text.contains("pid 1 (systemd, uid 0)"), "{text}");
        assert_eq!(
            cfg.litestream.unwrap().config,
            Some(PathBuf::from("/etc/litestream.yml"))
        );
    }
}
