//! Multi-node chaos (tag `cluster`): a 3-node reference cluster, each node in its own network
//! namespace on a private bridge, sessions replicated with majority quorums. Node kills,
//! freezes and partitions under a register workload whose history is checked (no acknowledged
//! write lost, read-your-writes, per-key linearizability); each cluster defect is caught by its
//! scenario with the anomaly printed; a SIGKILL of the harness during a partition leaves no
//! namespace, bridge, veth, nft table or process behind.

use std::path::PathBuf;
use std::process::{Command as Std, Stdio};
use std::time::Instant;

use anyhow::{Context, bail, ensure};
use chaos_harness::criteria::history::Anomaly;
use chaos_harness::fault::{FaultContext, Inject};
use chaos_harness::fixture::snakepit::Defect;
use chaos_harness::fixture::snakepit::cluster::{ClusterHandle, SnakepitCluster};
use chaos_harness::load::history::History;
use chaos_harness::prelude::*;

const SECS: fn(u64) -> Duration = Duration::from_secs;
const KEYS: &[&str] = &["a", "b", "c"];

/// A 3-node cluster with one worker per node (the cluster, not the pools, is under test).
async fn three(cx: &mut Chaos, defect: Option<Defect>) -> anyhow::Result<ClusterHandle> {
    let mut spec = SnakepitCluster::reference().nodes(3).pool_size(1);
    if let Some(d) = defect {
        spec = spec.defect(d);
    }
    Ok(cx.start(spec).await?)
}

/// Runs the register workload in the background for `d`.
fn background_load(c: &ClusterHandle, h: &History, d: Duration, seed: u64) -> tokio::task::JoinHandle<()> {
    let (c, h) = (c.clone(), h.clone());
    tokio::spawn(async move { c.register_load(&h, 4, KEYS, d, seed).await })
}

/// The after-heal criteria every healthy scenario expects.
fn recovered(c: &ClusterHandle) -> Vec<Criterion> {
    vec![
        Criterion::cluster_rejoined(c).within(SECS(20)).into(),
        Criterion::pools_rebalanced(c).within(SECS(20)).into(),
        Criterion::no_orphans_on_nodes(c).within(SECS(20)).into(),
        Criterion::replicas_converged(c).within(SECS(10)).into(),
    ]
}

/// Prints the first anomaly of each kind.
fn print_anomalies(what: &str, anomalies: &[Anomaly]) {
    println!("{what}: {} anomal(ies) found; the first of each kind:", anomalies.len());
    let mut kinds: Vec<&str> = Vec::new();
    for a in anomalies {
        if !kinds.contains(&a.kind.as_str()) {
            kinds.push(&a.kind);
            print!("{a}");
        }
    }
}

#[chaos_test(tags = ["cluster"], requires = ["elixir", "cgroups", "netns", "nft"], timeout = "3m")]
async fn cluster_starts_and_replicates_sessions(cx: &mut Chaos) -> ChaosResult {
    let c = three(cx, None).await?;
    let h = History::new();
    ensure!(c.write(&h, 0, 0, "s", "1").await, "write via n1 not acknowledged: {:?}", h.ops());
    for i in 0..3 {
        let got = c.read(&h, 0, i, "s").await;
        ensure!(got == Some(Some("1".into())), "{} read {got:?}", c.node(i).name());
    }
    c.wait_converged(SECS(5)).await.map_err(anyhow::Error::msg)?;
    // every node's own pool and namespace
    let mut nss: Vec<String> = c.nodes().iter().map(|n| n.member().netns().name().to_string()).collect();
    nss.push(c.bridge().hub().name().to_string());
    nss.sort();
    nss.dedup();
    ensure!(nss.len() == 4 && nss.iter().all(|n| n.starts_with("chaos-")), "namespaces {nss:?}");
    for n in c.nodes() {
        ensure!(n.pit().client().health().await?.ready == 1, "{} pool not ready", n.name());
    }
    Ok(())
}

#[chaos_test(tags = ["cluster"], requires = ["elixir", "cgroups", "netns", "nft"], timeout = "4m")]
async fn node_sigkill_sessions_handed_over(cx: &mut Chaos) -> ChaosResult {
    let c = three(cx, None).await?;
    let h = History::new();
    // acknowledged before the kill: must survive it
    for k in KEYS {
        ensure!(c.write(&h, 500, 0, k, &format!("{k}-before")).await, "setup write of {k} failed");
    }
    let load = background_load(&c, &h, SECS(10), cx.seed());
    let outcome = cx
        .scenario("node n1 SIGKILLed (BEAM and workers) under a register workload")
        .wait(SECS(2))
        .inject(Fault::kill_tree(c.node(0).pit()))
        .wait(SECS(3))
        .run()
        .await?;
    ensure!(outcome.passed(), "{outcome:?}");
    // the survivors still serve every session (sessions handed over: there is no owner to lose)
    for k in KEYS {
        ensure!(c.read(&h, 501, 1, k).await.flatten().is_some(), "session {k} unreadable on n2 after the kill");
    }
    c.node(0).pit().respawn().await?;
    load.await?;
    c.final_reads(&h, KEYS).await;
    let mut s = cx.scenario("after n1 restarts: rejoined, rebalanced, consistent");
    for crit in recovered(&c) {
        s = s.expect(crit);
    }
    s.expect(Criterion::consistent_history(&h).min_ok(50)).run().await?;
    Ok(())
}

#[chaos_test(tags = ["cluster"], requires = ["elixir", "cgroups", "netns", "nft"], timeout = "4m")]
async fn minority_partition_healed_with_consistent_sessions(cx: &mut Chaos) -> ChaosResult {
    let c = three(cx, None).await?;
    let h = History::new();
    let load = background_load(&c, &h, SECS(12), cx.seed());
    let minority = Fault::partition_members(&c.members_of(&[0]), &c.members_of(&[1, 2]));
    let probe = {
        let (c, h) = (c.clone(), h.clone());
        tokio::spawn(async move {
            tokio::time::sleep(SECS(4)).await;
            // during the partition: the majority acknowledges, the minority refuses
            let maj = c.write(&h, 500, 1, "a", "majority-write").await;
            let min = c.write(&h, 500, 0, "a", "minority-write").await;
            let min_read = c.read(&h, 500, 0, "a").await;
            (maj, min, min_read)
        })
    };
    let mut s = cx
        .scenario("n1 cut off from n2+n3 for 7 s under a register workload, then healed")
        .wait(SECS(2))
        .inject(minority)
        .wait(SECS(7))
        .clear_faults();
    for crit in recovered(&c) {
        s = s.expect(crit);
    }
    s.run().await?;
    let (maj, min, min_read) = probe.await?;
    ensure!(maj, "the majority side refused a write during the partition: {:#?}", h.ops().last());
    ensure!(!min && min_read.is_none(), "the minority side served a write ({min}) or a read ({min_read:?})");
    load.await?;
    c.final_reads(&h, KEYS).await;
    cx.scenario("history after the heal").expect(Criterion::consistent_history(&h).min_ok(50)).run().await?;
    Ok(())
}

#[chaos_test(tags = ["cluster"], requires = ["elixir", "cgroups", "netns"], timeout = "4m")]
async fn slow_links_to_one_node_keep_sessions_consistent(cx: &mut Chaos) -> ChaosResult {
    let c = three(cx, None).await?;
    let h = History::new();
    let load = background_load(&c, &h, SECS(10), cx.seed());
    // 150 ms each way between n1 and the others: replica calls (1 s timeout) slow down, none fail
    let slow = Fault::latency_between(&c.members_of(&[0]), &c.members_of(&[1, 2]), Duration::from_millis(150));
    let mut s = cx
        .scenario("150 ms latency between n1 and n2+n3 for 6 s under a register workload")
        .wait(SECS(2))
        .inject(slow)
        .wait(SECS(6))
        .clear_faults();
    for crit in recovered(&c) {
        s = s.expect(crit);
    }
    s.run().await?;
    load.await?;
    c.final_reads(&h, KEYS).await;
    cx.scenario("history after the slow links").expect(Criterion::consistent_history(&h).min_ok(30)).run().await?;
    Ok(())
}

async fn freeze_and_resume(cx: &mut Chaos, frozen: Duration) -> ChaosResult {
    let c = three(cx, None).await?;
    let h = History::new();
    let load = background_load(&c, &h, frozen + SECS(6), cx.seed());
    let mut s = cx
        .scenario(&format!("node n2 frozen (BEAM and workers) for {frozen:?}, then resumed"))
        .wait(SECS(2))
        .inject(Fault::freeze(c.node(1).pit()))
        .wait(frozen)
        .clear_faults();
    for crit in recovered(&c) {
        s = s.expect(crit);
    }
    s.run().await?;
    load.await?;
    c.final_reads(&h, KEYS).await;
    cx.scenario("history after the resume").expect(Criterion::consistent_history(&h).min_ok(30)).run().await?;
    Ok(())
}

#[chaos_test(tags = ["cluster"], requires = ["elixir", "cgroups", "freezer", "netns", "nft"], timeout = "4m")]
async fn node_frozen_8s_and_resumed(cx: &mut Chaos) -> ChaosResult {
    freeze_and_resume(cx, SECS(8)).await
}

#[chaos_test(tags = ["cluster", "slow"], requires = ["elixir", "cgroups", "freezer", "netns", "nft"], timeout = "5m")]
async fn node_frozen_30s_and_resumed(cx: &mut Chaos) -> ChaosResult {
    freeze_and_resume(cx, SECS(30)).await
}

// ---- each cluster defect caught by its scenario ---------------------------------------------

#[chaos_test(tags = ["cluster"], requires = ["elixir", "cgroups", "netns", "nft"], timeout = "4m")]
async fn split_brain_is_caught_by_the_history_check(cx: &mut Chaos) -> ChaosResult {
    let c = three(cx, Some(Defect::SplitBrain)).await?;
    let h = History::new();
    ensure!(c.write(&h, 500, 0, "a", "before").await, "setup write failed");
    let load = background_load(&c, &h, SECS(9), cx.seed());
    let mut fault = Fault::partition_members(&c.members_of(&[0]), &c.members_of(&[1, 2]));
    let active = fault_inject(cx, &mut fault).await?;
    tokio::time::sleep(SECS(2)).await;
    // both sides accept writes; the minority then reads its own stale value
    let maj = c.write(&h, 500, 1, "a", "majority-write").await;
    let min = c.write(&h, 501, 0, "a", "minority-write").await;
    let stale = c.read(&h, 502, 0, "a").await;
    tokio::time::sleep(SECS(3)).await;
    active.clear().await?;
    load.await?;
    c.final_reads(&h, KEYS).await;
    ensure!(maj && min, "with split_brain both sides should acknowledge: majority {maj}, minority {min}");
    let anomalies = Criterion::consistent_history(&h).anomalies();
    print_anomalies("split_brain", &anomalies);
    ensure!(!anomalies.is_empty(), "split_brain not caught (minority read {stale:?}); history:\n{:#?}", h.ops());
    ensure!(anomalies.iter().any(|a| a.kind == "not linearizable"), "no linearizability anomaly: {anomalies:?}");
    Ok(())
}

#[chaos_test(tags = ["cluster"], requires = ["elixir", "cgroups", "netns", "nft"], timeout = "4m")]
async fn no_replication_is_caught_as_lost_writes(cx: &mut Chaos) -> ChaosResult {
    let c = three(cx, Some(Defect::NoReplication)).await?;
    let h = History::new();
    let keys: Vec<String> = (0..12).map(|i| format!("k{i}")).collect();
    for (i, k) in keys.iter().enumerate() {
        ensure!(c.write(&h, 500, i % 3, k, &format!("{k}-v1")).await, "write of {k} not acknowledged");
    }
    cx.scenario("the node owning some sessions dies")
        .inject(Fault::kill_tree(c.node(0).pit()))
        .wait(SECS(1))
        .run()
        .await?;
    let refs: Vec<&str> = keys.iter().map(String::as_str).collect();
    for k in &refs {
        c.read(&h, 501, 1, k).await;
    }
    let lost = Criterion::no_lost_writes(&h).anomalies();
    print_anomalies("no_replication", &lost);
    ensure!(!lost.is_empty(), "no_replication not caught: every session survived n1's death:\n{:#?}", h.ops());
    ensure!(lost[0].kind == "lost write" && lost[0].to_string().contains("absent"), "{}", lost[0]);
    // the healthy cluster keeps them all (the control)
    Ok(())
}

#[chaos_test(tags = ["cluster"], requires = ["elixir", "cgroups", "netns", "nft"], timeout = "4m")]
async fn no_rebalance_is_caught_by_diverging_replicas(cx: &mut Chaos) -> ChaosResult {
    let c = three(cx, Some(Defect::NoRebalance)).await?;
    let h = History::new();
    let mut fault = Fault::partition_members(&c.members_of(&[0]), &c.members_of(&[1, 2]));
    let active = fault_inject(cx, &mut fault).await?;
    // wait until distribution has dropped n1 (net_ticktime 4 s), so no buffered message reaches
    // it after the heal
    let t0 = Instant::now();
    while c.node(1).view().await.map_err(anyhow::Error::msg)?["connected"].to_string().contains("n1@") {
        ensure!(t0.elapsed() < SECS(20), "n2 still connected to n1 20 s into the partition");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    for k in KEYS {
        ensure!(c.write(&h, 500, 1, k, &format!("{k}-while-n1-away")).await, "majority write of {k} failed");
    }
    // replica calls to n1 wait in a pending connection attempt; let it fail (net_setuptime 2 s)
    // so nothing is delivered after the heal
    tokio::time::sleep(SECS(3)).await;
    active.clear().await?;
    let v = Criterion::replicas_converged(&c).within(SECS(5)).check().await;
    println!("{v}");
    ensure!(!v.passed, "no_rebalance not caught: replicas converged: {v}");
    ensure!(v.detail.contains("session a:") && v.detail.contains("n1@10.214.0.1=absent"), "{v}");
    // the history itself stays linearizable (quorum reads hide the stale replica)
    ensure!(Criterion::linearizable(&h).anomalies().is_empty());
    Ok(())
}

/// Control for the defect tests: the healthy cluster passes the same partition + history
/// checks (a check that could not fail would pass here too; the defect tests show it can).
#[chaos_test(tags = ["cluster"], requires = ["elixir", "cgroups", "netns", "nft"], timeout = "4m")]
async fn healthy_cluster_keeps_sessions_when_the_owner_dies(cx: &mut Chaos) -> ChaosResult {
    let c = three(cx, None).await?;
    let h = History::new();
    let keys: Vec<String> = (0..12).map(|i| format!("k{i}")).collect();
    for (i, k) in keys.iter().enumerate() {
        ensure!(c.write(&h, 500, i % 3, k, &format!("{k}-v1")).await, "write of {k} not acknowledged");
    }
    cx.scenario("n1 dies").inject(Fault::kill_tree(c.node(0).pit())).wait(SECS(1)).run().await?;
    for k in &keys {
        c.read(&h, 501, 1, k).await;
    }
    cx.scenario("history").expect(Criterion::consistent_history(&h).min_ok(20)).run().await?;
    Ok(())
}

async fn fault_inject(
    cx: &mut Chaos,
    fault: &mut chaos_harness::fault::net::BetweenMembers,
) -> anyhow::Result<Box<dyn chaos_harness::fault::ActiveFault>> {
    let sandbox = cx.sandbox().clone();
    let active = fault.inject(FaultContext { sandbox: &sandbox, rng: cx.rng() }).await?;
    println!("{}", active.confirmation());
    Ok(active)
}

// ---- a SIGKILL of the harness during a partition leaves nothing ------------------------------

/// The victim: a cluster with a partition in force, then waits to be killed. Run only by
/// `partition_then_harness_sigkill_leaves_nothing` (it writes what it holds to
/// `CLUSTER_VICTIM_INFO`).
#[chaos_test(
    tags = ["cluster"],
    requires = ["elixir", "cgroups", "netns", "nft"],
    timeout = "3m",
    ignore = "the victim of partition_then_harness_sigkill_leaves_nothing; run by it"
)]
async fn partition_victim(cx: &mut Chaos) -> ChaosResult {
    let info = std::env::var_os("CLUSTER_VICTIM_INFO").context("CLUSTER_VICTIM_INFO is not set")?;
    let c = three(cx, None).await?;
    let mut one_way = Fault::partition_one_way(&c.members_of(&[0]), &c.members_of(&[2]));
    let mut cut = Fault::partition_members(&c.members_of(&[1]), &c.members_of(&[0, 2]));
    let a = fault_inject(cx, &mut one_way).await?;
    let b = fault_inject(cx, &mut cut).await?;
    let mut netns: Vec<String> = c.nodes().iter().map(|n| n.member().netns().name().to_string()).collect();
    netns.push(c.bridge().hub().name().to_string());
    let mut veths: Vec<String> = c.nodes().iter().map(|n| n.member().netns().host_interface().to_string()).collect();
    veths.push(c.bridge().hub().host_interface().to_string());
    let tables = c.node(1).member().netns().exec("nft", &["list", "tables"])?;
    let body = serde_json::json!({
        "run_id": cx.sandbox().run_id(),
        "netns": netns,
        "veths": veths,
        "tables": tables,
        "beams": c.nodes().iter().filter_map(|n| n.pit().info().map(|i| i.beam_os_pid)).collect::<Vec<_>>(),
    });
    let tmp = PathBuf::from(&info).with_extension("tmp");
    std::fs::write(&tmp, body.to_string())?;
    std::fs::rename(&tmp, &info)?;
    tokio::time::sleep(SECS(120)).await;
    drop((a, b));
    bail!("the victim was not killed within 120 s")
}

#[chaos_test(tags = ["cluster", "safety"], requires = ["elixir", "cgroups", "netns", "nft"], timeout = "4m")]
async fn partition_then_harness_sigkill_leaves_nothing(cx: &mut Chaos) -> ChaosResult {
    let info = cx.sandbox().temp_dir().join("victim.json");
    let out = cx.sandbox().temp_dir().join("victim.out");
    let exe = std::env::current_exe()?;
    let mut cmd = Std::new(exe);
    for (key, _) in std::env::vars_os() {
        let k = key.to_string_lossy();
        if k.starts_with("CHAOS_") || k.starts_with("NEXTEST") || k == "RUST_LOG" {
            cmd.env_remove(&key);
        }
    }
    let log = std::fs::File::create(&out)?;
    let mut child = cmd
        .args(["--ignored", "--exact", "cluster::partition_victim"])
        .env("CLUSTER_VICTIM_INFO", &info)
        .stdin(Stdio::null())
        .stdout(log.try_clone()?)
        .stderr(log)
        .spawn()?;
    let t0 = Instant::now();
    let held: serde_json::Value = loop {
        if let Ok(text) = std::fs::read_to_string(&info) {
            break serde_json::from_str(&text)?;
        }
        if let Some(st) = child.try_wait()? {
            bail!("the victim exited early ({st}):\n{}", std::fs::read_to_string(&out).unwrap_or_default());
        }
        ensure!(t0.elapsed() < SECS(90), "victim not ready:\n{}", std::fs::read_to_string(&out).unwrap_or_default());
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    let tables = held["tables"].as_str().unwrap_or_default();
    ensure!(tables.contains("chaos_cut_") && tables.contains("netdev"), "the partition was not in force: {held}");
    // SAFETY: kill(2) of our own child.
    unsafe { libc::kill(child.id() as i32, libc::SIGKILL) };
    let killed = Instant::now();
    child.wait()?;
    let run_id = held["run_id"].as_str().unwrap_or_default().to_string();
    let names = |k: &str| -> Vec<String> {
        held[k].as_array().map(|a| a.iter().filter_map(|v| v.as_str().map(String::from)).collect()).unwrap_or_default()
    };
    let (netns, veths) = (names("netns"), names("veths"));
    let beams: Vec<i32> = held["beams"]
        .as_array()
        .map(|a| a.iter().filter_map(|v| v.as_i64()).map(|v| v as i32).collect())
        .unwrap_or_default();
    ensure!(netns.len() == 4 && veths.len() == 4 && beams.len() == 3, "victim info incomplete: {held}");
    let left = loop {
        let mut left = Vec::new();
        for n in &netns {
            if std::path::Path::new("/run/netns").join(n).exists() {
                left.push(format!("netns {n} (with its bridge/veths/nft tables)"));
            }
        }
        for v in &veths {
            if std::path::Path::new("/sys/class/net").join(v).exists() {
                left.push(format!("veth {v}"));
            }
        }
        for p in &beams {
            if chaos_harness::sandbox::procfs::stat(*p).is_some_and(|s| !s.is_dead()) {
                left.push(format!("BEAM pid {p}"));
            }
        }
        for p in chaos_harness::sandbox::procfs::all_pids() {
            let Ok(env) = std::fs::read(format!("/proc/{p}/environ")) else { continue };
            let marker = format!("CHAOS_HARNESS_RUN={run_id}");
            if env.split(|b| *b == 0).any(|e| e == marker.as_bytes())
                && chaos_harness::sandbox::procfs::stat(p).is_some_and(|s| !s.is_dead())
            {
                left.push(format!("process {p} of the victim's run"));
            }
        }
        if left.is_empty() || killed.elapsed() > SECS(15) {
            break left;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    if !left.is_empty() {
        let opts =
            chaos_harness::safety::cleanup::CleanupOptions { matching: Some(run_id.clone()), ..Default::default() };
        let _ = chaos_harness::safety::cleanup::cleanup(&opts);
        bail!("{:?} after the harness SIGKILL, still there: {left:#?}", killed.elapsed());
    }
    println!("everything of run {run_id} undone {:.2} s after the SIGKILL", killed.elapsed().as_secs_f64());
    Ok(())
}

// ---- latency between nodes (a userspace delay line: no netem on this kernel) ----------------

/// The time of one TCP connect from `m` to `to` (refused or accepted: one round trip).
async fn connect_time(m: &chaos_harness::topology::Member, to: &chaos_harness::topology::Member) -> Duration {
    let t0 = Instant::now();
    let answered = m.reaches((to.addr(), chaos_harness::topology::netns::PROBE_PORT).into(), SECS(3)).await;
    assert!(answered, "{} did not reach {}", m.addr(), to.addr());
    t0.elapsed()
}

/// An echo connection between two members, opened now and kept open: `ping()` sends one byte
/// and returns the round trip. The sockets are made in threads moved into the namespaces.
struct Echo(std::sync::mpsc::Sender<std::sync::mpsc::Sender<Duration>>);

impl Echo {
    fn open(from: &chaos_harness::topology::Member, to: &chaos_harness::topology::Member) -> anyhow::Result<Echo> {
        use std::io::{Read, Write};
        fn enter(ns: &str) -> anyhow::Result<()> {
            let f = std::fs::File::open(format!("/run/netns/{ns}"))?;
            nix::sched::setns(&f, nix::sched::CloneFlags::CLONE_NEWNET)?;
            Ok(())
        }
        let addr = std::net::SocketAddr::from((to.addr(), 7007));
        let (server_ns, client_ns) = (to.netns().name().to_string(), from.netns().name().to_string());
        let (up_tx, up_rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            let l = enter(&server_ns).and_then(|_| Ok(std::net::TcpListener::bind(addr)?));
            let _ = up_tx.send(l.as_ref().map(|_| ()).map_err(|e| e.to_string()));
            let Ok((mut s, _)) = l.and_then(|l| Ok(l.accept()?)) else { return };
            let mut b = [0u8; 1];
            while s.read_exact(&mut b).is_ok() && s.write_all(&b).is_ok() {}
        });
        up_rx.recv()?.map_err(|e| anyhow::anyhow!("echo server: {e}"))?;
        let (tx, rx) = std::sync::mpsc::channel::<std::sync::mpsc::Sender<Duration>>();
        let (ok_tx, ok_rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            let c = enter(&client_ns).and_then(|_| Ok(std::net::TcpStream::connect_timeout(&addr, SECS(3))?));
            let _ = ok_tx.send(c.as_ref().map(|_| ()).map_err(|e| e.to_string()));
            let Ok(mut c) = c else { return };
            let _ = c.set_nodelay(true);
            let mut b = [7u8; 1];
            while let Ok(reply) = rx.recv() {
                let t0 = Instant::now();
                if c.write_all(&b).and_then(|_| c.read_exact(&mut b)).is_err() {
                    return;
                }
                let _ = reply.send(t0.elapsed());
            }
        });
        ok_rx.recv()?.map_err(|e| anyhow::anyhow!("echo client: {e}"))?;
        Ok(Echo(tx))
    }

    async fn ping(&self) -> anyhow::Result<Duration> {
        let (tx, rx) = std::sync::mpsc::channel();
        self.0.send(tx)?;
        Ok(tokio::task::spawn_blocking(move || rx.recv_timeout(SECS(5))).await??)
    }
}

/// Latency between one member and two others: a round trip between the groups takes at least
/// twice the delay while it is in force, on a connection opened before the fault as well as on
/// new ones; one within the second group does not; after the clear the routes and TUN devices
/// are gone and the delay with them.
#[chaos_test(tags = ["cluster", "network"], requires = ["root", "netns"], timeout = "60s")]
async fn latency_between_members_delays_only_the_cut_pairs(cx: &mut Chaos) -> anyhow::Result<()> {
    use chaos_harness::fault::net::delay::DELAY_IF;
    use chaos_harness::topology::{Bridge, Netns};
    let lan = Bridge::create(cx.sandbox(), "dl").await?;
    let mut m = Vec::new();
    for n in ["dla", "dlb", "dlc"] {
        m.push(lan.attach(&Netns::create(cx.sandbox(), n).await?).await?);
    }
    let delay = Duration::from_millis(80);
    let before = connect_time(&m[0], &m[1]).await;
    ensure!(before < delay, "a connect took {before:?} before the fault");
    let echo = Echo::open(&m[0], &m[1])?;
    let open_before = echo.ping().await?;
    ensure!(open_before < delay, "an echo took {open_before:?} before the fault");
    let sandbox = cx.sandbox().clone();
    let fault = Fault::latency_between(&m[..1], &m[1..], delay);
    let active = fault.inject(FaultContext { sandbox: &sandbox, rng: cx.rng() }).await?;
    println!("{}", active.confirmation());
    for (a, b) in [(0, 1), (0, 2), (2, 0)] {
        let t = connect_time(&m[a], &m[b]).await;
        ensure!(t >= 2 * delay, "{} -> {} took {t:?} with {delay:?} each way", m[a].addr(), m[b].addr());
    }
    let open_during = echo.ping().await?;
    ensure!(open_during >= 2 * delay, "the connection opened before the fault echoed in {open_during:?}");
    let inside = connect_time(&m[1], &m[2]).await;
    ensure!(inside < delay, "inside the second group a connect took {inside:?}");
    let routes = m[0].netns().exec("ip", &["route"])?;
    ensure!(routes.contains(DELAY_IF), "{routes}");
    let healed = active.clear().await?;
    println!("{healed}");
    let after = connect_time(&m[0], &m[1]).await;
    ensure!(after < delay, "after the clear a connect took {after:?}");
    let open_after = echo.ping().await?;
    ensure!(open_after < delay, "after the clear the open connection echoed in {open_after:?}");
    for x in &m {
        let links = x.netns().exec("ip", &["-o", "link"])?;
        ensure!(!links.contains(DELAY_IF), "{} still has {DELAY_IF}: {links}", x.netns().name());
    }
    Ok(())
}
