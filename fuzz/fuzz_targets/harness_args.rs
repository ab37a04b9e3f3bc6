//! The test binary's own arguments and environment: `--tag`, `--skip-tag`, `--junit`,
//! `CHAOS_TAGS`, `CHAOS_SEED` (decimal or hex), `CHAOS_TIMEOUT` (durations), `CHAOS_JUNIT`,
//! `CHAOS_REQUIRE_ALL`, plus libtest's flags. Input: NUL-separated argv, then after a 0xFF byte
//! newline-separated `KEY=VALUE` environment lines.
#![no_main]

use chaos_harness::runner::args::{parse_seed, try_parse};
use chaos_harness::runner::tags::TagFilter;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let (argv, env) = match data.iter().position(|b| *b == 0xFF) {
        Some(i) => (&data[..i], &data[i + 1..]),
        None => (data, &[][..]),
    };
    let args: Vec<std::ffi::OsString> = std::iter::once("bin".into())
        .chain(argv.split(|b| *b == 0).map(|a| String::from_utf8_lossy(a).into_owned().into()))
        .collect();
    // Help and version requests (also inside combined short flags like `-qhh`) come back as
    // `Parsed::Help`: `try_parse` never exits, so nothing needs filtering out here.
    let env_text = String::from_utf8_lossy(env).into_owned();
    let lookup = |k: &str| env_text.lines().find_map(|l| l.split_once('=').filter(|(kk, _)| *kk == k).map(|(_, v)| v.to_string()));
    let _ = try_parse(args, lookup);
    for line in env_text.lines() {
        let _ = parse_seed(line);
        if let Ok(f) = TagFilter::parse(line) {
            let tags: Vec<&str> = line.split(|c: char| !c.is_ascii_alphanumeric()).collect();
            let _ = f.selects(&tags);
        }
    }
});
