#![no_main]
//! The config loaders never panic: any text is a config (sqlite-ops's own, or a web config in
//! exporter-toolkit's format) or an error naming the file.
use libfuzzer_sys::fuzz_target;
use sqlite_ops::config::Config;
use sqlite_ops::web::web_config;

fuzz_target!(|data: &[u8]| {
    if let Ok(s) = std::str::from_utf8(data) {
        match Config::parse(s, "fuzz.yaml") {
            Ok(c) => {
                let _ = c.targets(&[], "fuzz.yaml");
            }
            Err(e) => assert_eq!(e.source, "fuzz.yaml"),
        }
        if let Err(e) = web_config::parse(s, "web.yml", std::path::Path::new("/etc")) {
            assert_eq!(e.source, "web.yml");
        }
    }
});
