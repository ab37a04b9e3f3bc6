//! The reference of everything a scenario file can name, generated from the registries:
//! targets (fixture kinds) with their roles, faults, criteria and load calls, each with its
//! parameters. `docs/scenarios.md` is this text; a test fails when it is stale.

use super::{Param, calls, criteria, faults, fixtures};

/// Escapes a table cell: pipes and line breaks would break the row.
fn cell(s: &str) -> String {
    s.replace('|', "\\|").replace('\n', " ")
}

fn params_table(out: &mut String, params: &[Param]) {
    if params.is_empty() {
        out.push_str("No parameters.\n\n");
        return;
    }
    out.push_str("| parameter | type | required / default | meaning |\n|---|---|---|---|\n");
    for p in params {
        let need = match (p.required, p.default) {
            (true, _) => "required".to_string(),
            (false, Some(d)) => format!("`{}`", cell(d)),
            (false, None) => "optional".to_string(),
        };
        out.push_str(&format!("| `{}` | {} | {} | {} |\n", p.name, p.kind.as_str(), need, cell(p.doc)));
    }
    out.push('\n');
}

fn section<T>(
    out: &mut String,
    title: &str,
    intro: &str,
    items: &[T],
    head: impl Fn(&T) -> (&'static str, &'static str, &'static [Param]),
    extra: impl Fn(&T) -> String,
) {
    out.push_str(&format!("## {title}\n\n{intro}\n\n"));
    for it in items {
        let (name, summary, params) = head(it);
        out.push_str(&format!("### `{name}`\n\n{}\n\n{}", summary.trim(), extra(it)));
        params_table(out, params);
    }
}

/// The reference as Markdown (the content of `docs/scenarios.md`), in name order.
///
/// ```
/// let md = chaos_harness::registry::reference::markdown();
/// assert!(md.contains("### `kill`") && md.contains("### `no_orphans`"));
/// ```
pub fn markdown() -> String {
    let mut out = String::from(
        "# Scenario reference\n\n\
         Everything a scenario file (`*.chaos.toml`, see [scenario-files.md](scenario-files.md)) can name, \
         generated from the harness's registries by `chaos_harness::registry::reference::markdown()`. \
         Do not edit by hand: regenerate with `UPDATE_DOCS=1 cargo test -p chaos-harness --test scenarios_doc`.\n\n\
         **Selectors.** A fault's or criterion's `target` is `<target>.<role>` (`web.main`, `pit.workers`, \
         `pit.worker[0]`); a bare target name means its main process. The roles of each target kind are \
         listed under Targets. Durations are written `\"500ms\"`, `\"2m\"`; sizes `\"64MiB\"`; rates `\"200/s\"`.\n\n",
    );
    section(
        &mut out,
        "Targets",
        "The `kind` of a `[target.NAME]` table.",
        &fixtures(),
        |e| (e.name, e.summary, e.params),
        |e| {
            if e.roles.is_empty() {
                String::new()
            } else {
                let roles: Vec<String> = e.roles.iter().map(|r| format!("`{r}`")).collect();
                format!("Roles: {}.\n\n", roles.join(", "))
            }
        },
    );
    section(
        &mut out,
        "Faults",
        "`action = \"inject\"`, `fault = NAME`.",
        &faults(),
        |e| (e.name, e.summary, e.params),
        |_| String::new(),
    );
    section(
        &mut out,
        "Criteria",
        "`action = \"expect\"` or `[[expect]]`, `criterion = NAME`.",
        &criteria(),
        |e| (e.name, e.summary, e.params),
        |_| String::new(),
    );
    section(
        &mut out,
        "Load calls",
        "`[load]`, `call = NAME`.",
        &calls(),
        |e| (e.name, e.summary, e.params),
        |_| String::new(),
    );
    out
}
