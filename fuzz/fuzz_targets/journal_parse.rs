//! The journal reader: any bytes on disk (torn lines, hand edits, other versions) must parse
//! without panicking, and every line it accepts must survive a serialise/parse round trip.
#![no_main]

use chaos_harness::sandbox::journal::{Line, Parsed};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else { return };
    let p = Parsed::parse(text);
    assert!(p.pending.iter().all(|e| e.seq < p.next_seq.max(1)));
    for raw in text.lines() {
        if let Ok(line) = serde_json::from_str::<Line>(raw) {
            let again = serde_json::to_string(&line).expect("a parsed line serialises");
            let back: Line = serde_json::from_str(&again).expect("a serialised line parses");
            assert_eq!(back, line);
            // Undo descriptions of any effect the journal accepts must not panic either.
            if let chaos_harness::sandbox::journal::Record::Do { effect } = &line.record {
                let _ = effect.to_string();
                let _ = chaos_harness::sandbox::dry_run::describe(effect);
            }
        }
    }
});
