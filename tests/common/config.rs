//! A sqlite-ops config file built from typed values and written as YAML by serde, so that a test
//! says what it sets, and a path with a space or a quote cannot break the file.

use serde_json::{json, Map, Value};
use std::path::{Path, PathBuf};

#[derive(Debug, Default, Clone)]
pub struct ConfigFile(Map<String, Value>);

impl ConfigFile {
    pub fn new() -> Self {
        ConfigFile::default()
    }

    /// Sets a top-level field (`poll_interval`, `restore_drill`, `alertmanager`, ...).
    pub fn set(mut self, key: &str, value: Value) -> Self {
        self.0.insert(key.into(), value);
        self
    }

    /// Adds a database at `path` named `name`.
    pub fn database(self, path: &Path, name: &str) -> Self {
        self.entry(json!({"path": path, "name": name}))
    }

    /// Adds a database at `path`, named after its file.
    pub fn watch(self, path: &Path) -> Self {
        self.entry(json!({ "path": path }))
    }

    /// Adds an entry to `databases:` as written (a `glob:`, thresholds of its own, ...).
    pub fn entry(mut self, entry: Value) -> Self {
        let list = self.0.entry("databases").or_insert_with(|| json!([]));
        list.as_array_mut()
            .expect("databases is a list")
            .push(entry);
        self
    }

    /// Sets one rule's levels in the global `thresholds:`.
    pub fn threshold(mut self, rule: &str, levels: Value) -> Self {
        let all = self.0.entry("thresholds").or_insert_with(|| json!({}));
        all.as_object_mut()
            .expect("thresholds is a map")
            .insert(rule.into(), levels);
        self
    }

    /// No disk alert: the test machine's disk is not what a test watches.
    pub fn no_disk_alert(self) -> Self {
        self.threshold(
            "filesystem_free",
            json!({"warning": "off", "critical": "off"}),
        )
    }

    /// Litestream's config, its replicas read every `interval`.
    /// Litestream's config, read every `interval`, idle replicas too (so that a test that
    /// changes a replica behind a stopped Litestream sees it at once).
    pub fn litestream(self, yml: &Path, interval: &str) -> Self {
        self.litestream_idle(yml, interval, interval)
    }

    /// Litestream's config, read every `interval`, and a replica that nothing new can be in
    /// every `idle`.
    pub fn litestream_idle(self, yml: &Path, interval: &str, idle: &str) -> Self {
        self.set(
            "litestream",
            json!({"config": yml, "interval": interval, "idle_interval": idle}),
        )
    }

    /// Writes it to `path` and gives the path back.
    pub fn write(&self, path: &Path) -> PathBuf {
        let yaml = serde_yaml::to_string(&self.0).expect("a config serializes");
        std::fs::write(path, yaml).unwrap();
        path.to_path_buf()
    }
}
