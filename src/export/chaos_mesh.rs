//! A [`ScenarioSpec`] as Chaos Mesh manifests: one `Workflow` (apiVersion
//! `chaos-mesh.org/v1alpha1`) per scenario, whose timeline is built from `Serial`, `Parallel`
//! and `Suspend` nodes and whose faults are `PodChaos`, `NetworkChaos` and `StressChaos` nodes.
//! Whatever has no Chaos Mesh equivalent (criteria, load, guards, SIGSTOP, cgroup freeze, fd and
//! pid exhaustion, TCP-level toxics, ...) is listed in [`Export::untranslated`], never dropped
//! silently. The mapping, with the reasons, is in `docs/chaos-mesh.md`.
//!
//! The timeline: the harness injects a fault and goes on while it stays active until a `clear`
//! step or the scenario's end; a Chaos Mesh node is active for its `deadline` and a `Serial`
//! node waits for it. So every instant at which faults start becomes one branch of the entry
//! `Parallel` node: a `Serial` of a `Suspend` (the offset: the `wait`s and `at`s before it) and
//! the fault nodes (a `Parallel` when several start together), each with the deadline until the
//! next `clear` or the scenario's end. Expectations take no time in the export (the harness
//! waits for them; Chaos Mesh does not judge them).
//!
//! Targets become label selectors: `web` selects the pods labelled
//! `app.kubernetes.io/name: web` in the namespace given in [`Options`]; a role (`pit.workers`) is
//! a container of that name in those pods (`containerNames`), except `main`, which is the pod
//! itself; an index (`pit.worker[0]`) selects one pod (`mode: one`).
//!
//! ```
//! use snakepit_chaos::export::chaos_mesh::{Options, export};
//! let spec = serde_json::from_value(serde_json::json!({
//!     "name": "kill web",
//!     "targets": { "web": { "kind": "command", "program": "sleep", "args": ["60"] } },
//!     "steps": [ { "action": "wait", "duration": "2s" }, { "action": "inject", "fault": "kill", "target": "web.main" } ]
//! })).unwrap();
//! let e = export(&spec, &Options::default());
//! assert!(e.untranslated.is_empty());
//! let yaml = serde_norway::to_string(e.workflow.as_ref().unwrap()).unwrap();
//! assert!(yaml.contains("action: pod-kill"), "{yaml}");
//! assert!(yaml.contains("templateType: Suspend"), "{yaml}");
//! ```

use std::collections::BTreeMap;
use std::fmt;
use std::time::Duration;

use chaos_harness::params::Params;
use chaos_harness::registry;
use chaos_harness::scenario::{Action, ScenarioSpec, StepSpec};
use serde_json::{Map, Value, json};

/// The API group and version of every exported object.
pub const API_VERSION: &str = "chaos-mesh.org/v1alpha1";
/// The label that names a target's pods.
pub const NAME_LABEL: &str = "app.kubernetes.io/name";
/// The shortest deadline a fault node gets (a fault injected at the very end, or a one-shot kill).
pub const MIN_NODE: Duration = Duration::from_secs(1);
/// NetworkChaos `bandwidth.limit` (bytes queued) and `bandwidth.buffer` (burst bytes): both are
/// required by the CRD and have no harness equivalent; the values of Chaos Mesh's own example.
pub const BANDWIDTH_LIMIT: u64 = 20_971_520;
/// See [`BANDWIDTH_LIMIT`].
pub const BANDWIDTH_BUFFER: u64 = 10_000;

/// How to export.
///
/// ```
/// let o = snakepit_chaos::export::chaos_mesh::Options::default();
/// assert_eq!(o.namespace, "default");
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Options {
    /// The namespace of the Workflow and of the selected pods.
    pub namespace: String,
}

impl Default for Options {
    fn default() -> Self {
        Self { namespace: "default".into() }
    }
}

/// Something of the scenario that the export leaves out, and why.
///
/// ```
/// let u = snakepit_chaos::export::chaos_mesh::Untranslated {
///     at: "step 1".into(), what: "expect no_orphans".into(), why: "criteria are judged by the harness".into(),
/// };
/// assert_eq!(u.to_string(), "step 1: expect no_orphans: criteria are judged by the harness");
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Untranslated {
    /// Where in the scenario (`step 2`, `step 3.1`, `load`, `guard 0`).
    pub at: String,
    /// What (`inject freeze`, `expect no_orphans`).
    pub what: String,
    /// Why it has no Chaos Mesh equivalent.
    pub why: String,
}

impl fmt::Display for Untranslated {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}: {}", self.at, self.what, self.why)
    }
}

/// One scenario exported.
///
/// ```
/// # use snakepit_chaos::export::chaos_mesh::{Options, export};
/// let spec = chaos_harness::scenario::ScenarioSpec::new("empty");
/// let e = export(&spec, &Options::default());
/// assert!(e.workflow.is_none() && !e.is_complete());
/// ```
#[derive(Debug, Clone)]
pub struct Export {
    /// The scenario's name.
    pub scenario: String,
    /// The Workflow, unless no step could be translated.
    pub workflow: Option<Value>,
    /// What was left out.
    pub untranslated: Vec<Untranslated>,
    /// Translated with a loss worth knowing (a parameter with no equivalent, a selector guess).
    pub notes: Vec<String>,
}

impl Export {
    /// Whether everything was translated.
    pub fn is_complete(&self) -> bool {
        self.workflow.is_some() && self.untranslated.is_empty()
    }

    /// The Workflow's templates (empty without a Workflow).
    pub fn templates(&self) -> &[Value] {
        self.workflow
            .as_ref()
            .and_then(|w| w.pointer("/spec/templates"))
            .and_then(Value::as_array)
            .map_or(&[], Vec::as_slice)
    }
}

const WHY_EXPECT: &str =
    "criteria are judged by the harness from its own observations; Chaos Mesh injects faults and judges nothing";
const WHY_LOAD: &str = "the load is generated by the harness; run a load generator in the cluster next to the Workflow";
const WHY_PHASE: &str = "phases label the harness's measurements; Chaos Mesh has no measurements to label";
const WHY_GUARD: &str = "guards are the harness's stop conditions on its own machine";
const WHY_IN_PARALLEL: &str = "the harness runs only injections, waits and expectations inside a parallel group";
const WHY_TOXIC: &str =
    "a TCP-level proxy toxic; NetworkChaos acts on packets (netem, tbf, iptables) and has no equivalent";

/// Exports one scenario (see the [module docs](self)).
///
/// ```
/// # use snakepit_chaos::export::chaos_mesh::{Options, export};
/// let spec = serde_json::from_value(serde_json::json!({
///     "name": "pause",
///     "targets": { "web": { "kind": "command", "program": "sleep", "args": ["60"] } },
///     "steps": [ { "action": "inject", "fault": "pause", "target": "web.main" } ]
/// })).unwrap();
/// let e = export(&spec, &Options::default());
/// assert_eq!(e.untranslated[0].what, "inject pause");
/// ```
pub fn export(spec: &ScenarioSpec, opts: &Options) -> Export {
    export_as(spec, &spec.name, opts)
}

/// [`export`], with the Workflow named after `name` (made a Kubernetes name) rather than the
/// scenario's name: `chaos export` uses the scenario file's test names (`http-kill`).
///
/// ```
/// # use snakepit_chaos::export::chaos_mesh::{Options, export_as};
/// let spec = serde_json::from_value(serde_json::json!({
///     "name": "A long name",
///     "steps": [ { "action": "inject", "fault": "kill", "target": "web" } ]
/// })).unwrap();
/// let e = export_as(&spec, "web-kill", &Options::default());
/// assert_eq!(e.workflow.unwrap()["metadata"]["name"], "web-kill");
/// ```
pub fn export_as(spec: &ScenarioSpec, name: &str, opts: &Options) -> Export {
    let mut w = Walk {
        spec,
        opts,
        t: Duration::ZERO,
        active: Vec::new(),
        done: Vec::new(),
        untranslated: Vec::new(),
        notes: Vec::new(),
    };
    if spec.load.is_some() {
        w.skip("load", format!("load {}", spec.load.as_ref().map_or("", |l| l.kind.as_str())), WHY_LOAD);
    }
    w.steps(&spec.steps);
    let end = w.t;
    let active = std::mem::take(&mut w.active);
    w.done.extend(active.into_iter().map(|(start, c)| (start, end, c)));
    for (i, g) in spec.guards.iter().enumerate() {
        w.skip(&format!("guard {i}"), format!("guard {}", g.kind), WHY_GUARD);
    }
    let workflow = (!w.done.is_empty()).then(|| workflow(name, spec.timeout, opts, &w.done));
    Export { scenario: spec.name.clone(), workflow, untranslated: w.untranslated, notes: w.notes }
}

/// A translated fault: its node type, the key of its embedded spec, the spec.
#[derive(Debug, Clone)]
struct Chaos {
    at: String,
    fault: String,
    template_type: &'static str,
    key: &'static str,
    spec: Value,
    /// Repeated on a Schedule node (`@every ...`), for at most this long.
    every: Option<(String, Duration)>,
}

struct Walk<'a> {
    spec: &'a ScenarioSpec,
    opts: &'a Options,
    t: Duration,
    active: Vec<(Duration, Chaos)>,
    done: Vec<(Duration, Duration, Chaos)>,
    untranslated: Vec<Untranslated>,
    notes: Vec<String>,
}

impl Walk<'_> {
    fn skip(&mut self, at: &str, what: String, why: &str) {
        self.untranslated.push(Untranslated { at: at.into(), what, why: why.into() });
    }

    fn steps(&mut self, steps: &[StepSpec]) {
        for (i, s) in steps.iter().enumerate() {
            let at = format!("step {i}");
            if let Some(a) = s.at {
                self.t = self.t.max(a);
            }
            match &s.action {
                Action::Inject { fault, params } => self.inject(&at, fault, params),
                Action::Wait { duration } => self.t += *duration,
                Action::Clear => {
                    let t = self.t;
                    let active = std::mem::take(&mut self.active);
                    self.done.extend(active.into_iter().map(|(start, c)| (start, t, c)));
                }
                Action::Parallel { steps } => {
                    let mut wait = Duration::ZERO;
                    for (j, inner) in steps.iter().enumerate() {
                        let at = format!("step {i}.{j}");
                        match &inner.action {
                            Action::Inject { fault, params } => self.inject(&at, fault, params),
                            Action::Wait { duration } => wait = wait.max(*duration),
                            other => self.other(&at, other, WHY_IN_PARALLEL),
                        }
                    }
                    self.t += wait;
                }
                other => self.other(&at, other, ""),
            }
        }
    }

    /// Expect, stop_load, phase (and, in a parallel group, anything but inject and wait).
    fn other(&mut self, at: &str, action: &Action, why: &str) {
        let (what, default_why) = match action {
            Action::Expect { criterion, .. } => (format!("expect {criterion}"), WHY_EXPECT),
            Action::StopLoad => ("stop_load".into(), WHY_LOAD),
            Action::Phase { phase } => (format!("phase {phase}"), WHY_PHASE),
            Action::Clear => ("clear".into(), WHY_IN_PARALLEL),
            Action::Parallel { .. } => ("parallel".into(), WHY_IN_PARALLEL),
            Action::Inject { fault, .. } => (format!("inject {fault}"), WHY_IN_PARALLEL),
            Action::Wait { .. } => ("wait".into(), WHY_IN_PARALLEL),
        };
        let why = match action {
            Action::Expect { .. } | Action::StopLoad | Action::Phase { .. } => default_why,
            _ if why.is_empty() => default_why,
            _ => why,
        };
        self.skip(at, what, why);
    }

    fn inject(&mut self, at: &str, fault: &str, params: &Params) {
        let validated = registry::fault(fault).and_then(|e| registry::validate("fault", fault, e.params, params));
        let result = match validated {
            Ok(p) => self.translate(fault, &p),
            Err(e) => Err(format!("the step is not valid ({e}); run `chaos validate` on the file")),
        };
        match result {
            Ok((template_type, key, spec)) => {
                let every = (fault == "crash_loop").then(|| self.every(at, params));
                let c = Chaos { at: at.into(), fault: fault.into(), template_type, key, spec, every };
                self.active.push((self.t, c));
            }
            Err(why) => self.untranslated.push(Untranslated { at: at.into(), what: format!("inject {fault}"), why }),
        }
    }

    /// A crash loop's period as a cron `@every` (whole seconds: robfig/cron, which Chaos Mesh's
    /// Schedule uses, runs nothing more often than every second) and how long it lasts.
    fn every(&mut self, at: &str, params: &Params) -> (String, Duration) {
        let p = registry::fault("crash_loop")
            .and_then(|e| registry::validate("fault", "crash_loop", e.params, params))
            .unwrap_or_default();
        let every = p.duration("every").ok().flatten().unwrap_or(Duration::from_millis(500));
        let lasting = p.duration("lasting").ok().flatten().unwrap_or(Duration::from_secs(5));
        let secs = every.as_secs_f64().ceil().max(1.0) as u64;
        if Duration::from_secs(secs) != every {
            self.note(
                at,
                format!(
                    "crash_loop every {}: a Schedule runs at most every second, exported as @every {secs}s",
                    go_duration(every)
                ),
            );
        }
        (format!("@every {secs}s"), lasting)
    }

    fn note(&mut self, at: &str, text: String) {
        self.notes.push(format!("{at}: {text}"));
    }

    /// One fault, its parameters validated (defaults filled in).
    fn translate(&mut self, fault: &str, p: &Params) -> Result<(&'static str, &'static str, Value), String> {
        let s = |k: &str| p.str(k).ok().flatten().unwrap_or_default().to_string();
        let target = s("target");
        match fault {
            "kill" | "kill_tree" | "restart" => {
                let sel = self.select(&target);
                let signal = if fault == "kill" { s("signal") } else { "SIGKILL".into() };
                let mut spec = sel.spec();
                match (&sel.container, signal.as_str(), fault) {
                    (None, _, "restart") => {
                        spec.insert("action".into(), "pod-kill".into());
                        spec.insert("gracePeriod".into(), 30.into());
                    }
                    (None, "SIGKILL", _) => {
                        spec.insert("action".into(), "pod-kill".into());
                        spec.insert("gracePeriod".into(), 0.into());
                    }
                    (None, "SIGTERM", _) => {
                        let grace = p.duration("confirm_timeout").ok().flatten().unwrap_or(Duration::from_secs(5));
                        spec.insert("action".into(), "pod-kill".into());
                        spec.insert("gracePeriod".into(), grace.as_secs().max(1).into());
                    }
                    (None, other, _) => {
                        return Err(format!(
                            "Chaos Mesh's pod-kill sends SIGTERM then SIGKILL (gracePeriod); {other} has no equivalent"
                        ));
                    }
                    (Some(_), "SIGKILL", _) => {
                        spec.insert("action".into(), "container-kill".into());
                    }
                    (Some(c), other, _) => {
                        return Err(format!(
                            "Chaos Mesh's container-kill always sends SIGKILL; {other} to container `{c}` has no equivalent"
                        ));
                    }
                }
                self.notes.extend(sel.notes);
                Ok(("PodChaos", "podChaos", Value::Object(spec)))
            }
            "pause" => Err("Chaos Mesh has no SIGSTOP: pod-failure replaces the container with a pause image, the process does not survive it".into()),
            "freeze" => Err("Chaos Mesh has no cgroup freeze: pod-failure replaces the container with a pause image, the processes do not survive it".into()),
            "crash_loop" => {
                let kill = Params::new().with("target", &target).with("signal", "SIGKILL");
                self.translate("kill", &kill)
            }
            "latency" | "bandwidth" | "link_down" => {
                let (link_notes, mut spec) = self.link_selector(&target);
                let toxicity = p.f64("toxicity").ok().flatten().unwrap_or(1.0);
                if fault != "link_down" && toxicity < 1.0 {
                    self.note(&target, format!("toxicity {toxicity} (a share of connections) has no equivalent: netem and tbf act on every packet"));
                }
                // Without a `target`, Chaos Mesh's webhook accepts only `to` for netem and tbf
                // actions: the selected pods' egress, which is the downstream (server to client).
                let direction = "to";
                if fault != "link_down" && s("stream") == "upstream" {
                    self.note(
                        &target,
                        format!("stream upstream (client to server): Chaos Mesh shapes the selected pods' egress only (direction to without a target), so the server's replies are {} instead", if fault == "latency" { "delayed" } else { "limited" }),
                    );
                }
                match fault {
                    "latency" => {
                        let latency = p.duration("latency").ok().flatten().unwrap_or_default();
                        let mut delay = json!({ "latency": go_duration(latency) });
                        if let Some(j) = p.duration("jitter").ok().flatten() {
                            delay["jitter"] = go_duration(j).into();
                        }
                        spec.insert("action".into(), "delay".into());
                        spec.insert("delay".into(), delay);
                        spec.insert("direction".into(), direction.into());
                    }
                    "bandwidth" => {
                        let rate = p.u64("rate_kbps").ok().flatten().unwrap_or(0);
                        if rate == 0 {
                            return Err("a rate of 0 stalls the link; Chaos Mesh's bandwidth (tbf) needs a positive rate".into());
                        }
                        spec.insert("action".into(), "bandwidth".into());
                        spec.insert(
                            "bandwidth".into(),
                            json!({ "rate": format!("{}bps", rate * 1000), "limit": BANDWIDTH_LIMIT, "buffer": BANDWIDTH_BUFFER }),
                        );
                        spec.insert("direction".into(), direction.into());
                    }
                    _ => {
                        spec.insert("action".into(), "partition".into());
                        spec.insert("direction".into(), "both".into());
                    }
                }
                self.notes.extend(link_notes);
                Ok(("NetworkChaos", "networkChaos", Value::Object(spec)))
            }
            "partition" | "packet_loss" => {
                let sel = self.select(&target);
                let mut spec = sel.spec();
                if fault == "partition" {
                    spec.insert("action".into(), "partition".into());
                    spec.insert("direction".into(), "both".into());
                } else {
                    let pct = p.u64("percent").ok().flatten().unwrap_or(0);
                    spec.insert("action".into(), "loss".into());
                    spec.insert("loss".into(), json!({ "loss": pct.to_string() }));
                    spec.insert("direction".into(), "to".into());
                    self.note(&target, format!("packet_loss {pct}%: Chaos Mesh drops on the pods' egress only (direction to without a target); the harness drops in and out"));
                }
                Ok(("NetworkChaos", "networkChaos", Value::Object(spec)))
            }
            "timeout" | "reset_peer" | "slicer" | "limit_data" | "slow_close" => Err(WHY_TOXIC.into()),
            "memory_pressure" => {
                let sel = self.select(&target);
                let bytes = p.bytes("bytes").ok().flatten().unwrap_or(0);
                if p.get("oom_score_adj").is_some() {
                    self.note(&target, "oom_score_adj has no equivalent in StressChaos's memory stressor".into());
                }
                let mut spec = sel.spec();
                spec.insert("stressors".into(), json!({ "memory": { "workers": 1, "size": format!("{bytes}B") } }));
                self.notes.extend(sel.notes);
                Ok(("StressChaos", "stressChaos", Value::Object(spec)))
            }
            "cpu_burn" => {
                let pods: Vec<&String> =
                    self.spec.targets.iter().filter(|(_, t)| !matches!(t.kind.as_str(), "link" | "netns")).map(|(n, _)| n).collect();
                if pods.is_empty() {
                    return Err("cpu_burn loads the harness's machine, and the scenario has no target whose pods could be stressed".into());
                }
                let selector = if let [one] = pods.as_slice() {
                    json!({ "namespaces": [self.opts.namespace], "labelSelectors": { NAME_LABEL: one } })
                } else {
                    json!({ "namespaces": [self.opts.namespace], "expressionSelectors": [
                        { "key": NAME_LABEL, "operator": "In", "values": pods }
                    ] })
                };
                let workers = match p.u64("cpus").ok().flatten().unwrap_or(0) {
                    0 => {
                        self.note("cpu_burn", "cpus = 0 (one burner per CPU) has no count in Chaos Mesh: exported as 1 worker; set `workers` to the nodes' CPU count".into());
                        1
                    }
                    n => n,
                };
                let spec = json!({
                    "mode": "all",
                    "selector": selector,
                    "stressors": { "cpu": { "workers": workers, "load": 100 } },
                });
                Ok(("StressChaos", "stressChaos", spec))
            }
            "memory_limit" => Err("Chaos Mesh cannot lower a container's memory limit (StressChaos consumes memory instead: write memory_pressure); set the pod's resources.limits.memory".into()),
            "cpu_quota" => Err("Chaos Mesh cannot lower a container's CPU quota (StressChaos adds load instead: write cpu_burn); set the pod's resources.limits.cpu".into()),
            "disk_tmpfs" | "disk_fill" => Err("Chaos Mesh has no disk-size fault for pods (IOChaos injects I/O errors and latency, not a full disk)".into()),
            "fd_limit" => Err("Chaos Mesh has no rlimit fault: file-descriptor exhaustion cannot be expressed".into()),
            "pids_limit" => Err("Chaos Mesh has no pids-cgroup fault: process-count exhaustion cannot be expressed".into()),
            other => Err(format!("no Chaos Mesh mapping for the fault `{other}` (a plugin's, or newer than this exporter); see docs/chaos-mesh.md")),
        }
    }

    /// A selector reference (`web`, `web.main`, `pit.workers`, `pit.worker[0]`).
    fn select(&self, reference: &str) -> Selection {
        let (name, role) = reference.split_once('.').map_or((reference, None), |(n, r)| (n, Some(r)));
        let mut sel = Selection {
            name: name.into(),
            namespace: self.opts.namespace.clone(),
            mode: "all",
            container: None,
            notes: Vec::new(),
        };
        if let Some(role) = role.filter(|r| *r != "main") {
            let (base, indexed) = match role.split_once('[') {
                Some((base, _)) => (base, true),
                None => (role, false),
            };
            if indexed {
                sel.mode = "one";
                sel.notes.push(format!(
                    "{reference}: Chaos Mesh picks one of the matching pods at random, not the process at that index"
                ));
            }
            sel.container = Some(base.into());
        }
        sel
    }

    /// The pods a link fault acts on: a snakepit's own link (`pit.bridge`) is the pit's pods; a
    /// `link` target stands for the target whose `ready_tcp` address is its upstream, else for
    /// pods labelled with the link's own name.
    fn link_selector(&self, reference: &str) -> (Vec<String>, Map<String, Value>) {
        let mut notes = Vec::new();
        let name = match reference.split_once('.') {
            Some((pit, _)) => pit.to_string(),
            None => {
                let upstream = self
                    .spec
                    .targets
                    .get(reference)
                    .and_then(|t| t.params.str("upstream").ok().flatten())
                    .map(str::to_string);
                let fronted = upstream.as_deref().and_then(|u| {
                    self.spec
                        .targets
                        .iter()
                        .find(|(_, t)| t.params.str("ready_tcp").ok().flatten() == Some(u))
                        .map(|(n, _)| n.clone())
                });
                match fronted {
                    Some(n) => {
                        notes.push(format!("link {reference}: stands for {n}'s pods (its upstream is {n}'s address)"));
                        n
                    }
                    None => {
                        notes.push(format!(
                            "link {reference}: its upstream is no target's address; the pods labelled {NAME_LABEL}={reference} are selected"
                        ));
                        reference.to_string()
                    }
                }
            }
        };
        let sel =
            Selection { name, namespace: self.opts.namespace.clone(), mode: "all", container: None, notes: Vec::new() };
        (notes, sel.spec())
    }
}

/// A target's pods: what a selector reference becomes.
struct Selection {
    name: String,
    namespace: String,
    mode: &'static str,
    container: Option<String>,
    notes: Vec<String>,
}

impl Selection {
    fn spec(&self) -> Map<String, Value> {
        let mut m = Map::new();
        m.insert("mode".into(), self.mode.into());
        m.insert(
            "selector".into(),
            json!({ "namespaces": [self.namespace], "labelSelectors": { NAME_LABEL: self.name } }),
        );
        if let Some(c) = &self.container {
            m.insert("containerNames".into(), json!([c]));
        }
        m
    }
}

/// The Workflow from the translated faults with their start and end offsets.
fn workflow(name: &str, timeout: Option<Duration>, opts: &Options, done: &[(Duration, Duration, Chaos)]) -> Value {
    // Branches: one per start instant, in order; faults starting together end together (a
    // clear clears every active fault).
    let mut branches: BTreeMap<(Duration, Duration), Vec<&Chaos>> = BTreeMap::new();
    for (start, end, c) in done {
        branches.entry((*start, *end)).or_default().push(c);
    }
    let mut templates = Vec::new();
    let mut entry_children = Vec::new();
    for (k, ((start, end), faults)) in branches.iter().enumerate() {
        let deadline = go_duration((*end - *start).max(MIN_NODE));
        let mut branch = Vec::new();
        let mut nodes = Vec::new();
        for c in faults {
            let name = dns_label(&format!("{}-{}", c.at, c.fault));
            let t = match &c.every {
                None => {
                    let mut t = json!({ "name": name, "templateType": c.template_type, "deadline": deadline });
                    t[c.key] = c.spec.clone();
                    t
                }
                Some((cron, lasting)) => {
                    let d = go_duration((*end - *start).min(*lasting).max(MIN_NODE));
                    let mut schedule = json!({
                        "schedule": cron, "type": c.template_type, "concurrencyPolicy": "Allow", "historyLimit": 1,
                    });
                    schedule[c.key] = c.spec.clone();
                    json!({ "name": name, "templateType": "Schedule", "deadline": d, "schedule": schedule })
                }
            };
            nodes.push(t);
        }
        let names: Vec<Value> = nodes.iter().map(|n| n["name"].clone()).collect();
        let body = if let [one] = names.as_slice() {
            one.clone()
        } else {
            let name = format!("at-{k}-together");
            branch.push(json!({ "name": name, "templateType": "Parallel", "children": names }));
            name.into()
        };
        if start.is_zero() {
            entry_children.push(body);
        } else {
            let (serial, wait) = (format!("at-{k}"), format!("at-{k}-wait"));
            branch.insert(0, json!({ "name": serial, "templateType": "Serial", "children": [wait, body] }));
            branch.insert(1, json!({ "name": wait, "templateType": "Suspend", "deadline": go_duration(*start) }));
            entry_children.push(serial.into());
        }
        templates.extend(branch);
        templates.extend(nodes);
    }
    let mut entry = json!({ "name": "timeline", "templateType": "Parallel", "children": entry_children });
    if let Some(t) = timeout {
        entry["deadline"] = go_duration(t).into();
    }
    templates.insert(0, entry);
    json!({
        "apiVersion": API_VERSION,
        "kind": "Workflow",
        "metadata": { "name": dns_label(name), "namespace": opts.namespace },
        "spec": { "entry": "timeline", "templates": templates },
    })
}

/// A duration in Go's syntax (`time.ParseDuration`), which Chaos Mesh parses: `1m30s`, `1s500ms`.
///
/// ```
/// use snakepit_chaos::export::chaos_mesh::go_duration;
/// use std::time::Duration;
/// assert_eq!(go_duration(Duration::from_millis(1500)), "1s500ms");
/// assert_eq!(go_duration(Duration::from_secs(3725)), "1h2m5s");
/// assert_eq!(go_duration(Duration::ZERO), "0s");
/// ```
pub fn go_duration(d: Duration) -> String {
    if d.is_zero() {
        return "0s".into();
    }
    let secs = d.as_secs();
    let nanos = d.subsec_nanos();
    let parts = [
        (secs / 3600, "h"),
        (secs / 60 % 60, "m"),
        (secs % 60, "s"),
        (u64::from(nanos / 1_000_000), "ms"),
        (u64::from(nanos / 1_000 % 1_000), "us"),
        (u64::from(nanos % 1_000), "ns"),
    ];
    parts.iter().filter(|(n, _)| *n > 0).map(|(n, u)| format!("{n}{u}")).collect()
}

/// A Kubernetes name (an RFC 1123 label: lowercase letters, digits and `-`, at most 63, starting
/// and ending with a letter or digit) made from any text.
///
/// ```
/// use snakepit_chaos::export::chaos_mesh::dns_label;
/// assert_eq!(dns_label("BEAM SIGKILL: every worker gone"), "beam-sigkill-every-worker-gone");
/// assert_eq!(dns_label("step 3.1-kill"), "step-3-1-kill");
/// assert_eq!(dns_label("!!!"), "scenario");
/// ```
pub fn dns_label(text: &str) -> String {
    let mut out = String::new();
    for c in text.chars() {
        if c.is_ascii_alphanumeric() {
            out.push(c.to_ascii_lowercase());
        } else if !out.ends_with('-') && !out.is_empty() {
            out.push('-');
        }
    }
    out.truncate(63);
    let out = out.trim_end_matches('-').to_string();
    if out.is_empty() { "scenario".into() } else { out }
}

/// Why an export could not be rendered.
#[derive(Debug, thiserror::Error)]
#[error("cannot render the Chaos Mesh manifests as YAML: {0}; this is a bug in the exporter, please report it")]
pub struct RenderError(#[from] serde_norway::Error);

/// The exports of one scenario file as one YAML stream: a comment header (the source, the
/// namespace, the label convention, everything not translated and every note), then one
/// document per Workflow.
///
/// ```
/// # use snakepit_chaos::export::chaos_mesh::{Options, export, render};
/// let spec = chaos_harness::scenario::ScenarioSpec::new("empty");
/// let yaml = render("x.chaos.toml", &[export(&spec, &Options::default())], &Options::default()).unwrap();
/// assert!(yaml.starts_with("# Chaos Mesh manifests"), "{yaml}");
/// assert!(yaml.contains("nothing to export"), "{yaml}");
/// ```
pub fn render(source: &str, exports: &[Export], opts: &Options) -> Result<String, RenderError> {
    let mut out = String::new();
    let line = |out: &mut String, s: &str| {
        out.push_str("# ");
        out.push_str(&s.replace('\n', " "));
        out.push('\n');
    };
    line(&mut out, &format!("Chaos Mesh manifests exported from {source} by `chaos export --to chaos-mesh`."));
    line(
        &mut out,
        &format!("Needs Chaos Mesh 2.x; apply with `kubectl apply -f FILE`. Namespace: {}.", opts.namespace),
    );
    line(
        &mut out,
        &format!(
            "A target is the pods labelled {NAME_LABEL}=<target>; a role other than `main` is a container of that name."
        ),
    );
    for e in exports {
        let status = match (&e.workflow, e.untranslated.is_empty()) {
            (None, _) => "nothing to export".to_string(),
            (Some(_), true) => "exported completely".to_string(),
            (Some(_), false) => format!("exported in part, {} item(s) not translated", e.untranslated.len()),
        };
        line(&mut out, "");
        line(&mut out, &format!("Scenario \"{}\": {status}", e.scenario));
        if !e.untranslated.is_empty() {
            line(&mut out, "Not translated:");
            for u in &e.untranslated {
                line(&mut out, &format!("  - {u}"));
            }
        }
        if !e.notes.is_empty() {
            line(&mut out, "Notes:");
            for n in &e.notes {
                line(&mut out, &format!("  - {n}"));
            }
        }
    }
    for w in exports.iter().filter_map(|e| e.workflow.as_ref()) {
        out.push_str("---\n");
        out.push_str(&serde_norway::to_string(&ordered(w))?);
    }
    Ok(out)
}

/// Keys in the order Chaos Mesh's own examples write them (then alphabetically), for people
/// reading the YAML: a `serde_json` map is sorted.
const KEY_ORDER: &[&str] = &[
    "apiVersion",
    "kind",
    "metadata",
    "spec",
    "name",
    "namespace",
    "entry",
    "templateType",
    "deadline",
    "children",
    "action",
    "mode",
    "value",
    "selector",
    "namespaces",
    "containerNames",
    "direction",
    "gracePeriod",
    "schedule",
    "type",
];

fn ordered(v: &Value) -> serde_norway::Value {
    match v {
        Value::Object(m) => {
            let mut keys: Vec<&String> = m.keys().collect();
            let rank = |k: &str| KEY_ORDER.iter().position(|o| *o == k).unwrap_or(KEY_ORDER.len());
            keys.sort_by(|a, b| rank(a).cmp(&rank(b)).then(a.cmp(b)));
            let mut out = serde_norway::Mapping::new();
            for k in keys {
                out.insert(serde_norway::Value::String(k.clone()), ordered(&m[k.as_str()]));
            }
            serde_norway::Value::Mapping(out)
        }
        Value::Array(a) => serde_norway::Value::Sequence(a.iter().map(ordered).collect()),
        other => serde_norway::to_value(other).unwrap_or(serde_norway::Value::Null),
    }
}
