//! Faults between members of a [`Bridge`](crate::topology::Bridge) (the nodes of a cluster):
//! partition any subset from the others, symmetric or one-way, and lossy links, as nftables
//! tables on each member's bridge interface ([`BRIDGE_IF`]). The members' own veths to the host
//! are untouched, so the harness (the clients) keeps reaching every node, as in Jepsen.
//!
//! * [`Fault::partition_members`]: `a` and `b` cannot exchange a packet (each member of `a`
//!   drops frames from/to every member of `b` on `chaos1`, and the other way round).
//! * [`Fault::partition_one_way`]: packets from `from` to `to` are dropped (egress at `from`,
//!   ingress at `to`); packets the other way pass. TCP needs both directions, so connections
//!   between the two sides fail either way, but datagrams and already-sent data flow one way.
//! * [`Fault::loss_between`]: `percent` % of the packets between `a` and `b` are dropped.
//!
//! Latency between members is [`Fault::latency_between`](super::delay) (nftables cannot hold a
//! packet; a userspace delay line does).
//!
//! Each table (`netdev chaos_cut_*` / `chaos_lossy_*`) is journaled (`nft_table` with its
//! namespace) before it is created, so teardown or the crash reaper deletes it. A cut is
//! confirmed by TCP connects from inside each cut side that were answered before the fault and
//! are silent with it; loss by the rules' drop counters after probe datagrams. Clearing deletes
//! every table and confirms the connects are answered again.
//!
//! ```no_run
//! # fn f(n: &[chaos_harness::topology::Member]) {
//! use chaos_harness::fault::Fault;
//! let minority = Fault::partition_members(&n[..1], &n[1..]);
//! let one_way = Fault::partition_one_way(&n[..1], &n[1..]);
//! let flaky = Fault::loss_between(&n[..1], &n[1..], 30);
//! # let _ = (minority, one_way, flaky); }
//! ```

use std::net::{Ipv4Addr, SocketAddr};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use crate::BoxFuture;
use crate::Error;
use crate::fault::{ActiveFault, Confirmation, Fault, FaultContext, Inject};
use crate::sandbox::{Effect, Sandbox};
use crate::topology::bridge::{BRIDGE_IF, datagrams_from, probe_from};
use crate::topology::netns::{PROBE_PORT, ProbeResult};
use crate::topology::{Member, Netns};

const FAMILY: &str = "netdev";
const PROBE: Duration = Duration::from_millis(300);

/// What the tables do.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Symmetric,
    OneWay,
    Loss(u8),
}

/// A fault between groups of bridge members (see the [module docs](self)).
///
/// ```no_run
/// # fn f(n: &[chaos_harness::topology::Member]) {
/// let f = chaos_harness::fault::Fault::partition_members(&n[..1], &n[1..]);
/// # let _ = f; }
/// ```
#[derive(Debug, Clone)]
pub struct BetweenMembers {
    a: Vec<Member>,
    b: Vec<Member>,
    kind: Kind,
}

/// The rules one member's table holds: drop from `ingress` sources, to `egress` destinations.
#[derive(Debug, Clone)]
struct Plan {
    ns: Netns,
    ingress_from: Vec<Ipv4Addr>,
    egress_to: Vec<Ipv4Addr>,
}

fn set(addrs: &[Ipv4Addr]) -> String {
    addrs.iter().map(|a| a.to_string()).collect::<Vec<_>>().join(", ")
}

fn ruleset(table: &str, plan: &Plan, kind: Kind) -> String {
    let m = match kind {
        Kind::Loss(p) => format!("numgen random mod 100 < {p} "),
        _ => String::new(),
    };
    let mut chains = String::new();
    if !plan.ingress_from.is_empty() {
        chains += &format!(
            "\tchain ingress {{ type filter hook ingress device \"{BRIDGE_IF}\" priority -500; policy accept; ip saddr {{ {} }} {m}counter drop; }}\n",
            set(&plan.ingress_from)
        );
    }
    if !plan.egress_to.is_empty() {
        chains += &format!(
            "\tchain egress {{ type filter hook egress device \"{BRIDGE_IF}\" priority -500; policy accept; ip daddr {{ {} }} {m}counter drop; }}\n",
            set(&plan.egress_to)
        );
    }
    format!("table {FAMILY} {table} {{\n{chains}}}\n")
}

impl BetweenMembers {
    fn plans(&self) -> Vec<Plan> {
        let addrs = |ms: &[Member]| ms.iter().map(Member::addr).collect::<Vec<_>>();
        let (aa, ba) = (addrs(&self.a), addrs(&self.b));
        let mut out = Vec::new();
        match self.kind {
            Kind::Symmetric | Kind::Loss(_) => {
                for m in &self.a {
                    out.push(Plan { ns: m.netns().clone(), ingress_from: ba.clone(), egress_to: ba.clone() });
                }
                for m in &self.b {
                    out.push(Plan { ns: m.netns().clone(), ingress_from: aa.clone(), egress_to: aa.clone() });
                }
            }
            Kind::OneWay => {
                for m in &self.a {
                    out.push(Plan { ns: m.netns().clone(), ingress_from: vec![], egress_to: ba.clone() });
                }
                for m in &self.b {
                    out.push(Plan { ns: m.netns().clone(), ingress_from: aa.clone(), egress_to: vec![] });
                }
            }
        }
        out
    }

    /// Pairs (from, to) whose TCP connects must go silent (and come back on heal).
    fn probe_pairs(&self) -> Vec<(Member, SocketAddr)> {
        let (Some(a0), Some(b0)) = (self.a.first(), self.b.first()) else { return vec![] };
        let mut v: Vec<(Member, SocketAddr)> =
            self.a.iter().map(|m| (m.clone(), SocketAddr::from((b0.addr(), PROBE_PORT)))).collect();
        v.extend(self.b.iter().map(|m| (m.clone(), SocketAddr::from((a0.addr(), PROBE_PORT)))));
        v
    }

    async fn inject_inner(&self, name: &str, sandbox: &Arc<Sandbox>) -> Result<Box<dyn ActiveFault>, Error> {
        let ni = |cause: String, fix: &str| Error::NotInjected { fault: name.to_string(), cause, fix: fix.into() };
        if self.a.is_empty() || self.b.is_empty() {
            return Err(ni("one side of the fault has no member".into(), "name at least one member on each side"));
        }
        if let Some(m) = self.a.iter().find(|m| self.b.iter().any(|n| n.addr() == m.addr())) {
            return Err(ni(format!("member {} is on both sides", m.addr()), "give two disjoint groups"));
        }
        if let Kind::Loss(p) = self.kind
            && !(1..=100).contains(&p)
        {
            return Err(ni(format!("packet loss of {p}% is out of range"), "give a percentage from 1 to 100"));
        }
        let nft = self.a[0].netns().nft().map_err(|w| ni(w, "install nftables; mark the test requires = [\"nft\"]"))?;
        let pairs = self.probe_pairs();
        if !matches!(self.kind, Kind::Loss(_)) {
            for (m, t) in &pairs {
                let r = probe_from(m.netns(), *t, Duration::from_secs(1)).await;
                if !matches!(r, ProbeResult::Answered(..)) {
                    return Err(ni(
                        format!(
                            "{} did not reach {t} before the fault ({r:?}), so a silent probe would prove nothing",
                            m.addr()
                        ),
                        "check the bridge (`ip -n <hub> link`) and that no other fault is active between these members",
                    ));
                }
            }
        }
        let mut tables = Vec::new();
        let prefix = if matches!(self.kind, Kind::Loss(_)) { "chaos_lossy" } else { "chaos_cut" };
        for plan in self.plans() {
            let n = plan.ns.inner.tables.fetch_add(1, Ordering::Relaxed) + 1;
            let table = format!("{prefix}_{:08x}_{n}", plan.ns.inner.id);
            let rules = ruleset(&table, &plan, self.kind);
            let effect = Effect::NftTable {
                family: FAMILY.into(),
                name: table.clone(),
                netns: Some(plan.ns.name().to_string()),
            };
            let res = sandbox.record(effect, || {
                plan.ns.nft_run(&nft, &["-f", "-"], Some(&rules)).map_err(|e| {
                    ni(format!("creating nft table {table} in {}: {e}", plan.ns.name()), "check nftables in namespaces")
                })
            });
            match res {
                Ok((_, seq)) => tables.push(Table { ns: plan.ns.clone(), name: table, seq }),
                Err(e) => {
                    let _ = heal(&nft, sandbox, &tables);
                    return Err(e);
                }
            }
        }
        let active = Active {
            confirmation: Confirmation::new(name, "", vec![]),
            nft: nft.clone(),
            tables,
            sandbox: sandbox.clone(),
            pairs: if matches!(self.kind, Kind::Loss(_)) { vec![] } else { pairs.clone() },
            name: name.to_string(),
        };
        let detail = match self.kind {
            Kind::Loss(p) => {
                let mut sent = 0;
                let mut drops = 0;
                for _ in 0..20 {
                    for (m, t) in &pairs {
                        sent += datagrams_from(m.netns(), *t, 200).await.unwrap_or(0);
                    }
                    drops = active.drops();
                    if drops > 0 {
                        break;
                    }
                }
                if drops == 0 {
                    let cause = format!("the tables counted no drop after {sent} probe datagrams at {p}%");
                    let _ = Box::new(active).clear().await;
                    return Err(ni(cause, "check that nftables' numgen works in this kernel"));
                }
                format!(
                    "{p}% loss between {} and {}: {} table(s); after {sent} probe datagrams the rules had dropped {drops} packet(s)",
                    addrs(&self.a),
                    addrs(&self.b),
                    active.tables.len()
                )
            }
            _ => {
                let mut seen = Vec::new();
                for (m, t) in &pairs {
                    let r = probe_from(m.netns(), *t, PROBE).await;
                    if matches!(r, ProbeResult::Answered(..)) {
                        let cause = format!("with the tables in place {} still reached {t} ({r:?})", m.addr());
                        let _ = Box::new(active).clear().await;
                        return Err(ni(cause, "check for another route between the members"));
                    }
                    seen.push(format!("{} -> {t} silent", m.addr()));
                }
                format!(
                    "{} between {} and {}: {} table(s) on {BRIDGE_IF}; {}; the rules dropped {} packet(s)",
                    if self.kind == Kind::OneWay { "one-way cut" } else { "partition" },
                    addrs(&self.a),
                    addrs(&self.b),
                    active.tables.len(),
                    seen.join(", "),
                    active.drops()
                )
            }
        };
        Ok(Box::new(Active { confirmation: Confirmation::new(name, detail, vec![]), ..active }))
    }
}

fn addrs(ms: &[Member]) -> String {
    format!("[{}]", set(&ms.iter().map(Member::addr).collect::<Vec<_>>()))
}

struct Table {
    ns: Netns,
    name: String,
    seq: u64,
}

fn heal(nft: &Path, sandbox: &Arc<Sandbox>, tables: &[Table]) -> Result<(), String> {
    let mut errs = Vec::new();
    for t in tables {
        match t.ns.nft_run(nft, &["delete", "table", FAMILY, &t.name], None) {
            Ok(_) => {
                let _ = sandbox.journal().undone(t.seq);
            }
            Err(e) => errs.push(format!("{} in {}: {e}", t.name, t.ns.name())),
        }
    }
    if errs.is_empty() { Ok(()) } else { Err(errs.join("; ")) }
}

struct Active {
    confirmation: Confirmation,
    nft: PathBuf,
    tables: Vec<Table>,
    sandbox: Arc<Sandbox>,
    pairs: Vec<(Member, SocketAddr)>,
    name: String,
}

impl Active {
    fn drops(&self) -> u64 {
        self.tables
            .iter()
            .filter_map(|t| t.ns.nft_run(&self.nft, &["list", "table", FAMILY, &t.name], None).ok())
            .map(|l| super::nft::counted_packets(&l))
            .sum()
    }
}

impl ActiveFault for Active {
    fn confirmation(&self) -> &Confirmation {
        &self.confirmation
    }

    fn clear(self: Box<Self>) -> BoxFuture<'static, Result<Confirmation, Error>> {
        Box::pin(async move {
            let name = format!("heal: {}", self.name);
            let ni = |cause: String| Error::NotInjected {
                fault: name.clone(),
                cause,
                fix: "teardown deletes the tables from the journal; check `ip netns exec <ns> nft list ruleset`".into(),
            };
            let drops = self.drops();
            heal(&self.nft, &self.sandbox, &self.tables).map_err(|e| ni(format!("deleting tables: {e}")))?;
            let t0 = Instant::now();
            for (m, t) in &self.pairs {
                loop {
                    if m.reaches(*t, PROBE).await {
                        break;
                    }
                    if t0.elapsed() > Duration::from_secs(5) {
                        return Err(ni(format!("the tables are gone but {} still does not reach {t}", m.addr())));
                    }
                    tokio::time::sleep(Duration::from_millis(20)).await;
                }
            }
            Ok(Confirmation::new(
                name.clone(),
                format!(
                    "{} table(s) deleted (they had dropped {drops} packet(s)); {} probe connect(s) answered again after {:.1} ms",
                    self.tables.len(),
                    self.pairs.len(),
                    t0.elapsed().as_secs_f64() * 1000.0
                ),
                vec![],
            ))
        })
    }
}

impl Inject for BetweenMembers {
    fn describe(&self) -> String {
        match self.kind {
            Kind::Symmetric => format!("partition {} | {}", addrs(&self.a), addrs(&self.b)),
            Kind::OneWay => format!("one-way partition {} -> {}", addrs(&self.a), addrs(&self.b)),
            Kind::Loss(p) => format!("{p}% packet loss between {} and {}", addrs(&self.a), addrs(&self.b)),
        }
    }

    fn inject<'a>(&'a self, cx: FaultContext<'a>) -> BoxFuture<'a, Result<Box<dyn ActiveFault>, Error>> {
        Box::pin(async move {
            let name = self.describe();
            self.inject_inner(&name, cx.sandbox).await
        })
    }
}

impl Fault {
    /// Partition members `a` from members `b` (both directions) on the bridge. Needs `nft`.
    ///
    /// ```no_run
    /// # fn f(n: &[chaos_harness::topology::Member]) {
    /// let f = chaos_harness::fault::Fault::partition_members(&n[..1], &n[1..]);
    /// # let _ = f; }
    /// ```
    pub fn partition_members(a: &[Member], b: &[Member]) -> BetweenMembers {
        BetweenMembers { a: a.to_vec(), b: b.to_vec(), kind: Kind::Symmetric }
    }

    /// Drop packets from `from` to `to` only (see the [module docs](self)). Needs `nft`.
    ///
    /// ```no_run
    /// # fn f(n: &[chaos_harness::topology::Member]) {
    /// let f = chaos_harness::fault::Fault::partition_one_way(&n[..1], &n[1..]);
    /// # let _ = f; }
    /// ```
    pub fn partition_one_way(from: &[Member], to: &[Member]) -> BetweenMembers {
        BetweenMembers { a: from.to_vec(), b: to.to_vec(), kind: Kind::OneWay }
    }

    /// Drop `percent` % (1..=100) of the packets between `a` and `b`, at random. Needs `nft`.
    ///
    /// ```no_run
    /// # fn f(n: &[chaos_harness::topology::Member]) {
    /// let f = chaos_harness::fault::Fault::loss_between(&n[..1], &n[1..], 20);
    /// # let _ = f; }
    /// ```
    pub fn loss_between(a: &[Member], b: &[Member], percent: u8) -> BetweenMembers {
        BetweenMembers { a: a.to_vec(), b: b.to_vec(), kind: Kind::Loss(percent) }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rulesets_match_peer_addresses_on_the_bridge_interface() {
        let sb = Arc::new(
            Sandbox::with_options("unit::between", crate::sandbox::SandboxOptions { cgroups: false }).unwrap(),
        );
        let ns = crate::topology::netns::tests_support::fake(&sb);
        let plan = Plan {
            ns: ns.clone(),
            ingress_from: vec![Ipv4Addr::new(10, 214, 0, 2), Ipv4Addr::new(10, 214, 0, 3)],
            egress_to: vec![],
        };
        let r = ruleset("chaos_cut_1", &plan, Kind::OneWay);
        assert!(r.starts_with("table netdev chaos_cut_1 {"), "{r}");
        assert!(r.contains("hook ingress device \"chaos1\" priority -500; policy accept; ip saddr { 10.214.0.2, 10.214.0.3 } counter drop;"), "{r}");
        assert!(!r.contains("egress"), "{r}");
        let plan = Plan {
            ns: ns.clone(),
            ingress_from: vec![Ipv4Addr::new(10, 214, 0, 1)],
            egress_to: vec![Ipv4Addr::new(10, 214, 0, 1)],
        };
        let r = ruleset("chaos_lossy_1", &plan, Kind::Loss(30));
        assert!(r.contains("ip daddr { 10.214.0.1 } numgen random mod 100 < 30 counter drop"), "{r}");
        let m = |i: u8| crate::topology::bridge::fake_member(&ns, i);
        let f = Fault::partition_one_way(&[m(1)], &[m(2), m(3)]);
        let plans = f.plans();
        assert_eq!(plans.len(), 3);
        assert_eq!(plans[0].egress_to, vec![Ipv4Addr::new(10, 214, 0, 2), Ipv4Addr::new(10, 214, 0, 3)]);
        assert!(plans[0].ingress_from.is_empty() && plans[1].egress_to.is_empty());
        assert_eq!(plans[2].ingress_from, vec![Ipv4Addr::new(10, 214, 0, 1)]);
        let plans = Fault::partition_members(&[m(1)], &[m(2), m(3)]).plans();
        assert_eq!(plans[1].ingress_from, plans[1].egress_to);
        assert_eq!(plans[0].egress_to.len(), 2);
        assert!(
            Fault::partition_members(&[m(1)], &[m(2)]).describe().starts_with("partition [10.214.0.1] | [10.214.0.2]")
        );
        drop((f, plans, ns));
        sb.teardown().unwrap();
    }
}
