//! `sqlite-ops init`: a config to start from, written from what this host shows (the SQLite
//! files its processes hold open or `--discover` folders hold, Litestream's config where
//! Litestream looks for it); and that config of Litestream's for `run` given nothing.

use crate::discovery::host::{self, OpenDatabases};
use std::path::{Path, PathBuf};

#[derive(Debug, clap::Args)]
pub struct Args {
    /// Also list every SQLite database under this folder, at any depth (repeatable), as
    /// `run --discover DIR` watches them.
    #[arg(long = "discover", value_name = "DIR")]
    pub discover: Vec<PathBuf>,
}

/// What this host shows: its open databases, those under the `--discover` folders, and
/// Litestream's config with where it was.
struct Findings {
    open: OpenDatabases,
    under: Vec<(PathBuf, Vec<PathBuf>)>,
    litestream: Option<(PathBuf, String)>,
}

fn look(folders: &[PathBuf]) -> anyhow::Result<Findings> {
    let mut under = Vec::new();
    for folder in folders {
        let found = crate::discovery::databases_under(folder)
            .map_err(|e| anyhow::anyhow!("--discover {}: {e}", folder.display()))?;
        under.push((folder.clone(), found));
    }
    Ok(Findings {
        open: host::open_databases(Path::new("/proc"), std::process::id()),
        under,
        litestream: host::litestream_config(std::env::var_os(host::LITESTREAM_CONFIG_VAR)),
    })
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
    let folders = match found.under.is_empty() {
        true => "",
        false => ",\n# those under the --discover folders,",
    };
    let mut out = format!(
        "# sqlite-ops config, from what this host showed `sqlite-ops init`: the SQLite databases\n\
         # its processes held open{folders} and Litestream's config where Litestream looks for\n\
         # it. Keep only what is to be watched: every file open at that moment is listed, caches\n\
         # and temporary databases included, and a `path:` entry whose file is gone is down\n\
         # (SQLiteDatabaseDown after 1m). config.example.yaml documents every other field.\n",
    );
    let mut entries: Vec<(String, &Path)> = (found.open.found.iter())
        .map(|(path, holder)| (format!("open by {holder}"), path.as_path()))
        .collect();
    for (folder, paths) in &found.under {
        let new = paths.iter().filter(|p| !found.open.found.contains_key(*p));
        let how = format!("under {} (--discover)", folder.display());
        entries.extend(new.map(|p| (how.clone(), p.as_path())));
    }
    if entries.is_empty() {
        out.push_str(
            "# No process this user may look into held an SQLite database open. Give one:\n",
        );
        out.push_str("#   - path: /var/lib/app/app.db\ndatabases: []\n");
    } else {
        out.push_str("databases:\n");
        for (how, path) in entries {
            out.push_str(&format!("  # {how}\n"));
            out.push_str(&format!("  - path: {}\n", scalar(&path.to_string_lossy())));
            out.push_str(&format!("    name: {}\n", scalar(&host::label(path))));
        }
    }
    for (folder, _) in &found.under {
        let glob = format!("{}/**/*", folder.display());
        out.push_str(&format!(
            "# Or every database under {}, now and as they come, each named by its path below it:\n",
            folder.display()
        ));
        out.push_str(&format!("#  - glob: {}\n", scalar(&glob)));
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

pub fn run(args: &Args) -> anyhow::Result<()> {
    let found = look(&args.discover)?;
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
            under: vec![(
                "/srv/tenants".into(),
                vec!["/srv/app#1.db".into(), "/srv/tenants/eu/acme.db".into()],
            )],
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
                "/srv/pb data/data.db".into(),
                "/srv/tenants/eu/acme.db".into()
            ],
            "a database both open and under a folder is listed once"
        );
        assert!(
            text.contains("# under /srv/tenants (--discover)\n  - path: /srv/tenants/eu/acme.db"),
            "{text}"
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
