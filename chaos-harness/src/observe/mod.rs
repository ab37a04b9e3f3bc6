//! Observation: the typed event stream of a test ([`EventStream`], [`Event`]), the phases of a
//! scenario ([`Phase`]), and the watchers that turn what fixtures do into events
//! ([`FixtureWatch`]).
//!
//! ```
//! use chaos_harness::observe::{EventKind, EventStream, Phase};
//! let stream = EventStream::new();
//! stream.emit(EventKind::PhaseEntered { phase: Phase::Baseline });
//! assert!(matches!(stream.events()[0].kind, EventKind::PhaseEntered { phase: Phase::Baseline }));
//! ```

pub mod event;
pub mod phase;
pub mod stream;
pub mod watch;

pub use event::{Event, EventKind, FaultRef, LoadWindow};
pub use phase::{Phase, PhaseSpan};
pub use stream::{EventStream, Subscriber, TracingSubscriber};
pub use watch::FixtureWatch;
