//! Network faults on a [`Netns`]: `Fault::partition(&ns)` and `Fault::packet_loss(&ns, n)` as
//! nftables tables inside the namespace, journaled, confirmed by probes and the rules' own
//! packet counters, and restored byte for byte (see [`crate::topology::netns`] for the layout).
//!
//! ```no_run
//! # fn f(ns: &chaos_harness::topology::Netns) {
//! use chaos_harness::fault::Fault;
//! let cut = Fault::partition(ns);
//! let lossy = Fault::packet_loss(ns, 30);
//! # let _ = (cut, lossy); }
//! ```

use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use crate::BoxFuture;
use crate::Error;
use crate::fault::{ActiveFault, Confirmation, Fault, FaultContext, Inject};
use crate::sandbox::{Effect, Sandbox};
use crate::topology::Netns;
use crate::topology::netns::{NS_IF, PROBE_TIMEOUT, ProbeResult, probe, probe_until_answered};

/// Sum of the packet counters in an `nft list table` listing.
pub(super) fn counted_packets(listing: &str) -> u64 {
    listing
        .lines()
        .filter_map(|l| {
            let mut w = l.split_whitespace().skip_while(|w| *w != "packets");
            w.next()?;
            w.next()?.parse::<u64>().ok()
        })
        .sum()
}

/// The nft family of the fault tables (hooks on the veth itself).
const FAMILY: &str = "netdev";

/// Which nft rules a [`NftFault`] installs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Rules {
    /// Drop everything on the veth.
    Partition,
    /// Drop this percentage of packets each way.
    Loss(u8),
}

/// An nftables table inside a [`Netns`] as a fault: `Fault::partition(&ns)` (drop everything)
/// or `Fault::packet_loss(&ns, percent)`. See the [module docs](self) for how each is
/// confirmed and restored.
///
/// ```no_run
/// # fn f(ns: &chaos_harness::topology::Netns) {
/// use chaos_harness::fault::Fault;
/// let cut = Fault::partition(ns);
/// let lossy = Fault::packet_loss(ns, 30);
/// # let _ = (cut, lossy); }
/// ```
#[derive(Debug, Clone)]
pub struct NftFault {
    ns: Netns,
    rules: Rules,
    spec_ref: Option<String>,
}

impl NftFault {
    /// How a scenario spec names the namespace (`target = "db"`); set by the registry so that
    /// [`Inject::described`] writes the same reference back (default: the namespace's name).
    ///
    /// ```no_run
    /// # fn f(ns: &chaos_harness::topology::Netns) {
    /// let f = chaos_harness::fault::Fault::partition(ns).spec_ref("db");
    /// # let _ = f; }
    /// ```
    pub fn spec_ref(mut self, reference: impl Into<String>) -> Self {
        self.spec_ref = Some(reference.into());
        self
    }

    fn table_prefix(&self) -> &'static str {
        match self.rules {
            Rules::Partition => "chaos_part",
            Rules::Loss(_) => "chaos_loss",
        }
    }

    fn ruleset(&self, table: &str) -> String {
        let matcher = match self.rules {
            Rules::Partition => String::new(),
            Rules::Loss(p) => format!("numgen random mod 100 < {p} "),
        };
        format!(
            "table {FAMILY} {table} {{\n\
             \tchain ingress {{ type filter hook ingress device \"{NS_IF}\" priority -500; policy accept; {matcher}counter drop; }}\n\
             \tchain egress {{ type filter hook egress device \"{NS_IF}\" priority -500; policy accept; {matcher}counter drop; }}\n\
             }}\n"
        )
    }

    async fn inject_inner(&self, name: &str, sandbox: &Arc<Sandbox>) -> Result<Box<dyn ActiveFault>, Error> {
        let ns = &self.ns;
        let ni = |cause: String, fix: &str| Error::NotInjected { fault: name.to_string(), cause, fix: fix.into() };
        if let Rules::Loss(p) = self.rules
            && !(1..=100).contains(&p)
        {
            return Err(ni(format!("packet loss of {p}% is out of range"), "give a percentage from 1 to 100"));
        }
        let nft = ns.nft().map_err(|why| ni(why, "install nftables and mark the test requires = [\"nft\"]"))?;
        let target = ns.probe_addr();
        let before_probe = match probe_until_answered(target, Duration::from_secs(2)).await {
            Ok((how, d)) => format!("{how} in {:.1} ms", d.as_secs_f64() * 1000.0),
            Err(e) => {
                return Err(ni(
                    format!(
                        "the namespace did not answer a probe connect to {target} before the fault ({e}), so a failing probe would prove nothing"
                    ),
                    "check the veth link (`ip link`, `ip -n <ns> addr`) and that no other fault is active on it",
                ));
            }
        };
        let ruleset_before =
            ns.nft_run(&nft, &["list", "ruleset"], None).map_err(|e| ni(e, "check nftables inside the namespace"))?;
        let n = ns.inner.tables.fetch_add(1, Ordering::Relaxed) + 1;
        let table = format!("{}_{:08x}_{n}", self.table_prefix(), ns.inner.id);
        let rules = self.ruleset(&table);
        let effect =
            Effect::NftTable { family: FAMILY.into(), name: table.clone(), netns: Some(ns.name().to_string()) };
        let (_, seq) = sandbox.record(effect, || {
            ns.nft_run(&nft, &["-f", "-"], Some(&rules)).map_err(|e| {
                ni(
                    format!("creating nft table {table}: {e}"),
                    "check that nftables works inside a namespace (root, kernel modules)",
                )
            })
        })?;
        let active = NftActive {
            confirmation: Confirmation::new(name, "", vec![]),
            ns: ns.clone(),
            nft: nft.clone(),
            table: table.clone(),
            seq,
            sandbox: sandbox.clone(),
            ruleset_before,
            name: name.to_string(),
        };
        let listing = |a: &NftActive| a.ns.nft_run(&a.nft, &["list", "table", FAMILY, &a.table], None);
        let detail = match self.rules {
            Rules::Partition => {
                let during = probe(target, PROBE_TIMEOUT).await;
                let counted = listing(&active).map(|l| counted_packets(&l)).unwrap_or(0);
                let answered = matches!(during, ProbeResult::Answered(..));
                if answered || counted == 0 {
                    let cause = format!(
                        "with table {table} in place a probe connect to {target} gave {during:?} (expected no answer) and its rules counted {counted} dropped packets"
                    );
                    let _ = Box::new(active).clear().await;
                    return Err(ni(
                        cause,
                        "check for another route to the namespace, and that the table's hooks are active",
                    ));
                }
                let how = match during {
                    ProbeResult::Failed(e) => format!("failed ({e})"),
                    _ => format!("got no answer within {PROBE_TIMEOUT:?}"),
                };
                format!(
                    "nft table {FAMILY} {table} in {} drops all traffic on {NS_IF}: a probe connect to {target} ({before_probe} before) {how}; the rules dropped {counted} packet(s)",
                    ns.name()
                )
            }
            Rules::Loss(p) => {
                let sock = std::net::UdpSocket::bind((ns.inner.host_addr, 0))
                    .map_err(|e| ni(format!("probe socket: {e}"), "check the veth address"))?;
                let mut sent = 0u64;
                let mut counted = 0;
                for _round in 0..10 {
                    for _ in 0..500 {
                        if sock.send_to(b"chaos-harness loss probe", target).is_ok() {
                            sent += 1;
                        }
                    }
                    tokio::time::sleep(Duration::from_millis(5)).await;
                    counted = listing(&active).map(|l| counted_packets(&l)).unwrap_or(0);
                    if counted > 0 {
                        break;
                    }
                }
                if counted == 0 {
                    let _ = Box::new(active).clear().await;
                    return Err(ni(
                        format!("table {table} counted no dropped packet after {sent} probe datagrams at {p}%"),
                        "check that nftables' numgen works in this kernel",
                    ));
                }
                format!(
                    "nft table {FAMILY} {table} in {} drops {p}% of packets each way on {NS_IF}: after {sent} probe datagrams to {target} its rules had dropped {counted} packet(s)",
                    ns.name()
                )
            }
        };
        Ok(Box::new(NftActive { confirmation: Confirmation::new(name, detail, vec![]), ..active }))
    }
}

impl Inject for NftFault {
    fn describe(&self) -> String {
        match self.rules {
            Rules::Partition => format!("partition network namespace {} ({})", self.ns.name(), self.ns.addr()),
            Rules::Loss(p) => format!("{p}% packet loss on network namespace {} ({})", self.ns.name(), self.ns.addr()),
        }
    }

    fn described(&self) -> Option<crate::params::Described> {
        let target = self.spec_ref.clone().unwrap_or_else(|| self.ns.name().to_string());
        let p = crate::params::Params::new().with("target", target);
        Some(match self.rules {
            Rules::Partition => crate::params::Described::new("partition", p),
            Rules::Loss(pct) => crate::params::Described::new("packet_loss", p.with("percent", pct)),
        })
    }

    fn inject<'a>(&'a self, cx: FaultContext<'a>) -> BoxFuture<'a, Result<Box<dyn ActiveFault>, Error>> {
        Box::pin(async move {
            let name = self.describe();
            self.inject_inner(&name, cx.sandbox).await
        })
    }
}

struct NftActive {
    confirmation: Confirmation,
    ns: Netns,
    nft: PathBuf,
    table: String,
    seq: u64,
    sandbox: Arc<Sandbox>,
    ruleset_before: String,
    name: String,
}

impl ActiveFault for NftActive {
    fn confirmation(&self) -> &Confirmation {
        &self.confirmation
    }

    fn clear(self: Box<Self>) -> BoxFuture<'static, Result<Confirmation, Error>> {
        Box::pin(async move {
            let name = format!("heal: {}", self.name);
            let ni = |cause: String| Error::NotInjected {
                fault: name.clone(),
                cause,
                fix: "teardown deletes the table from the journal; check `ip netns exec <ns> nft list ruleset`".into(),
            };
            let counted = self
                .ns
                .nft_run(&self.nft, &["list", "table", FAMILY, &self.table], None)
                .map(|l| counted_packets(&l))
                .ok();
            self.ns
                .nft_run(&self.nft, &["delete", "table", FAMILY, &self.table], None)
                .map_err(|e| ni(format!("deleting table {}: {e}", self.table)))?;
            let after = self
                .ns
                .nft_run(&self.nft, &["list", "ruleset"], None)
                .map_err(|e| ni(format!("listing the ruleset: {e}")))?;
            if after != self.ruleset_before {
                return Err(ni(format!(
                    "the ruleset differs from before the fault:\nbefore:\n{}\nafter:\n{after}",
                    self.ruleset_before
                )));
            }
            let _ = self.sandbox.journal().undone(self.seq);
            let target = self.ns.probe_addr();
            let (how, d) = probe_until_answered(target, Duration::from_secs(3))
                .await
                .map_err(|e| ni(format!("the table is gone but a probe connect to {target} still fails: {e}")))?;
            let dropped = counted.map(|c| format!("; it had dropped {c} packet(s)")).unwrap_or_default();
            Ok(Confirmation::new(
                name.clone(),
                format!(
                    "table {FAMILY} {} deleted; the namespace's ruleset is identical to before the fault ({} lines); a probe connect to {target} was {how} after {:.1} ms{dropped}",
                    self.table,
                    self.ruleset_before.lines().count(),
                    d.as_secs_f64() * 1000.0
                ),
                vec![],
            ))
        })
    }
}

impl Fault {
    /// Cut the network namespace off: an nft table inside drops every packet in and out of
    /// its veth until cleared. Needs `nft`.
    ///
    /// ```no_run
    /// # fn f(ns: &chaos_harness::topology::Netns) {
    /// let f = chaos_harness::fault::Fault::partition(ns);
    /// # let _ = f; }
    /// ```
    pub fn partition(ns: &Netns) -> NftFault {
        NftFault { ns: ns.clone(), rules: Rules::Partition, spec_ref: None }
    }

    /// Drop `percent` % (1..=100) of the packets in and out of the namespace's veth, at
    /// random (`numgen random`). Needs `nft`.
    ///
    /// ```no_run
    /// # fn f(ns: &chaos_harness::topology::Netns) {
    /// let f = chaos_harness::fault::Fault::packet_loss(ns, 20);
    /// # let _ = f; }
    /// ```
    pub fn packet_loss(ns: &Netns, percent: u8) -> NftFault {
        NftFault { ns: ns.clone(), rules: Rules::Loss(percent), spec_ref: None }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::topology::netns::NetnsInner;
    use std::net::Ipv4Addr;
    use std::sync::atomic::{AtomicBool, AtomicU64};

    #[test]
    fn packet_counters_are_summed() {
        let l = "table inet t {\n chain input {\n  iifname \"chaos0\" counter packets 2 bytes 120 drop\n }\n chain output {\n  oifname \"chaos0\" counter packets 3 bytes 1 drop\n }\n}\n";
        assert_eq!(counted_packets(l), 5);
        assert_eq!(counted_packets(""), 0);
    }

    #[test]
    fn rulesets_drop_on_the_veth() {
        let sb = Arc::new(
            Sandbox::with_options("unit::nft_rules", crate::sandbox::SandboxOptions { cgroups: false }).unwrap(),
        );
        let ns = Netns {
            inner: Arc::new(NetnsInner {
                name: "chaos-x".into(),
                host_if: "chaos-none-xxxx".into(),
                host_addr: Ipv4Addr::UNSPECIFIED,
                addr: Ipv4Addr::UNSPECIFIED,
                id: 1,
                ip: "ip".into(),
                seq: 0,
                sandbox: sb.clone(),
                tables: AtomicU64::new(0),
                deleted: AtomicBool::new(true),
            }),
        };
        let r = Fault::packet_loss(&ns, 30).ruleset("chaos_loss_1");
        assert!(r.starts_with("table netdev chaos_loss_1"), "{r}");
        assert!(
            r.contains(
                "hook ingress device \"chaos0\" priority -500; policy accept; numgen random mod 100 < 30 counter drop"
            ),
            "{r}"
        );
        let r = Fault::partition(&ns).ruleset("chaos_part_1");
        assert!(r.contains("hook egress device \"chaos0\" priority -500; policy accept; counter drop"), "{r}");
        drop(ns);
        sb.teardown().unwrap();
    }
}
