//! [`EventStream`]: one per test; the engine emits, subscribers (the outcome recorder, the
//! live progress printer, reporters, metrics exporters) read.
//!
//! ```
//! use std::sync::{Arc, Mutex};
//! use chaos_harness::observe::{EventKind, EventStream};
//! let stream = EventStream::new();
//! let seen = Arc::new(Mutex::new(Vec::new()));
//! let s = seen.clone();
//! stream.subscribe(move |e: &chaos_harness::observe::Event| s.lock().unwrap().push(e.kind.to_string()));
//! stream.emit(EventKind::Note { text: "hello".into() });
//! assert_eq!(*seen.lock().unwrap(), vec!["hello".to_string()]);
//! assert_eq!(stream.events().len(), 1);
//! ```

use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use super::{Event, EventKind};

/// Something that reads the event stream as it happens.
pub trait Subscriber: Send {
    /// Called once per event, in order, on the emitting task (keep it quick).
    fn on_event(&mut self, event: &Event);
}

impl<F: FnMut(&Event) + Send> Subscriber for F {
    fn on_event(&mut self, event: &Event) {
        self(event)
    }
}

/// Logs every event through `tracing` (captured per test by the runner): the live progress
/// printer of a test.
#[derive(Debug, Default)]
pub struct TracingSubscriber;

impl Subscriber for TracingSubscriber {
    fn on_event(&mut self, event: &Event) {
        tracing::info!(target: "chaos_harness::event", at_ms = event.at.as_millis() as u64, "{}", event.kind);
    }
}

struct Inner {
    t0: Instant,
    events: Mutex<Vec<Event>>,
    subscribers: Mutex<Vec<Box<dyn Subscriber>>>,
}

/// The typed event stream of one test (cheap to clone: clones share it).
#[derive(Clone)]
pub struct EventStream {
    inner: Arc<Inner>,
}

impl std::fmt::Debug for EventStream {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "EventStream({} events)", lock(&self.inner.events).len())
    }
}

impl Default for EventStream {
    fn default() -> Self {
        Self::new()
    }
}

/// `d` truncated to whole microseconds.
pub(crate) fn whole_micros(d: Duration) -> Duration {
    Duration::from_micros(u64::try_from(d.as_micros()).unwrap_or(u64::MAX))
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

impl EventStream {
    /// A new stream whose clock starts now.
    pub fn new() -> Self {
        Self::starting_at(Instant::now())
    }

    /// A new stream whose clock started at `t0`.
    pub fn starting_at(t0: Instant) -> Self {
        Self { inner: Arc::new(Inner { t0, events: Mutex::new(Vec::new()), subscribers: Mutex::new(Vec::new()) }) }
    }

    /// When the stream's clock started.
    pub fn t0(&self) -> Instant {
        self.inner.t0
    }

    /// Time since the stream's clock started, in whole microseconds (the resolution events
    /// are kept and serialized at).
    pub fn now(&self) -> Duration {
        whole_micros(self.inner.t0.elapsed())
    }

    /// Adds a subscriber; it sees every event emitted from now on.
    pub fn subscribe(&self, subscriber: impl Subscriber + 'static) {
        lock(&self.inner.subscribers).push(Box::new(subscriber));
    }

    /// Records an event now and hands it to every subscriber; returns it.
    pub fn emit(&self, kind: EventKind) -> Event {
        let event = Event { at: self.now(), kind };
        lock(&self.inner.events).push(event.clone());
        for s in lock(&self.inner.subscribers).iter_mut() {
            s.on_event(&event);
        }
        event
    }

    /// Every event so far.
    pub fn events(&self) -> Vec<Event> {
        lock(&self.inner.events).clone()
    }

    /// How many events so far (a cursor for [`EventStream::events_from`]).
    pub fn len(&self) -> usize {
        lock(&self.inner.events).len()
    }

    /// Whether nothing was emitted yet.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The events from index `from` on.
    pub fn events_from(&self, from: usize) -> Vec<Event> {
        lock(&self.inner.events).get(from..).map(<[Event]>::to_vec).unwrap_or_default()
    }
}
