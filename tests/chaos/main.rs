//! The chaos suite: one libtest-mimic binary (`cargo test --test chaos`), one module per area,
//! as ripgrep lays out its integration tests.

mod process;
mod runner;
mod safety;

chaos_harness::main!();
