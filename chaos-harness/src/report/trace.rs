//! The scenario timeline as OpenTelemetry spans, in the OTLP/HTTP JSON encoding (feature
//! `metrics`): a span per scenario, child spans per step and per fault, span events for
//! verdicts and phases.
//!
//! [`TraceRecorder`] is a [`Subscriber`]; [`TraceRecorder::export_request`] gives the
//! `ExportTraceServiceRequest` JSON of what it saw, [`export`] posts it to
//! `{OTEL_EXPORTER_OTLP_ENDPOINT}/v1/traces` or writes it to a file.
//!
//! ```
//! use chaos_harness::observe::{EventKind, EventStream};
//! use chaos_harness::report::trace::TraceRecorder;
//! let stream = EventStream::new();
//! let rec = TraceRecorder::new();
//! stream.subscribe(rec.clone());
//! stream.emit(EventKind::ScenarioStarted { scenario: "demo".into(), seed: 1 });
//! stream.emit(EventKind::StepStarted { step: 0, what: "wait 1s".into() });
//! stream.emit(EventKind::ScenarioFinished { passed: true });
//! let req = rec.export_request();
//! let spans = req["resourceSpans"][0]["scopeSpans"][0]["spans"].as_array().unwrap();
//! assert_eq!(spans.len(), 2);
//! assert_eq!(spans[1]["parentSpanId"], spans[0]["spanId"]);
//! ```

use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

use serde_json::{Value, json};

use crate::observe::{Event, EventKind, Subscriber};

/// A span event: when, its name, its attributes.
type SpanEvent = (Duration, String, Vec<(String, Value)>);

#[derive(Debug, Clone)]
struct Span {
    trace_id: String,
    span_id: String,
    parent: Option<String>,
    name: String,
    start: Duration,
    end: Option<Duration>,
    attributes: Vec<(String, Value)>,
    events: Vec<SpanEvent>,
    error: Option<String>,
}

#[derive(Debug, Default)]
struct State {
    wall0: Option<SystemTime>,
    spans: Vec<Span>,
    scenario: Option<usize>,
    step: Option<usize>,
    faults: Vec<(u32, usize)>,
    counter: u64,
}

/// Records a stream's events as spans (cheap clones share the recording).
#[derive(Debug, Clone, Default)]
pub struct TraceRecorder {
    state: Arc<Mutex<State>>,
}

fn hex_id(bytes: usize, seed: u64, n: u64) -> String {
    use rand::{Rng, SeedableRng};
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(seed ^ n.wrapping_mul(0x9E37_79B9_7F4A_7C15));
    (0..bytes).map(|_| format!("{:02x}", rng.random::<u8>())).collect()
}

fn attr(key: &str, v: Value) -> (String, Value) {
    (key.to_string(), v)
}

fn otlp_value(v: &Value) -> Value {
    match v {
        Value::Bool(b) => json!({ "boolValue": b }),
        Value::Number(n) if n.is_i64() || n.is_u64() => json!({ "intValue": n.to_string() }),
        Value::Number(n) => json!({ "doubleValue": n }),
        Value::String(s) => json!({ "stringValue": s }),
        other => json!({ "stringValue": other.to_string() }),
    }
}

fn otlp_attrs(a: &[(String, Value)]) -> Value {
    Value::Array(a.iter().map(|(k, v)| json!({ "key": k, "value": otlp_value(v) })).collect())
}

impl TraceRecorder {
    /// An empty recorder.
    pub fn new() -> Self {
        Self::default()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The `ExportTraceServiceRequest` (OTLP JSON) of every span recorded; spans still open end
    /// at the last event.
    pub fn export_request(&self) -> Value {
        let st = self.lock();
        let wall0 = st.wall0.unwrap_or(SystemTime::UNIX_EPOCH);
        let last = st.spans.iter().flat_map(|s| [Some(s.start), s.end]).flatten().max().unwrap_or_default();
        let nanos = |d: Duration| -> String {
            let t = (wall0 + d).duration_since(SystemTime::UNIX_EPOCH).unwrap_or_default();
            t.as_nanos().to_string()
        };
        let spans: Vec<Value> = st
            .spans
            .iter()
            .map(|s| {
                let mut v = json!({
                    "traceId": s.trace_id,
                    "spanId": s.span_id,
                    "name": s.name,
                    "kind": 1,
                    "startTimeUnixNano": nanos(s.start),
                    "endTimeUnixNano": nanos(s.end.unwrap_or(last).max(s.start)),
                    "attributes": otlp_attrs(&s.attributes),
                    "events": s.events.iter().map(|(at, name, a)| json!({
                        "timeUnixNano": nanos(*at), "name": name, "attributes": otlp_attrs(a)
                    })).collect::<Vec<_>>(),
                    "status": match &s.error {
                        Some(m) => json!({ "code": 2, "message": m }),
                        None => json!({ "code": 1 }),
                    },
                });
                if let Some(p) = &s.parent {
                    v["parentSpanId"] = json!(p);
                }
                v
            })
            .collect();
        json!({ "resourceSpans": [{
            "resource": { "attributes": otlp_attrs(&[attr("service.name", json!("chaos-harness"))]) },
            "scopeSpans": [{ "scope": { "name": "chaos_harness", "version": env!("CARGO_PKG_VERSION") }, "spans": spans }]
        }]})
    }

    fn open(
        &self,
        st: &mut State,
        name: String,
        at: Duration,
        parent: Option<usize>,
        attrs: Vec<(String, Value)>,
    ) -> usize {
        st.counter += 1;
        let seed =
            st.wall0.map_or(0, |w| w.duration_since(SystemTime::UNIX_EPOCH).unwrap_or_default().as_nanos() as u64);
        let (trace_id, parent_id) = match parent {
            Some(p) => (st.spans[p].trace_id.clone(), Some(st.spans[p].span_id.clone())),
            None => (hex_id(16, seed, st.counter), None),
        };
        st.spans.push(Span {
            trace_id,
            span_id: hex_id(8, seed, st.counter + (1 << 40)),
            parent: parent_id,
            name,
            start: at,
            end: None,
            attributes: attrs,
            events: Vec::new(),
            error: None,
        });
        st.spans.len() - 1
    }
}

fn close(st: &mut State, i: Option<usize>, at: Duration) {
    if let Some(i) = i
        && let Some(s) = st.spans.get_mut(i)
        && s.end.is_none()
    {
        s.end = Some(at);
    }
}

impl Subscriber for TraceRecorder {
    fn on_event(&mut self, event: &Event) {
        let this = self.clone();
        let mut st = self.lock();
        if st.wall0.is_none() {
            st.wall0 = SystemTime::now().checked_sub(event.at);
        }
        let at = event.at;
        let sc = st.scenario;
        match &event.kind {
            EventKind::ScenarioStarted { scenario, seed } => {
                let i = this.open(
                    &mut st,
                    format!("scenario {scenario}"),
                    at,
                    None,
                    vec![attr("chaos.scenario", json!(scenario)), attr("chaos.seed", json!(seed))],
                );
                st.scenario = Some(i);
                st.step = None;
                st.faults.clear();
            }
            EventKind::StepStarted { step, what } => {
                let prev = st.step;
                close(&mut st, prev, at);
                let i =
                    this.open(&mut st, format!("step {step}: {what}"), at, sc, vec![attr("chaos.step", json!(step))]);
                st.step = Some(i);
            }
            EventKind::FaultInjecting { fault } => {
                let parent = st.step.or(sc);
                let i = this.open(
                    &mut st,
                    format!("fault {}", fault.kind),
                    at,
                    parent,
                    vec![
                        attr("chaos.fault.id", json!(fault.id)),
                        attr("chaos.fault.kind", json!(fault.kind)),
                        attr("chaos.fault.description", json!(fault.description)),
                    ],
                );
                st.faults.push((fault.id, i));
            }
            EventKind::FaultConfirmed { fault, confirmation, one_shot } => {
                if let Some(&(_, i)) = st.faults.iter().find(|(id, _)| *id == fault.id) {
                    st.spans[i].events.push((
                        at,
                        "confirmed".into(),
                        vec![attr("chaos.detail", json!(confirmation.detail)), attr("chaos.one_shot", json!(one_shot))],
                    ));
                    if *one_shot {
                        close(&mut st, Some(i), at);
                    }
                }
            }
            EventKind::FaultNotInjected { fault, reason } | EventKind::FaultClearFailed { fault, error: reason } => {
                if let Some(&(_, i)) = st.faults.iter().find(|(id, _)| *id == fault.id) {
                    st.spans[i].error = Some(reason.clone());
                    close(&mut st, Some(i), at);
                }
            }
            EventKind::FaultCleared { fault, confirmation } => {
                if let Some(&(_, i)) = st.faults.iter().find(|(id, _)| *id == fault.id) {
                    st.spans[i].events.push((
                        at,
                        "cleared".into(),
                        vec![attr("chaos.detail", json!(confirmation.detail))],
                    ));
                    close(&mut st, Some(i), at);
                }
            }
            EventKind::CriterionVerdict { criterion, criterion_kind, passed, detail } => {
                if let Some(i) = st.step.or(sc) {
                    st.spans[i].events.push((
                        at,
                        "verdict".into(),
                        vec![
                            attr("chaos.criterion", json!(criterion)),
                            attr("chaos.criterion.kind", json!(criterion_kind)),
                            attr("chaos.passed", json!(passed)),
                            attr("chaos.detail", json!(detail)),
                        ],
                    ));
                }
            }
            EventKind::PhaseEntered { phase } => {
                if let Some(i) = sc {
                    st.spans[i].events.push((at, "phase".into(), vec![attr("chaos.phase", json!(phase.as_str()))]));
                }
            }
            EventKind::ScenarioFinished { passed } => {
                let open: Vec<usize> = st.faults.iter().map(|(_, i)| *i).chain(st.step).collect();
                for i in open {
                    close(&mut st, Some(i), at);
                }
                if let Some(i) = sc {
                    if !passed {
                        st.spans[i].error = Some("scenario failed".into());
                    }
                    close(&mut st, Some(i), at);
                }
                st.scenario = None;
                st.step = None;
            }
            _ => {}
        }
    }
}

/// Where [`export`] sends spans.
#[derive(Debug, Clone)]
pub enum TraceSink {
    /// An OTLP/HTTP endpoint (`http://HOST:PORT`, spans go to `/v1/traces`).
    Otlp(String),
    /// A JSON file (the OTLP JSON request; one per line when appended to).
    File(std::path::PathBuf),
}

impl TraceSink {
    /// `OTEL_EXPORTER_OTLP_ENDPOINT` when set (or `OTEL_EXPORTER_OTLP_TRACES_ENDPOINT`, used as
    /// the full URL), else `file` if given.
    pub fn from_env(file: Option<&Path>) -> Option<Self> {
        if let Ok(url) = std::env::var("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT")
            && !url.is_empty()
        {
            return Some(TraceSink::Otlp(url));
        }
        if let Ok(base) = std::env::var("OTEL_EXPORTER_OTLP_ENDPOINT")
            && !base.is_empty()
        {
            return Some(TraceSink::Otlp(format!("{}/v1/traces", base.trim_end_matches('/'))));
        }
        file.map(|f| TraceSink::File(f.to_path_buf()))
    }
}

/// Sends the recorder's spans to `sink`: an HTTP POST of the OTLP JSON, or a line appended to
/// the file.
pub fn export(rec: &TraceRecorder, sink: &TraceSink) -> Result<(), crate::Error> {
    let body = rec.export_request().to_string();
    match sink {
        TraceSink::File(path) => {
            use std::io::Write;
            let io = |source: std::io::Error| crate::Error::Io {
                what: "writing the trace file".into(),
                path: path.clone(),
                source,
                fix: "choose a writable path with --trace-file PATH".into(),
            };
            let mut f = std::fs::OpenOptions::new().create(true).append(true).open(path).map_err(io)?;
            writeln!(f, "{body}").map_err(io)
        }
        TraceSink::Otlp(url) => {
            super::metrics::http_post(url, "application/json", &body).map_err(|e| crate::Error::Io {
                what: "exporting spans over OTLP/HTTP".into(),
                path: Default::default(),
                source: std::io::Error::other(e.to_string()),
                fix: "check OTEL_EXPORTER_OTLP_ENDPOINT (http://HOST:PORT of an OTLP/HTTP receiver)".into(),
            })
        }
    }
}
