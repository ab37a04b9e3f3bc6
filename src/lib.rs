//! snakepit-chaos: the Snakepit chaos scenarios, shared by the `chaos` CLI (the main job and
//! long crash-cycle runs) and the chaos test suite in `tests/chaos/`, and the exports of
//! scenario files to other chaos engines (`chaos export`).

pub mod export;
pub mod findings;
pub mod junit_merge;
pub mod scenarios;
