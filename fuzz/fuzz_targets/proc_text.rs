//! Text the harness reads from the kernel but that users shape: `/proc/PID/stat` (a process
//! names itself: `comm` may hold spaces and parentheses), `/proc/mounts` (mount points are
//! user paths), `nft list tables`, `/proc/meminfo` and `/proc/loadavg` (guards).
#![no_main]

use chaos_harness::safety::{cleanup, guard};
use chaos_harness::sandbox::{cgroup, procfs};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else { return };
    if let Some(s) = procfs::parse_stat(text) {
        let _ = (s.is_dead(), s.is_stopped());
    }
    let _ = cgroup::parse_mounts(text);
    for (family, name) in cleanup::parse_nft_tables(text) {
        assert!(name.starts_with("chaos_") && !family.is_empty());
    }
    let _ = guard::mem_check(text, 10.0);
    let _ = guard::load_check(text, 1.0);
});
