//! The rooms of `chaos-harness/src` are layered: a room imports only rooms before it in
//! [`ROOMS`] (the order of DESIGN.md). This test reads every source file's `crate::` paths and
//! fails on an import that goes the other way, naming the file, the line and the rooms.
//!
//! `crate::Error`, `crate::BoxFuture`, `crate::params` and the other root items belong to no
//! room and may be used everywhere. `chaos.rs` (the per-test context) stands with `scenario`.
//! Comments and doc links are not imports; unit-test modules (`#[cfg(test)] mod tests`) may
//! reach higher rooms to build their fixtures.

use std::path::{Path, PathBuf};

/// Lowest first.
const ROOMS: &[&str] = &[
    "host", "sandbox", "topology", "load", "fixture", "fault", "observe", "criteria", "safety", "registry", "scenario",
    "report", "runner",
];

fn room_of(src: &Path, file: &Path) -> Option<&'static str> {
    let rel = file.strip_prefix(src).ok()?;
    let first = rel.components().next()?.as_os_str().to_str()?;
    let name = first.strip_suffix(".rs").unwrap_or(first);
    let name = if name == "chaos" { "scenario" } else { name };
    ROOMS.iter().copied().find(|r| *r == name)
}

fn rank(room: &str) -> Option<usize> {
    ROOMS.iter().position(|r| *r == room)
}

/// The rooms a line names through `crate::` (plain paths, `crate::{a, b::c}` groups and
/// `crate::Chaos`).
fn rooms_named(line: &str) -> Vec<&'static str> {
    let mut out = Vec::new();
    let mut rest = line;
    while let Some(i) = rest.find("crate::") {
        rest = &rest[i + "crate::".len()..];
        let idents: Vec<String> = if let Some(group) = rest.strip_prefix('{') {
            let end = group.find('}').unwrap_or(group.len());
            group[..end].split(',').map(|p| p.trim().split("::").next().unwrap_or("").trim().to_string()).collect()
        } else {
            vec![rest.chars().take_while(|c| c.is_alphanumeric() || *c == '_').collect()]
        };
        for ident in idents {
            let room = if ident == "Chaos" || ident == "chaos" { "scenario" } else { ident.as_str() };
            if let Some(r) = ROOMS.iter().copied().find(|r| *r == room) {
                out.push(r);
            }
        }
    }
    out
}

fn sources(dir: &Path, out: &mut Vec<PathBuf>) {
    for e in std::fs::read_dir(dir).expect("read src").flatten() {
        let p = e.path();
        if p.is_dir() {
            sources(&p, out);
        } else if p.extension().is_some_and(|x| x == "rs") {
            out.push(p);
        }
    }
}

/// Every import that goes against the order: `file:line: room -> higher room`.
fn violations(src: &Path) -> Vec<String> {
    let mut files = Vec::new();
    sources(src, &mut files);
    files.sort();
    let mut out = Vec::new();
    for file in files {
        let Some(room) = room_of(src, &file) else { continue };
        let text = std::fs::read_to_string(&file).expect("read source");
        for (n, line) in text.lines().enumerate() {
            if line.trim_start().starts_with("#[cfg(test)]") {
                break;
            }
            let code = line.split("//").next().unwrap_or("");
            for named in rooms_named(code) {
                if rank(named) > rank(room) {
                    out.push(format!("{}:{}: {room} -> {named}", file.display(), n + 1));
                }
            }
        }
    }
    out
}

#[test]
fn no_room_imports_a_higher_room() {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let v = violations(&src);
    assert!(v.is_empty(), "imports against the room order {ROOMS:?} (DESIGN.md):\n{}", v.join("\n"));
}

#[test]
fn the_checker_sees_each_kind_of_import() {
    assert_eq!(rooms_named("use crate::report::junit;"), ["report"]);
    assert_eq!(rooms_named("use crate::{fault::Fault, runner::x, Error};"), ["fault", "runner"]);
    assert_eq!(rooms_named("let c: crate::Chaos = todo!();"), ["scenario"]);
    assert!(rooms_named("use crate::Error;").is_empty());
    // A planted violation in a temp tree is found.
    let dir = std::env::temp_dir().join(format!("layering-check-{}", std::process::id()));
    std::fs::create_dir_all(dir.join("sandbox")).unwrap();
    std::fs::write(
        dir.join("sandbox/x.rs"),
        "use crate::report::junit;\n#[cfg(test)]\nmod tests { use crate::runner; }\n",
    )
    .unwrap();
    let v = violations(&dir);
    std::fs::remove_dir_all(&dir).unwrap();
    assert_eq!(v.len(), 1, "{v:?}");
    assert!(v[0].ends_with("x.rs:1: sandbox -> report"), "{v:?}");
}
