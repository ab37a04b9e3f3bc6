//! The scenario file reader (`chaos_harness::scenario::file::parse_str`): any text, no panic;
//! every error has a position inside the text; every scenario read plans or reports its
//! problems, and its spec survives a JSON round trip. The same text is also read as a project
//! file (`chaos.toml`, `scenario::project::ProjectFile::parse_str`): no panic, positions inside.
#![no_main]

use chaos_harness::scenario::ScenarioSpec;
use chaos_harness::scenario::file::{Options, parse_str};
use chaos_harness::scenario::project::ProjectFile;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else { return };
    let lines = text.lines().count().max(1) + 1;
    if let Err(errors) = ProjectFile::parse_str("chaos.toml", text) {
        assert!(!errors.0.is_empty());
        for e in errors.0 {
            assert!(e.line >= 1 && e.line <= lines && e.column >= 1, "line {} of {lines}: {e}", e.line);
        }
    }
    let opts = Options { no_process_env: true, ..Options::default() };
    match parse_str("fuzz.chaos.toml", text, &opts) {
        Ok(scenarios) => {
            for s in scenarios {
                let _ = s.spec.plan();
                let json = serde_json::to_string(&s.spec).expect("serialises");
                let back: ScenarioSpec = serde_json::from_str(&json).expect("parses back");
                assert_eq!(back, s.spec);
            }
        }
        Err(errors) => {
            assert!(!errors.0.is_empty());
            for e in errors.0 {
                assert!(e.line >= 1 && e.line <= lines, "line {} of {lines}: {e}", e.line);
                assert!(e.column >= 1);
            }
        }
    }
});
