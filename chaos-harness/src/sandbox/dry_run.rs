//! Dry runs: `CHAOS_DRY_RUN=1` prints the plan and the exact side effects, and performs none.
//!
//! The cut is made where every side effect passes: [`Journal::record`](crate::sandbox::journal::Journal::record),
//! which [`Sandbox::record`](crate::sandbox::Sandbox::record), fixture cgroups and spawns, and every journaled fault go
//! through. In a dry run it prints `dry run [<test>]: would <effect>`, adds the line to
//! [`Sandbox::plan`](crate::sandbox::Sandbox::plan), writes a `planned` audit line, and refuses
//! the effect with [`Error::DryRun`](crate::Error::DryRun) instead of calling the closure that
//! would perform it. Fixture cgroups are all planned (the sandbox keeps planning across
//! hierarchies); a scenario prints each step and fault description instead of running it; a
//! fault injected directly is refused before it acts (faults that are not journaled, such as
//! kills, could otherwise act). The test stops at the first effect whose *result* it needs
//! (usually the first fixture's spawn), and the runner reports it as ignored with the count of
//! planned effects.
//!
//! The only thing a dry run creates is its own bookkeeping: the sandbox temp dir with the
//! journal header, removed at teardown. It is therefore allowed where the production guard
//! refuses real runs.
//!
//! ```
//! use chaos_harness::sandbox::Effect;
//! use chaos_harness::sandbox::dry_run::describe;
//! assert_eq!(describe(&Effect::Netns { name: "chaos-a".into() }), "would create network namespace chaos-a");
//! ```

use crate::sandbox::Effect;

/// Environment switch for dry runs.
pub const DRY_RUN_ENV: &str = "CHAOS_DRY_RUN";

/// Whether `CHAOS_DRY_RUN` asks for a dry run (`1`, `true`, `yes`).
///
/// ```
/// let _ = chaos_harness::sandbox::dry_run::enabled();
/// ```
pub fn enabled() -> bool {
    std::env::var(DRY_RUN_ENV).is_ok_and(|v| matches!(v.trim().to_ascii_lowercase().as_str(), "1" | "true" | "yes"))
}

/// The `would ...` line for an effect: what a real run would do, with every detail the journal
/// would record.
///
/// ```
/// use chaos_harness::sandbox::Effect;
/// let e = Effect::Rlimit { pid: 42, start_time: 1, resource: 7, soft: 1024, hard: 4096 };
/// assert_eq!(chaos_harness::sandbox::dry_run::describe(&e),
///     "would change rlimit 7 of pid 42 (restored to 1024/4096 afterwards)");
/// ```
pub fn describe(effect: &Effect) -> String {
    let what = match effect {
        Effect::TempDir { path } => format!("create temp dir {}", path.display()),
        Effect::CgroupParent { mount, .. } => format!("create cgroup parent {}/chaos-harness", mount.display()),
        Effect::Cgroup { cgroup } => format!("create cgroup {}", cgroup.dir().display()),
        Effect::Process { fixture, program, run_id } => {
            format!("spawn fixture {fixture}: {program} (marked {}={run_id})", crate::sandbox::RUN_MARKER_ENV)
        }
        Effect::Frozen { cgroup } => format!("freeze cgroup {}", cgroup.dir().display()),
        Effect::Stopped { pid, .. } => format!("send SIGSTOP to pid {pid}"),
        Effect::CgroupLimit { dir, file, previous } => {
            format!("change {}/{file} (restored to {previous} afterwards)", dir.display())
        }
        Effect::Rlimit { pid, resource, soft, hard, .. } => {
            format!("change rlimit {resource} of pid {pid} (restored to {soft}/{hard} afterwards)")
        }
        Effect::Mount { target } => format!("mount a filesystem on {}", target.display()),
        Effect::File { path } => format!("create file {}", path.display()),
        Effect::Netns { name } => format!("create network namespace {name}"),
        Effect::NftTable { family, name, netns } => match netns {
            Some(ns) => format!("create nft table {family} {name} in network namespace {ns}"),
            None => format!("create nft table {family} {name}"),
        },
        Effect::ToxiproxyProxy { url, name } => format!("create Toxiproxy proxy {name} on {url}"),
        Effect::Plugin { plugin, data } => format!("perform plugin effect {plugin} {data}"),
    };
    format!("would {what}")
}

/// Prints a scenario's plan (one `would ...` line per step) for a dry run, and returns the
/// lines. Called by [`Scenario::run`](crate::scenario::Scenario::run) in dry-run sandboxes.
///
/// ```
/// let lines = chaos_harness::sandbox::dry_run::print_scenario("t", "s", &["inject kill main of web".into()]);
/// assert_eq!(lines, vec!["would inject kill main of web".to_string()]);
/// ```
pub fn print_scenario(test: &str, scenario: &str, steps: &[String]) -> Vec<String> {
    eprintln!("dry run [{test}]: scenario {scenario:?}, {} steps, not run:", steps.len());
    steps
        .iter()
        .map(|s| {
            let line = format!("would {s}");
            eprintln!("dry run [{test}]:   {line}");
            line
        })
        .collect()
}

/// Whether an error (or any error in its chain) is a dry-run refusal.
///
/// ```
/// let e = anyhow::Error::new(chaos_harness::Error::DryRun { effect: "x".into() }).context("starting web");
/// assert!(chaos_harness::sandbox::dry_run::is_dry_run_stop(&e));
/// ```
pub fn is_dry_run_stop(e: &anyhow::Error) -> bool {
    e.chain().any(|c| matches!(c.downcast_ref::<crate::Error>(), Some(crate::Error::DryRun { .. })))
}
