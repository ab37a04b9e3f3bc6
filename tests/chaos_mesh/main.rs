//! `chaos export --to chaos-mesh`: every manifest it writes is checked against the fields of
//! Chaos Mesh's CRDs (`crd-fields.yaml`, written from Chaos Mesh's published API; the source is
//! named in its header): required fields present, no unknown field, enum values valid, Go
//! durations, RFC 1123 names, plus the Workflow's own rules (entry and children name templates,
//! each chaos node embeds the spec of its type, Suspend nodes have a deadline). Every catalogue
//! file (fixtures/scenarios/**/*.chaos.toml) is exported and checked, and what it leaves out is
//! compared with what the file implies.

use std::path::{Path, PathBuf};
use std::process::Command;

use chaos_harness::scenario::file::{self, Options as FileOptions};
use chaos_harness::scenario::{Action, ScenarioSpec};
use serde_json::{Value, json};
use snakepit_chaos::export::chaos_mesh::{Options, export, export_as, render};

fn root() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

/// The field table, as JSON.
fn table() -> Value {
    let text = std::fs::read_to_string(root().join("tests/chaos_mesh/crd-fields.yaml")).unwrap();
    serde_norway::from_str(&text).unwrap()
}

/// Every problem of one manifest (an object with apiVersion/kind), by JSON path.
fn validate(table: &Value, manifest: &Value) -> Vec<String> {
    let mut errors = Vec::new();
    let kind = manifest["kind"].as_str().unwrap_or("");
    match table["kinds"].get(kind) {
        Some(schema) => check(table, schema, manifest, "", &mut errors),
        None => errors.push(format!("kind `{kind}` is none of the exported Chaos Mesh kinds")),
    }
    if kind == "Workflow" {
        workflow_rules(manifest, &mut errors);
    }
    for (path, spec) in chaos_specs(manifest) {
        spec_rules(&spec, &path, &mut errors);
    }
    errors
}

fn resolve<'a>(table: &'a Value, schema: &'a Value) -> &'a Value {
    match schema.get("$ref").and_then(Value::as_str) {
        Some(name) => table["definitions"].get(name).unwrap_or_else(|| panic!("crd-fields.yaml: no definition {name}")),
        None => schema,
    }
}

fn check(table: &Value, schema: &Value, v: &Value, path: &str, errors: &mut Vec<String>) {
    let schema = resolve(table, schema);
    let ty = schema["type"].as_str().unwrap_or("");
    let ok = match ty {
        "object" => v.is_object(),
        "array" => v.is_array(),
        "string" => v.is_string(),
        "integer" => v.is_i64() || v.is_u64(),
        "boolean" => v.is_boolean(),
        other => panic!("crd-fields.yaml: type `{other}` at {path}"),
    };
    if !ok {
        return errors.push(format!("{path}: expected {ty}, found {v}"));
    }
    if let Some(e) = schema.get("enum").and_then(Value::as_array)
        && !e.contains(v)
    {
        errors.push(format!("{path}: {v} is not one of {}", Value::Array(e.clone())));
    }
    if let Some(n) = v.as_i64() {
        if schema.get("minimum").and_then(Value::as_i64).is_some_and(|m| n < m) {
            errors.push(format!("{path}: {n} is below the minimum {}", schema["minimum"]));
        }
        if schema.get("maximum").and_then(Value::as_i64).is_some_and(|m| n > m) {
            errors.push(format!("{path}: {n} is above the maximum {}", schema["maximum"]));
        }
    }
    if let Some(s) = v.as_str() {
        match schema.get("x-check").and_then(Value::as_str) {
            Some("go-duration") if !is_go_duration(s) => errors.push(format!("{path}: {s:?} is not a Go duration")),
            Some("dns-label") if !is_dns_label(s) => errors.push(format!("{path}: {s:?} is not an RFC 1123 label")),
            _ => {}
        }
    }
    match v {
        Value::Object(m) => {
            for r in schema.get("required").and_then(Value::as_array).into_iter().flatten() {
                let r = r.as_str().unwrap();
                if !m.contains_key(r) {
                    errors.push(format!("{path}: the required field `{r}` is missing"));
                }
            }
            let preserve = schema.get("x-kubernetes-preserve-unknown-fields").and_then(Value::as_bool) == Some(true);
            for (k, x) in m {
                let at = format!("{path}.{k}");
                if let Some(p) = schema.get("properties").and_then(|p| p.get(k)) {
                    check(table, p, x, &at, errors);
                } else if let Some(a) = schema.get("additionalProperties") {
                    check(table, a, x, &at, errors);
                } else if !preserve {
                    errors.push(format!("{at}: unknown field"));
                }
            }
        }
        Value::Array(a) => {
            if let Some(items) = schema.get("items") {
                for (i, x) in a.iter().enumerate() {
                    check(table, items, x, &format!("{path}[{i}]"), errors);
                }
            }
        }
        _ => {}
    }
}

/// Go's `time.ParseDuration` syntax (unsigned): one or more `<decimal><unit>`.
fn is_go_duration(s: &str) -> bool {
    let mut rest = s;
    if rest.is_empty() {
        return false;
    }
    while !rest.is_empty() {
        let digits = rest.find(|c: char| !c.is_ascii_digit() && c != '.').unwrap_or(rest.len());
        let number = &rest[..digits];
        if number.is_empty() || number.starts_with('.') || number.ends_with('.') || number.matches('.').count() > 1 {
            return false;
        }
        rest = &rest[digits..];
        let Some(unit) =
            ["ns", "us", "µs", "ms", "s", "m", "h"].iter().filter(|u| rest.starts_with(**u)).max_by_key(|u| u.len())
        else {
            return false;
        };
        rest = &rest[unit.len()..];
    }
    true
}

fn is_dns_label(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 63
        && s.chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
        && !s.starts_with('-')
        && !s.ends_with('-')
}

const CHAOS_KEYS: &[(&str, &str)] =
    &[("PodChaos", "podChaos"), ("NetworkChaos", "networkChaos"), ("StressChaos", "stressChaos")];

/// The chaos specs of a manifest: its own `spec` (PodChaos, ...) or each template's embedded one.
fn chaos_specs(m: &Value) -> Vec<(String, Value)> {
    let kind = m["kind"].as_str().unwrap_or("");
    if CHAOS_KEYS.iter().any(|(k, _)| *k == kind) {
        return vec![(format!("{kind}.spec"), json!({ kind: m["spec"] }))];
    }
    let mut out = Vec::new();
    for t in m.pointer("/spec/templates").and_then(Value::as_array).into_iter().flatten() {
        for holder in [t, &t["schedule"]] {
            for (kind, key) in CHAOS_KEYS {
                if let Some(s) = holder.get(*key) {
                    out.push((format!("template {}", t["name"]), json!({ *kind: s })));
                }
            }
        }
    }
    out
}

/// Rules of the webhooks and the docs beyond the field types.
fn spec_rules(wrapped: &Value, path: &str, errors: &mut Vec<String>) {
    let (kind, spec) = wrapped.as_object().unwrap().iter().next().unwrap();
    // common_validation.go validatePodSelector: `fixed` needs a positive count, the percent
    // modes a percentage
    let value = spec["value"].as_str().and_then(|v| v.parse::<i64>().ok());
    match spec["mode"].as_str() {
        Some("fixed") if value.is_none_or(|v| v <= 0) => errors.push(format!("{path}: mode fixed needs a count")),
        Some("fixed-percent" | "random-max-percent") if value.is_none_or(|v| !(1..=100).contains(&v)) => {
            errors.push(format!("{path}: a percent mode needs a value from 1 to 100"))
        }
        _ => {}
    }
    // networkchaos_webhook.go: netem and tbf actions accept `from`/`both` only with a target;
    // rates are an integer and a unit of ConvertUnitToBytes; percentages parse as floats
    if kind == "NetworkChaos" && spec["action"] != "partition" {
        let dir = spec["direction"].as_str().unwrap_or("to");
        if matches!(dir, "from" | "both") && spec.get("target").is_none() {
            errors.push(format!("{path}: direction {dir} needs a target for a netem action"));
        }
    }
    if let Some(rate) = spec.pointer("/bandwidth/rate").and_then(Value::as_str) {
        let ok = ["tbps", "gbps", "mbps", "kbps", "bps"]
            .iter()
            .find_map(|u| rate.to_lowercase().strip_suffix(u).map(|n| n.trim().parse::<u64>().is_ok()));
        if ok != Some(true) {
            errors.push(format!("{path}: bandwidth rate {rate:?} is not an integer and a unit (bps, kbps, ...)"));
        }
    }
    // stresschaos_webhook.go: workers positive; a memory size is a percentage or what
    // docker/go-units' FromHumanSize reads (digits, an optional unit letter, i, B)
    for which in ["cpu", "memory"] {
        if let Some(w) = spec.pointer(&format!("/stressors/{which}/workers")).and_then(Value::as_i64)
            && w <= 0
        {
            errors.push(format!("{path}: {which} workers must be positive, found {w}"));
        }
    }
    if let Some(size) = spec.pointer("/stressors/memory/size").and_then(Value::as_str) {
        let human = |t: &str| {
            let digits = t.trim_end_matches(|c: char| c.is_ascii_alphabetic()).trim_end();
            let unit = t[t.trim_end_matches(|c: char| c.is_ascii_alphabetic()).len()..].to_lowercase();
            digits.parse::<f64>().is_ok()
                && ["", "b", "ib"].iter().any(|rest| {
                    unit == *rest || "kmgtp".chars().any(|u| unit == format!("{u}{rest}") || unit == format!("{u}"))
                })
        };
        let ok = match size.strip_suffix('%') {
            Some(p) => p.parse::<u8>().is_ok_and(|p| p <= 100),
            None => human(size),
        };
        if !ok {
            errors.push(format!("{path}: memory size {size:?} is not a size Chaos Mesh reads"));
        }
    }
    for p in ["/loss/loss", "/loss/correlation", "/delay/correlation"] {
        if let Some(x) = spec.pointer(p).and_then(Value::as_str)
            && x.parse::<f32>().is_err()
        {
            errors.push(format!("{path}: {p} {x:?} is not a number"));
        }
    }
    match (kind.as_str(), spec["action"].as_str()) {
        ("NetworkChaos", Some(action)) => {
            for key in ["delay", "loss", "duplicate", "corrupt", "bandwidth"] {
                if (key == action) != spec.get(key).is_some() {
                    errors.push(format!("{path}: action {action} and the field `{key}` disagree"));
                }
            }
        }
        ("PodChaos", Some("container-kill")) if spec["containerNames"].as_array().is_none_or(Vec::is_empty) => {
            errors.push(format!("{path}: container-kill needs containerNames"));
        }
        ("StressChaos", _) if spec["stressors"].as_object().is_none_or(|s| s.is_empty()) => {
            errors.push(format!("{path}: a StressChaos needs at least one stressor"));
        }
        _ => {}
    }
}

/// The Workflow's structure: entry and children name templates, unique names, every template
/// reachable, a chaos node embeds exactly its type's spec and has a deadline, Suspend nodes
/// have a deadline, Serial/Parallel nodes have children.
fn workflow_rules(w: &Value, errors: &mut Vec<String>) {
    let templates = w.pointer("/spec/templates").and_then(Value::as_array).cloned().unwrap_or_default();
    let names: Vec<&str> = templates.iter().filter_map(|t| t["name"].as_str()).collect();
    let mut seen = std::collections::BTreeSet::new();
    for n in &names {
        if !seen.insert(*n) {
            errors.push(format!("template {n}: the name is used twice"));
        }
    }
    let entry = w.pointer("/spec/entry").and_then(Value::as_str).unwrap_or("");
    if !names.contains(&entry) {
        errors.push(format!("entry `{entry}` names no template"));
    }
    let mut reached = std::collections::BTreeSet::from([entry]);
    let mut stack = vec![entry];
    while let Some(n) = stack.pop() {
        let Some(t) = templates.iter().find(|t| t["name"] == n) else { continue };
        for c in t["children"].as_array().into_iter().flatten().filter_map(Value::as_str) {
            if !names.contains(&c) {
                errors.push(format!("template {n}: child `{c}` names no template"));
            } else if reached.insert(c) {
                stack.push(c);
            }
        }
    }
    for t in &templates {
        let (n, ty) = (t["name"].as_str().unwrap_or(""), t["templateType"].as_str().unwrap_or(""));
        if !reached.contains(n) {
            errors.push(format!("template {n}: unreachable from the entry"));
        }
        let embedded: Vec<&str> = CHAOS_KEYS.iter().filter(|(_, k)| t.get(*k).is_some()).map(|(k, _)| *k).collect();
        match ty {
            "Serial" | "Parallel" if t["children"].as_array().is_none_or(Vec::is_empty) => {
                errors.push(format!("template {n}: a {ty} node needs children"));
            }
            "Suspend" if t.get("deadline").is_none() => {
                errors.push(format!("template {n}: a Suspend needs a deadline"))
            }
            "Schedule" => {
                let s = &t["schedule"];
                let inner: Vec<&str> =
                    CHAOS_KEYS.iter().filter(|(_, k)| s.get(*k).is_some()).map(|(k, _)| *k).collect();
                if s["type"].as_str().is_none_or(|ty| inner != [ty]) {
                    errors.push(format!(
                        "template {n}: a Schedule must embed exactly the spec of its type, found {inner:?}"
                    ));
                }
                if t.get("deadline").is_none() || !embedded.is_empty() {
                    errors.push(format!(
                        "template {n}: a Schedule node needs a deadline and embeds its chaos in `schedule`"
                    ));
                }
            }
            _ if CHAOS_KEYS.iter().any(|(k, _)| *k == ty) => {
                if embedded != [ty] {
                    errors.push(format!("template {n}: a {ty} node must embed exactly its spec, found {embedded:?}"));
                }
                if t.get("deadline").is_none() {
                    errors.push(format!("template {n}: a chaos node needs a deadline (its duration)"));
                }
            }
            _ if !embedded.is_empty() => errors.push(format!("template {n}: a {ty} node embeds {embedded:?}")),
            _ => {}
        }
    }
}

/// The YAML documents of a rendered export.
fn documents(yaml: &str) -> Vec<Value> {
    use serde::Deserialize;
    serde_norway::Deserializer::from_str(yaml)
        .map(|d| Value::deserialize(d).unwrap())
        .filter(|v| !v.is_null())
        .collect()
}

fn spec(v: Value) -> ScenarioSpec {
    serde_json::from_value(v).unwrap()
}

/// A spec using every translated fault, a parallel group, `at`, waits and a clear.
fn every_mapping() -> ScenarioSpec {
    spec(json!({
        "name": "every mapping",
        "timeout": "2m",
        "targets": {
            "pit": { "kind": "snakepit" },
            "web": { "kind": "command", "program": "sleep", "args": ["60"], "ready_tcp": "127.0.0.1:18000" },
            "front": { "kind": "link", "upstream": "127.0.0.1:18000" },
            "db": { "kind": "link", "upstream": "127.0.0.1:5432" },
            "n1": { "kind": "netns" }
        },
        "steps": [
            { "action": "inject", "fault": "kill", "target": "pit.beam" },
            { "action": "inject", "fault": "kill", "target": "web.main", "signal": "SIGTERM" },
            { "action": "wait", "duration": "1s500ms" },
            { "action": "inject", "fault": "latency", "target": "front", "latency": "200ms", "jitter": "20ms" },
            { "action": "inject", "fault": "bandwidth", "target": "db", "rate_kbps": 100, "stream": "upstream" },
            { "action": "wait", "duration": "10s" },
            { "action": "clear" },
            { "action": "parallel", "steps": [
                { "action": "inject", "fault": "partition", "target": "n1" },
                { "action": "inject", "fault": "memory_pressure", "target": "web", "bytes": "64MiB" },
                { "action": "wait", "duration": "5s" }
            ] },
            { "action": "clear" },
            { "at": "30s", "action": "inject", "fault": "packet_loss", "target": "n1", "percent": 30 },
            { "action": "inject", "fault": "link_down", "target": "pit.bridge" },
            { "action": "inject", "fault": "cpu_burn", "cpus": 2 },
            { "action": "inject", "fault": "kill_tree", "target": "pit" },
            { "action": "inject", "fault": "restart", "target": "web" },
            { "action": "inject", "fault": "kill", "target": "pit.worker[1]" },
            { "action": "inject", "fault": "crash_loop", "target": "pit.workers", "every": "500ms", "lasting": "20s" },
            { "action": "wait", "duration": "1m" }
        ]
    }))
}

#[test]
fn every_mapping_exports_valid_manifests_on_the_timeline() {
    let e = export(&every_mapping(), &Options::default());
    assert!(e.is_complete(), "{:?}", e.untranslated);
    let w = e.workflow.as_ref().unwrap();
    let errors = validate(&table(), w);
    assert!(errors.is_empty(), "{errors:#?}\n{w:#}");
    let t = |name: &str| e.templates().iter().find(|t| t["name"] == name).cloned().unwrap_or_else(|| panic!("{name}"));
    // the kills at 0, the two link faults at 1.5s until the clear at 11.5s, the parallel group
    // at 11.5s for 5s, the rest at 30s until the end (90s)
    assert_eq!(t("step-0-kill")["podChaos"]["action"], "container-kill");
    assert_eq!(t("step-0-kill")["podChaos"]["containerNames"], json!(["beam"]));
    assert_eq!(
        t("step-1-kill")["podChaos"],
        json!({
            "action": "pod-kill", "gracePeriod": 5, "mode": "all",
            "selector": { "namespaces": ["default"], "labelSelectors": { "app.kubernetes.io/name": "web" } }
        })
    );
    assert_eq!(t("at-1-wait")["deadline"], "1s500ms");
    assert_eq!(t("step-3-latency")["deadline"], "10s");
    assert_eq!(t("step-3-latency")["networkChaos"]["selector"]["labelSelectors"]["app.kubernetes.io/name"], "web");
    assert_eq!(t("step-4-bandwidth")["networkChaos"]["direction"], "to");
    assert_eq!(t("step-4-bandwidth")["networkChaos"]["bandwidth"]["rate"], "100000bps");
    assert_eq!(t("at-1-together")["templateType"], "Parallel");
    assert_eq!(t("at-2-wait")["deadline"], "11s500ms");
    assert_eq!(t("step-7-0-partition")["deadline"], "5s");
    assert_eq!(t("step-7-1-memory-pressure")["stressChaos"]["stressors"]["memory"]["size"], "67108864B");
    assert_eq!(t("at-3-wait")["deadline"], "30s");
    assert_eq!(t("step-9-packet-loss")["deadline"], "1m");
    assert_eq!(t("step-9-packet-loss")["networkChaos"]["loss"]["loss"], "30");
    assert_eq!(
        t("step-11-cpu-burn")["stressChaos"]["selector"]["expressionSelectors"][0]["values"],
        json!(["pit", "web"])
    );
    assert_eq!(t("step-14-kill")["podChaos"]["mode"], "one");
    let crash = t("step-15-crash-loop");
    assert_eq!((&crash["templateType"], &crash["deadline"]), (&json!("Schedule"), &json!("20s")));
    assert_eq!(crash["schedule"]["schedule"], "@every 1s");
    assert_eq!(crash["schedule"]["podChaos"]["action"], "container-kill");
    assert_eq!(t("timeline")["deadline"], "2m");
    // the two kills start together at 0: a Parallel right under the entry
    assert_eq!(t("timeline")["children"], json!(["at-0-together", "at-1", "at-2", "at-3"]));
    assert_eq!(t("at-0-together")["children"], json!(["step-0-kill", "step-1-kill"]));
}

#[test]
fn the_validator_rejects_what_the_crds_reject() {
    let table = table();
    let good = export(&every_mapping(), &Options::default()).workflow.unwrap();
    assert_eq!(validate(&table, &good), Vec::<String>::new());
    let broken = |f: &dyn Fn(&mut Value)| {
        let mut w = good.clone();
        f(&mut w);
        validate(&table, &w)
    };
    let net = |w: &mut Value| -> usize {
        w["spec"]["templates"].as_array().unwrap().iter().position(|t| t.get("networkChaos").is_some()).unwrap()
    };
    let cases: Vec<(&str, Vec<String>)> = vec![
        (
            "unknown field",
            broken(&|w| {
                let i = net(w);
                w["spec"]["templates"][i]["networkChaos"]["latency"] = "1s".into()
            }),
        ),
        (
            "bad action",
            broken(&|w| {
                let i = net(w);
                w["spec"]["templates"][i]["networkChaos"]["action"] = "jitter".into()
            }),
        ),
        (
            "bad mode",
            broken(&|w| {
                let i = net(w);
                w["spec"]["templates"][i]["networkChaos"]["mode"] = "some".into()
            }),
        ),
        (
            "direction both without a target",
            broken(&|w| {
                let i = net(w);
                w["spec"]["templates"][i]["networkChaos"]["direction"] = "both".into()
            }),
        ),
        (
            "bandwidth rate in a unit Chaos Mesh does not parse",
            broken(&|w| {
                let i = w["spec"]["templates"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .position(|t| t["name"] == "step-4-bandwidth")
                    .unwrap();
                w["spec"]["templates"][i]["networkChaos"]["bandwidth"]["rate"] = "1.5mbit".into()
            }),
        ),
        (
            "memory size in words",
            broken(&|w| {
                let i = w["spec"]["templates"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .position(|t| t.get("stressChaos").is_some())
                    .unwrap();
                w["spec"]["templates"][i]["stressChaos"]["stressors"]["memory"]["size"] = "lots".into()
            }),
        ),
        (
            "bad direction",
            broken(&|w| {
                let i = net(w);
                w["spec"]["templates"][i]["networkChaos"]["direction"] = "up".into()
            }),
        ),
        (
            "bad duration",
            broken(&|w| {
                let i = net(w);
                w["spec"]["templates"][i]["deadline"] = "5 s".into()
            }),
        ),
        (
            "missing selector",
            broken(&|w| {
                let i = net(w);
                w["spec"]["templates"][i]["networkChaos"].as_object_mut().unwrap().remove("selector");
            }),
        ),
        (
            "action without its field",
            broken(&|w| {
                let i = net(w);
                w["spec"]["templates"][i]["networkChaos"]["action"] = "loss".into()
            }),
        ),
        ("dangling child", broken(&|w| w["spec"]["templates"][0]["children"][0] = "nowhere".into())),
        ("bad name", broken(&|w| w["metadata"]["name"] = "Not_A_Name".into())),
        ("bad template type", broken(&|w| w["spec"]["templates"][0]["templateType"] = "Sequence".into())),
        (
            "schedule of another type",
            broken(&|w| {
                let i = w["spec"]["templates"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .position(|t| t.get("schedule").is_some())
                    .unwrap();
                w["spec"]["templates"][i]["schedule"]["type"] = "StressChaos".into();
            }),
        ),
    ];
    for (what, errors) in cases {
        assert!(!errors.is_empty(), "the validator accepted a manifest with a {what}");
    }
    for (s, ok) in [
        ("500ms", true),
        ("1m30s", true),
        ("1.5h", true),
        ("2h45m", true),
        ("", false),
        ("5", false),
        ("1 s", false),
        ("1d", false),
    ] {
        assert_eq!(is_go_duration(s), ok, "{s:?}");
    }
}

/// What a scenario implies the export leaves out, by a rule written independently of the
/// exporter: load, guards, expectations, stop_load and phases always; the faults outside the
/// translated set; kills with a signal Chaos Mesh cannot send.
fn implied_untranslated(spec: &ScenarioSpec) -> Vec<String> {
    fn step(a: &Action, out: &mut Vec<String>, inner: bool) {
        match a {
            Action::Inject { fault, params } => {
                let signal = params.get("signal").and_then(Value::as_str).unwrap_or("SIGKILL");
                let role = params.get("target").and_then(Value::as_str).and_then(|t| t.split_once('.')).map(|(_, r)| r);
                let ok = match fault.as_str() {
                    "kill" => signal == "SIGKILL" || (signal == "SIGTERM" && role.is_none_or(|r| r == "main")),
                    "bandwidth" => params.get("rate_kbps").and_then(Value::as_u64).unwrap_or(0) > 0,
                    "cpu_burn" | "crash_loop" => true,
                    f => {
                        ["kill_tree", "restart", "latency", "link_down", "partition", "packet_loss", "memory_pressure"]
                            .contains(&f)
                    }
                };
                if !ok {
                    out.push(format!("inject {fault}"));
                }
            }
            Action::Expect { criterion, .. } => out.push(format!("expect {criterion}")),
            Action::StopLoad => out.push("stop_load".into()),
            Action::Phase { phase } => out.push(format!("phase {phase}")),
            Action::Parallel { steps } => steps.iter().for_each(|s| step(&s.action, out, true)),
            Action::Clear if inner => out.push("clear".into()),
            Action::Wait { .. } | Action::Clear => {}
        }
    }
    let mut out = Vec::new();
    if let Some(l) = &spec.load {
        out.push(format!("load {}", l.kind));
    }
    spec.steps.iter().for_each(|s| step(&s.action, &mut out, false));
    out.extend(spec.guards.iter().map(|g| format!("guard {}", g.kind)));
    out
}

#[test]
fn every_catalogue_file_exports_valid_manifests() {
    let table = table();
    let files = file::find_files(&root().join("fixtures/scenarios"));
    assert!(files.len() >= 6, "{files:?}");
    let mut exported = 0;
    for f in &files {
        let loaded = file::load(f, &FileOptions::default()).unwrap_or_else(|e| panic!("{}: {e}", f.display()));
        let exports: Vec<_> = loaded.iter().map(|l| export_as(&l.spec, &l.test_name, &Options::default())).collect();
        let yaml = render(&f.display().to_string(), &exports, &Options::default()).unwrap();
        let docs = documents(&yaml);
        assert_eq!(docs.len(), exports.iter().filter(|e| e.workflow.is_some()).count(), "{}", f.display());
        for d in &docs {
            let errors = validate(&table, d);
            assert!(errors.is_empty(), "{}: {errors:#?}\n{yaml}", f.display());
        }
        for (l, e) in loaded.iter().zip(&exports) {
            let left: Vec<String> = e.untranslated.iter().map(|u| u.what.clone()).collect();
            assert_eq!(left, implied_untranslated(&l.spec), "{}", f.display());
            for u in &e.untranslated {
                assert!(yaml.contains(&u.to_string()), "{}: the header does not name {u}", f.display());
            }
            // a scenario with a translatable fault exports a Workflow, one without none
            let has_fault =
                l.spec.steps.iter().any(|s| matches!(&s.action, Action::Inject { .. } | Action::Parallel { .. }));
            // every inject, also those inside `parallel` steps
            let injects: usize = l
                .spec
                .steps
                .iter()
                .map(|s| match &s.action {
                    Action::Inject { .. } => 1,
                    Action::Parallel { steps } => {
                        steps.iter().filter(|s| matches!(s.action, Action::Inject { .. })).count()
                    }
                    _ => 0,
                })
                .sum();
            let all_faults_left = left.iter().filter(|w| w.starts_with("inject ")).count() == injects;
            assert_eq!(e.workflow.is_some(), has_fault && !all_faults_left, "{}", f.display());
            exported += usize::from(e.workflow.is_some());
        }
    }
    assert!(exported >= 4, "only {exported} catalogue scenarios had something to export");
}

#[test]
fn the_exact_leftovers_of_some_catalogue_files() {
    let leftovers = |rel: &str| -> Vec<String> {
        let l = file::load(&root().join(rel), &FileOptions::default()).unwrap();
        export_as(&l[0].spec, &l[0].test_name, &Options::default())
            .untranslated
            .iter()
            .map(|u| format!("{}: {}", u.at, u.what))
            .collect()
    };
    assert_eq!(leftovers("fixtures/scenarios/snakepit/beam-sigkill.chaos.toml"), ["step 1: expect no_orphans"]);
    assert_eq!(
        leftovers("fixtures/scenarios/generic/http-pause.chaos.toml"),
        ["step 0: inject pause", "step 3: expect tcp_connect", "step 4: expect process_count"]
    );
    assert_eq!(
        leftovers("fixtures/scenarios/snakepit/worker-sigkill.chaos.toml"),
        ["load: load closed_loop", "step 2: expect respawned", "step 4: stop_load", "step 5: expect no_lost_requests"]
    );
}

const KILL_ONLY: &str = r#"
name = "web SIGKILL"
[target.web]
command = ["sleep", "60"]
[[step]]
wait = "2s"
[[step]]
inject = "kill"
target = "web.main"
"#;

#[test]
fn a_file_with_only_a_kill_exports_fully() {
    let l = file::parse_str("kill-only", KILL_ONLY, &FileOptions::default()).unwrap();
    let e = export_as(&l[0].spec, &l[0].test_name, &Options { namespace: "shop".into() });
    assert!(e.is_complete(), "{:?}", e.untranslated);
    let w = e.workflow.as_ref().unwrap();
    assert_eq!(validate(&table(), w), Vec::<String>::new());
    assert_eq!(w["metadata"]["namespace"], "shop");
    assert_eq!(w.pointer("/spec/templates/3/podChaos/selector/namespaces/0"), Some(&json!("shop")));
}

#[test]
fn render_snapshot_of_a_catalogue_file() {
    let rel = "fixtures/scenarios/snakepit/worker-sigkill.chaos.toml";
    let l = file::load(&root().join(rel), &FileOptions::default()).unwrap();
    let exports: Vec<_> = l.iter().map(|l| export_as(&l.spec, &l.test_name, &Options::default())).collect();
    insta::assert_snapshot!("worker_sigkill", render(rel, &exports, &Options::default()).unwrap());
}

#[test]
fn render_snapshot_of_every_mapping() {
    let e = export(&every_mapping(), &Options::default());
    insta::assert_snapshot!(
        "every_mapping",
        render("every-mapping (built in the test)", &[e], &Options::default()).unwrap()
    );
}

fn chaos(args: &[&str]) -> (i32, String, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_chaos")).args(args).current_dir(root()).output().unwrap();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into(),
        String::from_utf8_lossy(&out.stderr).into(),
    )
}

#[test]
fn the_cli_writes_a_directory_and_says_partial_with_exit_4() {
    let dir = tempfile::tempdir().unwrap();
    let out = format!("{}/out/", dir.path().display());
    let (code, _, stderr) =
        chaos(&["export", "--to", "chaos-mesh", "fixtures/scenarios/snakepit/beam-sigkill.chaos.toml", "-o", &out]);
    assert_eq!(code, 4, "{stderr}");
    assert!(stderr.contains("step 1: expect no_orphans"), "{stderr}");
    let path: PathBuf = dir.path().join("out/beam-sigkill.yaml");
    let yaml = std::fs::read_to_string(&path).unwrap();
    assert_eq!(documents(&yaml).len(), 1);
    assert!(yaml.contains("# Not translated:"), "{yaml}");

    let kill_only = dir.path().join("kill-only.chaos.toml");
    std::fs::write(&kill_only, KILL_ONLY).unwrap();
    let (code, stdout, stderr) = chaos(&["export", "--to", "chaos-mesh", kill_only.to_str().unwrap()]);
    assert_eq!(code, 0, "{stderr}");
    assert!(stdout.contains("action: pod-kill"), "{stdout}");

    let (code, _, stderr) = chaos(&[
        "export",
        "--to",
        "chaos-mesh",
        "fixtures/scenarios/generic/http-kill.chaos.toml",
        "--namespace",
        "Bad_NS",
    ]);
    assert_eq!(code, 2, "{stderr}");
    let (code, _, _) = chaos(&["export", "--to", "chaos-mesh", "no/such.chaos.toml"]);
    assert_eq!(code, 1);
}
