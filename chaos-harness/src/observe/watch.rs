//! [`FixtureWatch`]: turns what the fixtures' main processes do into typed events while a
//! scenario runs: exited, restarted (a new main pid), re-executed under the same pid (the
//! program image changed: a server reload does that).
//!
//! It polls every 20 ms from `/proc` (the main pid's state, start time, `exe` and `comm`): cheap
//! paths only, one process per fixture.
//!
//! ```no_run
//! # async fn f(cx: &mut chaos_harness::Chaos) -> chaos_harness::ChaosResult {
//! use chaos_harness::observe::{EventStream, FixtureWatch};
//! let stream = EventStream::new();
//! let watch = FixtureWatch::start(cx.fixtures(), stream.clone());
//! // ... the scenario runs ...
//! watch.stop().await;
//! # Ok(()) }
//! ```

use std::path::PathBuf;
use std::time::Duration;

use tokio::sync::watch;
use tokio::task::JoinHandle;

use super::{EventKind, EventStream};
use crate::fixture::Target;
use crate::sandbox::procfs;

/// How often the main processes are looked at.
const POLL: Duration = Duration::from_millis(20);

/// What a fixture's main process looked like at the last poll.
#[derive(Clone, Debug, PartialEq, Eq)]
struct Seen {
    pid: i32,
    start_time: u64,
    image: Option<(PathBuf, String)>,
    alive: bool,
}

fn look(target: &Target) -> Option<Seen> {
    let main = target.main()?;
    let stat = procfs::stat(main.pid).filter(|s| s.start_time == main.start_time);
    let alive = stat.as_ref().is_some_and(|s| !s.is_dead());
    let image = alive.then(|| image_of(main.pid)).flatten();
    Some(Seen { pid: main.pid, start_time: main.start_time, image, alive })
}

/// The program image of a live pid: its `exe` link and `comm`.
fn image_of(pid: i32) -> Option<(PathBuf, String)> {
    let exe = std::fs::read_link(format!("/proc/{pid}/exe")).ok()?;
    let comm = std::fs::read_to_string(format!("/proc/{pid}/comm")).ok()?;
    Some((exe, comm.trim().to_string()))
}

fn program(image: &Option<(PathBuf, String)>) -> String {
    image.as_ref().map_or_else(|| "?".into(), |(exe, comm)| format!("{} ({comm})", exe.display()))
}

/// The events between two looks at one fixture.
fn changes(fixture: &str, before: &Option<Seen>, now: &Option<Seen>) -> Vec<EventKind> {
    let fixture = fixture.to_string();
    match (before, now) {
        (Some(b), Some(n)) if (b.pid, b.start_time) != (n.pid, n.start_time) => {
            let mut out = Vec::new();
            if b.alive {
                out.push(EventKind::FixtureExited { fixture: fixture.clone(), pid: b.pid });
            }
            out.push(EventKind::FixtureRestarted { fixture, old_pid: Some(b.pid), new_pid: n.pid });
            out
        }
        (Some(b), Some(n)) if b.alive && !n.alive => vec![EventKind::FixtureExited { fixture, pid: n.pid }],
        (Some(b), Some(n)) if b.alive && n.alive && b.image.is_some() && n.image.is_some() && b.image != n.image => {
            vec![EventKind::FixtureReexeced { fixture, pid: n.pid, from: program(&b.image), to: program(&n.image) }]
        }
        (None, Some(n)) => vec![EventKind::FixtureRestarted { fixture, old_pid: None, new_pid: n.pid }],
        _ => Vec::new(),
    }
}

/// A background task emitting fixture events onto a stream until stopped.
#[derive(Debug)]
pub struct FixtureWatch {
    stop: watch::Sender<bool>,
    task: Option<JoinHandle<()>>,
}

impl FixtureWatch {
    /// Starts watching `fixtures` (on the current Tokio runtime).
    pub fn start(fixtures: Vec<Target>, stream: EventStream) -> Self {
        let (stop, mut stopped) = watch::channel(false);
        let task = tokio::spawn(async move {
            let mut seen: Vec<Option<Seen>> = fixtures.iter().map(look).collect();
            loop {
                tokio::select! {
                    _ = tokio::time::sleep(POLL) => {}
                    _ = stopped.changed() => {}
                }
                for (i, t) in fixtures.iter().enumerate() {
                    let now = look(t);
                    for kind in changes(t.name(), &seen[i], &now) {
                        stream.emit(kind);
                    }
                    seen[i] = now;
                }
                if *stopped.borrow() {
                    return;
                }
            }
        });
        Self { stop, task: Some(task) }
    }

    /// Takes a last look, then stops.
    pub async fn stop(mut self) {
        let _ = self.stop.send(true);
        if let Some(task) = self.task.take() {
            let _ = task.await;
        }
    }
}

impl Drop for FixtureWatch {
    fn drop(&mut self) {
        let _ = self.stop.send(true);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn seen(pid: i32, st: u64, exe: &str, alive: bool) -> Option<Seen> {
        Some(Seen { pid, start_time: st, image: alive.then(|| (PathBuf::from(exe), "x".to_string())), alive })
    }

    #[test]
    fn exit_restart_and_reexec_are_told_apart() {
        let kinds = |b, n| changes("web", &b, &n).iter().map(|k| k.to_string()).collect::<Vec<_>>();
        assert!(kinds(seen(1, 10, "/a", true), seen(1, 10, "/a", true)).is_empty());
        assert_eq!(kinds(seen(1, 10, "/a", true), seen(1, 10, "/a", false)), ["fixture web: main pid 1 exited"]);
        assert_eq!(
            kinds(seen(1, 10, "/a", true), seen(2, 20, "/a", true)),
            ["fixture web: main pid 1 exited", "fixture web restarted: main pid 1 -> 2"]
        );
        assert_eq!(
            kinds(seen(1, 10, "/a", false), seen(2, 20, "/a", true)),
            ["fixture web restarted: main pid 1 -> 2"]
        );
        assert_eq!(
            kinds(seen(1, 10, "/a", true), seen(1, 10, "/b", true)),
            ["fixture web: pid 1 re-executed (/a (x) -> /b (x))"]
        );
    }
}
