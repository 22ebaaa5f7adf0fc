//! `config.example.yaml`, which the install steps tell users to copy: complete (every key the
//! config accepts appears in it, commented out where it is off by default) and valid with every
//! commented-out setting turned on; and `docs/configuration.md`, which names every key in its
//! section; and every config block the README and the manual show. The keys accepted are asked
//! of the config parser itself: each section, given a key it does not know, answers with the
//! keys it expects.

use serde_yaml::{Mapping, Value};
use std::collections::{BTreeMap, BTreeSet};

fn example() -> String {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("config.example.yaml");
    std::fs::read_to_string(path).unwrap()
}

/// Whether a line's text (after its indent) is a YAML setting: `key:` or `- key:`.
fn is_setting(text: &str) -> bool {
    let text = text.strip_prefix("- ").unwrap_or(text);
    let key_len = text
        .find(|c: char| !(c.is_ascii_lowercase() || c == '_'))
        .unwrap_or(text.len());
    key_len > 0 && text[key_len..].starts_with(':')
}

/// The example with its commented-out settings turned on: a commented line that reads as a
/// setting (or as a comment inside a commented block) loses its `# `; prose stays a comment.
fn uncommented(text: &str) -> String {
    let mut out = String::new();
    for line in text.lines() {
        let indent = line.len() - line.trim_start().len();
        let turned_on = line[indent..]
            .strip_prefix("# ")
            .filter(|rest| is_setting(rest.trim_start()) || rest.trim_start().starts_with('#'))
            .map(|rest| format!("{}{rest}", &line[..indent]));
        out.push_str(turned_on.as_deref().unwrap_or(line));
        out.push('\n');
    }
    out
}

/// A step into a YAML document: a mapping's key, or any element of a sequence.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
enum Step {
    Key(String),
    Each(usize),
}

/// Every mapping in `v`, by its path, with the keys it holds.
fn mappings(v: &Value, path: &mut Vec<Step>, out: &mut Vec<(Vec<Step>, BTreeSet<String>)>) {
    match v {
        Value::Mapping(m) => {
            let keys = m.keys().filter_map(|k| k.as_str().map(String::from));
            out.push((path.clone(), keys.collect()));
            for (k, child) in m {
                path.push(Step::Key(k.as_str().unwrap_or_default().to_string()));
                mappings(child, path, out);
                path.pop();
            }
        }
        Value::Sequence(items) => {
            for (i, child) in items.iter().enumerate() {
                path.push(Step::Each(i));
                mappings(child, path, out);
                path.pop();
            }
        }
        _ => {}
    }
}

fn at<'v>(v: &'v mut Value, path: &[Step]) -> &'v mut Mapping {
    let mut v = v;
    for step in path {
        v = match step {
            Step::Key(k) => v.get_mut(k.as_str()).unwrap(),
            Step::Each(i) => v.get_mut(*i).unwrap(),
        };
    }
    v.as_mapping_mut().unwrap()
}

/// The keys the parser expects where `path` points, from its answer to a key it does not know;
/// `None` where any key is taken (labels, headers) or the keys are checked elsewhere.
fn expected_at(doc: &Value, path: &[Step]) -> Option<BTreeSet<String>> {
    let mut probe = doc.clone();
    at(&mut probe, path).insert("zz_unknown".into(), Value::from(1));
    let text = serde_yaml::to_string(&probe).unwrap();
    let err = sqlite_ops::config::Config::parse(&text, "probe")
        .err()?
        .to_string();
    let (_, expected) = err.split_once("unknown field `zz_unknown`, expected ")?;
    let expected = expected.split(" at line").next().unwrap();
    Some(
        expected
            .split('`')
            .skip(1)
            .step_by(2)
            .map(String::from)
            .collect(),
    )
}

/// A section of the config: where it sits (a sequence's elements as one, `Each(0)`), the keys
/// the uncommented example shows there, and the keys the parser expects there (`None` where
/// any key is taken).
struct Section {
    shape: Vec<Step>,
    shown: BTreeSet<String>,
    expected: Option<BTreeSet<String>>,
}

/// Every section of the uncommented example, each asked of the parser.
fn sections() -> Vec<Section> {
    let text = uncommented(&example());
    let config = sqlite_ops::config::Config::parse(&text, "config.example.yaml, uncommented");
    config.unwrap_or_else(|e| panic!("every commented-out setting turned on is valid: {e}"));
    let doc: Value = serde_yaml::from_str(&text).unwrap();
    let mut found = Vec::new();
    mappings(&doc, &mut Vec::new(), &mut found);
    // A sequence's elements share their keys: `databases:` shows each key in some entry.
    let mut present: BTreeMap<Vec<Step>, BTreeSet<String>> = BTreeMap::new();
    let mut example_of: BTreeMap<Vec<Step>, Vec<Step>> = BTreeMap::new();
    for (path, keys) in found {
        let shape: Vec<Step> = path
            .iter()
            .map(|s| match s {
                Step::Each(_) => Step::Each(0),
                key => key.clone(),
            })
            .collect();
        present.entry(shape.clone()).or_default().extend(keys);
        example_of.entry(shape).or_insert(path);
    }
    present
        .into_iter()
        .map(|(shape, shown)| Section {
            expected: expected_at(&doc, &example_of[&shape]),
            shape,
            shown,
        })
        .collect()
}

#[test]
fn every_key_the_config_accepts_is_in_the_example() {
    let sections = sections();
    let top_level = |key: &Step| {
        sections
            .iter()
            .find(|s| s.shape.as_slice() == std::slice::from_ref(key))
    };
    let mut missing = Vec::new();
    let mut probed = 0;
    for section in &sections {
        // A threshold lists the levels that have a default; the rules are checked by
        // example_config_is_valid.
        if section.shape.contains(&Step::Key("thresholds".into())) {
            continue;
        }
        let Some(expected) = &section.expected else {
            continue;
        };
        probed += 1;
        // A database's `restore_drill:` or `team:` overrides the file's field by field: its
        // fields are shown there.
        let mut keys = section.shown.clone();
        if let Some(top) = section.shape.last().and_then(top_level) {
            keys.extend(top.shown.iter().cloned());
        }
        missing.extend(
            expected
                .difference(&keys)
                .map(|k| format!("{:?}: {k}", section.shape)),
        );
    }
    assert!(
        probed >= 8,
        "the parser named its keys in {probed} sections only: the probe no longer works"
    );
    assert!(
        missing.is_empty(),
        "config.example.yaml lacks keys the config accepts: {missing:#?}"
    );
}

/// docs/configuration.md's sections, by the text of their `##` or `###` heading (backticks
/// dropped): `web` for "## `web`", and "Top level".
fn reference_sections() -> BTreeMap<String, String> {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("docs/configuration.md");
    let text = std::fs::read_to_string(path).unwrap();
    let mut out: BTreeMap<String, String> = BTreeMap::new();
    let mut current = String::new();
    let mut fenced = false;
    for line in text.lines() {
        fenced ^= line.starts_with("```");
        let heading = line
            .strip_prefix("### ")
            .or_else(|| line.strip_prefix("## "));
        match heading {
            Some(h) if !fenced => current = h.replace('`', ""),
            _ => {
                let body = out.entry(current.clone()).or_default();
                body.push_str(line);
                body.push('\n');
            }
        }
    }
    out
}

#[test]
fn the_configuration_reference_documents_every_key_the_config_accepts() {
    let reference = reference_sections();
    // A section is documented under the heading of its innermost key that has one
    // (`databases[].team` under `team`, `notify.webhooks[]` under `webhooks`), the file's own
    // keys under "Top level".
    let home = |shape: &[Step]| {
        shape
            .iter()
            .rev()
            .find_map(|s| match s {
                Step::Key(k) if reference.contains_key(k) => Some(k.clone()),
                _ => None,
            })
            .unwrap_or_else(|| "Top level".to_string())
    };
    let mut missing = Vec::new();
    let mut probed = 0;
    for section in sections() {
        let Some(expected) = section.expected else {
            continue;
        };
        probed += 1;
        let heading = home(&section.shape);
        let body = reference.get(&heading).map_or("", String::as_str);
        missing.extend(
            expected
                .iter()
                .filter(|k| !body.contains(&format!("`{k}`")))
                .map(|k| format!("{:?} under \"{heading}\": {k}", section.shape)),
        );
    }
    // The rules' keys are checked by the config itself, not by serde: each is named where
    // `thresholds:` is.
    let thresholds = reference.get("thresholds").map_or("", String::as_str);
    missing.extend(
        sqlite_ops::rules::RULES
            .iter()
            .filter(|r| !thresholds.contains(&format!("`{}`", r.key)))
            .map(|r| format!("thresholds: {}", r.key)),
    );
    assert!(
        probed >= 8,
        "the parser named its keys in {probed} sections only: the probe no longer works"
    );
    assert!(
        missing.is_empty(),
        "docs/configuration.md lacks keys the config accepts: {missing:#?}"
    );
}

/// Copied as it is, the example reaches out to no service: Alertmanager, webhooks and the
/// heartbeat are commented out, for the user to turn on.
#[test]
fn the_example_as_copied_reaches_out_to_nothing() {
    let cfg: Value = serde_yaml::from_str(&example()).unwrap();
    for key in ["alertmanager", "notify", "restore_drill"] {
        assert!(cfg.get(key).is_none(), "{key} is commented out");
    }
    let on: Value = serde_yaml::from_str(&uncommented(&example())).unwrap();
    for key in ["alertmanager", "notify", "restore_drill"] {
        assert!(
            on.get(key).is_some(),
            "{key} is in the example, commented out"
        );
    }
}

/// The config blocks the README and the manual show (a `yaml` block whose keys are all the
/// config's own) are configs the daemon takes as written: `sqlite-ops rules --config` reads
/// and checks each in full.
#[test]
fn every_config_the_docs_show_is_one_the_daemon_takes() {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
    let top = expected_at(&Value::Mapping(Mapping::new()), &[]).expect("the top-level keys");
    let mut files = vec![root.join("README.md")];
    for e in std::fs::read_dir(root.join("docs")).unwrap() {
        let path = e.unwrap().path();
        if path.extension().is_some_and(|x| x == "md") {
            files.push(path);
        }
    }
    let dir = tempfile::tempdir().unwrap();
    let mut checked = 0;
    for file in files {
        let text = std::fs::read_to_string(&file).unwrap();
        for block in text.split("```yaml\n").skip(1) {
            let block = block.split("```").next().unwrap();
            let Ok(Value::Mapping(m)) = serde_yaml::from_str::<Value>(block) else {
                continue;
            };
            let ours = m
                .keys()
                .all(|k| k.as_str().is_some_and(|k| top.contains(k)));
            if !ours || m.is_empty() {
                continue;
            }
            let cfg = dir.path().join("shown.yaml");
            std::fs::write(&cfg, block).unwrap();
            let out = std::process::Command::new(env!("CARGO_BIN_EXE_sqlite-ops"))
                .args(["rules", "--config", cfg.to_str().unwrap()])
                .output()
                .unwrap();
            assert!(
                out.status.success(),
                "{}: a config block the daemon refuses: {}\n{block}",
                file.display(),
                String::from_utf8_lossy(&out.stderr)
            );
            checked += 1;
        }
    }
    assert!(checked >= 3, "only {checked} config blocks found");
}
