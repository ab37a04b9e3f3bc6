//! `chaos list`: the built-in scenarios, as text or JSON.

use std::process::ExitCode;

use super::Format;
use super::run::SCENARIOS;

/// Arguments of `chaos list`.
#[derive(Debug, clap::Args)]
pub struct ListArgs {
    /// Output format.
    #[arg(long, value_enum, default_value_t = Format::Text)]
    pub format: Format,
}

/// The listing in `format`.
fn render(format: Format) -> String {
    match format {
        Format::Text => SCENARIOS.iter().map(|s| format!("{:<28} {}\n", s.name, s.about)).collect(),
        Format::Json => {
            let list: Vec<serde_json::Value> =
                SCENARIOS.iter().map(|s| serde_json::json!({ "name": s.name, "about": s.about })).collect();
            format!("{}\n", serde_json::Value::Array(list))
        }
    }
}

/// Prints the scenarios.
pub fn run(args: &ListArgs) -> ExitCode {
    print!("{}", render(args.format));
    ExitCode::SUCCESS
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn json_lists_every_scenario_with_its_description() {
        let v: serde_json::Value = serde_json::from_str(&render(Format::Json)).unwrap();
        let names: Vec<&str> = v.as_array().unwrap().iter().map(|s| s["name"].as_str().unwrap()).collect();
        assert_eq!(names, SCENARIOS.iter().map(|s| s.name).collect::<Vec<_>>());
        assert!(v[0]["about"].as_str().unwrap().contains("SIGKILL"));
        assert_eq!(render(Format::Text).lines().count(), SCENARIOS.len());
    }
}
