//! Scenarios: the fluent builder, steps and phases on a timeline, the TOML file format.
