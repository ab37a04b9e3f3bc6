//! Counters that prove a toxic (or the proxy) touched real traffic.
//!
//! Every toxic carries a [`ToxicCounters`] that the connection pumps bump lock-free; a
//! fault reads a [`ToxicStats`] snapshot to show it took effect ("latency applied to 3
//! connections, 1.2 MB delayed"). Counters survive toxic updates (same name) and are
//! dropped with the toxic.

use std::sync::atomic::{AtomicU64, Ordering::Relaxed};

/// Live counters of one toxic.
///
/// ```
/// use chaos_proxy::ToxicCounters;
/// let c = ToxicCounters::default();
/// c.add_connection();
/// c.add_bytes(10);
/// assert_eq!(c.snapshot().bytes, 10);
/// ```
#[derive(Debug, Default)]
pub struct ToxicCounters {
    connections: AtomicU64,
    bytes: AtomicU64,
    triggered: AtomicU64,
}

impl ToxicCounters {
    /// Count a connection the toxic was applied to (toxicity drawn in its favour).
    ///
    /// ```
    /// let c = chaos_proxy::ToxicCounters::default();
    /// c.add_connection();
    /// assert_eq!(c.snapshot().connections, 1);
    /// ```
    pub fn add_connection(&self) {
        self.connections.fetch_add(1, Relaxed);
    }

    /// Count bytes that went through (or were dropped by) the toxic.
    ///
    /// ```
    /// let c = chaos_proxy::ToxicCounters::default();
    /// c.add_bytes(3);
    /// assert_eq!(c.snapshot().bytes, 3);
    /// ```
    pub fn add_bytes(&self, n: u64) {
        self.bytes.fetch_add(n, Relaxed);
    }

    /// Count a terminal action: a close (limit_data, timeout), a reset (reset_peer) or a
    /// delayed close (slow_close).
    ///
    /// ```
    /// let c = chaos_proxy::ToxicCounters::default();
    /// c.add_triggered();
    /// assert_eq!(c.snapshot().triggered, 1);
    /// ```
    pub fn add_triggered(&self) {
        self.triggered.fetch_add(1, Relaxed);
    }

    /// A consistent-enough copy of the counters.
    ///
    /// ```
    /// let c = chaos_proxy::ToxicCounters::default();
    /// assert!(!c.snapshot().took_effect());
    /// ```
    pub fn snapshot(&self) -> ToxicStats {
        ToxicStats {
            connections: self.connections.load(Relaxed),
            bytes: self.bytes.load(Relaxed),
            triggered: self.triggered.load(Relaxed),
        }
    }
}

/// A snapshot of one toxic's counters.
///
/// ```
/// use chaos_proxy::ToxicStats;
/// let s = ToxicStats { connections: 1, bytes: 0, triggered: 0 };
/// assert!(s.took_effect());
/// ```
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize)]
pub struct ToxicStats {
    /// Connections the toxic was applied to.
    pub connections: u64,
    /// Bytes that went through the toxic (delayed, throttled, sliced, passed or dropped).
    pub bytes: u64,
    /// Closes, resets and delayed closes the toxic caused.
    pub triggered: u64,
}

impl ToxicStats {
    /// True when the toxic was applied to at least one connection.
    ///
    /// ```
    /// assert!(!chaos_proxy::ToxicStats::default().took_effect());
    /// ```
    pub fn took_effect(&self) -> bool {
        self.connections > 0
    }
}

/// Live counters of a proxy.
///
/// ```
/// use chaos_proxy::ProxyCounters;
/// let c = ProxyCounters::default();
/// assert_eq!(c.snapshot().accepted, 0);
/// ```
#[derive(Debug, Default)]
pub struct ProxyCounters {
    pub(crate) accepted: AtomicU64,
    pub(crate) active: AtomicU64,
    pub(crate) upstream_failures: AtomicU64,
    pub(crate) bytes_upstream: AtomicU64,
    pub(crate) bytes_downstream: AtomicU64,
}

impl ProxyCounters {
    /// A copy of the counters.
    ///
    /// ```
    /// let c = chaos_proxy::ProxyCounters::default();
    /// assert_eq!(c.snapshot().active, 0);
    /// ```
    pub fn snapshot(&self) -> ProxyStats {
        ProxyStats {
            accepted: self.accepted.load(Relaxed),
            active: self.active.load(Relaxed),
            upstream_failures: self.upstream_failures.load(Relaxed),
            bytes_upstream: self.bytes_upstream.load(Relaxed),
            bytes_downstream: self.bytes_downstream.load(Relaxed),
        }
    }
}

/// A snapshot of a proxy's counters.
///
/// ```
/// let s = chaos_proxy::ProxyStats::default();
/// assert_eq!(s.bytes_upstream + s.bytes_downstream, 0);
/// ```
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize)]
pub struct ProxyStats {
    /// Client connections accepted.
    pub accepted: u64,
    /// Connections open right now.
    pub active: u64,
    /// Accepted connections whose upstream could not be reached (closed at once).
    pub upstream_failures: u64,
    /// Bytes read from clients.
    pub bytes_upstream: u64,
    /// Bytes read from the upstream server.
    pub bytes_downstream: u64,
}
