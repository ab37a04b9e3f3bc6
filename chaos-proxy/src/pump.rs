//! The link pump: one task per direction of a proxied connection, reading from one socket,
//! passing each chunk through the toxics attached to that direction and writing to the other.
//!
//! The pump follows the proxy's current toxic set through a `watch` channel: between chunks
//! (and while idle, waiting for data) it picks up added, updated and removed toxics, so they
//! apply to live connections. Per-connection toxic state (the toxicity draw, bytes let through
//! by `limit_data`, the `timeout` deadline, the `bandwidth` schedule) lives in a slot per
//! toxic, kept across updates of the same toxic by name.
//!
//! A chunk is processed depth-first through the chain: a toxic that cuts a chunk (slicer,
//! bandwidth) sends each piece on through the rest of the chain before it works on the next.
//! A toxic that is updated or removed while it holds a chunk (sleeping) lets it go at once, as
//! Toxiproxy's interrupted toxics do; the rest of that chunk's chain is unchanged, the next
//! chunk sees the new chain.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::Ordering::Relaxed;

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use std::os::fd::AsRawFd;

use tokio::io::{AsyncReadExt, AsyncWriteExt, Interest};
use tokio::net::tcp::{OwnedReadHalf, OwnedWriteHalf};
use tokio::sync::watch;
use tokio::time::{Instant, sleep_until};
use tokio_util::sync::{CancellationToken, WaitForCancellationFutureOwned};

use super::counters::{ProxyCounters, ToxicCounters};
use super::splice::Pipe;
use super::toxic::{Stream, Toxic, ToxicKind, bandwidth_time, latency_draw, micros, millis, slice_points};

/// Initial copy buffer; it doubles whenever a read fills it, up to [`MAX_BUF`]. Connections
/// that carry small messages stay small, bulk transfers reach 256 KiB after a few reads.
const MIN_BUF: usize = 32 * 1024;
/// 256 KiB: the default 8 KiB gives ~22% of loopback throughput, 256 KiB ~57%.
pub(crate) const MAX_BUF: usize = 256 * 1024;

/// One toxic as the proxy currently has it. A new entry (new `Arc`) replaces it on update.
#[derive(Debug)]
pub(crate) struct ToxicEntry {
    pub(crate) toxic: Toxic,
    pub(crate) counters: Arc<ToxicCounters>,
}

/// The proxy's toxics in insertion order (both directions).
pub(crate) type ToxicSet = Arc<Vec<Arc<ToxicEntry>>>;

/// How a pump ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum End {
    /// The source closed; the close was forwarded (half-close). The other direction goes on.
    Eof,
    /// The whole connection must close (error, limit_data, timeout).
    Close,
    /// The whole connection must be reset (reset_peer, or a peer reset us).
    Reset,
    /// The connection, the proxy or the epoch was cancelled.
    Cancelled,
}

enum Step {
    Continue,
    End(End),
}

enum Wait {
    Elapsed,
    /// The toxic doing the waiting was updated or removed.
    Interrupted,
    End(End),
}

#[derive(Debug)]
enum SlotState {
    None,
    Bandwidth { next: Instant },
    Limit { sent: u64 },
    Timeout { deadline: Option<Instant> },
}

#[derive(Debug)]
struct Slot {
    entry: Arc<ToxicEntry>,
    active: bool,
    counted: bool,
    state: SlotState,
}

/// Everything of a pump except the source socket and buffer (so a chunk borrowed from the
/// buffer can go through `&mut Core`).
struct Core {
    dir: Stream,
    dst: OwnedWriteHalf,
    rx: watch::Receiver<ToxicSet>,
    chain: Vec<Slot>,
    any_active: bool,
    dirty: bool,
    rng: ChaCha8Rng,
    token: CancellationToken,
    cancelled: Pin<Box<WaitForCancellationFutureOwned>>,
}

/// One direction of a proxied connection.
pub(crate) struct Pump {
    src: OwnedReadHalf,
    buf: Vec<u8>,
    stats: Arc<ProxyCounters>,
    /// The splice pipe, made on first use; `splice` turns false if it cannot be made or used.
    pipe: Option<Pipe>,
    splice: bool,
    core: Core,
}

impl Pump {
    #[allow(clippy::too_many_arguments)]
    pub(crate) fn new(
        dir: Stream,
        src: OwnedReadHalf,
        dst: OwnedWriteHalf,
        rx: watch::Receiver<ToxicSet>,
        token: CancellationToken,
        seed: u64,
        conn_index: u64,
        stats: Arc<ProxyCounters>,
    ) -> Self {
        let mut rng = ChaCha8Rng::seed_from_u64(seed);
        rng.set_stream(conn_index.wrapping_mul(2) + u64::from(dir == Stream::Downstream));
        let cancelled = Box::pin(token.clone().cancelled_owned());
        Pump {
            src,
            buf: vec![0; MIN_BUF],
            stats,
            pipe: None,
            splice: true,
            core: Core { dir, dst, rx, chain: Vec::new(), any_active: false, dirty: true, rng, token, cancelled },
        }
    }

    /// Pump until the source closes, an error or toxic ends the connection, or cancellation.
    /// A `Close` or `Reset` end cancels the connection token so the other direction stops too.
    pub(crate) async fn run(mut self) -> End {
        let end = self.run_inner().await;
        match end {
            End::Reset => {
                // SO_LINGER 0: closing sends RST instead of FIN, on both sockets.
                let _ = self.src.as_ref().set_zero_linger();
                let _ = self.core.dst.as_ref().set_zero_linger();
                self.core.token.cancel();
            }
            End::Close => self.core.token.cancel(),
            End::Eof | End::Cancelled => {}
        }
        // Dropping an OwnedWriteHalf would send FIN (shutdown), which would beat a reset's
        // RST. Forget it instead: the socket closes (FIN, or RST after SO_LINGER 0) when its
        // last half is gone. A clean EOF was already forwarded by `on_eof`.
        let Pump { src, core, .. } = self;
        core.dst.forget();
        drop(src);
        end
    }

    async fn run_inner(&mut self) -> End {
        let stats = self.stats.clone();
        let counter = match self.core.dir {
            Stream::Upstream => &stats.bytes_upstream,
            Stream::Downstream => &stats.bytes_downstream,
        };
        loop {
            if (self.core.dirty || self.core.rx.has_changed().unwrap_or(false))
                && let Some(end) = self.core.refresh()
            {
                return end;
            }
            if self.splice && !self.core.any_active {
                match self.splice_once(counter).await {
                    Step::Continue => continue,
                    Step::End(end) => return end,
                }
            }
            let deadline = self.core.close_deadline();
            let core = &mut self.core;
            let read = tokio::select! {
                biased;
                _ = core.cancelled.as_mut() => return End::Cancelled,
                _ = until(deadline) => {
                    core.trigger_timeouts();
                    return End::Close;
                }
                changed = core.rx.changed() => {
                    if changed.is_err() {
                        return End::Cancelled;
                    }
                    core.dirty = true;
                    continue;
                }
                r = self.src.read(&mut self.buf) => r,
            };
            let n = match read {
                Ok(0) => return self.core.on_eof().await,
                Ok(n) => n,
                Err(e) => return end_for(&e),
            };
            counter.fetch_add(n as u64, Relaxed);
            let step = if self.core.any_active {
                self.core.emit(0, &self.buf[..n], Instant::now()).await
            } else {
                self.core.write_out(&self.buf[..n]).await
            };
            if let Step::End(end) = step {
                return end;
            }
            if n == self.buf.len() && n < MAX_BUF {
                self.buf.resize((n * 2).min(MAX_BUF), 0);
            }
        }
    }
}

impl Pump {
    /// One zero-copy step (no active toxic in this direction): wait until the source is
    /// readable (or the toxics change, or cancellation), splice what is there into the pipe
    /// and all of it on to the destination. The pipe is empty again when this returns, so a
    /// toxic added meanwhile applies from the next chunk on.
    async fn splice_once(&mut self, counter: &std::sync::atomic::AtomicU64) -> Step {
        if self.pipe.is_none() {
            match Pipe::new() {
                Ok(p) => self.pipe = Some(p),
                Err(e) => {
                    tracing::debug!(error = %e, "no splice pipe; copying through user space");
                    self.splice = false;
                    return Step::Continue;
                }
            }
        }
        let Some(pipe) = self.pipe.as_ref() else {
            return Step::Continue;
        };
        let core = &mut self.core;
        tokio::select! {
            biased;
            _ = core.cancelled.as_mut() => return Step::End(End::Cancelled),
            changed = core.rx.changed() => {
                if changed.is_err() {
                    return Step::End(End::Cancelled);
                }
                core.dirty = true;
                return Step::Continue;
            }
            r = self.src.readable() => {
                if let Err(e) = r {
                    return Step::End(end_for(&e));
                }
            }
        }
        let src = self.src.as_ref();
        let n = match src.try_io(Interest::READABLE, || pipe.fill_from(src.as_raw_fd())) {
            Ok(0) => return Step::End(core.on_eof().await),
            Ok(n) => n,
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => return Step::Continue,
            Err(e) if e.raw_os_error() == Some(libc::EINVAL) => {
                // Nothing moved: this socket cannot be spliced; copy instead.
                self.splice = false;
                return Step::Continue;
            }
            Err(e) => return Step::End(end_for(&e)),
        };
        counter.fetch_add(n as u64, Relaxed);
        let dst = core.dst.as_ref();
        let mut left = n;
        while left > 0 {
            match dst.try_io(Interest::WRITABLE, || pipe.drain_to(dst.as_raw_fd(), left)) {
                Ok(0) => return Step::End(End::Close),
                Ok(m) => left -= m.min(left),
                Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {
                    tokio::select! {
                        biased;
                        _ = core.cancelled.as_mut() => return Step::End(End::Cancelled),
                        r = dst.writable() => {
                            if let Err(e) = r {
                                return Step::End(end_for(&e));
                            }
                        }
                    }
                }
                Err(e) => return Step::End(end_for(&e)),
            }
        }
        Step::Continue
    }
}

fn end_for(e: &std::io::Error) -> End {
    if e.kind() == std::io::ErrorKind::ConnectionReset { End::Reset } else { End::Close }
}

/// Sleep until `deadline`, or forever without one.
async fn until(deadline: Option<Instant>) {
    match deadline {
        Some(d) => sleep_until(d).await,
        None => std::future::pending().await,
    }
}

impl Core {
    /// Re-read the toxic set: keep slots of unchanged toxics, redraw toxicity for new and
    /// updated ones, drop removed ones. Removing an active `timeout` closes the connection
    /// (its data was dropped; Toxiproxy's timeout cleanup closes too).
    fn refresh(&mut self) -> Option<End> {
        self.dirty = false;
        let set = self.rx.borrow_and_update().clone();
        let mut old = std::mem::take(&mut self.chain);
        let now = Instant::now();
        for entry in set.iter().filter(|e| e.toxic.stream == self.dir) {
            let prev = old.iter().position(|s| s.entry.toxic.name == entry.toxic.name).map(|i| old.swap_remove(i));
            let prev = match prev {
                Some(slot) if Arc::ptr_eq(&slot.entry, entry) => {
                    self.chain.push(slot);
                    continue;
                }
                other => other,
            };
            let toxicity = entry.toxic.toxicity;
            let active = toxicity >= 1.0 || self.rng.random::<f32>() < toxicity;
            let counted = prev.as_ref().is_some_and(|s| s.counted);
            let state = match entry.toxic.kind {
                ToxicKind::Bandwidth { .. } => SlotState::Bandwidth { next: now },
                ToxicKind::LimitData { .. } => SlotState::Limit {
                    sent: match prev.as_ref().map(|s| &s.state) {
                        Some(SlotState::Limit { sent }) => *sent,
                        _ => 0,
                    },
                },
                ToxicKind::Timeout { timeout } => {
                    SlotState::Timeout { deadline: (timeout > 0).then(|| now + millis(timeout)) }
                }
                _ => SlotState::None,
            };
            let mut slot = Slot { entry: entry.clone(), active, counted, state };
            if active && !slot.counted {
                slot.entry.counters.add_connection();
                slot.counted = true;
            }
            self.chain.push(slot);
        }
        self.any_active = self.chain.iter().any(|s| s.active);
        let removed_stall = old.iter().any(|s| s.active && matches!(s.entry.toxic.kind, ToxicKind::Timeout { .. }));
        removed_stall.then_some(End::Close)
    }

    /// The earliest `timeout` toxic deadline among active slots.
    fn close_deadline(&self) -> Option<Instant> {
        self.chain
            .iter()
            .filter(|s| s.active)
            .filter_map(|s| match s.state {
                SlotState::Timeout { deadline } => deadline,
                _ => None,
            })
            .min()
    }

    fn trigger_timeouts(&self) {
        let now = Instant::now();
        for s in self.chain.iter().filter(|s| s.active) {
            if let SlotState::Timeout { deadline: Some(d) } = s.state
                && d <= now
            {
                s.entry.counters.add_triggered();
            }
        }
    }

    fn next_active(&self, mut i: usize) -> Option<usize> {
        while i < self.chain.len() {
            if self.chain[i].active {
                return Some(i);
            }
            i += 1;
        }
        None
    }

    async fn write_out(&mut self, data: &[u8]) -> Step {
        tokio::select! {
            biased;
            _ = self.cancelled.as_mut() => Step::End(End::Cancelled),
            r = self.dst.write_all(data) => match r {
                Ok(()) => Step::Continue,
                Err(e) => Step::End(end_for(&e)),
            },
        }
    }

    /// Sleep until `deadline` on behalf of the toxic in slot `i`; returns early when that
    /// toxic is updated or removed, when a `timeout` toxic closes the connection, or on
    /// cancellation.
    async fn wait(&mut self, deadline: Instant, i: usize) -> Wait {
        let entry = self.chain[i].entry.clone();
        let close_at = self.close_deadline();
        loop {
            tokio::select! {
                biased;
                _ = self.cancelled.as_mut() => return Wait::End(End::Cancelled),
                _ = until(close_at) => {
                    self.trigger_timeouts();
                    return Wait::End(End::Close);
                }
                _ = sleep_until(deadline) => return Wait::Elapsed,
                changed = self.rx.changed() => {
                    if changed.is_err() {
                        return Wait::End(End::Cancelled);
                    }
                    self.dirty = true;
                    if !self.rx.borrow().iter().any(|e| Arc::ptr_eq(e, &entry)) {
                        return Wait::Interrupted;
                    }
                }
            }
        }
    }

    /// Send `piece` (read at `ts`) through the active toxics from slot `i` on, then out.
    fn emit<'a>(
        &'a mut self,
        i: usize,
        piece: &'a [u8],
        ts: Instant,
    ) -> Pin<Box<dyn Future<Output = Step> + Send + 'a>> {
        Box::pin(async move {
            let Some(i) = self.next_active(i) else {
                return self.write_out(piece).await;
            };
            if piece.is_empty() {
                return Step::Continue;
            }
            let entry = self.chain[i].entry.clone();
            entry.counters.add_bytes(piece.len() as u64);
            match entry.toxic.kind {
                ToxicKind::Latency { latency, jitter } => {
                    let deadline = ts + latency_draw(latency, jitter, &mut self.rng);
                    match self.wait(deadline, i).await {
                        Wait::Elapsed => self.emit(i + 1, piece, deadline).await,
                        Wait::Interrupted => self.emit(i + 1, piece, Instant::now()).await,
                        Wait::End(e) => Step::End(e),
                    }
                }
                ToxicKind::Bandwidth { rate } => {
                    if rate == 0 {
                        return self.emit(i + 1, piece, ts).await;
                    }
                    // Like Toxiproxy: large chunks go out in slices of 100 ms worth of data.
                    let slice = usize::try_from(rate.saturating_mul(100)).unwrap_or(usize::MAX);
                    let mut rest = piece;
                    while !rest.is_empty() {
                        let take = rest.len().min(slice.max(1));
                        let now = Instant::now();
                        let due = match &mut self.chain[i].state {
                            SlotState::Bandwidth { next } => {
                                *next = (*next).max(now) + bandwidth_time(take, rate);
                                *next
                            }
                            _ => now,
                        };
                        match self.wait(due, i).await {
                            Wait::Elapsed => {}
                            Wait::Interrupted => return self.emit(i + 1, rest, ts).await,
                            Wait::End(e) => return Step::End(e),
                        }
                        if let Step::End(e) = self.emit(i + 1, &rest[..take], ts).await {
                            return Step::End(e);
                        }
                        rest = &rest[take..];
                    }
                    Step::Continue
                }
                ToxicKind::Slicer { average_size, size_variation, delay } => {
                    let points = slice_points(piece.len(), average_size, size_variation, &mut self.rng);
                    for w in points.windows(2) {
                        if let Step::End(e) = self.emit(i + 1, &piece[w[0]..w[1]], ts).await {
                            return Step::End(e);
                        }
                        if delay > 0 {
                            match self.wait(Instant::now() + micros(delay), i).await {
                                Wait::Elapsed => {}
                                Wait::Interrupted => {
                                    return self.emit(i + 1, &piece[w[1]..], ts).await;
                                }
                                Wait::End(e) => return Step::End(e),
                            }
                        }
                    }
                    Step::Continue
                }
                ToxicKind::LimitData { bytes } => {
                    let sent = match self.chain[i].state {
                        SlotState::Limit { sent } => sent,
                        _ => 0,
                    };
                    let remaining = bytes.saturating_sub(sent);
                    let take = usize::try_from(remaining).unwrap_or(usize::MAX).min(piece.len());
                    if take > 0
                        && let Step::End(e) = self.emit(i + 1, &piece[..take], ts).await
                    {
                        return Step::End(e);
                    }
                    let sent = sent + take as u64;
                    if let SlotState::Limit { sent: s } = &mut self.chain[i].state {
                        *s = sent;
                    }
                    if sent >= bytes {
                        entry.counters.add_triggered();
                        return Step::End(End::Close);
                    }
                    Step::Continue
                }
                // Data is dropped; the deadline is watched by the read loop and by `wait`.
                ToxicKind::Timeout { .. } => Step::Continue,
                ToxicKind::ResetPeer { timeout } => match self.wait(Instant::now() + millis(timeout), i).await {
                    Wait::Elapsed => {
                        entry.counters.add_triggered();
                        Step::End(End::Reset)
                    }
                    Wait::Interrupted => self.emit(i + 1, piece, ts).await,
                    Wait::End(e) => Step::End(e),
                },
                ToxicKind::SlowClose { .. } => self.emit(i + 1, piece, ts).await,
            }
        })
    }

    /// The source closed: apply slow_close / reset_peer, then forward the close (FIN).
    async fn on_eof(&mut self) -> End {
        let mut i = 0;
        while let Some(at) = self.next_active(i) {
            i = at + 1;
            let entry = self.chain[at].entry.clone();
            match entry.toxic.kind {
                ToxicKind::SlowClose { delay } => {
                    entry.counters.add_triggered();
                    if let Wait::End(e) = self.wait(Instant::now() + millis(delay), at).await {
                        return e;
                    }
                }
                ToxicKind::ResetPeer { timeout } => match self.wait(Instant::now() + millis(timeout), at).await {
                    Wait::Elapsed => {
                        entry.counters.add_triggered();
                        return End::Reset;
                    }
                    Wait::Interrupted => {}
                    Wait::End(e) => return e,
                },
                _ => {}
            }
        }
        let _ = self.dst.shutdown().await;
        End::Eof
    }
}
