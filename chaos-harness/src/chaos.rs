//! [`Chaos`]: the per-test context handed to every chaos test.

use std::sync::Arc;

use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;

use crate::sandbox::Sandbox;

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
}

impl Chaos {
    /// Builds a context (the runner does this; tests receive it).
    pub(crate) fn new(test_name: &str, seed: u64, sandbox: Arc<Sandbox>) -> Self {
        Self { test_name: test_name.to_string(), seed, rng: ChaCha8Rng::seed_from_u64(seed), sandbox }
    }

    /// A context outside the runner, for examples and doctests. Its sandbox is torn down when
    /// the context is dropped.
    #[doc(hidden)]
    pub fn for_doctest(test_name: &str, seed: u64) -> Self {
        let sandbox = Arc::new(Sandbox::new(test_name).expect("sandbox for doctest"));
        Self::new(test_name, seed, sandbox)
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
