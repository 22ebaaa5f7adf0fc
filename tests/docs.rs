//! The README stays true: it documents every exported metric and alert, and CI runs its test
//! command.

use sqlite_ops::export::metrics::METRICS;

fn read(path: &str) -> String {
    std::fs::read_to_string(std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join(path)).unwrap()
}

#[test]
fn readme_documents_every_metric() {
    let readme = read("README.md");
    for d in METRICS {
        assert!(
            readme.contains(&format!("| `{}` |", d.name)),
            "README.md documents {}",
            d.name
        );
    }
}

#[test]
fn readme_lists_every_alert_with_its_config_key() {
    let readme = read("README.md");
    for r in sqlite_ops::rules::RULES {
        assert!(
            readme.contains(&format!("| `{}` | `{}` |", r.alert, r.key)),
            "README.md lists {} ({})",
            r.alert,
            r.key
        );
    }
}

#[test]
fn every_alert_has_a_runbook_section() {
    let runbooks = read("docs/runbooks.md");
    for r in sqlite_ops::rules::RULES {
        assert!(
            runbooks.contains(&format!("\n## {}\n", r.alert)),
            "docs/runbooks.md has a section for {} (the anchor of its runbook_url)",
            r.alert
        );
        assert!(sqlite_ops::config::default_runbook_base_url().ends_with("docs/runbooks.md"));
    }
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
