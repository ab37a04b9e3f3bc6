//! The audit log reader (`chaos_harness::sandbox::audit::parse`): any text, no panic, and
//! accepted entries round-trip.
#![no_main]

use chaos_harness::sandbox::audit::{AuditEntry, parse};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else { return };
    let (ok, bad) = parse(text);
    assert!(ok.len() + bad.len() <= text.lines().count());
    for e in ok {
        let s = serde_json::to_string(&e).expect("serialises");
        let back: AuditEntry = serde_json::from_str(&s).expect("parses");
        assert_eq!(back, e);
    }
});
