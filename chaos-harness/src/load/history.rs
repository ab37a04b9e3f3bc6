//! Operation histories for consistency checks (Jepsen style): every client operation on a
//! register (a session) is recorded as an *invoke* and a *completion* with monotonic times and
//! one of three results: `ok` (it took effect, with the value read), `fail` (it certainly did
//! not take effect) or `unknown` (it may or may not have: a timeout, a lost reply, an
//! indeterminate error). [`crate::criteria::history`] checks a history for lost acknowledged
//! writes, read-your-writes and per-key linearizability.
//!
//! ```
//! use chaos_harness::load::history::{History, OpKind};
//! let h = History::new();
//! let w = h.invoke(0, "s1", OpKind::Write(Some("a".into())));
//! h.ok(w, None);
//! let r = h.invoke(1, "s1", OpKind::Read);
//! h.ok(r, Some(Some("a".into())));
//! assert_eq!(h.ops().len(), 2);
//! ```

use std::sync::{Arc, Mutex};
use std::time::Instant;

/// A register value: a string, or `None` for "absent" (never written).
pub type Value = Option<String>;

/// What an operation does.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum OpKind {
    /// Write the value.
    Write(Value),
    /// Read the register.
    Read,
}

/// How an operation ended.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum OpResult {
    /// Still running when the history was taken (treated as `unknown`).
    Pending,
    /// Took effect; a read carries the value it returned.
    Ok(Value),
    /// Certainly had no effect (with the reason).
    Fail(String),
    /// May or may not have taken effect (with the reason).
    Unknown(String),
}

/// One operation: who, on which key, what, when (microseconds since the history began) and
/// how it ended.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Op {
    /// Index in the history (stable id).
    pub id: usize,
    /// The client (process) number.
    pub client: usize,
    /// The register (session id).
    pub key: String,
    /// Read or write.
    pub kind: OpKind,
    /// Invocation time, µs since the history's start.
    pub invoke_us: u64,
    /// Completion time, µs (`u64::MAX` while pending or for `unknown`: it may take effect any
    /// time later).
    pub complete_us: u64,
    /// The result.
    pub result: OpResult,
    /// Free text, e.g. the node that served it.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub note: String,
}

impl std::fmt::Display for Op {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let show = |v: &Value| v.as_deref().map(|s| format!("{s:?}")).unwrap_or_else(|| "absent".into());
        let what = match (&self.kind, &self.result) {
            (OpKind::Write(v), _) => format!("write {}", show(v)),
            (OpKind::Read, OpResult::Ok(v)) => format!("read -> {}", show(v)),
            (OpKind::Read, _) => "read".to_string(),
        };
        let end = if self.complete_us == u64::MAX {
            "..".to_string()
        } else {
            format!("{:.3}", self.complete_us as f64 / 1e6)
        };
        let res = match &self.result {
            OpResult::Pending => "pending".to_string(),
            OpResult::Ok(_) => "ok".to_string(),
            OpResult::Fail(why) => format!("fail ({why})"),
            OpResult::Unknown(why) => format!("unknown ({why})"),
        };
        write!(
            f,
            "#{} client {} key {}: {what} [{:.3} s, {end} s] {res}",
            self.id,
            self.client,
            self.key,
            self.invoke_us as f64 / 1e6
        )?;
        if !self.note.is_empty() {
            write!(f, " via {}", self.note)?;
        }
        Ok(())
    }
}

/// A shared, append-only history (cheap to clone; clients record into it concurrently).
#[derive(Debug, Clone)]
pub struct History {
    start: Instant,
    ops: Arc<Mutex<Vec<Op>>>,
}

impl Default for History {
    fn default() -> Self {
        Self::new()
    }
}

impl History {
    /// An empty history starting now.
    ///
    /// ```
    /// assert!(chaos_harness::load::history::History::new().ops().is_empty());
    /// ```
    pub fn new() -> Self {
        Self { start: Instant::now(), ops: Arc::new(Mutex::new(Vec::new())) }
    }

    /// A history from recorded operations (ids are renumbered in order).
    ///
    /// ```
    /// use chaos_harness::load::history::History;
    /// let h = History::from_ops(vec![]);
    /// assert!(h.ops().is_empty());
    /// ```
    pub fn from_ops(mut ops: Vec<Op>) -> Self {
        for (i, o) in ops.iter_mut().enumerate() {
            o.id = i;
        }
        Self { start: Instant::now(), ops: Arc::new(Mutex::new(ops)) }
    }

    fn now_us(&self) -> u64 {
        self.start.elapsed().as_micros() as u64
    }

    /// Records an invocation; returns its id for the completion.
    ///
    /// ```
    /// use chaos_harness::load::history::{History, OpKind};
    /// let h = History::new();
    /// assert_eq!(h.invoke(3, "k", OpKind::Read), 0);
    /// ```
    pub fn invoke(&self, client: usize, key: &str, kind: OpKind) -> usize {
        let at = self.now_us();
        let mut ops = self.ops.lock().unwrap_or_else(|e| e.into_inner());
        let id = ops.len();
        ops.push(Op {
            id,
            client,
            key: key.to_string(),
            kind,
            invoke_us: at,
            complete_us: u64::MAX,
            result: OpResult::Pending,
            note: String::new(),
        });
        id
    }

    fn complete(&self, id: usize, result: OpResult) {
        let at = self.now_us();
        let mut ops = self.ops.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(op) = ops.get_mut(id) {
            op.complete_us = if matches!(result, OpResult::Unknown(_)) { u64::MAX } else { at };
            op.result = result;
        }
    }

    /// Completes `id` as `ok`; a read passes the value it returned.
    ///
    /// ```
    /// # use chaos_harness::load::history::{History, OpKind};
    /// let h = History::new();
    /// let id = h.invoke(0, "k", OpKind::Read);
    /// h.ok(id, Some(Some("v".into())));
    /// ```
    pub fn ok(&self, id: usize, read: Option<Value>) {
        self.complete(id, OpResult::Ok(read.unwrap_or(None)));
    }

    /// Completes `id` as certainly failed.
    ///
    /// ```
    /// # use chaos_harness::load::history::{History, OpKind};
    /// let h = History::new();
    /// let id = h.invoke(0, "k", OpKind::Read);
    /// h.fail(id, "no_quorum");
    /// ```
    pub fn fail(&self, id: usize, why: impl Into<String>) {
        self.complete(id, OpResult::Fail(why.into()));
    }

    /// Completes `id` as indeterminate.
    ///
    /// ```
    /// # use chaos_harness::load::history::{History, OpKind};
    /// let h = History::new();
    /// let id = h.invoke(0, "k", OpKind::Write(Some("v".into())));
    /// h.unknown(id, "timeout");
    /// ```
    pub fn unknown(&self, id: usize, why: impl Into<String>) {
        self.complete(id, OpResult::Unknown(why.into()));
    }

    /// Adds a note (e.g. the node that served it) to `id`.
    ///
    /// ```
    /// # use chaos_harness::load::history::{History, OpKind};
    /// let h = History::new();
    /// let id = h.invoke(0, "k", OpKind::Read);
    /// h.note(id, "n1");
    /// assert_eq!(h.ops()[0].note, "n1");
    /// ```
    pub fn note(&self, id: usize, note: impl Into<String>) {
        let mut ops = self.ops.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(op) = ops.get_mut(id) {
            op.note = note.into();
        }
    }

    /// A snapshot of the operations so far.
    ///
    /// ```
    /// assert!(chaos_harness::load::history::History::new().ops().is_empty());
    /// ```
    pub fn ops(&self) -> Vec<Op> {
        self.ops.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }

    /// Counts of (ok, fail, unknown or pending) operations.
    ///
    /// ```
    /// assert_eq!(chaos_harness::load::history::History::new().counts(), (0, 0, 0));
    /// ```
    pub fn counts(&self) -> (usize, usize, usize) {
        let ops = self.ops.lock().unwrap_or_else(|e| e.into_inner());
        let ok = ops.iter().filter(|o| matches!(o.result, OpResult::Ok(_))).count();
        let fail = ops.iter().filter(|o| matches!(o.result, OpResult::Fail(_))).count();
        (ok, fail, ops.len() - ok - fail)
    }
}
