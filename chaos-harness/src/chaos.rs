//! [`Chaos`]: the per-test context handed to every chaos test.

use std::any::Any;
use std::sync::Arc;

use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;

use crate::Error;
use crate::fixture::{Fixture, FixtureHandle, Target};
use crate::observe::{EventKind, EventStream, TracingSubscriber};
use crate::params::Described;
use crate::registry::{Bindings, StartedFixture};
use crate::sandbox::Sandbox;
use crate::scenario::Scenario;

/// A fixture started in this test, by name: what spec binding and the fixture watch need.
pub(crate) struct BoundFixture {
    pub(crate) name: String,
    /// `None` for targets without processes (links, namespaces).
    pub(crate) handle: Option<Box<dyn FixtureHandle>>,
    pub(crate) typed: Box<dyn Any + Send + Sync>,
    pub(crate) described: Option<Described>,
}

/// The per-test context: name, seed and random source, and the sandbox that owns every side
/// effect of the test.
///
/// ```
/// use chaos_harness::Chaos;
/// let cx = Chaos::for_doctest("doc::example", 42);
/// assert_eq!(cx.seed(), 42);
/// ```
pub struct Chaos {
    test_name: String,
    seed: u64,
    rng: ChaCha8Rng,
    sandbox: Arc<Sandbox>,
    events: EventStream,
    fixtures: Vec<BoundFixture>,
    outcomes: Vec<crate::scenario::ScenarioOutcome>,
}

impl Chaos {
    /// Builds a context (the runner does this; tests receive it).
    pub(crate) fn new(test_name: &str, seed: u64, sandbox: Arc<Sandbox>) -> Self {
        let events = EventStream::new();
        events.subscribe(TracingSubscriber);
        Self {
            test_name: test_name.to_string(),
            seed,
            rng: ChaCha8Rng::seed_from_u64(seed),
            sandbox,
            events,
            fixtures: Vec::new(),
            outcomes: Vec::new(),
        }
    }

    /// A context outside the runner, for examples and doctests. Its sandbox is torn down when
    /// the context is dropped.
    #[doc(hidden)]
    pub fn for_doctest(test_name: &str, seed: u64) -> Self {
        let sandbox = Arc::new(Sandbox::new(test_name).expect("sandbox for doctest"));
        Self::new(test_name, seed, sandbox)
    }

    /// A context with its own fresh sandbox, outside the runner (examples, plain `#[test]`s).
    /// Tear the sandbox down with `cx.sandbox().teardown()` (dropping the last `Arc` also does).
    ///
    /// ```
    /// let cx = chaos_harness::Chaos::standalone("doc::standalone", 7).unwrap();
    /// assert_eq!(cx.seed(), 7);
    /// cx.sandbox().teardown().unwrap();
    /// ```
    pub fn standalone(test_name: &str, seed: u64) -> Result<Self, Error> {
        Ok(Self::new(test_name, seed, Arc::new(Sandbox::new(test_name)?)))
    }

    /// A context around an existing sandbox, outside the runner.
    ///
    /// ```
    /// use std::sync::Arc;
    /// let sb = Arc::new(chaos_harness::sandbox::Sandbox::new("doc::with").unwrap());
    /// let cx = chaos_harness::Chaos::with_sandbox("doc::with", 1, sb.clone());
    /// assert_eq!(cx.sandbox().run_id(), sb.run_id());
    /// sb.teardown().unwrap();
    /// ```
    pub fn with_sandbox(test_name: &str, seed: u64, sandbox: Arc<Sandbox>) -> Self {
        Self::new(test_name, seed, sandbox)
    }

    /// Starts a fixture inside this test's sandbox and waits until it is ready. Dropping the
    /// returned handle stops it; teardown stops it in any case.
    ///
    /// ```no_run
    /// # async fn f(cx: &mut chaos_harness::Chaos) -> chaos_harness::ChaosResult {
    /// use chaos_harness::fixture::{Command, Probe};
    /// let web = cx.start(Command::new("python3").args(["-m", "http.server", "8000"])
    ///     .ready(Probe::tcp("127.0.0.1:8000"))).await?;
    /// # Ok(()) }
    /// ```
    pub async fn start<F: Fixture>(&mut self, fixture: F) -> Result<F::Handle, Error>
    where
        F::Handle: Send + Sync,
    {
        let described = fixture.described();
        let handle = fixture.start(self.sandbox.clone()).await?;
        let name = handle.target().name().to_string();
        self.adopt(name, StartedFixture::new(handle.clone()), described);
        Ok(handle)
    }

    /// Records a started fixture under `name` and emits `FixtureStarted`.
    pub(crate) fn adopt(&mut self, name: String, started: StartedFixture, described: Option<Described>) {
        let pid = started.handle.as_ref().and_then(|h| h.target().main()).map(|m| m.pid);
        self.events.emit(EventKind::FixtureStarted { fixture: name.clone(), pid });
        self.fixtures.retain(|f| f.name != name);
        self.fixtures.push(BoundFixture { name, handle: started.handle, typed: started.typed, described });
    }

    /// The test's typed event stream (every scenario of the test emits onto it; subscribe to
    /// watch it live).
    ///
    /// ```
    /// let cx = chaos_harness::Chaos::for_doctest("doc::events", 1);
    /// cx.events().subscribe(|e: &chaos_harness::observe::Event| println!("{e}"));
    /// ```
    pub fn events(&self) -> &EventStream {
        &self.events
    }

    /// The outcomes of the scenarios this test ran, in order (the runner reports the last).
    pub fn outcomes(&self) -> &[crate::scenario::ScenarioOutcome] {
        &self.outcomes
    }

    pub(crate) fn record_outcome(&mut self, o: crate::scenario::ScenarioOutcome) {
        self.outcomes.push(o);
    }

    /// Takes the outcomes out (the runner does this when the body ends).
    pub(crate) fn take_outcomes(&mut self) -> Vec<crate::scenario::ScenarioOutcome> {
        std::mem::take(&mut self.outcomes)
    }

    /// The fixtures started in this test (by [`Chaos::start`] or a bound spec).
    pub fn fixtures(&self) -> Vec<Target> {
        self.fixture_targets()
    }

    pub(crate) fn fixture_targets(&self) -> Vec<Target> {
        self.fixtures.iter().filter_map(|f| f.handle.as_ref().map(|h| h.target())).collect()
    }

    /// The roles the resource monitor samples by default: each fixture whole (`all`), plus
    /// its own plain roles (Snakepit's `beam`, `workers`), or its `main` process when it has none.
    pub(crate) fn monitor_selections(&self) -> Vec<crate::fixture::Selection> {
        let mut out = Vec::new();
        for h in self.fixtures.iter().filter_map(|f| f.handle.as_ref()) {
            out.push(h.all());
            let own: Vec<&str> = h.own_roles().iter().copied().filter(|r| !r.contains('[')).collect();
            if own.is_empty() {
                out.push(h.main());
            }
            out.extend(own.into_iter().filter_map(|r| h.role(r).ok()));
        }
        out
    }

    /// Each fixture's name and spec description (for `Scenario::spec`).
    pub(crate) fn fixture_specs(&self) -> Vec<(String, Option<Described>)> {
        self.fixtures.iter().map(|f| (f.name.clone(), f.described.clone())).collect()
    }

    /// Whether a fixture named `name` was started in this test.
    pub(crate) fn has_fixture(&self, name: &str) -> bool {
        self.fixtures.iter().any(|f| f.name == name)
    }

    /// The fixtures as registry [`Bindings`] (selector expressions, typed handles).
    pub(crate) fn bindings(&self) -> FixtureBindings<'_> {
        FixtureBindings(&self.fixtures)
    }

    /// Begins a scenario (see [`Scenario`]).
    ///
    /// ```no_run
    /// # async fn f(cx: &mut chaos_harness::Chaos) -> chaos_harness::ChaosResult {
    /// let outcome = cx.scenario("nothing").wait(std::time::Duration::from_millis(10)).run().await?;
    /// assert!(outcome.passed());
    /// # Ok(()) }
    /// ```
    pub fn scenario(&mut self, name: &str) -> Scenario<'_> {
        Scenario::new(self, name)
    }

    /// The test's full name.
    pub fn test_name(&self) -> &str {
        &self.test_name
    }

    /// The test's seed (printed on failure; replay with `CHAOS_SEED=<seed>`).
    pub fn seed(&self) -> u64 {
        self.seed
    }

    /// The test's deterministic random source, seeded from [`Chaos::seed`].
    pub fn rng(&mut self) -> &mut ChaCha8Rng {
        &mut self.rng
    }

    /// The sandbox that owns this test's side effects.
    pub fn sandbox(&self) -> &Arc<Sandbox> {
        &self.sandbox
    }
}

#[cfg(feature = "net")]
impl Chaos {
    /// Starts a [`Link`](crate::topology::Link) owned by this test, seeded with the test's seed (so toxicity draws
    /// replay with `CHAOS_SEED`). Same as `Link::builder(name, upstream).seed(cx.seed()).start(cx.sandbox())`.
    ///
    /// ```no_run
    /// # async fn f(cx: &mut chaos_harness::Chaos) -> chaos_harness::ChaosResult {
    /// let db = cx.link("db", "127.0.0.1:5432").await?;
    /// # let _ = db; Ok(()) }
    /// ```
    pub async fn link(&mut self, name: &str, upstream: impl Into<String>) -> Result<crate::topology::Link, Error> {
        crate::topology::Link::builder(name, upstream).seed(self.seed()).start(self.sandbox()).await
    }
}

/// The running fixtures of a test as [`Bindings`].
pub(crate) struct FixtureBindings<'a>(&'a [BoundFixture]);

impl FixtureBindings<'_> {
    fn find(&self, name: &str) -> Result<&BoundFixture, Error> {
        self.0.iter().find(|f| f.name == name).ok_or_else(|| {
            let names: Vec<&str> = self.0.iter().map(|f| f.name.as_str()).collect();
            Error::Config {
                what: format!("target `{name}`"),
                cause: if names.is_empty() {
                    "no fixture is running in this test".into()
                } else {
                    format!("no fixture of that name is running (running: {})", names.join(", "))
                },
                fix: crate::error::did_you_mean(name, &names),
            }
        })
    }
}

impl Bindings for FixtureBindings<'_> {
    fn handle(&self, name: &str) -> Result<&dyn FixtureHandle, Error> {
        let f = self.find(name)?;
        f.handle.as_deref().ok_or_else(|| Error::Config {
            what: format!("target `{name}`"),
            cause: "it has no processes (it is a link or a network namespace)".into(),
            fix: "name it in network faults (latency, partition, ...); process faults and selectors need a process fixture"
                .into(),
        })
    }

    fn typed(&self, name: &str) -> Result<&(dyn Any + Send + Sync), Error> {
        self.find(name).map(|f| f.typed.as_ref())
    }

    fn names(&self) -> Vec<String> {
        self.0.iter().map(|f| f.name.clone()).collect()
    }
}
