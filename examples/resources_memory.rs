//! Resources family: cap a program's memory through its cgroup while it allocates, and judge
//! that the kernel OOM-killed it inside the fixture (and nowhere else). The limit's old values
//! are journaled before the write and restored when the fault clears, or by teardown, or by
//! the crash reaper if the harness dies.
//!
//! ```sh
//! cargo run --example resources_memory         # as root (cgroups)
//! ```
use chaos_harness::prelude::*;

/// Prints `ready`, waits a second, then allocates 8 MiB every 50 ms up to 512 MiB.
const ALLOCATOR: &str = "import time\nprint('ready', flush=True)\ntime.sleep(1)\nheld = []\n\
for _ in range(64):\n    held.append(bytearray(8 << 20))\n    time.sleep(0.05)\ntime.sleep(600)\n";

#[chaos_test(tags = ["resources"], timeout = "60s", requires = ["cgroups", "python3"])]
async fn an_allocation_past_a_memory_limit_is_oom_killed(cx: &mut Chaos) -> ChaosResult {
    let hog = cx.start(Command::new("python3").args(["-c", ALLOCATOR]).ready(Probe::log_line("^ready$"))).await?;
    let out = cx
        .scenario("64 MiB memory limit on a growing allocator")
        .inject(Fault::memory_limit(&hog, 64 << 20))
        .expect(Criterion::oom_kills(&hog).at_least(1).within(Duration::from_secs(15)))
        .clear_faults()
        .run()
        .await?;
    println!("{out}");
    Ok(())
}

chaos_harness::main!();
