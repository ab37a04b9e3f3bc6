//! The per-test overhead of the harness ([performance] item 1), as ratios measured in one run:
//!
//! - **harness test**: `fixtures/selftest-suite/tests/overhead/chaos.rs`, one `#[chaos_test]`
//!   that starts `sleep`, SIGKILLs it and checks it is gone within 1 s;
//! - **plain test**: `tests/overhead/plain.rs`, a libtest test doing the same with
//!   `std::process` (the baseline);
//! - **Chaos Toolkit**: the same kill-and-verify experiment (`benches/chaostoolkit-kill.json`)
//!   run by `chaos run` of Chaos Toolkit, the usual peer (from PyPI, installed on first use
//!   into `target/chaos-cache/ctk`; set `CHAOS_BENCH_NO_CTK=1` to skip it).
//!
//! Each is timed as a whole process (spawn to exit), in turn (plain, harness, toolkit, plain,
//! ...), after a warm-up, so machine drift affects all three alike; medians and the ratio
//! harness/plain and harness/toolkit are printed. Goals: harness/plain <= 2.0 and
//! harness/toolkit <= 0.1. Needs root (the harness's cgroups).
//!
//! Run: `cargo bench --bench overhead [-- ROUNDS]` (default 21 rounds).

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

fn workspace() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// Builds `--test NAME` of the selftest suite in the bench's profile and returns its path.
fn test_binary(name: &str) -> PathBuf {
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let out = Command::new(cargo)
        .current_dir(workspace())
        .args(["test", "-p", "selftest-suite", "--test", name, "--no-run", "--message-format=json"])
        .stderr(Stdio::inherit())
        .output()
        .expect("running cargo");
    assert!(out.status.success(), "building {name} failed");
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
        .filter_map(|v| v.get("executable").and_then(|e| e.as_str()).map(PathBuf::from))
        .next_back()
        .unwrap_or_else(|| panic!("cargo reported no executable for {name}"))
}

/// The Chaos Toolkit CLI, installed into a venv under the target dir on first use.
fn chaostoolkit() -> Option<PathBuf> {
    if std::env::var_os("CHAOS_BENCH_NO_CTK").is_some() {
        return None;
    }
    let venv = workspace().join("target/chaos-cache/ctk");
    let bin = venv.join("bin/chaos");
    if !bin.exists() {
        eprintln!("installing Chaos Toolkit from PyPI into {}", venv.display());
        let ok = Command::new("python3").args(["-m", "venv"]).arg(&venv).status().is_ok_and(|s| s.success())
            && Command::new(venv.join("bin/pip"))
                .args(["install", "-q", "chaostoolkit"])
                .status()
                .is_ok_and(|s| s.success());
        if !ok {
            eprintln!("could not install Chaos Toolkit (no PyPI?): the toolkit column is skipped");
            return None;
        }
    }
    Some(bin)
}

/// Wall time of one run of `cmd` (spawn to exit); panics if it fails.
fn time_once(what: &str, cmd: &mut Command) -> Duration {
    let t0 = Instant::now();
    let out = cmd.stdout(Stdio::null()).stderr(Stdio::piped()).output().expect("spawn");
    let took = t0.elapsed();
    assert!(out.status.success(), "{what} failed: {}", String::from_utf8_lossy(&out.stderr));
    took
}

fn median(v: &mut [Duration]) -> Duration {
    v.sort();
    v[v.len() / 2]
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1e3
}

fn main() {
    let rounds: usize =
        std::env::args().skip(1).find(|a| !a.starts_with('-')).and_then(|a| a.parse().ok()).unwrap_or(21);
    let harness = test_binary("overhead-chaos");
    let plain = test_binary("overhead-plain");
    let ctk = chaostoolkit();
    let experiment = workspace().join("benches/chaostoolkit-kill.json");
    let scratch = tempfile::tempdir().expect("temp dir");
    let run_ctk = |bin: &Path| {
        let mut c = Command::new(bin);
        c.current_dir(scratch.path()).args(["--no-log-file", "run", "--no-verify-tls"]).arg(&experiment);
        c
    };
    // Warm-up: page cache, the reaper's first exec, Python's bytecode cache.
    time_once("plain", &mut Command::new(&plain));
    time_once("harness", &mut Command::new(&harness));
    if let Some(bin) = &ctk {
        time_once("chaostoolkit", &mut run_ctk(bin));
    }
    let (mut p, mut h, mut t) = (Vec::new(), Vec::new(), Vec::new());
    let (mut hp, mut ht) = (Vec::new(), Vec::new());
    for _ in 0..rounds {
        let a = time_once("plain", &mut Command::new(&plain));
        let b = time_once("harness", &mut Command::new(&harness));
        p.push(a);
        h.push(b);
        hp.push(b.as_secs_f64() / a.as_secs_f64());
        if let Some(bin) = &ctk {
            let c = time_once("chaostoolkit", &mut run_ctk(bin));
            t.push(c);
            ht.push(b.as_secs_f64() / c.as_secs_f64());
        }
    }
    let med = |v: &mut Vec<f64>| {
        v.sort_by(f64::total_cmp);
        v[v.len() / 2]
    };
    println!("per-test overhead, {rounds} rounds, whole processes, medians:");
    println!("  plain libtest test (baseline)  {:8.1} ms", ms(median(&mut p)));
    println!("  harness #[chaos_test]           {:8.1} ms", ms(median(&mut h)));
    if !t.is_empty() {
        println!("  Chaos Toolkit experiment        {:8.1} ms", ms(median(&mut t)));
    }
    println!("  harness / plain (pairwise)      {:8.2}   (goal <= 2.0)", med(&mut hp));
    if !ht.is_empty() {
        println!("  harness / Chaos Toolkit         {:8.3}   (goal <= 0.1)", med(&mut ht));
    }
}
