//! `chaos doctor`: every capability the harness uses, what is missing and the command that fixes
//! it (probes in `chaos_harness::host::doctor`).

use std::process::ExitCode;

use chaos_harness::host::doctor::{Probe, ProbeEnv, probe_all};
use console::style;

use super::Format;

/// Arguments of `chaos doctor`.
#[derive(Debug, clap::Args)]
pub struct DoctorArgs {
    /// Output format.
    #[arg(long, value_enum, default_value_t = Format::Text)]
    pub format: Format,
}

/// The probes as text or JSON; `true` when every required capability is present.
fn render(probes: &[Probe], format: Format) -> (String, bool) {
    let ready = probes.iter().all(|p| p.ok || !p.required);
    let text = match format {
        Format::Json => {
            let v = serde_json::json!({ "ready": ready, "probes": probes });
            format!("{}\n", serde_json::to_string_pretty(&v).unwrap_or_default())
        }
        Format::Text => {
            let mut out = String::new();
            for p in probes {
                let mark = match (p.ok, p.required) {
                    (true, _) => style("ok      ").green().to_string(),
                    (false, true) => style("MISSING ").red().bold().to_string(),
                    (false, false) => style("optional").yellow().to_string(),
                };
                out += &format!("{mark}  {:<10} {}\n", p.name, p.found);
                if let Some(fix) = p.fix.as_deref().filter(|_| !p.ok) {
                    out += &format!("{:<10}  {:<10} fix: {fix}\n", "", "");
                }
            }
            let missing: Vec<&str> = probes.iter().filter(|p| !p.ok && p.required).map(|p| p.name).collect();
            out += &if missing.is_empty() {
                "chaos doctor: ready: every required capability is present\n".to_string()
            } else {
                format!("chaos doctor: not ready: missing {} (fixes above)\n", missing.join(", "))
            };
            out
        }
    };
    (text, ready)
}

/// Probes and prints; exit 1 when a required capability is missing.
pub fn run(args: &DoctorArgs) -> ExitCode {
    let (text, ready) = render(&probe_all(&ProbeEnv::from_process()), args.format);
    print!("{text}");
    if ready { ExitCode::SUCCESS } else { ExitCode::from(1) }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn without_elixir() -> Vec<Probe> {
        probe_all(&ProbeEnv { path: "/nonexistent-bin".into(), chaos_elixir: None, ..ProbeEnv::from_process() })
    }

    #[test]
    fn text_names_the_missing_elixir_and_its_fix() {
        console::set_colors_enabled(false);
        let (text, ready) = render(&without_elixir(), Format::Text);
        assert!(!ready);
        let line = text.lines().find(|l| l.contains("elixir") && l.starts_with("MISSING")).expect(&text);
        assert!(line.contains("/nonexistent-bin"), "{line}");
        assert!(text.contains("fix: apt-get install elixir"), "{text}");
        assert!(text.lines().last().unwrap().contains("not ready: missing") && text.contains("elixir"), "{text}");
    }

    #[test]
    fn json_marks_elixir_missing() {
        let (text, _) = render(&without_elixir(), Format::Json);
        let v: serde_json::Value = serde_json::from_str(&text).unwrap();
        assert_eq!(v["ready"], false);
        let elixir = v["probes"].as_array().unwrap().iter().find(|p| p["name"] == "elixir").unwrap();
        assert_eq!(elixir["ok"], false);
        assert!(elixir["fix"].as_str().unwrap().contains("CHAOS_ELIXIR"));
    }
}
