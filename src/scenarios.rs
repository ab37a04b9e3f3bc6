//! Snakepit chaos scenarios, each a function of the test context and the target's defects, so
//! the same scenario runs as a test (healthy target: must pass), as a meta-test (defect
//! enabled: must fail on the right criterion) and from `chaos run`.
//!
//! Timings: with the target's default heartbeat (every 2 s, 3 misses) workers notice a dead
//! BEAM 4-7 s after a SIGKILL, so the "gone within 5 s" scenarios configure a 1 s heartbeat
//! (workers then leave ~2-3 s after the kill).

use std::time::Duration;

use chaos_harness::Chaos;
use chaos_harness::criteria::Criterion;
use chaos_harness::fault::{Fault, Signal};
use chaos_harness::fixture::snakepit::{AdminAction, Defect, Execute, Snakepit};
use chaos_harness::load::Load;
use chaos_harness::observe::Phase;
use chaos_harness::scenario::{ScenarioError, ScenarioOutcome};

/// A scenario's result: the harness worked (outer `Ok`) and the criteria held or not (inner).
pub type Verdicts = anyhow::Result<Result<ScenarioOutcome, ScenarioError>>;

const fn secs(s: u64) -> Duration {
    Duration::from_secs(s)
}

/// The reference target as the scenarios use it: 4 workers, 1 s heartbeat, the given defects.
///
/// ```
/// let pit = snakepit_chaos::scenarios::pit(&[]);
/// # let _ = pit;
/// ```
pub fn pit(defects: &[Defect]) -> Snakepit {
    defects.iter().fold(Snakepit::reference().pool_size(4).heartbeat(secs(1), secs(3), 3), |p, d| p.defect(*d))
}

/// BEAM SIGKILL: every Python worker gone within 5 s (catches `no_heartbeat`, `slow_detect`).
pub async fn beam_sigkill(cx: &mut Chaos, defects: &[Defect]) -> Verdicts {
    let pit = cx.start(pit(defects)).await?;
    Ok(cx
        .scenario("BEAM SIGKILL: every Python worker gone within 5 s")
        .inject(Fault::kill(pit.beam()).signal(Signal::SIGKILL))
        .expect(Criterion::no_orphans().of(&pit).within(secs(5)))
        .run()
        .await)
}

/// BEAM SIGKILL under load with a supervised restart 0.5 s later: the old run's workers are
/// gone within 5 s (heartbeat or boot sweep) and the pool is fully functional within 30 s
/// (catches `no_orphan_sweep`: the old workers keep heartbeating to the restarted bridge).
/// Only the requests in flight when the BEAM died may be lost (at most the 4 clients); the
/// rest of the outage shows as refused connections and error replies, at a rate the clients'
/// back-off bounds.
pub async fn beam_sigkill_under_load_then_restart(cx: &mut Chaos, defects: &[Defect]) -> Verdicts {
    let pit = cx.start(pit(defects).supervised(Duration::from_millis(500))).await?;
    let call = pit.call(Execute::tool("sleep").args(serde_json::json!({"ms": 20})));
    Ok(cx
        .scenario("BEAM SIGKILL under load, supervised restart")
        .load(Load::closed_loop(4).timeout(secs(5)), call)
        .wait(secs(1))
        .inject(Fault::kill(pit.beam()).signal(Signal::SIGKILL))
        .expect(Criterion::gone(pit.workers()).within(secs(5)))
        .expect(Criterion::healthy(&pit).within(secs(30)))
        .wait(secs(1))
        .stop_load()
        .expect(Criterion::no_lost_requests().allowing(4))
        .run()
        .await)
}

/// One worker SIGKILLed while it runs a request: replaced within 5 s, and every request gets
/// a reply (catches `no_restart` and `drop_on_crash`).
pub async fn worker_sigkill_under_load(cx: &mut Chaos, defects: &[Defect]) -> Verdicts {
    let pit = cx.start(pit(defects)).await?;
    // 2 s requests on 8 clients keep every worker busy with a request that started at ~0 ms
    // when the kill lands at 500 ms, so the kill always hits a request in flight. A request
    // queued behind the killed worker waits for its replacement (up to 4 s plus the respawn):
    // a 10 s timeout keeps a loaded machine from turning that wait into a timeout.
    let call = pit.call(Execute::tool("sleep").args(serde_json::json!({"ms": 2000})));
    Ok(cx
        .scenario("one worker SIGKILL under load")
        .load(Load::closed_loop(8).timeout(secs(10)), call)
        .wait(Duration::from_millis(500))
        .inject(Fault::kill(pit.worker(0)).signal(Signal::SIGKILL))
        .expect(Criterion::respawned(pit.workers()).within(secs(5)))
        .wait(secs(1))
        .stop_load()
        .expect(Criterion::no_lost_requests())
        .run()
        .await)
}

/// Pool saturation: an open loop at 3x the pool's capacity (4 workers x 200 ms = 20/s, offered
/// 60/s) against a queue of 8 with a 3 s queue timeout. Backpressure means the excess is
/// refused at once with `pool_saturated` (an error reply, not a timeout or a lost request) and
/// what is queued is served within the queue timeout (catches `unbounded_queue`: the queue
/// grows until requests wait out the queue timeout).
pub async fn pool_saturation_backpressure(cx: &mut Chaos, defects: &[Defect]) -> Verdicts {
    let pit = cx.start(pit(defects).queue(8, secs(3))).await?;
    let call = pit.call(Execute::tool("sleep").args(serde_json::json!({"ms": 200})));
    Ok(cx
        .scenario("pool saturation: backpressure, not queueing without bound")
        .load(Load::constant_rate(60).max_in_flight(1000).timeout(secs(10)), call)
        .wait(secs(5))
        .stop_load()
        .expect(Criterion::error_rate().of_kind("queue_timeout").at_most(0.0))
        .expect(Criterion::no_lost_requests())
        .expect(Criterion::windows(secs(1)).eventually("the pool answers pool_saturated", |s| {
            s.error_kinds.keys().any(|k| k.ends_with("/pool_saturated"))
        }))
        .run()
        .await)
}

/// A worker SIGKILLed under a light load: it is replaced, and the per-request telemetry keeps
/// flowing after the restart (catches `telemetry_gap`: telemetry stops after the first worker
/// restart).
pub async fn telemetry_through_worker_restart(cx: &mut Chaos, defects: &[Defect]) -> Verdicts {
    let pit = cx.start(pit(defects)).await?;
    let call = pit.call(Execute::tool("echo").args(serde_json::json!({"x": 1})));
    Ok(cx
        .scenario("telemetry keeps flowing through a worker restart")
        .load(Load::constant_rate(20).timeout(secs(5)), call)
        .wait(secs(1))
        .inject(Fault::kill(pit.worker(0)).signal(Signal::SIGKILL))
        .expect(Criterion::respawned(pit.workers()).within(secs(5)))
        .wait(secs(2))
        .expect(
            Criterion::telemetry(&pit, "snakepit.request.executed")
                .keeps_flowing()
                .max_gap(secs(1))
                .during(Phase::Recovery),
        )
        .run()
        .await)
}

/// A worker SIGKILLed while a session load creates sessions (50/s, one fresh session per
/// request, spread over every worker): the worker is replaced, every worker id the pool routes
/// to answers, every session acknowledged before the kill reads back, and requests in a
/// session still go to its last worker (catches
/// `ghost_worker`: the dead id stays routable and fails requests; and `lose_sessions`: the
/// sessions whose last worker died are dropped).
pub async fn worker_crash_keeps_sessions(cx: &mut Chaos, defects: &[Defect]) -> Verdicts {
    let pit = cx.start(pit(defects)).await?;
    Ok(cx
        .scenario("worker crash: sessions survive, no ghost worker")
        .load(Load::constant_rate(50).timeout(secs(5)), pit.session_writes())
        .wait(secs(1))
        .inject(Fault::kill(pit.worker(0)).signal(Signal::SIGKILL))
        .expect(Criterion::respawned(pit.workers()).within(secs(5)))
        .stop_load()
        .expect(Criterion::no_ghost_workers(&pit).within(secs(3)))
        .expect(Criterion::sessions_survive(&pit).within(secs(3)))
        // Affinity is judged on an idle pool: after the concurrent checks above, not beside them.
        .wait(Duration::from_millis(100))
        .expect(Criterion::session_affinity(&pit))
        .run()
        .await)
}

/// Two clients disconnect while their 300 ms requests run: both workers are free again within
/// 2 s (catches `stuck_busy`: a worker whose client vanished stays busy forever).
pub async fn abandoned_requests_free_their_workers(cx: &mut Chaos, defects: &[Defect]) -> Verdicts {
    let pit = cx.start(pit(defects)).await?;
    Ok(cx
        .scenario("clients disconnect mid-request: the pool recovers its capacity")
        .inject(Fault::abandon_requests(&pit, 2).holding(Duration::from_millis(300)))
        .expect(Criterion::pool_recovers_capacity(&pit).within(secs(2)))
        .run()
        .await)
}

/// The pool process crashes (admin API): the supervisor starts a new pool whose workers replace
/// the old ones, no second generation of Python workers survives, and `/health` tells the truth
/// while the new pool starts (catches `leak_generation`: the old generation keeps running; and
/// `health_lies`: `/health` says ok with every worker ready while none is).
pub async fn pool_crash(cx: &mut Chaos, defects: &[Defect]) -> Verdicts {
    let pit = cx.start(pit(defects)).await?;
    Ok(cx
        .scenario("pool process crash: one generation of workers, truthful health")
        .inject(Fault::snakepit_admin(&pit, AdminAction::CrashPool))
        .expect(Criterion::health_truthful(&pit).over(secs(2)))
        .expect(Criterion::generation_not_leaked(&pit).within(secs(5)))
        .run()
        .await)
}

/// A worker's Elixir process is killed without cleanup (admin API): its Python process does
/// not outlive it (catches `orphan_on_kill`: the Python keeps running, and heartbeating, next
/// to its replacement).
pub async fn worker_elixir_kill_leaves_no_orphan(cx: &mut Chaos, defects: &[Defect]) -> Verdicts {
    let pit = cx.start(pit(defects)).await?;
    Ok(cx
        .scenario("worker's Elixir process killed: no orphaned Python worker")
        .inject(Fault::snakepit_admin(&pit, AdminAction::KillWorkerProcess(None)))
        .expect(Criterion::no_orphaned_workers(&pit).within(secs(5)))
        .run()
        .await)
}

/// The session store crashes and restarts (admin API) while sessions are written: every session
/// acknowledged before the crash reads back (catches `lose_sessions`: sessions live in memory
/// only and vanish with the store).
pub async fn session_store_restart_keeps_sessions(cx: &mut Chaos, defects: &[Defect]) -> Verdicts {
    let pit = cx.start(pit(defects)).await?;
    Ok(cx
        .scenario("session store restart: sessions survive")
        .load(Load::constant_rate(50).timeout(secs(5)), pit.session_writes())
        .wait(Duration::from_millis(500))
        .inject(Fault::snakepit_admin(&pit, AdminAction::RestartSessionStore))
        .stop_load()
        .expect(Criterion::sessions_survive(&pit).within(secs(3)))
        .run()
        .await)
}

/// The session TTL [`sessions_expire_at_ttl`] configures.
pub const SESSION_TTL: Duration = secs(2);

/// Sessions with a 2 s TTL are written for 1 s, then the session store restarts (admin API):
/// every session acknowledged before the restart is still readable just before its TTL runs
/// out, and gone just after (catches `lose_sessions`: they vanish with the store, long before
/// their TTL; a store that revived or renewed sessions on restart would keep them past it).
pub async fn sessions_expire_at_ttl(cx: &mut Chaos, defects: &[Defect]) -> Verdicts {
    let pit = cx.start(pit(defects).session_ttl(SESSION_TTL)).await?;
    Ok(cx
        .scenario("session store restart: sessions survive until their TTL, and expire at it")
        .load(Load::constant_rate(50).timeout(secs(5)), pit.session_writes())
        .wait(secs(1))
        .inject(Fault::snakepit_admin(&pit, AdminAction::RestartSessionStore))
        .stop_load()
        .expect(Criterion::sessions_survive_or_expire(&pit, SESSION_TTL))
        .run()
        .await)
}
