//! Observation: the typed event stream of a test ([`EventStream`], [`Event`]), the phases of a
//! scenario ([`Phase`]), the watchers that turn what fixtures do into events
//! ([`FixtureWatch`]), and the resource monitor ([`Monitor`]: CPU, RSS, fds per role).
//!
//! ```
//! use chaos_harness::observe::{EventKind, EventStream, Phase};
//! let stream = EventStream::new();
//! stream.emit(EventKind::PhaseEntered { phase: Phase::Baseline });
//! assert!(matches!(stream.events()[0].kind, EventKind::PhaseEntered { phase: Phase::Baseline }));
//! ```

pub mod event;
pub mod monitor;
pub mod phase;
pub mod stream;
pub mod watch;

pub use event::{Event, EventKind, FaultRef, LoadWindow};
pub use monitor::{Monitor, MonitorHandle, MonitorSeries, ResourceSample, Retention, SampleBucket};
pub use phase::{Phase, PhaseSpan};
pub use stream::{EventStream, Subscriber, TracingSubscriber};
pub use watch::FixtureWatch;
