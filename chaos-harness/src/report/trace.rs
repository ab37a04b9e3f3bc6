//! The scenario timeline as OpenTelemetry spans (feature `otel`), through the OpenTelemetry
//! stack: each event becomes a `tracing` span or span event, bridged by
//! `tracing-opentelemetry` into the OpenTelemetry SDK; [`export`] sends the finished spans
//! with `opentelemetry-otlp` (OTLP/HTTP, JSON encoding) or writes them as an OTLP JSON
//! `ExportTraceServiceRequest` line to a file.
//!
//! A span per scenario (the root), a child span per step, a child span per fault (under the
//! step that injected it) from `FaultInjecting` to `FaultCleared` (or its confirmation, for a
//! one-shot fault such as a kill), span events for confirmations, clears, phases and verdicts.
//! Spans and events carry the times of the events they come from.
//!
//! [`TraceRecorder`] is a [`Subscriber`] with its own `tracing` dispatch (it does not touch
//! the process's global subscriber).
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
//! let root = spans.iter().find(|s| s["name"] == "scenario demo").unwrap();
//! let step = spans.iter().find(|s| s["name"] == "step 0: wait 1s").unwrap();
//! assert_eq!(step["parentSpanId"], root["spanId"]);
//! ```

use std::collections::HashMap;
use std::path::Path;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, SystemTime};

use opentelemetry::trace::{SpanId, Status, TraceContextExt, TracerProvider as _};
use opentelemetry::{KeyValue, Value};
use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use opentelemetry_proto::transform::common::tonic::ResourceAttributesWithSchema;
use opentelemetry_proto::transform::trace::tonic::group_spans_by_resource_and_scope;
use opentelemetry_sdk::Resource;
use opentelemetry_sdk::error::OTelSdkResult;
use opentelemetry_sdk::trace::{SdkTracerProvider, SpanData, SpanExporter};
use tracing_opentelemetry::OpenTelemetrySpanExt;
use tracing_subscriber::layer::SubscriberExt;

use crate::observe::{Event, EventKind, Subscriber};

/// How long an OTLP export may take.
const EXPORT_TIMEOUT: Duration = Duration::from_secs(10);

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

/// The times a span should carry: those of its events.
#[derive(Debug, Default)]
struct Times {
    start: Option<SystemTime>,
    end: Option<SystemTime>,
}

/// The SDK exporter behind the recorder: keeps the finished spans, with the start and end
/// times of the events they stand for.
#[derive(Debug, Clone, Default)]
struct Collector {
    spans: Arc<Mutex<Vec<SpanData>>>,
    times: Arc<Mutex<HashMap<SpanId, Times>>>,
}

impl SpanExporter for Collector {
    fn export(&self, batch: Vec<SpanData>) -> impl std::future::Future<Output = OTelSdkResult> + Send {
        let times = lock(&self.times);
        let mut spans = lock(&self.spans);
        for mut s in batch {
            if let Some(t) = times.get(&s.span_context.span_id()) {
                if let Some(start) = t.start {
                    s.start_time = start;
                }
                if let Some(end) = t.end {
                    s.end_time = end.max(s.start_time);
                }
            }
            spans.push(s);
        }
        std::future::ready(Ok(()))
    }
}

#[derive(Debug, Default)]
struct State {
    wall0: Option<SystemTime>,
    last: Option<SystemTime>,
    scenario: Option<tracing::Span>,
    step: Option<tracing::Span>,
    faults: Vec<(u32, tracing::Span)>,
}

struct Inner {
    dispatch: tracing::Dispatch,
    provider: SdkTracerProvider,
    resource: Resource,
    collector: Collector,
    state: Mutex<State>,
}

impl Drop for Inner {
    fn drop(&mut self) {
        // Spans still open are dropped under the recorder's dispatch (see `on_event`).
        let st = std::mem::take(self.state.get_mut().unwrap_or_else(|e| e.into_inner()));
        tracing::dispatcher::with_default(&self.dispatch, || drop(st));
    }
}

/// Records a stream's events as OpenTelemetry spans (cheap clones share the recording).
#[derive(Clone)]
pub struct TraceRecorder {
    inner: Arc<Inner>,
}

impl std::fmt::Debug for TraceRecorder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "TraceRecorder({} spans)", lock(&self.inner.collector.spans).len())
    }
}

impl Default for TraceRecorder {
    fn default() -> Self {
        Self::new()
    }
}

fn kv(key: &'static str, v: impl Into<Value>) -> KeyValue {
    KeyValue::new(key, v.into())
}

fn int(v: impl TryInto<i64>) -> Value {
    Value::I64(v.try_into().unwrap_or(i64::MAX))
}

impl TraceRecorder {
    /// An empty recorder.
    pub fn new() -> Self {
        let collector = Collector::default();
        let resource = Resource::builder().with_service_name("chaos-harness").build();
        let provider = SdkTracerProvider::builder()
            .with_simple_exporter(collector.clone())
            .with_resource(resource.clone())
            .build();
        let tracer = provider.tracer("chaos_harness");
        let layer = tracing_opentelemetry::layer().with_tracer(tracer).with_location(false).with_threads(false);
        let dispatch = tracing::Dispatch::new(tracing_subscriber::registry().with(layer));
        Self { inner: Arc::new(Inner { dispatch, provider, resource, collector, state: Mutex::new(State::default()) }) }
    }

    /// A new span named `name` under `parent` (a root when `None`), starting at `at`.
    fn open(
        &self,
        name: String,
        parent: Option<&tracing::Span>,
        at: SystemTime,
        attrs: Vec<KeyValue>,
    ) -> tracing::Span {
        let span = tracing::dispatcher::with_default(&self.inner.dispatch, || match parent {
            Some(p) => {
                tracing::info_span!(target: "chaos_harness::trace", parent: p, "chaos", otel.name = name.as_str())
            }
            None => {
                tracing::info_span!(target: "chaos_harness::trace", parent: None, "chaos", otel.name = name.as_str())
            }
        });
        for a in attrs {
            span.set_attribute(a.key, a.value);
        }
        let id = span.context().span().span_context().span_id();
        lock(&self.inner.collector.times).insert(id, Times { start: Some(at), end: None });
        span
    }

    /// Ends `span` at `at` (it is exported when dropped here).
    fn close(&self, span: tracing::Span, at: SystemTime) {
        let id = span.context().span().span_context().span_id();
        lock(&self.inner.collector.times).entry(id).or_default().end = Some(at);
        drop(span);
    }

    /// Ends every span still open at the last event seen.
    fn close_open(&self, st: &mut State) {
        let at = st.last.unwrap_or_else(SystemTime::now);
        let faults: Vec<tracing::Span> = st.faults.drain(..).map(|(_, s)| s).collect();
        for s in faults.into_iter().chain(st.step.take()).chain(st.scenario.take()) {
            self.close(s, at);
        }
    }

    /// The spans finished so far (ending any still open at the last event), as the SDK
    /// exported them.
    pub fn spans(&self) -> Vec<SpanData> {
        {
            let mut st = lock(&self.inner.state);
            tracing::dispatcher::with_default(&self.inner.dispatch, || self.close_open(&mut st));
        }
        let _ = self.inner.provider.force_flush();
        lock(&self.inner.collector.spans).clone()
    }

    /// The OTLP `ExportTraceServiceRequest` of every span, in the OTLP JSON encoding.
    pub fn export_request(&self) -> serde_json::Value {
        let request = self.request();
        serde_json::to_value(&request).unwrap_or_default()
    }

    fn request(&self) -> ExportTraceServiceRequest {
        let resource = ResourceAttributesWithSchema::from(&self.inner.resource);
        ExportTraceServiceRequest { resource_spans: group_spans_by_resource_and_scope(self.spans(), &resource) }
    }
}

impl Subscriber for TraceRecorder {
    fn on_event(&mut self, event: &Event) {
        // Spans are created and dropped under the recorder's own dispatch: a closing child
        // releases its parent through the current default dispatch.
        tracing::dispatcher::with_default(&self.inner.dispatch, || self.record(event));
    }
}

impl TraceRecorder {
    fn record(&self, event: &Event) {
        let mut st = lock(&self.inner.state);
        let wall0 =
            *st.wall0.get_or_insert_with(|| SystemTime::now().checked_sub(event.at).unwrap_or(SystemTime::UNIX_EPOCH));
        let at = wall0 + event.at;
        st.last = Some(at);
        let fault_span = |st: &State, id: u32| st.faults.iter().find(|(f, _)| *f == id).map(|(_, s)| s.clone());
        match &event.kind {
            EventKind::ScenarioStarted { scenario, seed } => {
                self.close_open(&mut st);
                st.last = Some(at);
                let attrs = vec![kv("chaos.scenario", scenario.clone()), kv("chaos.seed", int(*seed))];
                st.scenario = Some(self.open(format!("scenario {scenario}"), None, at, attrs));
            }
            EventKind::StepStarted { step, what } => {
                if let Some(prev) = st.step.take() {
                    self.close(prev, at);
                }
                let span = self.open(
                    format!("step {step}: {what}"),
                    st.scenario.as_ref(),
                    at,
                    vec![kv("chaos.step", int(*step))],
                );
                st.step = Some(span);
            }
            EventKind::FaultInjecting { fault } => {
                let parent = st.step.clone().or_else(|| st.scenario.clone());
                let attrs = vec![
                    kv("chaos.fault.id", int(fault.id)),
                    kv("chaos.fault.kind", fault.kind.clone()),
                    kv("chaos.fault.description", fault.description.clone()),
                ];
                let span = self.open(format!("fault {}", fault.kind), parent.as_ref(), at, attrs);
                st.faults.push((fault.id, span));
            }
            EventKind::FaultConfirmed { fault, confirmation, one_shot } => {
                if let Some(span) = fault_span(&st, fault.id) {
                    span.add_event_with_timestamp(
                        "confirmed",
                        at,
                        vec![kv("chaos.detail", confirmation.detail.clone()), kv("chaos.one_shot", *one_shot)],
                    );
                    if *one_shot {
                        st.faults.retain(|(id, _)| *id != fault.id);
                        self.close(span, at);
                    }
                }
            }
            EventKind::FaultNotInjected { fault, reason } | EventKind::FaultClearFailed { fault, error: reason } => {
                if let Some(span) = fault_span(&st, fault.id) {
                    span.set_status(Status::error(reason.clone()));
                    st.faults.retain(|(id, _)| *id != fault.id);
                    self.close(span, at);
                }
            }
            EventKind::FaultCleared { fault, confirmation } => {
                if let Some(span) = fault_span(&st, fault.id) {
                    span.add_event_with_timestamp("cleared", at, vec![kv("chaos.detail", confirmation.detail.clone())]);
                    st.faults.retain(|(id, _)| *id != fault.id);
                    self.close(span, at);
                }
            }
            EventKind::CriterionVerdict { criterion, criterion_kind, passed, detail } => {
                if let Some(span) = st.step.as_ref().or(st.scenario.as_ref()) {
                    span.add_event_with_timestamp(
                        "verdict",
                        at,
                        vec![
                            kv("chaos.criterion", criterion.clone()),
                            kv("chaos.criterion.kind", criterion_kind.clone()),
                            kv("chaos.passed", *passed),
                            kv("chaos.detail", detail.clone()),
                        ],
                    );
                }
            }
            EventKind::PhaseEntered { phase } => {
                if let Some(span) = &st.scenario {
                    span.add_event_with_timestamp("phase", at, vec![kv("chaos.phase", phase.as_str().to_string())]);
                }
            }
            EventKind::GuardTripped { reading } => {
                if let Some(span) = &st.scenario {
                    span.add_event_with_timestamp("guard tripped", at, vec![kv("chaos.detail", reading.clone())]);
                }
            }
            EventKind::ScenarioFinished { passed } => {
                if let Some(span) = &st.scenario {
                    span.set_status(if *passed { Status::Ok } else { Status::error("scenario failed") });
                }
                self.close_open(&mut st);
            }
            _ => {}
        }
    }
}

/// Where [`export`] sends spans.
#[derive(Debug, Clone)]
pub enum TraceSink {
    /// An OTLP/HTTP endpoint: the full URL of its traces resource
    /// (`http://HOST:PORT/v1/traces`).
    Otlp(String),
    /// A JSON file (the OTLP JSON request; one per line when appended to).
    File(std::path::PathBuf),
}

impl TraceSink {
    /// `OTEL_EXPORTER_OTLP_TRACES_ENDPOINT` when set (the full URL), else
    /// `OTEL_EXPORTER_OTLP_ENDPOINT` + `/v1/traces`, else `file` if given.
    ///
    /// ```
    /// use chaos_harness::report::trace::TraceSink;
    /// if std::env::var_os("OTEL_EXPORTER_OTLP_ENDPOINT").is_none()
    ///     && std::env::var_os("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT").is_none()
    /// {
    ///     assert!(TraceSink::from_env(None).is_none());
    ///     assert!(matches!(TraceSink::from_env(Some("t.json".as_ref())), Some(TraceSink::File(_))));
    /// }
    /// ```
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

/// Sends the recorder's spans to `sink`: through `opentelemetry-otlp`'s OTLP/HTTP exporter (JSON
/// encoding, on a thread of its own so its blocking client never runs inside an async
/// runtime), or as a line of OTLP JSON appended to the file.
pub fn export(rec: &TraceRecorder, sink: &TraceSink) -> Result<(), crate::Error> {
    match sink {
        TraceSink::File(path) => {
            use std::io::Write;
            let io = |source: std::io::Error| crate::Error::Io {
                what: "writing the trace file".into(),
                path: path.clone(),
                source,
                fix: "choose a writable path with --trace-file PATH".into(),
            };
            let body = serde_json::to_string(&rec.request()).map_err(|e| io(std::io::Error::other(e)))?;
            let mut f = std::fs::OpenOptions::new().create(true).append(true).open(path).map_err(io)?;
            writeln!(f, "{body}").map_err(io)
        }
        TraceSink::Otlp(url) => {
            let fail = |cause: String| crate::Error::Io {
                what: format!("exporting spans over OTLP/HTTP to {url}"),
                path: Default::default(),
                source: std::io::Error::other(cause),
                fix: "check OTEL_EXPORTER_OTLP_ENDPOINT (http://HOST:PORT of an OTLP/HTTP receiver) and that it runs"
                    .into(),
            };
            let spans = rec.spans();
            let resource = rec.inner.resource.clone();
            let url2 = url.clone();
            let sent = std::thread::Builder::new()
                .name("chaos-otlp-export".into())
                .spawn(move || -> Result<(), String> {
                    use opentelemetry_otlp::{Protocol, WithExportConfig};
                    let mut exporter = opentelemetry_otlp::SpanExporter::builder()
                        .with_http()
                        .with_protocol(Protocol::HttpJson)
                        .with_endpoint(url2)
                        .with_timeout(EXPORT_TIMEOUT)
                        .build()
                        .map_err(|e| e.to_string())?;
                    exporter.set_resource(&resource);
                    let result = futures_executor::block_on(exporter.export(spans)).map_err(|e| e.to_string());
                    let _ = exporter.shutdown();
                    result
                })
                .map_err(|e| fail(e.to_string()))?
                .join()
                .map_err(|_| fail("the export thread panicked".into()))?;
            sent.map_err(fail)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fault::Confirmation;
    use crate::observe::{EventStream, FaultRef, Phase};

    #[test]
    fn a_timeline_becomes_nested_spans_with_the_event_times() {
        let run = || {
            let stream = EventStream::new();
            let rec = TraceRecorder::new();
            stream.subscribe(rec.clone());
            let fault = FaultRef { id: 0, kind: "kill".into(), description: "SIGKILL web".into() };
            stream.emit(EventKind::ScenarioStarted { scenario: "s".into(), seed: 1 });
            stream.emit(EventKind::PhaseEntered { phase: Phase::Baseline });
            stream.emit(EventKind::StepStarted { step: 0, what: "wait".into() });
            stream.emit(EventKind::StepStarted { step: 1, what: "inject".into() });
            stream.emit(EventKind::FaultInjecting { fault: fault.clone() });
            let confirmation = Confirmation::new("SIGKILL web", "gone", vec![42]);
            stream.emit(EventKind::FaultConfirmed { fault, confirmation, one_shot: true });
            stream.emit(EventKind::StepStarted { step: 2, what: "expect".into() });
            stream.emit(EventKind::CriterionVerdict {
                criterion: "c".into(),
                criterion_kind: "no_orphans".into(),
                passed: true,
                detail: "ok".into(),
            });
            stream.emit(EventKind::ScenarioFinished { passed: true });
            (stream, rec.spans())
        };
        // Under another subscriber as the default, as in the runner.
        let (stream, spans) = tracing::subscriber::with_default(tracing_subscriber::registry(), run);
        assert_eq!(spans.len(), 5, "{spans:#?}");
        let by = |n: &str| spans.iter().find(|s| s.name == n).unwrap_or_else(|| panic!("no span {n}: {spans:#?}"));
        let root = by("scenario s");
        let inject = by("step 1: inject");
        let fault = by("fault kill");
        assert_eq!(inject.parent_span_id, root.span_context.span_id());
        assert_eq!(fault.parent_span_id, inject.span_context.span_id());
        let wall0 = SystemTime::now() - stream.now();
        let events = stream.events();
        let at = |i: usize| wall0 + events[i].at;
        // Start and end are the times of the events, to the microsecond.
        let near = |a: SystemTime, b: SystemTime| {
            a.duration_since(b).unwrap_or_else(|e| e.duration()) < Duration::from_millis(50)
        };
        assert!(near(fault.start_time, at(4)) && near(fault.end_time, at(5)));
        assert_eq!(fault.end_time.duration_since(fault.start_time).unwrap(), events[5].at - events[4].at);
        assert_eq!(root.end_time.duration_since(root.start_time).unwrap(), events[8].at - events[0].at);
        let verdict = &by("step 2: expect").events.events[0];
        assert_eq!(verdict.name, "verdict");
        assert_eq!(verdict.timestamp.duration_since(root.start_time).unwrap(), events[7].at - events[0].at);
    }

    #[test]
    fn the_file_sink_appends_one_otlp_json_request_per_export() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("traces.jsonl");
        let stream = EventStream::new();
        let rec = TraceRecorder::new();
        stream.subscribe(rec.clone());
        stream.emit(EventKind::ScenarioStarted { scenario: "f".into(), seed: 7 });
        stream.emit(EventKind::StepStarted { step: 0, what: "wait".into() });
        stream.emit(EventKind::ScenarioFinished { passed: false });
        export(&rec, &TraceSink::File(path.clone())).unwrap();
        export(&rec, &TraceSink::File(path.clone())).unwrap();
        let text = std::fs::read_to_string(&path).unwrap();
        assert_eq!(text.lines().count(), 2);
        let req: serde_json::Value = serde_json::from_str(text.lines().next().unwrap()).unwrap();
        let rs = &req["resourceSpans"][0];
        assert!(rs["resource"].to_string().contains("chaos-harness"), "{rs}");
        assert_eq!(rs["scopeSpans"][0]["scope"]["name"], "chaos_harness");
        let spans = rs["scopeSpans"][0]["spans"].as_array().unwrap();
        let root = spans.iter().find(|s| s["name"] == "scenario f").unwrap();
        assert_eq!(root["traceId"].as_str().unwrap().len(), 32, "{root}");
        assert_eq!(root["spanId"].as_str().unwrap().len(), 16, "{root}");
        // A failed scenario's span has the error status (code 2).
        assert_eq!(root["status"]["code"], 2, "{root}");
        let step = spans.iter().find(|s| s["name"] == "step 0: wait").unwrap();
        assert_eq!(step["parentSpanId"], root["spanId"]);
        assert_eq!(step["traceId"], root["traceId"]);
        let e = TraceSink::File(dir.path().join("no/such/dir/t.json"));
        assert!(export(&rec, &e).unwrap_err().to_string().contains("--trace-file"));
    }
}
