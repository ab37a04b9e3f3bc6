//! The chaos suite: one libtest-mimic binary, one module per area.
chaos_harness::main!();
