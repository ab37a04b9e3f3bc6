//! `docs/troubleshooting.md` is generated from the workspace's error types: every error type
//! (a `thiserror` enum variant or struct) with its message template and doc comment, and every
//! place that builds one with literal text, with what it says went wrong and the fix it gives.
//! An error added or reworded without the doc fails here. Regenerate with
//! `UPDATE_DOCS=1 cargo test -p chaos-harness --test troubleshooting_doc`.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use syn::punctuated::Punctuated;
use syn::visit::Visit;
use syn::{Attribute, Expr, Item, Lit, Token};

/// The crates whose errors a user of the harness or the CLI can see.
const SOURCE_DIRS: &[&str] = &["chaos-harness/src", "chaos-proxy/src", "src"];

/// One error type: an enum variant (`Error::Spawn`) or a struct (`TagError`).
#[derive(Debug)]
struct ErrorType {
    /// `Error::Spawn` or `TagError`.
    name: String,
    /// Workspace-relative file.
    file: String,
    /// The `#[error("...")]` template, or `transparent`.
    template: String,
    /// The doc comment.
    doc: String,
}

/// One place that builds an error with a struct literal.
#[derive(Debug, Default)]
struct Site {
    /// Workspace-relative file.
    file: String,
    /// (field name, its text) in source order, for fields given as literal text (`"…"`,
    /// `format!("…")`, `"…".into()`).
    fields: Vec<(String, String)>,
}

fn workspace() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    let mut entries: Vec<_> = std::fs::read_dir(dir).expect("reading a source dir").flatten().collect();
    entries.sort_by_key(|e| e.path());
    for e in entries {
        let p = e.path();
        if p.is_dir() {
            rust_files(&p, out);
        } else if p.extension().is_some_and(|x| x == "rs") {
            out.push(p);
        }
    }
}

fn doc_of(attrs: &[Attribute]) -> String {
    let lines: Vec<String> = attrs
        .iter()
        .filter(|a| a.path().is_ident("doc"))
        .filter_map(|a| match &a.meta {
            syn::Meta::NameValue(nv) => match &nv.value {
                Expr::Lit(syn::ExprLit { lit: Lit::Str(s), .. }) => Some(s.value().trim().to_string()),
                _ => None,
            },
            _ => None,
        })
        .collect();
    // The first paragraph only: examples and details stay in the API docs.
    lines.iter().take_while(|l| !l.is_empty() && !l.starts_with("```")).cloned().collect::<Vec<_>>().join(" ")
}

fn derives_error(attrs: &[Attribute]) -> bool {
    attrs.iter().any(|a| {
        a.path().is_ident("derive") && {
            let text = a.meta.require_list().map(|l| l.tokens.to_string()).unwrap_or_default();
            text.split(',').any(|t| t.trim().ends_with("Error"))
        }
    })
}

fn template_of(attrs: &[Attribute]) -> Option<String> {
    let attr = attrs.iter().find(|a| a.path().is_ident("error"))?;
    let args = attr.parse_args_with(Punctuated::<Expr, Token![,]>::parse_terminated).ok()?;
    match args.first()? {
        Expr::Lit(syn::ExprLit { lit: Lit::Str(s), .. }) => Some(s.value()),
        Expr::Path(p) if p.path.is_ident("transparent") => Some("transparent".into()),
        _ => None,
    }
}

/// The literal text of an expression that builds a string, if it is one.
fn text_of(expr: &Expr) -> Option<String> {
    match expr {
        Expr::Lit(syn::ExprLit { lit: Lit::Str(s), .. }) => Some(s.value()),
        Expr::MethodCall(m) if ["into", "to_string", "to_owned"].contains(&m.method.to_string().as_str()) => {
            text_of(&m.receiver)
        }
        Expr::Macro(m) if m.mac.path.is_ident("format") => {
            let args = m.mac.parse_body_with(Punctuated::<Expr, Token![,]>::parse_terminated).ok()?;
            text_of(args.first()?)
        }
        Expr::Call(c) => match &*c.func {
            Expr::Path(p) if p.path.segments.last().is_some_and(|s| s.ident == "from") => text_of(c.args.first()?),
            _ => None,
        },
        Expr::Paren(p) => text_of(&p.expr),
        _ => None,
    }
}

struct Collector<'a> {
    file: String,
    types: &'a BTreeMap<String, ErrorType>,
    enums: &'a [String],
    sites: &'a mut BTreeMap<String, Vec<Site>>,
}

impl<'ast> Visit<'ast> for Collector<'_> {
    fn visit_expr_struct(&mut self, e: &'ast syn::ExprStruct) {
        let segs: Vec<String> = e.path.segments.iter().map(|s| s.ident.to_string()).collect();
        let name = match segs.as_slice() {
            [.., en, variant] if self.enums.contains(en) => format!("{en}::{variant}"),
            [.., single] => single.clone(),
            [] => String::new(),
        };
        if self.types.contains_key(&name) {
            let fields = e
                .fields
                .iter()
                .filter_map(|f| match &f.member {
                    syn::Member::Named(id) => text_of(&f.expr).map(|t| (id.to_string(), t)),
                    syn::Member::Unnamed(_) => None,
                })
                .collect::<Vec<_>>();
            if !fields.is_empty() {
                self.sites.entry(name).or_default().push(Site { file: self.file.clone(), fields });
            }
        }
        syn::visit::visit_expr_struct(self, e);
    }
}

/// Every error type of the workspace, and every literal construction of one.
fn collect() -> (BTreeMap<String, ErrorType>, BTreeMap<String, Vec<Site>>) {
    let root = workspace();
    let mut files = Vec::new();
    for d in SOURCE_DIRS {
        rust_files(&root.join(d), &mut files);
    }
    let parsed: Vec<(String, syn::File)> = files
        .iter()
        .map(|p| {
            let rel = p.strip_prefix(&root).unwrap_or(p).display().to_string();
            let src = std::fs::read_to_string(p).expect("reading a source file");
            let file = syn::parse_file(&src).unwrap_or_else(|e| panic!("{rel} does not parse: {e}"));
            (rel, file)
        })
        .collect();
    let mut types = BTreeMap::new();
    let mut enums = Vec::new();
    for (rel, file) in &parsed {
        collect_types(rel, &file.items, &mut types, &mut enums);
    }
    let mut sites = BTreeMap::new();
    for (rel, file) in &parsed {
        let mut c = Collector { file: rel.clone(), types: &types, enums: &enums, sites: &mut sites };
        c.visit_file(file);
    }
    (types, sites)
}

fn collect_types(rel: &str, items: &[Item], types: &mut BTreeMap<String, ErrorType>, enums: &mut Vec<String>) {
    for item in items {
        match item {
            Item::Enum(en) if derives_error(&en.attrs) => {
                enums.push(en.ident.to_string());
                for v in &en.variants {
                    let name = format!("{}::{}", en.ident, v.ident);
                    let template = template_of(&v.attrs).unwrap_or_default();
                    let doc = doc_of(&v.attrs);
                    types.insert(name.clone(), ErrorType { name, file: rel.to_string(), template, doc });
                }
            }
            Item::Struct(st) if derives_error(&st.attrs) && template_of(&st.attrs).is_some() => {
                let name = st.ident.to_string();
                let template = template_of(&st.attrs).unwrap_or_default();
                let doc = doc_of(&st.attrs);
                types.insert(name.clone(), ErrorType { name, file: rel.to_string(), template, doc });
            }
            Item::Mod(m) => {
                if let Some((_, inner)) = &m.content {
                    collect_types(rel, inner, types, enums);
                }
            }
            _ => {}
        }
    }
}

fn cell(s: &str) -> String {
    s.replace('|', "\\|").replace('\n', " ")
}

/// The page.
fn markdown() -> String {
    let (types, sites) = collect();
    let mut by_file: BTreeMap<&str, Vec<&ErrorType>> = BTreeMap::new();
    for t in types.values() {
        by_file.entry(t.file.as_str()).or_default().push(t);
    }
    let mut md = String::from(
        "# Troubleshooting: every error the harness can print\n\n\
         Generated from the error types of `chaos-harness`, `chaos-proxy` and the `chaos` CLI by\n\
         `chaos-harness/tests/troubleshooting_doc.rs`; do not edit by hand. Regenerate with\n\
         `UPDATE_DOCS=1 cargo test -p chaos-harness --test troubleshooting_doc`.\n\n\
         Each error prints the thing, the cause and the fix. Below, per error type: the message\n\
         as a template (`{field}` is filled in at run time), when it happens, and every place\n\
         that raises it with fixed text: what went wrong there and the fix it prints. Scenario\n\
         file errors (`file:line:column`, with the nearest valid key) are described in\n\
         [scenario-files.md](scenario-files.md); the emergency stop is in\n\
         [runbooks/emergency-stop.md](runbooks/emergency-stop.md).\n",
    );
    for (file, list) in &by_file {
        let _ = write!(md, "\n## `{file}`\n");
        for t in list {
            let _ = write!(md, "\n### `{}`\n\n", t.name);
            if !t.doc.is_empty() {
                let _ = writeln!(md, "{}\n", t.doc);
            }
            if t.template == "transparent" {
                md.push_str("Prints the message of the error it wraps.\n");
            } else if !t.template.is_empty() {
                let _ = writeln!(md, "```text\n{}\n```", t.template);
            }
            let Some(list) = sites.get(&t.name) else { continue };
            let mut rows: Vec<(String, String, String)> = list
                .iter()
                .map(|s| {
                    let field = |k: &str| s.fields.iter().find(|(f, _)| f == k).map(|(_, v)| v.clone());
                    let fix = field("fix").or_else(|| field("help")).unwrap_or_default();
                    let what = s
                        .fields
                        .iter()
                        .filter(|(k, _)| *k != "fix" && *k != "help")
                        .map(|(k, v)| format!("{k}: {}", cell(v)))
                        .collect::<Vec<_>>()
                        .join("; ");
                    (what, cell(&fix), s.file.clone())
                })
                .collect();
            rows.sort();
            rows.dedup();
            md.push_str("\n| what went wrong | fix | raised in |\n|---|---|---|\n");
            for (what, fix, file) in rows {
                let what = if what.is_empty() { "(computed at run time)".to_string() } else { what };
                let fix = if fix.is_empty() { "(in the message above, or computed)".to_string() } else { fix };
                let _ = writeln!(md, "| {what} | {fix} | `{file}` |");
            }
        }
    }
    md
}

#[test]
fn docs_troubleshooting_md_is_current() {
    let path = workspace().join("docs/troubleshooting.md");
    let want = markdown();
    if std::env::var_os("UPDATE_DOCS").is_some() {
        std::fs::write(&path, &want).expect("writing docs/troubleshooting.md");
        return;
    }
    let have = std::fs::read_to_string(&path).unwrap_or_default();
    assert!(
        have == want,
        "docs/troubleshooting.md is stale: an error type or message changed. Regenerate it with \
         `UPDATE_DOCS=1 cargo test -p chaos-harness --test troubleshooting_doc` and review the diff"
    );
}

/// The page covers the library's main error type variant by variant, with the fixes given at
/// the places that raise them, and every error type says when it happens.
#[test]
fn every_error_type_is_documented_with_its_fixes() {
    let (types, sites) = collect();
    for v in ["Spawn", "NotReady", "NotInjected", "Refused", "Teardown", "Config"] {
        assert!(types.contains_key(&format!("Error::{v}")), "Error::{v} is found");
    }
    assert!(types.contains_key("NetError::ProxyNotFound"), "the proxy's errors are found");
    let undocumented: Vec<&str> = types.values().filter(|t| t.doc.is_empty()).map(|t| t.name.as_str()).collect();
    assert!(undocumented.is_empty(), "error types without a doc comment saying when they happen: {undocumented:?}");
    let spawn_fixes =
        sites.get("Error::Spawn").map_or(0, |s| s.iter().filter(|s| s.fields.iter().any(|(f, _)| f == "fix")).count());
    assert!(spawn_fixes >= 1, "the fixes given where Error::Spawn is raised are collected");
    let md = markdown();
    assert!(md.contains("| what went wrong | fix | raised in |"));
}
