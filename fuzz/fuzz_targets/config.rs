#![no_main]
//! The config loader never panics: any text is a config or an error naming a field.
use libfuzzer_sys::fuzz_target;
use sqlite_ops::config::Config;

fuzz_target!(|data: &[u8]| {
    if let Ok(s) = std::str::from_utf8(data) {
        match Config::parse(s, "fuzz.yaml") {
            Ok(c) => {
                let _ = c.targets(&[], "fuzz.yaml");
            }
            Err(e) => assert_eq!(e.source, "fuzz.yaml"),
        }
    }
});
