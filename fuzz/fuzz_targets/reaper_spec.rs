//! `CHAOS_HARNESS_REAPER` values: parsed before `main` in every binary linking the library, so
//! no input may panic; accepted specs round-trip.
#![no_main]

use chaos_harness::sandbox::reaper::ReaperSpec;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else { return };
    if let Ok(spec) = ReaperSpec::parse(text) {
        assert_eq!(ReaperSpec::parse(&spec.to_env()), Ok(spec));
        assert!(spec.fd >= 3 && spec.owner_pid > 1);
    }
});
