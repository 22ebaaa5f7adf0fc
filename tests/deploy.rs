//! Deployment artefacts, checked offline: the systemd unit verifies, the Dockerfile lints, the
//! Kubernetes manifests validate against the Kubernetes schemas, the PrometheusRule is what
//! `sqlite-ops rules --format kubernetes` prints and promtool accepts its rules, and the
//! completions, man page and version come from the command-line definitions.

use crate::common;

use common::{program, run_cli};
use std::path::PathBuf;
use std::process::Command;

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn tool(name: &str) -> (PathBuf, PathBuf) {
    let dir = root().join("target/test-tools/deploy");
    let bin = dir.join("bin").join(name);
    assert!(
        bin.exists(),
        "{} is missing: scripts/test installs it",
        bin.display()
    );
    (bin, dir)
}

fn ok(cmd: &mut Command) -> (String, String) {
    let out = cmd.output().unwrap();
    let (stdout, stderr) = (
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    );
    assert!(out.status.success(), "{cmd:?}: {stdout}{stderr}");
    (stdout, stderr)
}

#[test]
fn the_systemd_unit_verifies_without_a_warning() {
    // systemd-analyze checks that ExecStart exists: point it at the binary just built.
    let dir = tempfile::tempdir().unwrap();
    let unit = std::fs::read_to_string(root().join("deploy/systemd/sqlite-ops.service")).unwrap();
    assert!(unit.contains("ExecReload=/bin/kill -HUP $MAINPID"));
    for hardening in [
        "NoNewPrivileges=yes",
        "ProtectSystem=strict",
        "ProtectHome=yes",
        "PrivateTmp=yes",
        "ReadOnlyPaths=",
        "LimitNOFILE=",
    ] {
        assert!(unit.contains(hardening), "{hardening}");
    }
    let path = dir.path().join("sqlite-ops.service");
    std::fs::write(
        &path,
        unit.replace(
            "/usr/local/bin/sqlite-ops",
            env!("CARGO_BIN_EXE_sqlite-ops"),
        ),
    )
    .unwrap();
    let (_, stderr) = ok(Command::new(program("systemd-analyze", "systemd"))
        .arg("verify")
        .arg(&path));
    assert!(
        stderr.trim().is_empty(),
        "systemd-analyze verify warns: {stderr}"
    );
}

#[test]
fn the_dockerfile_lints_clean() {
    let (hadolint, _) = tool("hadolint");
    ok(Command::new(hadolint).arg(root().join("Dockerfile")));
    let dockerfile = std::fs::read_to_string(root().join("Dockerfile")).unwrap();
    assert!(dockerfile.contains("USER 65532"), "runs as non-root");
    assert!(std::fs::read_to_string(root().join(".dockerignore"))
        .unwrap()
        .contains("target/"));
}

#[test]
fn kubernetes_manifests_validate_and_the_rule_is_generated() {
    let (validate, dir) = tool("kubernetes-validate");
    let (out, _) = ok(Command::new(&validate)
        .env("PYTHONPATH", &dir)
        .arg("--strict")
        .arg(root().join("deploy/kubernetes/pod.yaml")));
    assert!(out.contains("passed for resource pod/app"), "{out}");
    assert!(
        out.contains("passed for resource configmap/app-sqlite-ops"),
        "{out}"
    );

    // The Pod: three containers on one volume, sqlite-ops's mount read-only.
    let pod: Vec<serde_yaml::Value> = serde_yaml::Deserializer::from_str(
        &std::fs::read_to_string(root().join("deploy/kubernetes/pod.yaml")).unwrap(),
    )
    .map(|d| serde::Deserialize::deserialize(d).unwrap())
    .collect();
    let containers = pod[1]["spec"]["containers"].as_sequence().unwrap();
    assert_eq!(containers.len(), 3);
    let ops = containers
        .iter()
        .find(|c| c["name"] == "sqlite-ops")
        .unwrap();
    let data = ops["volumeMounts"]
        .as_sequence()
        .unwrap()
        .iter()
        .find(|m| m["name"] == "data")
        .unwrap();
    assert_eq!(data["readOnly"], serde_yaml::Value::Bool(true));
    // The config it carries is one sqlite-ops accepts.
    let config = pod[0]["data"]["config.yaml"].as_str().unwrap();
    sqlite_ops::config::Config::parse(config, "pod.yaml").unwrap();

    // The PodMonitor (a CRD, so no Kubernetes schema): the fields the operator needs.
    let pm: serde_yaml::Value = serde_yaml::from_str(
        &std::fs::read_to_string(root().join("deploy/kubernetes/podmonitor.yaml")).unwrap(),
    )
    .unwrap();
    assert_eq!(pm["kind"], "PodMonitor");
    assert_eq!(pm["spec"]["podMetricsEndpoints"][0]["port"], "metrics");
    assert_eq!(
        pm["spec"]["selector"]["matchLabels"]["app.kubernetes.io/name"],
        pod[1]["metadata"]["labels"]["app.kubernetes.io/name"]
    );

    // The PrometheusRule is the generator's output, and its rules pass promtool.
    let (code, generated, err) = run_cli(&["rules", "--format", "kubernetes"]);
    assert_eq!(code, 0, "{err}");
    let committed =
        std::fs::read_to_string(root().join("deploy/kubernetes/prometheusrule.yaml")).unwrap();
    assert!(
        generated == committed,
        "deploy/kubernetes/prometheusrule.yaml is stale: sqlite-ops rules --format kubernetes > deploy/kubernetes/prometheusrule.yaml"
    );
    let rule: serde_yaml::Value = serde_yaml::from_str(&committed).unwrap();
    let groups = serde_yaml::to_string(&serde_yaml::Mapping::from_iter([(
        "groups".into(),
        rule["spec"]["groups"].clone(),
    )]))
    .unwrap();
    let tmp = tempfile::tempdir().unwrap();
    let file = tmp.path().join("rules.yml");
    std::fs::write(&file, groups).unwrap();
    ok(Command::new(program("promtool", "prometheus"))
        .args(["check", "rules"])
        .arg(&file));
}

#[test]
fn completions_man_page_and_version() {
    let (code, version, _) = run_cli(&["--version"]);
    assert_eq!(code, 0);
    assert_eq!(
        version.trim(),
        format!(
            "sqlite-ops {} (bundled SQLite {})",
            env!("CARGO_PKG_VERSION"),
            common::bundled_sqlite_version()
        )
    );
    for shell in ["bash", "zsh", "fish"] {
        let (code, script, err) = run_cli(&["completions", shell]);
        assert_eq!(code, 0, "{err}");
        for sub in ["run", "check", "rules", "demo", "completions", "man"] {
            assert!(script.contains(sub), "{shell} completes {sub}");
        }
        if shell == "bash" {
            let dir = tempfile::tempdir().unwrap();
            let f = dir.path().join("sqlite-ops.bash");
            std::fs::write(&f, &script).unwrap();
            ok(Command::new("bash").arg("-n").arg(&f));
        }
    }
    let (code, man, _) = run_cli(&["man"]);
    assert_eq!(code, 0);
    assert!(
        man.contains(".TH sqlite-ops 1"),
        "a section 1 man page in roff"
    );
    for sub in ["run", "check", "rules", "completions"] {
        assert!(
            man.contains(&format!("sqlite\\-ops\\-{sub}(1)")),
            "the man page lists {sub}"
        );
    }
    // A reader that stops early (`| head -3`) ends it quietly with status 0, as with other
    // Unix tools: nothing on stderr.
    for args in [
        &["man"][..],
        &["rules"],
        &["check", "--sample", "0s", "/nonexistent.db"],
    ] {
        let mut child = Command::new(env!("CARGO_BIN_EXE_sqlite-ops"))
            .args(args)
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        drop(child.stdout.take());
        let out = child.wait_with_output().unwrap();
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(
            !err.contains("Broken pipe") && !err.contains("panicked"),
            "{args:?}: {err}"
        );
        if args[0] != "check" {
            assert_eq!(out.status.code(), Some(0), "{args:?}: {err}");
        }
    }
}
