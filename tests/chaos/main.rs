//! The chaos suite: one libtest-mimic binary (`cargo test --test chaos`), one module per area,
//! as ripgrep lays out its integration tests.

mod cli;
mod cluster;
mod detection;
mod ergonomics;
mod examples;
mod model;
mod monitor;
mod network;
mod observability;
mod process;
mod resources;
mod runner;
mod safety;
mod snakepit;
mod snakepit_contract;
mod util;

fn main() -> std::process::ExitCode {
    detection::register(chaos_harness::Harness::new()).run()
}
