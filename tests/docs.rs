//! The docs stay true: the metrics and alerts references document every exported metric and
//! alert, CI runs the README's test command, the README stays a front page, and no relative
//! link in the markdown files leads nowhere.

use sqlite_ops::export::metrics::METRICS;

fn read(path: &str) -> String {
    std::fs::read_to_string(std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join(path)).unwrap()
}

#[test]
fn the_metrics_reference_documents_every_metric() {
    let metrics = read("docs/metrics.md");
    for d in METRICS {
        assert!(
            metrics.contains(&format!("| `{}` |", d.name)),
            "docs/metrics.md documents {}",
            d.name
        );
    }
}

#[test]
fn the_alerts_reference_lists_every_alert_with_its_config_key() {
    let alerts = read("docs/alerts.md");
    for r in sqlite_ops::rules::RULES {
        assert!(
            alerts.contains(&format!("| `{}` | `{}` |", r.alert, r.key)),
            "docs/alerts.md lists {} ({})",
            r.alert,
            r.key
        );
    }
    for r in sqlite_ops::rules::itself::ITSELF {
        let row = format!("| `{}` | {} |", r.alert, r.severity.as_str());
        assert!(alerts.contains(&row), "docs/alerts.md lists {}", r.alert);
    }
}

#[test]
fn the_readme_is_a_front_page() {
    let lines = read("README.md").lines().count();
    assert!(
        lines <= 300,
        "README.md has {lines} lines: at most 300; the manual belongs in docs/"
    );
}

#[test]
fn every_alert_has_a_runbook_section() {
    let runbooks = read("docs/runbooks.md");
    let itself = sqlite_ops::rules::itself::ITSELF.iter().map(|r| r.alert);
    for alert in sqlite_ops::rules::RULES
        .iter()
        .map(|r| r.alert)
        .chain(itself)
    {
        assert!(
            runbooks.contains(&format!("\n## {alert}\n")),
            "docs/runbooks.md has a section for {alert} (the anchor of its runbook_url)",
        );
    }
    assert!(sqlite_ops::config::default_runbook_base_url().ends_with("docs/runbooks.md"));
}

#[test]
fn ci_runs_the_readme_test_command() {
    let readme = read("README.md");
    let section = readme.split("## Tests").nth(1).expect("a Tests section");
    let command = section
        .split("```sh\n")
        .nth(1)
        .and_then(|s| s.lines().next())
        .expect("a command");
    assert_eq!(command, "scripts/test");
    assert!(read(".ci/run").contains("exec scripts/test"));
}

/// Lines of `folder`'s files, tests left out, that read a clock, take a lock or open a file.
fn reads_the_world(folder: &str) -> Vec<String> {
    let world = [
        "Instant::now",
        "SystemTime::now",
        "Mutex",
        "RwLock",
        "std::fs",
        "File::",
        "OpenOptions",
    ];
    // Files that mod.rs declares under #[cfg(test)] are tests.
    let module = std::fs::read_to_string(format!("{folder}/mod.rs")).unwrap();
    let test_only: Vec<String> = module
        .split("#[cfg(test)]")
        .skip(1)
        .filter_map(|after| {
            let decl = after.trim_start().lines().next()?;
            let name = decl.strip_suffix(';')?.rsplit(' ').next()?;
            decl.contains("mod ").then(|| format!("{name}.rs"))
        })
        .collect();
    let mut found = Vec::new();
    for entry in std::fs::read_dir(folder).unwrap() {
        let path = entry.unwrap().path();
        if path
            .file_name()
            .is_some_and(|n| test_only.iter().any(|t| n == t.as_str()))
        {
            continue;
        }
        let text = std::fs::read_to_string(&path).unwrap();
        let code = text.split("#[cfg(test)]").next().unwrap_or("");
        for (n, line) in code.lines().enumerate() {
            let line = line.split("//").next().unwrap_or("");
            if world.iter().any(|w| line.contains(w)) {
                found.push(format!("{}:{}: {}", path.display(), n + 1, line.trim()));
            }
        }
    }
    found
}

#[test]
fn the_monitor_and_the_parsers_read_nothing() {
    // lib.rs: the monitor is handed the poll time, the sample and the replicas' observations;
    // the parsers are functions over bytes.
    for folder in ["src/monitor", "src/format"] {
        let found = reads_the_world(folder);
        assert!(
            found.is_empty(),
            "{folder} reads the world:\n{}",
            found.join("\n")
        );
    }
}

#[test]
fn every_module_opens_with_one_to_three_lines_of_what_it_owns() {
    // STYLE.md: "Each module starts with a `//!` of one to three lines". lib.rs is the map of
    // them all, and longer.
    let mut long = Vec::new();
    let mut stack = vec![std::path::PathBuf::from("src")];
    while let Some(dir) = stack.pop() {
        for entry in std::fs::read_dir(&dir).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                stack.push(path);
            } else if path.extension().is_some_and(|e| e == "rs") && !path.ends_with("src/lib.rs") {
                let text = std::fs::read_to_string(&path).unwrap();
                let lines = text.lines().take_while(|l| l.starts_with("//!")).count();
                if !(1..=3).contains(&lines) {
                    long.push(format!("{}: {lines} lines", path.display()));
                }
            }
        }
    }
    long.sort();
    assert!(
        long.is_empty(),
        "module docs of 1 to 3 lines:\n{}",
        long.join("\n")
    );
}

/// The markdown files a reader follows links through.
fn markdown_files() -> Vec<std::path::PathBuf> {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
    let mut files: Vec<_> = ["README.md", "CONTRIBUTING.md", "BENCHMARKS.md"]
        .iter()
        .map(|f| root.join(f))
        .collect();
    for e in std::fs::read_dir(root.join("docs")).unwrap() {
        let path = e.unwrap().path();
        if path.extension().is_some_and(|x| x == "md") {
            files.push(path);
        }
    }
    files
}

/// The anchors GitHub gives a markdown file's headings: lower case, letters, digits, `-` and
/// `_` kept, spaces made `-`, the rest dropped; a repeated one gets `-1`, `-2`...
fn anchors(text: &str) -> std::collections::HashSet<String> {
    use pulldown_cmark::{Event, Parser, Tag, TagEnd};
    let mut out = std::collections::HashSet::new();
    let mut heading: Option<String> = None;
    for event in Parser::new(text) {
        match event {
            Event::Start(Tag::Heading { .. }) => heading = Some(String::new()),
            Event::Text(t) | Event::Code(t) => {
                if let Some(h) = &mut heading {
                    h.push_str(&t);
                }
            }
            Event::End(TagEnd::Heading(_)) => {
                let h = heading.take().unwrap_or_default();
                let slug: String = h
                    .to_lowercase()
                    .chars()
                    .filter(|c| c.is_alphanumeric() || matches!(c, ' ' | '-' | '_'))
                    .map(|c| if c == ' ' { '-' } else { c })
                    .collect();
                let mut unique = slug.clone();
                let mut n = 0;
                while !out.insert(unique.clone()) {
                    n += 1;
                    unique = format!("{slug}-{n}");
                }
            }
            _ => {}
        }
    }
    out
}

#[test]
fn every_relative_link_and_anchor_resolves() {
    use pulldown_cmark::{Event, Parser, Tag};
    let mut broken = Vec::new();
    let mut checked = 0;
    for file in markdown_files() {
        let text = std::fs::read_to_string(&file).unwrap();
        let dir = file.parent().unwrap();
        for event in Parser::new(&text) {
            let (Event::Start(Tag::Link { dest_url, .. })
            | Event::Start(Tag::Image { dest_url, .. })) = event
            else {
                continue;
            };
            if dest_url.contains("://") || dest_url.starts_with("mailto:") {
                continue;
            }
            checked += 1;
            let (path, anchor) = dest_url.split_once('#').unwrap_or((&dest_url, ""));
            let target = if path.is_empty() {
                file.clone()
            } else {
                dir.join(path)
            };
            let name = file.file_name().unwrap().to_string_lossy().into_owned();
            if !target.exists() {
                broken.push(format!("{name}: {dest_url}: no such file"));
                continue;
            }
            let is_markdown = target.extension().is_some_and(|x| x == "md");
            if !anchor.is_empty() && is_markdown {
                let there = anchors(&std::fs::read_to_string(&target).unwrap());
                if !there.contains(anchor) {
                    broken.push(format!("{name}: {dest_url}: no such heading"));
                }
            }
        }
    }
    assert!(checked > 20, "only {checked} relative links found");
    assert!(broken.is_empty(), "broken links: {broken:#?}");
}
