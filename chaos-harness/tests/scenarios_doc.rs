//! `docs/scenarios.md` is the registries' reference (`registry::reference::markdown()`), so a
//! fault, criterion, target or load call added or changed without the doc fails here.
//! Regenerate with `UPDATE_DOCS=1 cargo test -p chaos-harness --test scenarios_doc`.

#[cfg(all(feature = "net", feature = "snakepit"))]
#[test]
fn docs_scenarios_md_is_current() {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../docs/scenarios.md");
    let want = chaos_harness::registry::reference::markdown();
    if std::env::var_os("UPDATE_DOCS").is_some() {
        std::fs::write(&path, &want).expect("writing docs/scenarios.md");
        return;
    }
    let have = std::fs::read_to_string(&path).unwrap_or_default();
    assert!(
        have == want,
        "docs/scenarios.md is stale: the registries changed. Regenerate it with \
         `UPDATE_DOCS=1 cargo test -p chaos-harness --test scenarios_doc` and review the diff"
    );
}

/// Every registered thing is in the reference with each of its parameters.
#[cfg(all(feature = "net", feature = "snakepit"))]
#[test]
fn the_reference_names_every_entry_and_parameter() {
    use chaos_harness::registry;
    let md = registry::reference::markdown();
    let mut missing = Vec::new();
    let mut check = |name: &str, params: &[registry::Param]| {
        if !md.contains(&format!("### `{name}`")) {
            missing.push(name.to_string());
        }
        for p in params {
            if !md.contains(&format!("| `{}` |", p.name)) {
                missing.push(format!("{name}.{}", p.name));
            }
        }
    };
    registry::faults().iter().for_each(|e| check(e.name, e.params));
    registry::criteria().iter().for_each(|e| check(e.name, e.params));
    registry::fixtures().iter().for_each(|e| check(e.name, e.params));
    registry::calls().iter().for_each(|e| check(e.name, e.params));
    assert!(missing.is_empty(), "not in the reference: {missing:?}");
    assert!(registry::faults().len() >= 10 && md.contains("Roles: "), "the registries are linked in");
}
