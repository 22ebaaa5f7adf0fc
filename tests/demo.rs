//! `sqlite-ops demo` (issue 2): runs on its own, prints live lines, serves metrics, and its
//! closing line shows the count matched the application's commits exactly.

use std::process::Command;

#[test]
fn demo_runs_and_counts_exactly() {
    let out = Command::new(env!("CARGO_BIN_EXE_sqlite-ops"))
        .args([
            "demo",
            "--duration",
            "5s",
            "--rate",
            "300",
            "--web.listen-address",
            "127.0.0.1:0",
        ])
        .output()
        .expect("demo runs");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "stdout:\n{stdout}\nstderr:\n{stderr}");
    assert!(stdout.contains("metrics: http://127.0.0.1:"), "{stdout}");
    assert!(
        stdout.contains("status page: http://127.0.0.1:"),
        "{stdout}"
    );
    // A line a second for 5 s (a loaded machine may print one late: at least 2 is certain).
    let live = stdout
        .lines()
        .filter(|l| l.contains("tx/s") && l.contains("checkpoint lag"))
        .count();
    assert!(live >= 2, "a live line per second:\n{stdout}");
    // The numbers, not the word: what the application says it committed (its own count) and
    // what sqlite-ops counted.
    let last = stdout.lines().last().unwrap_or_default();
    let numbers: Vec<u64> = last
        .split(|c: char| !c.is_ascii_digit())
        .filter_map(|n| n.parse().ok())
        .collect();
    let [committed, counted] = numbers[..] else {
        panic!("two numbers in the closing line: {last}")
    };
    assert!(committed > 0, "{stdout}");
    assert_eq!(counted, committed, "{stdout}");
}

#[test]
fn example_config_is_valid() {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("config.example.yaml");
    let cfg = sqlite_ops::config::Config::load(&path).unwrap_or_else(|e| panic!("{e}"));
    assert!(!cfg.databases.is_empty());
    // Its thresholds: block lists every rule with its defaults, as it says.
    let example = cfg
        .global_thresholds(&path.display().to_string())
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(example, sqlite_ops::rules::DbThresholds::default());
    for rule in sqlite_ops::rules::RULES {
        assert!(
            cfg.thresholds.contains_key(rule.key),
            "{} is listed",
            rule.key
        );
    }
}
