//! [`Monitor`]: resource series per fixture and role (CPU time, RSS, open fds, threads,
//! processes), sampled every 100 ms while a scenario runs.
//!
//! Cheap paths only: per fixture and tick one read of its cgroup's `cgroup.procs`, then per
//! member one read of `/proc/PID/stat` (CPU time, threads, RSS, start time) and one `stat(2)` of
//! `/proc/PID/fd` (whose size is the number of open fds since Linux 6.2; older kernels fall back
//! to counting the directory). Command-line roles (`matching(RE)`, Snakepit's `workers`) read a
//! member's command line once per process, not per tick. Without cgroups the fixture's
//! membership comes from its tracked process tree, which does scan `/proc`.
//!
//! The full series goes into the scenario's outcome; about once a second the monitor also
//! emits the latest sample of each series as an [`EventKind::MonitorSample`] on the stream, for
//! live consumers (the metrics exporter).
//!
//! ```no_run
//! # async fn f(cx: &mut chaos_harness::Chaos, p: &chaos_harness::fixture::Process) {
//! use chaos_harness::fixture::FixtureHandle;
//! use chaos_harness::observe::Monitor;
//! let monitor = Monitor::start(vec![p.all(), p.main()], cx.events().clone(), std::time::Instant::now());
//! tokio::time::sleep(std::time::Duration::from_secs(1)).await;
//! for s in monitor.stop() {
//!     println!("{}.{}: peak RSS {} bytes", s.fixture, s.role, s.peak_rss().unwrap_or(0));
//! }
//! # }
//! ```

use std::collections::HashMap;
use std::sync::mpsc::{RecvTimeoutError, Sender, channel};
use std::sync::{Arc, Mutex, MutexGuard};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};

use super::{EventKind, EventStream};
use crate::fixture::{Selection, Selector, Target};
use crate::sandbox::{OwnedPid, procfs};

/// How often the monitor samples.
pub const INTERVAL: Duration = Duration::from_millis(100);

/// Every how many samples the monitor emits [`EventKind::MonitorSample`] events (once a
/// second at [`INTERVAL`]).
const EMIT_EVERY: u64 = 10;

/// One reading of a role's processes, summed over them.
///
/// ```
/// let s = chaos_harness::observe::ResourceSample::default();
/// assert_eq!((s.rss_bytes, s.fds, s.processes), (0, 0, 0));
/// ```
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct ResourceSample {
    /// When, as an offset from the scenario's start.
    #[serde(rename = "at_us", with = "super::event::duration_us")]
    pub at: Duration,
    /// CPU time (user + system) the live processes have used since they started, microseconds
    /// (the kernel counts it in clock ticks, 10 ms here).
    pub cpu_us: u64,
    /// Resident set size, bytes.
    pub rss_bytes: u64,
    /// Open file descriptors.
    pub fds: u64,
    /// Threads.
    pub threads: u64,
    /// Live processes.
    pub processes: u64,
}

impl ResourceSample {
    /// [`ResourceSample::cpu_us`] in seconds.
    ///
    /// ```
    /// let s = chaos_harness::observe::ResourceSample { cpu_us: 1_500_000, ..Default::default() };
    /// assert_eq!(s.cpu_secs(), 1.5);
    /// ```
    pub fn cpu_secs(&self) -> f64 {
        self.cpu_us as f64 / 1e6
    }
}

/// How a series keeps its samples on a long run (a soak): every sample of the last `recent`
/// (full resolution), and before that one [`SampleBucket`] (min, max, mean) per `bucket` of
/// time; past `max_buckets` buckets, neighbouring buckets merge in pairs (older ones get
/// coarser), so a series' memory is bounded whatever the run's length.
///
/// ```
/// let r = chaos_harness::observe::Retention::default();
/// assert_eq!(r.recent, std::time::Duration::from_secs(600));
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Retention {
    /// Samples younger than this (before the newest one) are all kept. Default 10 minutes.
    pub recent: std::time::Duration,
    /// The width of a bucket of older samples. Default 10 s.
    pub bucket: std::time::Duration,
    /// At most this many buckets (at least 2). Default 1440 (4 h of 10 s buckets before any merge).
    pub max_buckets: usize,
}

impl Default for Retention {
    fn default() -> Self {
        Self { recent: Duration::from_secs(600), bucket: Duration::from_secs(10), max_buckets: 1440 }
    }
}

/// Samples older than the series' full-resolution window, summarized: the field-wise minimum,
/// maximum and mean (each a [`ResourceSample`] whose `at` is the bucket's start).
///
/// ```
/// use chaos_harness::observe::{ResourceSample, SampleBucket};
/// let b = SampleBucket::of(&[
///     ResourceSample { rss_bytes: 10, ..Default::default() },
///     ResourceSample { rss_bytes: 30, ..Default::default() },
/// ]).unwrap();
/// assert_eq!((b.min.rss_bytes, b.max.rss_bytes, b.mean.rss_bytes, b.count), (10, 30, 20, 2));
/// ```
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct SampleBucket {
    /// The first sample's time.
    #[serde(rename = "from_us", with = "super::event::duration_us")]
    pub from: Duration,
    /// The last sample's time.
    #[serde(rename = "to_us", with = "super::event::duration_us")]
    pub to: Duration,
    /// How many samples it summarizes.
    pub count: u64,
    /// Field-wise minimum.
    pub min: ResourceSample,
    /// Field-wise maximum.
    pub max: ResourceSample,
    /// Field-wise mean (rounded).
    pub mean: ResourceSample,
}

fn fields(s: &ResourceSample) -> [u64; 5] {
    [s.cpu_us, s.rss_bytes, s.fds, s.threads, s.processes]
}

fn sample_of(at: Duration, f: [u64; 5]) -> ResourceSample {
    ResourceSample { at, cpu_us: f[0], rss_bytes: f[1], fds: f[2], threads: f[3], processes: f[4] }
}

impl SampleBucket {
    /// The bucket of `samples` (in time order), `None` when there is none.
    pub fn of(samples: &[ResourceSample]) -> Option<Self> {
        let (first, last) = (samples.first()?, samples.last()?);
        let (mut min, mut max, mut sum) = ([u64::MAX; 5], [0u64; 5], [0u128; 5]);
        for s in samples {
            for (i, v) in fields(s).into_iter().enumerate() {
                min[i] = min[i].min(v);
                max[i] = max[i].max(v);
                sum[i] += u128::from(v);
            }
        }
        let n = samples.len() as u128;
        let mean = sum.map(|x| u64::try_from((x + n / 2) / n).unwrap_or(u64::MAX));
        Some(Self {
            from: first.at,
            to: last.at,
            count: samples.len() as u64,
            min: sample_of(first.at, min),
            max: sample_of(first.at, max),
            mean: sample_of(first.at, mean),
        })
    }

    /// One bucket summarizing `self` followed by `later`.
    pub fn merge(&self, later: &SampleBucket) -> SampleBucket {
        let n = u128::from(self.count + later.count).max(1);
        let (a, b) = (fields(&self.mean), fields(&later.mean));
        let mean: [u64; 5] = std::array::from_fn(|i| {
            let x = u128::from(a[i]) * u128::from(self.count) + u128::from(b[i]) * u128::from(later.count);
            u64::try_from((x + n / 2) / n).unwrap_or(u64::MAX)
        });
        let (lo, hi) = ((fields(&self.min), fields(&later.min)), (fields(&self.max), fields(&later.max)));
        SampleBucket {
            from: self.from,
            to: later.to,
            count: self.count + later.count,
            min: sample_of(self.from, std::array::from_fn(|i| lo.0[i].min(lo.1[i]))),
            max: sample_of(self.from, std::array::from_fn(|i| hi.0[i].max(hi.1[i]))),
            mean: sample_of(self.from, mean),
        }
    }
}

/// The samples of one role of one fixture (`pit.workers`), in time order.
///
/// ```
/// use chaos_harness::observe::{MonitorSeries, ResourceSample};
/// let s = MonitorSeries { fixture: "web".into(), role: "main".into(), samples: vec![
///     ResourceSample { rss_bytes: 10, ..Default::default() },
///     ResourceSample { rss_bytes: 30, ..Default::default() },
/// ], older: vec![] };
/// assert_eq!(s.expr(), "web.main");
/// assert_eq!(s.peak_rss(), Some(30));
/// ```
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct MonitorSeries {
    /// The fixture's name.
    pub fixture: String,
    /// The role (`main`, `all`, `workers`, `beam`, `child[0]`, ...).
    pub role: String,
    /// The samples (on a long run, those of the last [`Retention::recent`]; see `older`).
    pub samples: Vec<ResourceSample>,
    /// Summaries of the samples before `samples`, oldest first (empty on a short run).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub older: Vec<SampleBucket>,
}

impl MonitorSeries {
    /// The selector expression this series is of: `<fixture>.<role>`.
    pub fn expr(&self) -> String {
        format!("{}.{}", self.fixture, self.role)
    }

    /// The largest RSS sampled, if any sample (summarized older samples included).
    pub fn peak_rss(&self) -> Option<u64> {
        self.peak(|s| s.rss_bytes).map(|p| p.rss_bytes)
    }

    /// The sample with the largest `field` (the first of equals): a kept sample, or the `max`
    /// of an older bucket (its `at` is then the bucket's start).
    ///
    /// ```
    /// use chaos_harness::observe::{MonitorSeries, ResourceSample};
    /// let s = MonitorSeries { samples: vec![ResourceSample { fds: 7, ..Default::default() }], ..Default::default() };
    /// assert_eq!(s.peak(|x| x.fds).map(|p| p.fds), Some(7));
    /// ```
    pub fn peak(&self, field: impl Fn(&ResourceSample) -> u64) -> Option<&ResourceSample> {
        let mut best: Option<&ResourceSample> = None;
        for s in self.older.iter().map(|b| &b.max).chain(self.samples.iter()) {
            if best.is_none_or(|b| field(s) > field(b)) {
                best = Some(s);
            }
        }
        best
    }

    /// Adds a sample (in time order) and summarizes samples older than `r.recent` before it
    /// into buckets (see [`Retention`]).
    ///
    /// ```
    /// use chaos_harness::observe::{MonitorSeries, ResourceSample, Retention};
    /// use std::time::Duration;
    /// let r = Retention { recent: Duration::from_secs(1), bucket: Duration::from_secs(1), max_buckets: 4 };
    /// let mut s = MonitorSeries::default();
    /// for i in 0..100 {
    ///     s.push(ResourceSample { at: Duration::from_millis(100 * i), rss_bytes: i, ..Default::default() }, &r);
    /// }
    /// assert!(s.samples.len() <= 21 && s.older.len() <= 4);
    /// assert_eq!(s.peak_rss(), Some(99));
    /// assert_eq!(s.older.iter().map(|b| b.count).sum::<u64>() + s.samples.len() as u64, 100);
    /// ```
    pub fn push(&mut self, sample: ResourceSample, r: &Retention) {
        let now = sample.at;
        self.samples.push(sample);
        let width = r.bucket.max(Duration::from_millis(1));
        // Only whole buckets that ended before the full-resolution window move out, so a
        // compaction runs about once per bucket width.
        let Some(cutoff) = now.checked_sub(r.recent) else { return };
        let cutoff = Duration::from_nanos((cutoff.as_nanos() / width.as_nanos() * width.as_nanos()) as u64);
        let old = self.samples.partition_point(|s| s.at < cutoff);
        if old == 0 {
            return;
        }
        let moved: Vec<ResourceSample> = self.samples.drain(..old).collect();
        let index = |at: Duration| at.as_nanos() / width.as_nanos();
        for group in moved.chunk_by(|a, b| index(a.at) == index(b.at)) {
            if let Some(b) = SampleBucket::of(group) {
                self.older.push(b);
            }
        }
        while self.older.len() > r.max_buckets.max(2) {
            self.older = self
                .older
                .chunks(2)
                .filter_map(|pair| Some(pair.iter().skip(1).fold(pair.first()?.clone(), |a, b| a.merge(b))))
                .collect();
        }
    }

    /// The last sample, if any.
    pub fn last(&self) -> Option<&ResourceSample> {
        self.samples.last()
    }
}

/// The usage of one process, from `/proc/PID/stat` and `/proc/PID/fd`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(crate) struct ProcUsage {
    pub(crate) start_time: u64,
    pub(crate) dead: bool,
    pub(crate) cpu_ticks: u64,
    pub(crate) threads: u64,
    pub(crate) rss_pages: u64,
    pub(crate) fds: u64,
}

/// Parses the fields of `/proc/PID/stat` the monitor needs.
///
/// ```
/// // pid (comm) state ppid pgrp session tty tpgid flags minflt cminflt majflt cmajflt utime stime
/// // cutime cstime priority nice num_threads itrealvalue starttime vsize rss
/// let text = "42 (a b) S 1 42 42 0 -1 0 0 0 0 0 150 50 0 0 20 0 3 0 777 1000 25 0";
/// let (start, dead, cpu, threads, rss) = chaos_harness::observe::monitor::parse_stat_usage(text).unwrap();
/// assert_eq!((start, dead, cpu, threads, rss), (777, false, 200, 3, 25));
/// ```
pub fn parse_stat_usage(text: &str) -> Option<(u64, bool, u64, u64, u64)> {
    let close = text.rfind(')')?;
    let mut f = text.get(close + 1..)?.split_ascii_whitespace();
    // After the comm, index 0 is field 3 (state).
    let state = f.next()?.chars().next()?;
    let mut f = f.skip(10); // fields 4..=13
    let utime: u64 = f.next()?.parse().ok()?; // 14
    let stime: u64 = f.next()?.parse().ok()?; // 15
    let mut f = f.skip(4); // 16..=19
    let threads: u64 = f.next()?.parse().ok()?; // 20
    let mut f = f.skip(1); // 21
    let start_time: u64 = f.next()?.parse().ok()?; // 22
    let _vsize = f.next()?; // 23
    let rss: i64 = f.next()?.parse().ok()?; // 24
    Some((start_time, matches!(state, 'Z' | 'X' | 'x'), utime + stime, threads, rss.max(0) as u64))
}

/// The number of open fds of `pid`: the size of `/proc/PID/fd` (Linux 6.2 and later), else
/// the count of its entries.
#[cfg(test)]
fn fd_count(pid: i32) -> u64 {
    let path = format!("/proc/{pid}/fd");
    match std::fs::metadata(&path) {
        Ok(m) if m.len() > 0 => m.len(),
        Ok(_) => std::fs::read_dir(&path).map_or(0, |d| d.count() as u64),
        Err(_) => 0,
    }
}

/// A process's `/proc/PID/stat` and `/proc/PID/fd`, held open between ticks: reading them again
/// costs a `pread` and an `fstat`, no path walk. The files stay bound to the process they were
/// opened for, so a reused pid fails to read (and is reopened) instead of reading a stranger.
struct ProcFiles {
    stat: std::fs::File,
    fd_dir: std::fs::File,
}

impl ProcFiles {
    fn open(pid: i32) -> Option<Self> {
        use std::os::unix::fs::OpenOptionsExt;
        let stat = std::fs::File::open(format!("/proc/{pid}/stat")).ok()?;
        let fd_dir = std::fs::OpenOptions::new()
            .read(true)
            .custom_flags(libc::O_PATH | libc::O_DIRECTORY)
            .open(format!("/proc/{pid}/fd"))
            .ok()?;
        Some(Self { stat, fd_dir })
    }

    /// Reads the usage now; `None` when the process is gone.
    fn read(&self, pid: i32, buf: &mut Vec<u8>) -> Option<ProcUsage> {
        use std::os::unix::fs::FileExt;
        buf.resize(1024, 0);
        let mut n = 0;
        loop {
            let got = self.stat.read_at(&mut buf[n..], n as u64).ok()?;
            n += got;
            if got == 0 || n < buf.len() {
                break;
            }
            buf.resize(buf.len() * 2, 0);
        }
        let (start_time, dead, cpu_ticks, threads, rss_pages) = parse_stat_usage(std::str::from_utf8(&buf[..n]).ok()?)?;
        let fds = if dead {
            0
        } else {
            match self.fd_dir.metadata() {
                Ok(m) if m.len() > 0 => m.len(),
                // Before Linux 6.2 the size is 0: count the entries.
                Ok(_) => std::fs::read_dir(format!("/proc/{pid}/fd")).map_or(0, |d| d.count() as u64),
                Err(_) => 0,
            }
        };
        Some(ProcUsage { start_time, dead, cpu_ticks, threads, rss_pages, fds })
    }
}

/// At most this many processes keep their files open between ticks (two fds each); beyond it,
/// they are opened per tick.
const MAX_OPEN: usize = 512;

/// What the monitor samples of one fixture: its target and its roles.
struct Watched {
    target: Target,
    roles: Vec<(usize, Selection)>,
}

/// The sampler's state, owned by its thread.
struct Sampler {
    fixtures: Vec<Watched>,
    series: Arc<Mutex<Vec<MonitorSeries>>>,
    /// Command line and comm per (pid, start time), read once per process.
    cmdlines: HashMap<(i32, u64), (String, String)>,
    /// Open `/proc` files per pid.
    files: HashMap<i32, ProcFiles>,
    buf: Vec<u8>,
    retention: Retention,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

impl Sampler {
    /// The live members of a fixture with their usage, oldest first.
    fn members(&mut self, target: &Target) -> Vec<(OwnedPid, ProcUsage)> {
        let scope = target.scope();
        let pids: Vec<i32> = match scope.primary() {
            Some(cg) => cg.procs(),
            // No cgroup: the scope's tracked tree (a /proc scan).
            None => scope.members().into_iter().map(|o| o.pid).collect(),
        };
        let mut out: Vec<(OwnedPid, ProcUsage)> = pids
            .into_iter()
            .filter_map(|pid| {
                let u = self.usage(pid)?;
                (!u.dead).then(|| (OwnedPid { pid, start_time: u.start_time, fixture: target.name().to_string() }, u))
            })
            .collect();
        out.sort_by_key(|(o, _)| (o.start_time, o.pid));
        out
    }

    /// One process's usage, through its open files (opened on first sight, reopened when the
    /// pid was reused); `None` when it is gone.
    fn usage(&mut self, pid: i32) -> Option<ProcUsage> {
        if let Some(f) = self.files.get(&pid) {
            if let Some(u) = f.read(pid, &mut self.buf) {
                return Some(u);
            }
            self.files.remove(&pid);
        }
        let f = ProcFiles::open(pid)?;
        let u = f.read(pid, &mut self.buf);
        if u.is_some() && self.files.len() < MAX_OPEN {
            self.files.insert(pid, f);
        }
        u
    }

    fn matches(&mut self, o: &OwnedPid, re: &regex::Regex) -> bool {
        let (cmdline, comm) = self.cmdlines.entry((o.pid, o.start_time)).or_insert_with(|| {
            let cmdline = procfs::cmdline(o.pid).unwrap_or_default();
            let comm = std::fs::read_to_string(format!("/proc/{}/comm", o.pid)).unwrap_or_default();
            (cmdline, comm.trim().to_string())
        });
        re.is_match(cmdline) || re.is_match(comm)
    }

    fn tick(&mut self, at: Duration) {
        let hz = procfs::clock_ticks().max(1);
        let page = procfs::page_size();
        let mut samples: Vec<(usize, ResourceSample)> = Vec::new();
        let fixtures = std::mem::take(&mut self.fixtures);
        let mut alive = std::collections::HashSet::new();
        for w in &fixtures {
            let members = self.members(&w.target);
            let owned: Vec<OwnedPid> = members.iter().map(|(o, _)| o.clone()).collect();
            alive.extend(owned.iter().map(|o| (o.pid, o.start_time)));
            let main = w.target.main();
            for (idx, sel) in &w.roles {
                let picked: std::collections::HashSet<(i32, u64)> = match sel.selector() {
                    Selector::Cmdline(re) => {
                        owned.iter().filter(|o| self.matches(o, re)).map(|o| (o.pid, o.start_time)).collect()
                    }
                    s => {
                        let mut rng = <rand_chacha::ChaCha8Rng as rand::SeedableRng>::seed_from_u64(0);
                        s.pick(&owned, main.as_ref(), &mut rng).into_iter().map(|o| (o.pid, o.start_time)).collect()
                    }
                };
                let mut s = ResourceSample { at, ..Default::default() };
                let mut ticks = 0u64;
                for (o, u) in &members {
                    if picked.contains(&(o.pid, o.start_time)) {
                        ticks += u.cpu_ticks;
                        s.rss_bytes += u.rss_pages * page;
                        s.fds += u.fds;
                        s.threads += u.threads;
                        s.processes += 1;
                    }
                }
                s.cpu_us = ticks.saturating_mul(1_000_000) / hz;
                samples.push((*idx, s));
            }
        }
        self.fixtures = fixtures;
        self.cmdlines.retain(|k, _| alive.contains(k));
        let live_pids: std::collections::HashSet<i32> = alive.iter().map(|(p, _)| *p).collect();
        self.files.retain(|pid, _| live_pids.contains(pid));
        let mut series = lock(&self.series);
        for (i, s) in samples {
            if let Some(ser) = series.get_mut(i) {
                ser.push(s, &self.retention);
            }
        }
    }
}

/// A live view of a running monitor's series (cheap to clone), for criteria.
///
/// ```
/// let h = chaos_harness::observe::MonitorHandle::default();
/// assert!(h.series().is_empty());
/// assert!(h.series_of("web.main").is_none());
/// ```
#[derive(Clone, Debug, Default)]
pub struct MonitorHandle {
    series: Arc<Mutex<Vec<MonitorSeries>>>,
}

impl MonitorHandle {
    /// Every series so far.
    pub fn series(&self) -> Vec<MonitorSeries> {
        lock(&self.series).clone()
    }

    /// The series of a selector expression (`web.main`, `pit.workers`), if monitored.
    pub fn series_of(&self, expr: &str) -> Option<MonitorSeries> {
        lock(&self.series).iter().find(|s| s.expr() == expr).cloned()
    }
}

/// The background sampler (a thread of its own, so file reads never hold up the runtime);
/// stops when [`Monitor::stop`]ped or dropped.
#[derive(Debug)]
pub struct Monitor {
    handle: MonitorHandle,
    stop: Option<Sender<()>>,
    thread: Option<JoinHandle<()>>,
}

impl Monitor {
    /// Starts sampling `selections` (duplicates by expression are sampled once) every
    /// [`INTERVAL`], with times counted from `t0`, emitting a [`EventKind::MonitorSample`] per
    /// series on `stream` about once a second.
    pub fn start(selections: Vec<Selection>, stream: EventStream, t0: Instant) -> Self {
        Self::start_every(selections, stream, t0, INTERVAL)
    }

    /// [`Monitor::start`] with another interval.
    pub fn start_every(selections: Vec<Selection>, stream: EventStream, t0: Instant, every: Duration) -> Self {
        Self::start_with(selections, stream, t0, every, Retention::default())
    }

    /// [`Monitor::start_every`] with another [`Retention`] of old samples (for a soak).
    pub fn start_with(
        selections: Vec<Selection>,
        stream: EventStream,
        t0: Instant,
        every: Duration,
        retention: Retention,
    ) -> Self {
        let mut series: Vec<MonitorSeries> = Vec::new();
        let mut fixtures: Vec<Watched> = Vec::new();
        for sel in selections {
            let expr = sel.expr();
            if series.iter().any(|s| s.expr() == expr) {
                continue;
            }
            let fixture = sel.target().name().to_string();
            let role = expr.strip_prefix(&format!("{fixture}.")).unwrap_or(&expr).to_string();
            let idx = series.len();
            series.push(MonitorSeries { fixture: fixture.clone(), role, samples: Vec::new(), older: Vec::new() });
            match fixtures.iter_mut().find(|w| w.target.name() == fixture) {
                Some(w) => w.roles.push((idx, sel)),
                None => fixtures.push(Watched { target: sel.target().clone(), roles: vec![(idx, sel)] }),
            }
        }
        let handle = MonitorHandle { series: Arc::new(Mutex::new(series)) };
        let (stop, stopped) = channel::<()>();
        let mut sampler = Sampler {
            fixtures,
            series: Arc::clone(&handle.series),
            cmdlines: HashMap::new(),
            files: HashMap::new(),
            buf: Vec::with_capacity(1024),
            retention,
        };
        let thread = std::thread::Builder::new()
            .name("chaos-monitor".into())
            .spawn(move || {
                let mut n = 0u64;
                let mut next = Instant::now();
                loop {
                    sampler.tick(crate::observe::stream::whole_micros(t0.elapsed()));
                    n += 1;
                    if n % EMIT_EVERY == 1 {
                        emit_latest(&sampler.series, &stream);
                    }
                    next += every;
                    let wait = next.saturating_duration_since(Instant::now());
                    match stopped.recv_timeout(wait) {
                        Err(RecvTimeoutError::Timeout) => {}
                        _ => {
                            // A last sample at the stop, and its event.
                            sampler.tick(crate::observe::stream::whole_micros(t0.elapsed()));
                            emit_latest(&sampler.series, &stream);
                            return;
                        }
                    }
                }
            })
            .ok();
        Self { handle, stop: Some(stop), thread }
    }

    /// The live view of the series.
    pub fn handle(&self) -> MonitorHandle {
        self.handle.clone()
    }

    /// Takes a last sample, stops, and returns every series.
    pub fn stop(mut self) -> Vec<MonitorSeries> {
        self.shutdown();
        self.handle.series()
    }

    fn shutdown(&mut self) {
        drop(self.stop.take());
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

impl Drop for Monitor {
    fn drop(&mut self) {
        self.shutdown();
    }
}

fn emit_latest(series: &Mutex<Vec<MonitorSeries>>, stream: &EventStream) {
    let latest: Vec<(String, String, ResourceSample)> =
        lock(series).iter().filter_map(|s| s.last().map(|l| (s.fixture.clone(), s.role.clone(), l.clone()))).collect();
    for (fixture, role, sample) in latest {
        stream.emit(EventKind::MonitorSample { fixture, role, sample });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A 30-hour soak at 10 Hz (over a million samples) with the default retention: the
    /// series holds about 10 minutes of full samples plus at most 1440 buckets, every sample
    /// is accounted for, buckets are in order and coarser the older they are, and the spike
    /// of one sample in the first hour survives as its bucket's maximum.
    #[test]
    fn a_long_series_is_downsampled_into_bounded_buckets() {
        let r = Retention::default();
        let mut s = MonitorSeries::default();
        let n: u64 = 30 * 3600 * 10;
        for i in 0..n {
            let rss = if i == 12_345 { 1 << 40 } else { 1000 + i % 100 };
            s.push(
                ResourceSample { at: Duration::from_millis(100 * i), rss_bytes: rss, fds: i, ..Default::default() },
                &r,
            );
        }
        assert!(s.samples.len() <= 6100, "{} full samples kept", s.samples.len());
        assert!(s.older.len() <= r.max_buckets, "{} buckets", s.older.len());
        assert_eq!(s.older.iter().map(|b| b.count).sum::<u64>() + s.samples.len() as u64, n);
        assert!(s.older.windows(2).all(|w| w[0].to < w[1].from), "buckets overlap or are out of order");
        assert!(s.older.last().is_some_and(|b| b.to < s.samples[0].at));
        let first = &s.older[0];
        let last = s.older.last().unwrap_or(first);
        assert!(
            first.count > last.count,
            "the oldest bucket ({}) is no coarser than the newest ({})",
            first.count,
            last.count
        );
        assert_eq!(s.peak_rss(), Some(1 << 40));
        // fds grow by one per sample: a bucket's min, max and mean are its first, last and middle.
        for b in &s.older {
            assert_eq!((b.min.fds, b.max.fds), (b.from.as_millis() as u64 / 100, b.to.as_millis() as u64 / 100));
            assert!(b.mean.fds.abs_diff((b.min.fds + b.max.fds) / 2) <= 1, "{b:?}");
        }
        // The newest samples are all there, at full resolution.
        assert_eq!(s.last().map(|x| x.fds), Some(n - 1));
        assert!(s.samples.windows(2).all(|w| w[1].fds == w[0].fds + 1));
    }

    #[test]
    fn a_child_process_usage_is_read_through_held_files_until_it_is_reaped() {
        let mut buf = Vec::new();
        let mut child = std::process::Command::new("sleep")
            .arg("10")
            .stdin(std::process::Stdio::null())
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .unwrap();
        let pid = child.id() as i32;
        let files = ProcFiles::open(pid).unwrap();
        let u = files.read(pid, &mut buf).unwrap();
        assert!(!u.dead);
        assert_eq!(u.threads, 1);
        assert_eq!(u.start_time, procfs::stat(pid).unwrap().start_time);
        let listed = std::fs::read_dir(format!("/proc/{pid}/fd")).unwrap().count() as u64;
        assert_eq!(u.fds, listed);
        assert_eq!(fd_count(pid), listed);
        assert!(u.fds >= 3);
        // Read again through the same files: the same process.
        assert_eq!(files.read(pid, &mut buf).unwrap().start_time, u.start_time);
        child.kill().unwrap();
        child.wait().unwrap();
        // Reaped: the held files no longer read (a reused pid would not be read through them).
        assert!(files.read(pid, &mut buf).is_none());
    }
}
