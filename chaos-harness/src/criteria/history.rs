//! History checks for replicated registers (sessions), judged the way Jepsen judges databases:
//! a client history ([`crate::load::history`]) of reads and writes with invoke and completion
//! times is checked for
//!
//! * **lost acknowledged writes**: an acknowledged write `W` is lost when the last successful
//!   read of its key (invoked after `W` completed) returns the value of a write that completed
//!   before `W` was invoked, or "absent";
//! * **read-your-writes**: after a client's acknowledged write, that client's later reads of the
//!   key never return a value older than its write (or "absent");
//! * **per-key linearizability** of the register: the WGL algorithm (Wing & Gong, "Testing and
//!   verifying concurrent objects", J. Parallel Distrib. Comput. 17(1), 1993), with Lowe's
//!   memoisation of (linearized set, state) ("Testing for linearizability", Concurrency and
//!   Computation 29(4), 2017), as in Knossos and Porcupine. Failed operations are dropped
//!   (they had no effect); indeterminate (`unknown`) writes may take effect at any time after
//!   their invocation, or never; indeterminate reads are dropped.
//!
//! A failing linearizability check is shrunk to a **minimal anomalous sub-history**: the
//! shortest failing prefix, then one operation removed at a time while the rest still fails
//! (1-minimal: removing any single remaining operation makes it linearizable), and printed one
//! operation per line.
//!
//! ```
//! use chaos_harness::criteria::history::check_key;
//! use chaos_harness::load::history::{History, OpKind};
//! let h = History::new();
//! let w = h.invoke(0, "k", OpKind::Write(Some("a".into())));
//! h.ok(w, None);
//! let r = h.invoke(1, "k", OpKind::Read);
//! h.ok(r, Some(None)); // reads "absent" after the write completed: not linearizable
//! let err = check_key(&h.ops()).unwrap_err();
//! assert_eq!(err.len(), 2);
//! ```

use std::collections::{BTreeMap, HashMap, HashSet};

use super::{Criterion, Judge, JudgeContext, Verdict};
use crate::BoxFuture;
use crate::load::history::{History, Op, OpKind, OpResult, Value};

/// Steps the search may take per key before giving up as inconclusive.
pub const SEARCH_BUDGET: u64 = 20_000_000;

/// Why a history check failed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Anomaly {
    /// `lost write`, `read-your-writes`, `not linearizable`, `inconclusive`, ...
    pub kind: String,
    /// The key.
    pub key: String,
    /// What is wrong, in words.
    pub explanation: String,
    /// The operations that show it (a minimal sub-history for `not linearizable`).
    pub ops: Vec<Op>,
}

impl std::fmt::Display for Anomaly {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        writeln!(f, "{} on key {}: {}", self.kind, self.key, self.explanation)?;
        for op in &self.ops {
            writeln!(f, "    {op}")?;
        }
        Ok(())
    }
}

fn completed(op: &Op) -> bool {
    op.complete_us != u64::MAX && matches!(op.result, OpResult::Ok(_))
}

fn read_value(op: &Op) -> Option<&Value> {
    match (&op.kind, &op.result) {
        (OpKind::Read, OpResult::Ok(v)) => Some(v),
        _ => None,
    }
}

fn written(op: &Op) -> Option<&Value> {
    match &op.kind {
        OpKind::Write(v) => Some(v),
        OpKind::Read => None,
    }
}

/// The operations of one key the linearizability search needs: failed operations, reads
/// without a result and indeterminate writes nobody read are dropped (none constrains the
/// register).
fn relevant(ops: &[Op]) -> Vec<Op> {
    let read: HashSet<&Value> = ops.iter().filter_map(read_value).collect();
    ops.iter()
        .filter(|o| match (&o.kind, &o.result) {
            (_, OpResult::Fail(_)) => false,
            (OpKind::Read, OpResult::Ok(_)) => true,
            (OpKind::Read, _) => false,
            (OpKind::Write(_), OpResult::Ok(_)) => true,
            (OpKind::Write(v), _) => read.contains(v),
        })
        .cloned()
        .collect()
}

/// The outcome of a search.
#[derive(Debug, PartialEq, Eq)]
enum Search {
    Linearizable,
    NotLinearizable,
    Inconclusive,
}

/// WGL with memoisation over one key's relevant operations.
fn wgl(ops: &[Op], budget: u64) -> Search {
    #[derive(Clone, Copy)]
    struct Node {
        op: usize,
        is_call: bool,
        prev: usize,
        next: usize,
    }
    // events: calls of every op, returns of completed ones; calls before returns at equal times
    let mut events: Vec<(u64, u8, usize)> = Vec::new();
    for (i, op) in ops.iter().enumerate() {
        events.push((op.invoke_us, 0, i));
        if completed(op) {
            events.push((op.complete_us, 1, i));
        }
    }
    events.sort();
    let n = events.len();
    // node 0 is the head sentinel, node n+1 the tail sentinel
    let mut nodes: Vec<Node> = Vec::with_capacity(n + 2);
    nodes.push(Node { op: usize::MAX, is_call: false, prev: 0, next: 1 });
    let mut ret_of = vec![usize::MAX; ops.len()];
    for (k, &(_, kind, i)) in events.iter().enumerate() {
        nodes.push(Node { op: i, is_call: kind == 0, prev: k, next: k + 2 });
        if kind == 1 {
            ret_of[i] = k + 1;
        }
    }
    nodes.push(Node { op: usize::MAX, is_call: false, prev: n, next: n + 1 });
    let tail = n + 1;
    let mut remaining_returns = ops.iter().filter(|o| completed(o)).count();

    let words = ops.len().div_ceil(64);
    let mut lin = vec![0u64; words];
    let mut state: Value = None;
    let mut stack: Vec<(usize, Value)> = Vec::new();
    let mut cache: HashSet<(Vec<u64>, Value)> = HashSet::new();
    let mut entry = nodes[0].next;
    let mut steps = 0u64;

    let unlink = |nodes: &mut Vec<Node>, x: usize| {
        let (p, nx) = (nodes[x].prev, nodes[x].next);
        nodes[p].next = nx;
        nodes[nx].prev = p;
    };
    let relink = |nodes: &mut Vec<Node>, x: usize| {
        let (p, nx) = (nodes[x].prev, nodes[x].next);
        nodes[p].next = x;
        nodes[nx].prev = x;
    };

    while remaining_returns > 0 {
        steps += 1;
        if steps > budget {
            return Search::Inconclusive;
        }
        if entry != tail && nodes[entry].is_call {
            let i = nodes[entry].op;
            let op = &ops[i];
            let next_state = match (&op.kind, &op.result) {
                (OpKind::Write(v), _) => Some(v.clone()),
                (OpKind::Read, OpResult::Ok(v)) => (v == &state).then(|| state.clone()),
                _ => None,
            };
            if let Some(s2) = next_state {
                let mut l2 = lin.clone();
                l2[i / 64] |= 1 << (i % 64);
                if cache.insert((l2.clone(), s2.clone())) {
                    stack.push((entry, std::mem::replace(&mut state, s2)));
                    lin = l2;
                    unlink(&mut nodes, entry);
                    if ret_of[i] != usize::MAX {
                        unlink(&mut nodes, ret_of[i]);
                        remaining_returns -= 1;
                    }
                    entry = nodes[0].next;
                    continue;
                }
            }
            entry = nodes[entry].next;
        } else {
            // a return of an op not linearized yet (or the end): backtrack
            let Some((call, prev_state)) = stack.pop() else { return Search::NotLinearizable };
            let i = nodes[call].op;
            state = prev_state;
            lin[i / 64] &= !(1 << (i % 64));
            if ret_of[i] != usize::MAX {
                relink(&mut nodes, ret_of[i]);
                remaining_returns += 1;
            }
            relink(&mut nodes, call);
            entry = nodes[call].next;
        }
    }
    Search::Linearizable
}

/// Checks one key's operations for linearizability; on failure returns a 1-minimal anomalous
/// sub-history (see the [module docs](self)).
///
/// ```
/// use chaos_harness::criteria::history::check_key;
/// use chaos_harness::load::history::{History, OpKind};
/// let h = History::new();
/// let w = h.invoke(0, "k", OpKind::Write(Some("a".into())));
/// let r = h.invoke(1, "k", OpKind::Read);
/// h.ok(r, Some(Some("a".into()))); // concurrent with the write: fine
/// h.ok(w, None);
/// assert!(check_key(&h.ops()).is_ok());
/// ```
pub fn check_key(ops: &[Op]) -> Result<(), Vec<Op>> {
    let rel = relevant(ops);
    match wgl(&rel, SEARCH_BUDGET) {
        Search::Linearizable | Search::Inconclusive => Ok(()),
        Search::NotLinearizable => Err(minimize(rel)),
    }
}

fn fails(ops: &[Op]) -> bool {
    wgl(&relevant(ops), SEARCH_BUDGET / 10) == Search::NotLinearizable
}

/// Shortest failing prefix (by invocation), then drop operations one by one while it fails.
/// Candidates keep the write of every value their reads returned (when the full history has
/// it), so the anomaly shown is never an artefact of a missing write.
fn minimize(mut ops: Vec<Op>) -> Vec<Op> {
    ops.sort_by_key(|o| (o.invoke_us, o.id));
    let all_written: HashSet<Value> = ops.iter().filter_map(written).cloned().collect();
    let fails = |sub: &[Op]| {
        let here: HashSet<&Value> = sub.iter().filter_map(written).collect();
        let closed =
            sub.iter().filter_map(read_value).all(|v| v.is_none() || here.contains(v) || !all_written.contains(v));
        closed && fails(sub)
    };
    // the shortest failing prefix: scan by doubling then bisect (verified: the result fails)
    let (mut lo, mut hi) = (0usize, ops.len());
    let mut k = 2;
    while k < ops.len() {
        if fails(&ops[..k]) {
            hi = k;
            break;
        }
        lo = k;
        k *= 2;
    }
    while hi - lo > 1 {
        let mid = (lo + hi) / 2;
        if fails(&ops[..mid]) { hi = mid } else { lo = mid }
    }
    let mut cur: Vec<Op> = if fails(&ops[..hi]) { ops[..hi].to_vec() } else { ops };
    if cur.len() > 400 {
        return cur;
    }
    // passes until no single op can go (a later removal can make an earlier one possible)
    loop {
        let before = cur.len();
        let mut i = cur.len();
        while i > 0 {
            i -= 1;
            let mut trial = cur.clone();
            trial.remove(i);
            if fails(&trial) {
                cur = trial;
            }
        }
        if cur.len() == before {
            return cur;
        }
    }
}

/// Acknowledged writes lost: see the [module docs](self).
///
/// ```
/// use chaos_harness::criteria::history::lost_writes;
/// use chaos_harness::load::history::{History, OpKind};
/// let h = History::new();
/// let w = h.invoke(0, "k", OpKind::Write(Some("a".into())));
/// h.ok(w, None);
/// let r = h.invoke(1, "k", OpKind::Read);
/// h.ok(r, Some(None));
/// assert_eq!(lost_writes(&h.ops()).len(), 1);
/// ```
pub fn lost_writes(ops: &[Op]) -> Vec<Anomaly> {
    let mut out = Vec::new();
    for (key, ops) in by_key(ops) {
        let writer: HashMap<&Value, &Op> = ops.iter().filter_map(|o| written(o).map(|v| (v, *o))).collect();
        let Some(last_read) = ops.iter().filter(|o| read_value(o).is_some()).max_by_key(|o| (o.invoke_us, o.id)) else {
            continue;
        };
        let seen = read_value(last_read).cloned().unwrap_or(None);
        let seen_w = writer.get(&seen).copied();
        for w in ops.iter().filter(|o| written(o).is_some() && completed(o)) {
            if w.complete_us >= last_read.invoke_us || written(w) == Some(&seen) {
                continue;
            }
            let older = match seen_w {
                None => true,
                Some(sw) => sw.complete_us != u64::MAX && sw.complete_us < w.invoke_us,
            };
            if older {
                let mut shown = vec![(*w).clone()];
                if let Some(sw) = seen_w {
                    shown.insert(0, sw.clone());
                }
                shown.push((*last_read).clone());
                out.push(Anomaly {
                    kind: "lost write".into(),
                    key: key.clone(),
                    explanation: format!(
                        "write #{} was acknowledged, but the last read (#{}) returned {}, which {}",
                        w.id,
                        last_read.id,
                        show(&seen),
                        match seen_w {
                            Some(sw) => format!("write #{} had stored before #{} was even invoked", sw.id, w.id),
                            None => "no write produced".into(),
                        }
                    ),
                    ops: shown,
                });
            }
        }
    }
    out
}

/// Read-your-writes violations: see the [module docs](self).
///
/// ```
/// use chaos_harness::criteria::history::read_your_writes;
/// use chaos_harness::load::history::{History, OpKind};
/// let h = History::new();
/// let w = h.invoke(0, "k", OpKind::Write(Some("a".into())));
/// h.ok(w, None);
/// let r = h.invoke(0, "k", OpKind::Read);
/// h.ok(r, Some(None));
/// assert_eq!(read_your_writes(&h.ops()).len(), 1);
/// ```
pub fn read_your_writes(ops: &[Op]) -> Vec<Anomaly> {
    let mut out = Vec::new();
    for (key, ops) in by_key(ops) {
        let writer: HashMap<&Value, &Op> = ops.iter().filter_map(|o| written(o).map(|v| (v, *o))).collect();
        for r in ops.iter().filter(|o| read_value(o).is_some()) {
            let Some(mine) = ops
                .iter()
                .filter(|w| {
                    w.client == r.client && written(w).is_some() && completed(w) && w.complete_us <= r.invoke_us
                })
                .max_by_key(|w| w.complete_us)
            else {
                continue;
            };
            let seen = read_value(r).cloned().unwrap_or(None);
            if written(mine) == Some(&seen) {
                continue;
            }
            let stale = match writer.get(&seen) {
                None => true,
                Some(sw) => sw.complete_us != u64::MAX && sw.complete_us < mine.invoke_us,
            };
            if stale {
                out.push(Anomaly {
                    kind: "read-your-writes".into(),
                    key: key.clone(),
                    explanation: format!(
                        "client {} wrote {} (#{}, acknowledged) and then read {} (#{}), an older value",
                        r.client,
                        show(written(mine).unwrap_or(&None)),
                        mine.id,
                        show(&seen),
                        r.id
                    ),
                    ops: vec![(*mine).clone(), (*r).clone()],
                });
            }
        }
    }
    out
}

/// Per-key linearizability: one anomaly (with a minimal sub-history) per failing key.
///
/// ```
/// use chaos_harness::criteria::history::linearizability;
/// assert!(linearizability(&[]).is_empty());
/// ```
pub fn linearizability(ops: &[Op]) -> Vec<Anomaly> {
    let mut out = Vec::new();
    for (key, ops) in by_key(ops) {
        let owned: Vec<Op> = ops.into_iter().cloned().collect();
        if let Err(min) = check_key(&owned) {
            out.push(Anomaly {
                kind: "not linearizable".into(),
                key,
                explanation: format!(
                    "no order of these {} operations respects both real time and a register's semantics (minimal: removing any one of them makes the rest linearizable)",
                    min.len()
                ),
                ops: min,
            });
        }
    }
    out
}

fn by_key(ops: &[Op]) -> BTreeMap<String, Vec<&Op>> {
    let mut m: BTreeMap<String, Vec<&Op>> = BTreeMap::new();
    for o in ops {
        m.entry(o.key.clone()).or_default().push(o);
    }
    m
}

fn show(v: &Value) -> String {
    v.as_deref().map(|s| format!("{s:?}")).unwrap_or_else(|| "absent".into())
}

/// Which checks a [`HistoryCheck`] runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Which {
    All,
    LostWrites,
    ReadYourWrites,
    Linearizable,
}

impl Criterion {
    /// The history has no lost acknowledged write, no read-your-writes violation and is
    /// linearizable per key; a failure prints each anomaly with its operations.
    ///
    /// ```
    /// # use chaos_harness::criteria::Criterion;
    /// let h = chaos_harness::load::history::History::new();
    /// let c = Criterion::consistent_history(&h);
    /// # let _ = c;
    /// ```
    pub fn consistent_history(h: &History) -> HistoryCheck {
        HistoryCheck { history: h.clone(), which: Which::All, min_ok: 1 }
    }

    /// No acknowledged write lost.
    ///
    /// ```
    /// let c = chaos_harness::criteria::Criterion::no_lost_writes(&chaos_harness::load::history::History::new());
    /// # let _ = c;
    /// ```
    pub fn no_lost_writes(h: &History) -> HistoryCheck {
        HistoryCheck { history: h.clone(), which: Which::LostWrites, min_ok: 1 }
    }

    /// Every client reads its own acknowledged writes (or newer).
    ///
    /// ```
    /// let c = chaos_harness::criteria::Criterion::read_your_writes(&chaos_harness::load::history::History::new());
    /// # let _ = c;
    /// ```
    pub fn read_your_writes(h: &History) -> HistoryCheck {
        HistoryCheck { history: h.clone(), which: Which::ReadYourWrites, min_ok: 1 }
    }

    /// Per-key linearizability of the register.
    ///
    /// ```
    /// let c = chaos_harness::criteria::Criterion::linearizable(&chaos_harness::load::history::History::new());
    /// # let _ = c;
    /// ```
    pub fn linearizable(h: &History) -> HistoryCheck {
        HistoryCheck { history: h.clone(), which: Which::Linearizable, min_ok: 1 }
    }
}

/// See [`Criterion::consistent_history`].
#[derive(Debug, Clone)]
pub struct HistoryCheck {
    history: History,
    which: Which,
    min_ok: usize,
}

impl HistoryCheck {
    /// Fail unless at least `n` operations succeeded (default 1): an empty history proves
    /// nothing.
    ///
    /// ```
    /// let c = chaos_harness::criteria::Criterion::linearizable(&chaos_harness::load::history::History::new()).min_ok(100);
    /// # let _ = c;
    /// ```
    pub fn min_ok(mut self, n: usize) -> Self {
        self.min_ok = n;
        self
    }

    /// The anomalies of the history now (empty when consistent).
    ///
    /// ```
    /// let c = chaos_harness::criteria::Criterion::linearizable(&chaos_harness::load::history::History::new());
    /// assert!(c.anomalies().is_empty());
    /// ```
    pub fn anomalies(&self) -> Vec<Anomaly> {
        let ops = self.history.ops();
        let mut out = Vec::new();
        if matches!(self.which, Which::All | Which::LostWrites) {
            out.extend(lost_writes(&ops));
        }
        if matches!(self.which, Which::All | Which::ReadYourWrites) {
            out.extend(read_your_writes(&ops));
        }
        if matches!(self.which, Which::All | Which::Linearizable) {
            out.extend(linearizability(&ops));
        }
        out
    }
}

impl Judge for HistoryCheck {
    fn describe(&self) -> String {
        match self.which {
            Which::All => "history: no lost write, read-your-writes, linearizable per key".into(),
            Which::LostWrites => "history: no acknowledged write lost".into(),
            Which::ReadYourWrites => "history: read-your-writes".into(),
            Which::Linearizable => "history: linearizable per key".into(),
        }
    }

    fn judge<'a>(&'a self, _cx: &'a JudgeContext) -> BoxFuture<'a, Verdict> {
        Box::pin(async move {
            let (ok, fail, unknown) = self.history.counts();
            let criterion = self.describe();
            if ok < self.min_ok {
                return Verdict {
                    criterion,
                    passed: false,
                    detail: format!("only {ok} operation(s) succeeded (at least {} needed to judge)", self.min_ok),
                };
            }
            let anomalies = self.anomalies();
            let counts = format!("{ok} ok, {fail} failed, {unknown} unknown");
            if anomalies.is_empty() {
                Verdict { criterion, passed: true, detail: format!("{counts}: no anomaly") }
            } else {
                let text: Vec<String> = anomalies.iter().map(|a| a.to_string()).collect();
                Verdict {
                    criterion,
                    passed: false,
                    detail: format!("{counts}: {} anomal(ies):\n{}", anomalies.len(), text.join("")),
                }
            }
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::{Rng, SeedableRng};

    fn op(id: usize, client: usize, kind: OpKind, t0: u64, t1: u64, result: OpResult) -> Op {
        Op { id, client, key: "k".into(), kind, invoke_us: t0, complete_us: t1, result, note: String::new() }
    }
    fn w(id: usize, v: &str, t0: u64, t1: u64) -> Op {
        op(id, id, OpKind::Write(Some(v.into())), t0, t1, OpResult::Ok(None))
    }
    fn r(id: usize, v: Option<&str>, t0: u64, t1: u64) -> Op {
        op(id, id, OpKind::Read, t0, t1, OpResult::Ok(v.map(str::to_string)))
    }

    /// Brute force: some permutation of the relevant ops respects real time and the register
    /// (unknown writes optional, placed after their invocation).
    fn brute(ops: &[Op]) -> bool {
        let ops = relevant(ops);
        fn go(ops: &[Op], used: &mut Vec<bool>, state: &Value) -> bool {
            if ops.iter().enumerate().all(|(i, o)| used[i] || !completed(o)) {
                return true;
            }
            for i in 0..ops.len() {
                if used[i] {
                    continue;
                }
                // i may go next only if no unused completed op returned before i was invoked
                if ops
                    .iter()
                    .enumerate()
                    .any(|(j, o)| !used[j] && j != i && completed(o) && o.complete_us < ops[i].invoke_us)
                {
                    continue;
                }
                let next = match (&ops[i].kind, &ops[i].result) {
                    (OpKind::Write(v), _) => Some(v.clone()),
                    (OpKind::Read, OpResult::Ok(v)) if v == state => Some(state.clone()),
                    _ => None,
                };
                if let Some(s) = next {
                    used[i] = true;
                    if go(ops, used, &s) {
                        return true;
                    }
                    used[i] = false;
                }
            }
            false
        }
        go(&ops, &mut vec![false; ops.len()], &None)
    }

    #[test]
    fn sequential_history_is_linearizable() {
        let h = vec![w(0, "a", 0, 10), r(1, Some("a"), 20, 30), w(2, "b", 40, 50), r(3, Some("b"), 60, 70)];
        assert!(check_key(&h).is_ok());
    }

    #[test]
    fn stale_read_is_caught_and_minimised() {
        let h = vec![
            w(0, "a", 0, 10),
            r(1, Some("a"), 12, 14),
            w(2, "b", 20, 30),
            r(3, Some("b"), 31, 32),
            r(4, Some("a"), 40, 50), // stale: b was acknowledged before this read began
            r(5, Some("b"), 60, 70),
        ];
        let min = check_key(&h).unwrap_err();
        let ids: Vec<usize> = min.iter().map(|o| o.id).collect();
        assert_eq!(ids, vec![0, 2, 4], "{min:#?}");
        assert!(lost_writes(&h).is_empty(), "the last read sees b");
    }

    #[test]
    fn concurrent_reads_may_see_either_value() {
        let h = vec![w(0, "a", 0, 10), w(1, "b", 20, 60), r(2, Some("b"), 25, 30), r(3, Some("a"), 35, 40)];
        // r2 saw b, then r3 (later, real time) saw a: not linearizable although both overlap w1
        assert!(check_key(&h).is_err());
        let h = vec![w(0, "a", 0, 10), w(1, "b", 20, 60), r(2, Some("a"), 25, 30), r(3, Some("b"), 35, 40)];
        assert!(check_key(&h).is_ok());
    }

    #[test]
    fn unknown_writes_may_or_may_not_take_effect() {
        let unk = |id, v: &str, t0| {
            op(id, id, OpKind::Write(Some(v.into())), t0, u64::MAX, OpResult::Unknown("timeout".into()))
        };
        // taken effect later
        assert!(
            check_key(&[w(0, "a", 0, 10), unk(1, "b", 20), r(2, Some("a"), 30, 40), r(3, Some("b"), 50, 60)]).is_ok()
        );
        // never taken effect
        assert!(check_key(&[w(0, "a", 0, 10), unk(1, "b", 20), r(2, Some("a"), 100, 110)]).is_ok());
        // but not before it was invoked
        assert!(check_key(&[unk(1, "b", 20), r(2, Some("b"), 0, 10)]).is_err());
        // failed writes never take effect
        let failed = op(1, 1, OpKind::Write(Some("b".into())), 20, 30, OpResult::Fail("no_quorum".into()));
        assert!(check_key(&[w(0, "a", 0, 10), failed, r(2, Some("b"), 40, 50)]).is_err());
    }

    #[test]
    fn lost_write_names_the_write_and_the_read() {
        let h = vec![w(0, "a", 0, 10), w(1, "b", 20, 30), r(2, Some("a"), 40, 50)];
        let lost = lost_writes(&h);
        assert_eq!(lost.len(), 1, "{lost:?}");
        assert_eq!(lost[0].ops.iter().map(|o| o.id).collect::<Vec<_>>(), vec![0, 1, 2]);
        let text = lost[0].to_string();
        assert!(text.contains("write #1 was acknowledged") && text.contains("\"a\""), "{text}");
        let h = vec![w(0, "a", 0, 10), r(1, None, 40, 50)];
        assert!(lost_writes(&h)[0].explanation.contains("absent"));
    }

    #[test]
    fn read_your_writes_is_per_client() {
        let mut h = vec![w(0, "a", 0, 10), w(1, "b", 20, 30), r(2, Some("a"), 40, 50)];
        h[2].client = 0; // client 0 wrote a and reads a: fine for RYW (not for linearizability)
        assert!(read_your_writes(&h).is_empty());
        h[2].client = 1; // client 1 wrote b and reads the older a
        assert_eq!(read_your_writes(&h).len(), 1);
    }

    /// Property test: on random small histories WGL agrees with brute force, and a minimised
    /// anomaly fails while every one-op-smaller sub-history passes.
    #[test]
    fn wgl_agrees_with_brute_force_on_random_histories() {
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(0x5eed);
        let (mut lin, mut not) = (0, 0);
        for _case in 0..3000 {
            let n = rng.random_range(1..=7);
            let mut ops = Vec::new();
            for id in 0..n {
                let t0 = rng.random_range(0..100u64);
                let t1 = t0 + rng.random_range(1..40u64);
                let res_roll = rng.random_range(0..10);
                let kind = if rng.random_bool(0.5) { OpKind::Write(Some(format!("v{id}"))) } else { OpKind::Read };
                let (t1, result) = match (&kind, res_roll) {
                    (_, 0) => (t1, OpResult::Fail("x".into())),
                    (OpKind::Write(_), 1) => (u64::MAX, OpResult::Unknown("t".into())),
                    (OpKind::Read, _) => {
                        let pick = rng.random_range(0..=n);
                        let v = if pick == n { None } else { Some(format!("v{pick}")) };
                        (t1, OpResult::Ok(v))
                    }
                    _ => (t1, OpResult::Ok(None)),
                };
                ops.push(op(id, id % 3, kind, t0, t1, result));
            }
            let expect = brute(&ops);
            let got = check_key(&ops);
            assert_eq!(got.is_ok(), expect, "WGL and brute force disagree on {ops:#?}");
            match got {
                Ok(()) => lin += 1,
                Err(min) => {
                    not += 1;
                    assert!(!brute(&min), "minimal sub-history passes: {min:#?}");
                    let all: HashSet<Value> = ops.iter().filter_map(written).cloned().collect();
                    for i in 0..min.len() {
                        let mut smaller = min.clone();
                        smaller.remove(i);
                        let here: HashSet<&Value> = smaller.iter().filter_map(written).collect();
                        let closed = smaller
                            .iter()
                            .filter_map(read_value)
                            .all(|v| v.is_none() || here.contains(v) || !all.contains(v));
                        assert!(
                            !closed || brute(&smaller),
                            "not 1-minimal: removing #{} still fails: {min:#?}",
                            min[i].id
                        );
                    }
                }
            }
        }
        assert!(lin > 300 && not > 300, "both outcomes exercised: {lin} linearizable, {not} not");
    }

    #[test]
    fn larger_concurrent_histories_stay_fast_enough() {
        // 4 clients, 600 ops, sequentially consistent by construction: each op's effect at its
        // midpoint on a real register
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(7);
        let mut ops = Vec::new();
        let mut events = Vec::new();
        let mut t = [0u64; 4];
        for id in 0..600 {
            let c = id % 4;
            let t0 = t[c] + rng.random_range(1..20);
            let t1 = t0 + rng.random_range(1..50);
            t[c] = t1;
            let is_write = rng.random_bool(0.5);
            events.push(((t0 + t1) / 2, id, is_write));
            ops.push(op(
                id,
                c,
                if is_write { OpKind::Write(Some(format!("v{id}"))) } else { OpKind::Read },
                t0,
                t1,
                OpResult::Ok(None),
            ));
        }
        events.sort();
        let mut state: Value = None;
        for (_, id, is_write) in events {
            if is_write {
                state = Some(format!("v{id}"));
            } else {
                ops[id].result = OpResult::Ok(state.clone());
            }
        }
        assert!(check_key(&ops).is_ok());
        assert_eq!(wgl(&relevant(&ops), SEARCH_BUDGET), Search::Linearizable);
    }
}
