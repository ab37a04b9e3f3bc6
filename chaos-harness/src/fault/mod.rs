//! Faults: inject -> active handle -> clear, each confirmed.
//!
//! A fault type implements [`Inject`]; [`Fault`] is the boxed value scenarios hold, with the
//! constructors tests use (`Fault::kill(pit.main())`). Injecting returns an [`ActiveFault`]
//! whose [`Confirmation`] proves the fault took effect (pid gone, state `T`, freezer state read
//! back, ...). A fault that cannot be confirmed fails with [`Error::NotInjected`], never as a
//! pass. Every reversible side effect is journaled (see [`crate::sandbox::journal`]) before it
//! happens, so teardown and the crash reaper heal it even if `clear` never runs.
//!
//! Why a struct `Fault` *and* a trait `Inject` (the design named the trait `Fault`): a trait
//! cannot carry the constructors (`Fault::kill(..)` on a trait needs a concrete `Self`), and
//! the design's test API reads `Fault::kill(..)`. So the trait is [`Inject`] and the
//! constructors live on the [`Fault`] wrapper; other modules add theirs with `impl Fault`.

#[cfg(feature = "net")]
pub mod net;
pub mod process;
pub mod resource;
#[cfg(feature = "snakepit")]
pub mod snakepit;

use std::sync::Arc;

pub use nix::sys::signal::Signal;
use rand::RngCore;

use crate::BoxFuture;
use crate::Error;
use crate::params::Described;
use crate::sandbox::Sandbox;

/// What an injection gets to work with: the sandbox (journal, ownership) and the test's seeded
/// random source.
pub struct FaultContext<'a> {
    /// The test's sandbox.
    pub sandbox: &'a Arc<Sandbox>,
    /// The test's seeded random source (for random selectors and jitter).
    pub rng: &'a mut (dyn RngCore + Send),
}

/// The proof that a fault took effect (or was cleared).
///
/// ```
/// let c = chaos_harness::fault::Confirmation::new("kill main", "pid 42 gone after 0.2 ms", vec![42]);
/// assert_eq!(c.to_string(), "kill main: pid 42 gone after 0.2 ms");
/// ```
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Confirmation {
    /// The fault's description.
    pub fault: String,
    /// What was observed.
    pub detail: String,
    /// The pids involved.
    pub pids: Vec<i32>,
}

impl Confirmation {
    /// Builds a confirmation.
    pub fn new(fault: impl Into<String>, detail: impl Into<String>, pids: Vec<i32>) -> Self {
        Self { fault: fault.into(), detail: detail.into(), pids }
    }
}

impl std::fmt::Display for Confirmation {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}: {}", self.fault, self.detail)
    }
}

/// A fault type: how to inject it.
///
/// ```
/// use chaos_harness::fault::{ActiveFault, Confirmation, FaultContext, Inject, Fault};
/// use chaos_harness::BoxFuture;
///
/// struct Nothing;
/// struct Done(Confirmation);
/// impl ActiveFault for Done {
///     fn confirmation(&self) -> &Confirmation { &self.0 }
///     fn clear(self: Box<Self>) -> BoxFuture<'static, Result<Confirmation, chaos_harness::Error>> {
///         Box::pin(async move { Ok(self.0) })
///     }
/// }
/// impl Inject for Nothing {
///     fn describe(&self) -> String { "nothing".into() }
///     fn inject<'a>(&'a self, _cx: FaultContext<'a>)
///         -> BoxFuture<'a, Result<Box<dyn ActiveFault>, chaos_harness::Error>> {
///         Box::pin(async { Ok(Box::new(Done(Confirmation::new("nothing", "did nothing", vec![]))) as _) })
///     }
/// }
/// let f: Fault = Nothing.into();
/// assert_eq!(f.describe(), "nothing");
/// ```
pub trait Inject: Send + Sync {
    /// A one-line description for outcomes and logs.
    fn describe(&self) -> String;

    /// Puts the fault into effect and confirms it, or fails with [`Error::NotInjected`].
    fn inject<'a>(&'a self, cx: FaultContext<'a>) -> BoxFuture<'a, Result<Box<dyn ActiveFault>, Error>>;

    /// The registry kind and parameters that build this fault again from a scenario spec
    /// (`kill` with `target = "web.main"`, `signal = "SIGTERM"`); `None` when it cannot be
    /// written down (an unregistered fault).
    fn described(&self) -> Option<Described> {
        None
    }
}

/// A fault in effect.
pub trait ActiveFault: Send {
    /// The proof it took effect.
    fn confirmation(&self) -> &Confirmation;

    /// Heals it (no-op for one-shot faults such as kills) and confirms the healing.
    fn clear(self: Box<Self>) -> BoxFuture<'static, Result<Confirmation, Error>>;

    /// Whether this is a one-shot fault (a kill) with nothing to clear: its fault phase lasts
    /// until the target is observed recovered.
    fn one_shot(&self) -> bool {
        false
    }
}

/// A fault, ready to be injected by a scenario.
///
/// ```no_run
/// # use chaos_harness::prelude::*;
/// # use chaos_harness::fault::Fault;
/// # use chaos_harness::fixture::{FixtureHandle, Process};
/// # fn f(p: &Process) -> Result<(), chaos_harness::Error> {
/// let faults: Vec<Fault> = vec![
///     Fault::kill(p.main()).into(),
///     Fault::signal(p.children(), nix::sys::signal::Signal::SIGHUP).into(),
///     Fault::kill_tree(p).into(),
///     Fault::pause(p.nth(0)).into(),
///     Fault::freeze(p).into(),
///     Fault::crash_loop(p.children()).every(Duration::from_millis(100)).lasting(Duration::from_secs(1)).into(),
///     Fault::restart(p).into(),
/// ];
/// # Ok(()) }
/// ```
pub struct Fault(Box<dyn Inject>);

impl Fault {
    /// Wraps any [`Inject`] implementation.
    pub fn new(f: impl Inject + 'static) -> Self {
        Self(Box::new(f))
    }

    /// The description.
    pub fn describe(&self) -> String {
        self.0.describe()
    }

    /// See [`Inject::described`].
    pub fn described(&self) -> Option<Described> {
        self.0.described()
    }

    /// The registry kind (`custom` for faults that cannot be written down).
    pub fn kind(&self) -> String {
        self.described().map_or_else(|| "custom".to_string(), |d| d.kind)
    }

    /// Injects it. Every injection and its clearing is written to the audit log
    /// ([`crate::sandbox::audit`]); in a dry run it is refused with [`Error::DryRun`] before it
    /// acts (kills are not journaled, so the journal's dry-run cut alone would not stop them).
    pub fn inject<'a>(&'a self, cx: FaultContext<'a>) -> BoxFuture<'a, Result<Box<dyn ActiveFault>, Error>> {
        use crate::sandbox::audit::{self, AuditEntry, By, Event};
        let (run_id, test) = (cx.sandbox.run_id().to_string(), cx.sandbox.test_name().to_string());
        let what = self.describe();
        if cx.sandbox.is_dry_run() {
            eprintln!("dry run [{test}]: would inject {what}");
            return Box::pin(async move { Err(Error::DryRun { effect: format!("inject {what}") }) });
        }
        Box::pin(async move {
            let result = self.0.inject(cx).await;
            let entry = AuditEntry::new(Event::Inject, By::Harness, what.clone()).run(&run_id, &test);
            match &result {
                Ok(active) => {
                    let c = active.confirmation();
                    audit::write(entry.target(format!("pids {:?}", c.pids)).confirmation(c.detail.clone()));
                }
                Err(e) => audit::write(entry.confirmation(format!("not injected: {e}"))),
            }
            result.map(|inner| Box::new(Audited { inner, what, run_id, test }) as Box<dyn ActiveFault>)
        })
    }
}

/// An active fault whose clearing is audited.
struct Audited {
    inner: Box<dyn ActiveFault>,
    what: String,
    run_id: String,
    test: String,
}

impl ActiveFault for Audited {
    fn confirmation(&self) -> &Confirmation {
        self.inner.confirmation()
    }

    fn one_shot(&self) -> bool {
        self.inner.one_shot()
    }

    fn clear(self: Box<Self>) -> BoxFuture<'static, Result<Confirmation, Error>> {
        use crate::sandbox::audit::{self, AuditEntry, By, Event};
        let Audited { inner, what, run_id, test } = *self;
        let pids = inner.confirmation().pids.clone();
        Box::pin(async move {
            let result = inner.clear().await;
            let mut entry =
                AuditEntry::new(Event::Clear, By::Harness, what).run(&run_id, &test).target(format!("pids {pids:?}"));
            entry = match &result {
                Ok(c) => entry.confirmation(c.to_string()).undo_result(&Ok::<(), String>(())),
                Err(e) => entry.undo_result(&Err::<(), _>(format!("{e} (teardown undoes it from the journal)"))),
            };
            audit::write(entry);
            result
        })
    }
}

impl std::fmt::Debug for Fault {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Fault({})", self.describe())
    }
}

impl<T: Inject + 'static> From<T> for Fault {
    fn from(f: T) -> Self {
        Fault::new(f)
    }
}

/// An [`ActiveFault`] for one-shot faults: nothing to clear.
#[derive(Debug, Clone)]
pub struct OneShot(pub Confirmation);

impl ActiveFault for OneShot {
    fn confirmation(&self) -> &Confirmation {
        &self.0
    }
    fn one_shot(&self) -> bool {
        true
    }
    fn clear(self: Box<Self>) -> BoxFuture<'static, Result<Confirmation, Error>> {
        Box::pin(async move {
            let mut c = self.0;
            c.detail = "one-shot: nothing to clear".into();
            Ok(c)
        })
    }
}
