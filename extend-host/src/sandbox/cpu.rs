//! CPU accounting of runs: what a run is charged against its container's
//! CPU budget, read from the thread's CPU clock only when it is worth it.

use std::time::Duration;

/// The CPU time this thread has used. Runs are charged for it against their
/// container's CPU budget; a thread that cannot read it is charged wall time.
fn thread_cpu() -> Option<Duration> {
    nix::time::clock_gettime(nix::time::ClockId::CLOCK_THREAD_CPUTIME_ID)
        .ok()
        .map(Duration::from)
}

thread_local! {
    /// This thread's CPU time at its last reading.
    static CPU_READ: std::cell::Cell<Option<Duration>> = const { std::cell::Cell::new(None) };
}

/// Runs shorter than this (wall time) are charged their wall time.
const SHORT_RUN: Duration = Duration::from_millis(1);

/// What a run that took `wall` is charged against its container's CPU
/// budget. Reading a thread's CPU clock is a system call that costs about
/// 2 µs on a VM, a fifth of a small run, so short runs are charged their
/// wall time, which is never less. A longer run is charged the CPU time
/// its thread used since the thread's previous reading, at most its wall
/// time: that reading was taken after the thread's last long run, so what
/// the thread ran since (short runs, already charged) can only make the
/// charge larger, never larger than the run's wall time.
pub(super) fn cpu_charge(wall: Duration) -> Duration {
    if wall < SHORT_RUN {
        return wall;
    }
    let now = thread_cpu();
    match (CPU_READ.replace(now), now) {
        (Some(before), Some(now)) => now.saturating_sub(before).min(wall),
        _ => wall,
    }
}

/// Takes this thread's first CPU reading before its first run.
pub(super) fn start_cpu_accounting() {
    if CPU_READ.get().is_none() {
        CPU_READ.set(thread_cpu());
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Instant;

    fn burn(d: Duration) {
        let start = Instant::now();
        let mut x = 0u64;
        while start.elapsed() < d {
            x = std::hint::black_box(x.wrapping_add(1));
        }
    }

    #[test]
    fn a_short_run_is_charged_its_wall_time() {
        std::thread::spawn(|| {
            start_cpu_accounting();
            let before = CPU_READ.get();
            let wall = Duration::from_micros(300);
            assert_eq!(cpu_charge(wall), wall);
            // No clock reading was taken for it.
            assert_eq!(CPU_READ.get(), before);
        })
        .join()
        .unwrap();
    }

    #[test]
    fn a_long_run_is_charged_cpu_time_at_most_its_wall_time() {
        std::thread::spawn(|| {
            start_cpu_accounting();
            let started = Instant::now();
            burn(Duration::from_millis(20));
            let wall = started.elapsed();
            let charge = cpu_charge(wall);
            assert!(charge <= wall, "{charge:?} > {wall:?}");
            // Some CPU was used: a busy machine takes some of the 20 ms, not all.
            assert!(charge >= Duration::from_millis(2), "{charge:?}");
            // A sleeping run uses no CPU: charged far less than its wall time.
            let started = Instant::now();
            std::thread::sleep(Duration::from_millis(20));
            let wall = started.elapsed();
            let charge = cpu_charge(wall);
            assert!(charge < wall / 2, "{charge:?} for {wall:?} of sleep");
        })
        .join()
        .unwrap();
    }
}
