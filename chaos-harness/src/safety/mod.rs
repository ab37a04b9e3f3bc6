//! Safety: what keeps chaos experiments from hurting the machine they run on.
//!
//! | module | what |
//! |---|---|
//! | [`crate::sandbox::reaper`] | the crash reaper: undoes a dead harness's journals within 2 s |
//! | [`interrupt`] | SIGINT/SIGTERM: undo, partial results, exit within 2 s; a second signal exits at once |
//! | [`cleanup`] | emergency cleanup (`chaos cleanup`): every journal of a dead run, plus strays by name |
//! | [`guard`] | stop conditions polled during a scenario (memory, load, disk, custom probe) |
//! | [`crate::sandbox::production`] | refuses to run where `CHAOS_ENV=production` or a marker file says so |
//! | [`crate::sandbox::dry_run`] | `CHAOS_DRY_RUN=1`: print the plan and every side effect, perform none |
//! | [`crate::sandbox::audit`] | JSON lines for every fault: when, what, target, parameters, confirmation, undo result |

pub mod cleanup;
pub mod guard;
pub mod interrupt;
