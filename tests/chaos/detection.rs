//! The detection matrix (issue [catalogue]): every defect of the reference target, the
//! scenario that must catch it and the criterion it must fail on, as one table. Each row is a
//! meta-test (`detection::catches_<defect>[_<scenario>]`, tags `meta`, `snakepit`): the
//! scenario runs against the target with that defect switched on and must fail on that
//! criterion. The healthy target runs the same scenarios as the suite's ordinary tests
//! (`snakepit.rs`, `resources.rs`) and the fast scenario catalogue (`fixtures/scenarios/snakepit`,
//! the `scenario_files` binary), where they must pass.
//!
//! Each meta-test records its result (caught, the criteria that failed, seconds) under
//! `target/tmp/detection/`; `docs/DETECTION.md` is generated from those records:
//!
//! ```sh
//! cargo test --test chaos -- --tag meta detection::
//! UPDATE_DOCS=1 cargo test --test chaos -- detection::detection_doc_is_current
//! ```
//!
//! (`scripts/detection` does both.) `detection::detection_doc_is_current` fails when the doc's
//! rows are not the matrix's, or a row records a defect that was not caught.

use std::future::Future;
use std::path::{Path, PathBuf};
use std::pin::Pin;
use std::time::{Duration, Instant};

use anyhow::Context;
use chaos_harness::fixture::snakepit::Defect;
use chaos_harness::prelude::*;
use chaos_harness::{Harness, TestBuilder};
use snakepit_chaos::scenarios::{self as s, Verdicts};

use crate::resources;
use crate::util::caught_by;

/// A scenario as a function of the target's defects.
pub type ScenarioFn = for<'a> fn(&'a mut Chaos, &'a [Defect]) -> Pin<Box<dyn Future<Output = Verdicts> + Send + 'a>>;

/// One row of the matrix.
pub struct Detection {
    /// The defect switched on.
    pub defect: Defect,
    /// The scenario that must catch it (its `chaos run` / catalogue name).
    pub scenario: &'static str,
    /// A part of the description of the criterion that must fail.
    pub criterion: &'static str,
    /// What the scenario needs of the host besides elixir and cgroups.
    pub requires: &'static [&'static str],
    /// The scenario.
    pub run: ScenarioFn,
}

impl Detection {
    /// The meta-test's name.
    pub fn test_name(&self) -> String {
        let dup = MATRIX.iter().filter(|d| d.defect == self.defect).count() > 1;
        if dup {
            format!("detection::catches_{}_{}", self.defect.name(), self.scenario.replace('-', "_"))
        } else {
            format!("detection::catches_{}", self.defect.name())
        }
    }
}

/// The detection matrix: every defect of the single-node reference target (`Defect::ALL` less
/// the cluster's three), in the order of the target's defect table, with the scenario and criterion that catch it.
pub const MATRIX: &[Detection] = &[
    Detection {
        defect: Defect::NoHeartbeat,
        scenario: "beam-sigkill",
        criterion: "no orphans",
        requires: &[],
        run: |cx, d| Box::pin(s::beam_sigkill(cx, d)),
    },
    Detection {
        defect: Defect::SlowDetect,
        scenario: "beam-sigkill",
        criterion: "no orphans",
        requires: &[],
        run: |cx, d| Box::pin(s::beam_sigkill(cx, d)),
    },
    Detection {
        defect: Defect::NoOrphanSweep,
        scenario: "beam-sigkill-restart",
        criterion: "are gone within",
        requires: &[],
        run: |cx, d| Box::pin(s::beam_sigkill_under_load_then_restart(cx, d)),
    },
    Detection {
        defect: Defect::NoRestart,
        scenario: "worker-sigkill",
        criterion: "respawned",
        requires: &[],
        run: |cx, d| Box::pin(s::worker_sigkill_under_load(cx, d)),
    },
    Detection {
        defect: Defect::GhostWorker,
        scenario: "worker-crash-sessions",
        criterion: "no ghost worker",
        requires: &[],
        run: |cx, d| Box::pin(s::worker_crash_keeps_sessions(cx, d)),
    },
    Detection {
        defect: Defect::OrphanOnKill,
        scenario: "worker-elixir-kill",
        criterion: "no orphaned workers",
        requires: &[],
        run: |cx, d| Box::pin(s::worker_elixir_kill_leaves_no_orphan(cx, d)),
    },
    Detection {
        defect: Defect::LeakGeneration,
        scenario: "pool-crash",
        criterion: "generation not leaked",
        requires: &[],
        run: |cx, d| Box::pin(s::pool_crash(cx, d)),
    },
    Detection {
        defect: Defect::StuckBusy,
        scenario: "abandoned-requests",
        criterion: "pool recovers capacity",
        requires: &[],
        run: |cx, d| Box::pin(s::abandoned_requests_free_their_workers(cx, d)),
    },
    Detection {
        defect: Defect::DropOnCrash,
        scenario: "worker-sigkill",
        criterion: "no lost requests",
        requires: &[],
        run: |cx, d| Box::pin(s::worker_sigkill_under_load(cx, d)),
    },
    Detection {
        defect: Defect::UnboundedQueue,
        scenario: "pool-saturation",
        criterion: "error rate of queue_timeout",
        requires: &[],
        run: |cx, d| Box::pin(s::pool_saturation_backpressure(cx, d)),
    },
    Detection {
        defect: Defect::LoseSessions,
        scenario: "worker-crash-sessions",
        criterion: "sessions survive",
        requires: &[],
        run: |cx, d| Box::pin(s::worker_crash_keeps_sessions(cx, d)),
    },
    Detection {
        defect: Defect::LoseSessions,
        scenario: "session-store-restart",
        criterion: "sessions survive",
        requires: &[],
        run: |cx, d| Box::pin(s::session_store_restart_keeps_sessions(cx, d)),
    },
    Detection {
        defect: Defect::LoseSessions,
        scenario: "sessions-ttl",
        criterion: "expire at their TTL",
        requires: &[],
        run: |cx, d| Box::pin(s::sessions_expire_at_ttl(cx, d)),
    },
    Detection {
        defect: Defect::CrashOnOom,
        scenario: "memory-squeeze",
        criterion: "the BEAM stays up",
        requires: &[],
        run: |cx, d| Box::pin(resources::memory_squeeze(cx, d)),
    },
    Detection {
        defect: Defect::CrashOnDiskFull,
        scenario: "disk-full",
        criterion: "rejected with disk_full",
        requires: &["tmpfs"],
        run: |cx, d| Box::pin(resources::disk_full(cx, d)),
    },
    Detection {
        defect: Defect::FdLeak,
        scenario: "fd-limit-modest",
        criterion: "worker_1 replaced",
        requires: &["root"],
        run: |cx, d| Box::pin(resources::fds_modest(cx, d)),
    },
    Detection {
        defect: Defect::TelemetryGap,
        scenario: "telemetry-restart",
        criterion: "keeps flowing",
        requires: &[],
        run: |cx, d| Box::pin(s::telemetry_through_worker_restart(cx, d)),
    },
    Detection {
        defect: Defect::HealthLies,
        scenario: "pool-crash",
        criterion: "health truthful",
        requires: &[],
        run: |cx, d| Box::pin(s::pool_crash(cx, d)),
    },
];

/// What one meta-test run recorded.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub struct Record {
    pub defect: String,
    pub scenario: String,
    pub criterion: String,
    pub caught: bool,
    /// The criteria that failed (full descriptions), or why the run proved nothing.
    pub failed: Vec<String>,
    pub seconds: f64,
}

/// Where the meta-tests record their results.
pub fn records_dir() -> PathBuf {
    Path::new(env!("CARGO_TARGET_TMPDIR")).join("detection")
}

fn record_path(d: &Detection) -> PathBuf {
    records_dir().join(format!("{}.json", d.test_name().trim_start_matches("detection::")))
}

fn doc_path() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("docs/DETECTION.md")
}

/// The meta-test of one row: the scenario with the defect on must fail on the row's criterion.
fn meta(
    d: &'static Detection,
) -> impl for<'a> FnOnce(&'a mut Chaos) -> chaos_harness::BoxFuture<'a, ChaosResult> + Send {
    move |cx: &mut Chaos| {
        Box::pin(async move {
            let t0 = Instant::now();
            let result = caught_by((d.run)(cx, &[d.defect]).await, d.criterion);
            let record = Record {
                defect: d.defect.name().into(),
                scenario: d.scenario.into(),
                criterion: d.criterion.into(),
                caught: result.is_ok(),
                failed: match &result {
                    Ok(f) => f.clone(),
                    Err(e) => vec![e.to_string().lines().next().unwrap_or_default().to_string()],
                },
                seconds: t0.elapsed().as_secs_f64(),
            };
            std::fs::create_dir_all(records_dir())?;
            std::fs::write(record_path(d), serde_json::to_string_pretty(&record)?)?;
            result.map(|_| ())
        })
    }
}

/// Adds one meta-test per row of the matrix, and the doc check.
pub fn register(h: Harness) -> TestBuilder {
    let mut t = h.test_sync("detection::detection_doc_is_current", detection_doc_is_current).tags(["docs", "meta"]);
    for d in MATRIX {
        let caps: Vec<&str> = ["elixir", "cgroups"].iter().chain(d.requires).copied().collect();
        t = t.test(d.test_name(), meta(d)).tags(["meta", "snakepit"]).requires(caps).timeout(Duration::from_secs(120));
    }
    t
}

/// docs/DETECTION.md from the recorded results.
fn render(records: &[Option<Record>]) -> String {
    let mut out = String::from(
        "# Detection matrix\n\n\
         Every defect of the reference target (`fixtures/snakepit-reference`, see \
         REFERENCE_TARGET in the design notes), the scenario that must catch it and the \
         criterion it must fail on. The matrix is data (`MATRIX` in `tests/chaos/detection.rs`); \
         each row is a meta-test `detection::catches_<defect>` that runs the scenario with the \
         defect switched on. The healthy target must pass the same scenarios (the suite's \
         ordinary tests and the fast catalogue).\n\n\
         Generated from the meta-suite's last run; do not edit by hand:\n\n\
         ```sh\nscripts/detection      # runs the meta-suite, then regenerates this file\n```\n\n\
         `detection::detection_doc_is_current` fails when this table is not the matrix or records a miss.\n\n",
    );
    let defects: std::collections::BTreeSet<&str> = MATRIX.iter().map(|d| d.defect.name()).collect();
    let caught: std::collections::BTreeSet<&str> = MATRIX
        .iter()
        .zip(records)
        .filter(|(_, r)| r.as_ref().is_some_and(|r| r.caught))
        .map(|(d, _)| d.defect.name())
        .collect();
    let total: f64 = records.iter().flatten().map(|r| r.seconds).sum();
    out += &format!(
        "**{} of {} defects caught** ({} scenario runs, {:.0} s summed over them; the runner runs them side by side).\n\n",
        caught.len(),
        defects.len(),
        MATRIX.len(),
        total
    );
    out += "| defect | scenario | criterion that must fail | caught | time | every failed criterion |\n";
    out += "|---|---|---|---|---|---|\n";
    for (d, r) in MATRIX.iter().zip(records) {
        let (yes, secs, failed) = match r {
            Some(r) => (
                if r.caught { "yes" } else { "**no**" },
                format!("{:.1} s", r.seconds),
                r.failed.iter().map(|f| f.replace('|', "\\|")).collect::<Vec<_>>().join("; "),
            ),
            None => ("not run", String::new(), String::new()),
        };
        out += &format!("| `{}` | `{}` | {} | {yes} | {secs} | {failed} |\n", d.defect.name(), d.scenario, d.criterion);
    }
    out
}

/// The (defect, scenario, criterion, caught) cells of the doc's table rows.
fn rows(doc: &str) -> Vec<Vec<String>> {
    doc.lines()
        .filter(|l| l.starts_with("| `"))
        .map(|l| {
            l.split(" | ").take(4).map(|c| c.trim_matches(|c| c == '|' || c == ' ' || c == '`').to_string()).collect()
        })
        .collect()
}

fn detection_doc_is_current(_cx: &mut Chaos) -> ChaosResult {
    let records: Vec<Option<Record>> = MATRIX
        .iter()
        .map(|d| std::fs::read(record_path(d)).ok().and_then(|b| serde_json::from_slice(&b).ok()))
        .collect();
    // Every defect of the reference target has a row.
    let cluster = [Defect::SplitBrain, Defect::NoReplication, Defect::NoRebalance];
    for d in Defect::ALL.into_iter().filter(|d| !cluster.contains(d)) {
        anyhow::ensure!(MATRIX.iter().any(|m| m.defect == d), "defect {} has no row in the detection matrix", d.name());
    }
    if std::env::var_os("UPDATE_DOCS").is_some() {
        let missing: Vec<String> =
            MATRIX.iter().zip(&records).filter(|(_, r)| r.is_none()).map(|(d, _)| d.test_name()).collect();
        anyhow::ensure!(
            missing.is_empty(),
            "no recorded run of {missing:?} in {}: run `cargo test --test chaos -- --tag meta detection::` first",
            records_dir().display()
        );
        std::fs::write(doc_path(), render(&records)).context("writing docs/DETECTION.md")?;
        return Ok(());
    }
    let doc = std::fs::read_to_string(doc_path()).context("reading docs/DETECTION.md")?;
    let want: Vec<Vec<String>> = MATRIX
        .iter()
        .map(|d| vec![d.defect.name().into(), d.scenario.into(), d.criterion.into(), "yes".into()])
        .collect();
    let have = rows(&doc);
    anyhow::ensure!(
        have == want,
        "docs/DETECTION.md is stale (its rows are not the matrix, or it records a miss):\n have {have:?}\n want {want:?}\n\
         regenerate it with scripts/detection"
    );
    Ok(())
}
