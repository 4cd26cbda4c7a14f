//! The boundary section: what one round trip across an isolation boundary
//! costs on this machine, with nothing of the host around it. #26 asks
//! whether shared memory between the host and a worker would make runs in
//! worker processes as fast as on host threads; this measures the parts
//! such a design is made of, in the same run:
//!
//! - two threads of one process handing a message over and sleeping on a
//!   futex between messages (what (a') pays per run: the tokio thread wakes
//!   a JavaScript thread, which wakes it back);
//! - two processes over a pipe each way (what (a) pays today);
//! - two processes over a shared `memfd` page with futex wake-ups (a ring
//!   whose reader sleeps when it is empty);
//! - the same page with both sides spinning (a ring whose reader never
//!   sleeps: no system call at all, for a CPU each).
//!
//! Linux only; the peer process is this bench binary run again with
//! `EXTEND_BENCH_PEER` set (see [`serve_if_peer`]).

// A shared mapping and futexes are what this section measures; nothing in
// the host uses them.
#![allow(unsafe_code)]

use std::io::{Read as _, Write as _};
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

/// Set in the environment of the peer process: `pipe`, `futex` or `spin`.
const PEER: &str = "EXTEND_BENCH_PEER";
/// The shared page's descriptor number in the peer process.
const PEER_FD: &str = "EXTEND_BENCH_PEER_FD";
/// The message sent: about a trivial run's frame.
const REQUEST: [u8; 160] = [b'q'; 160];
/// The message returned: about a trivial run's answer.
const ANSWER: [u8; 16] = [b'a'; 16];
/// The counter value that tells the peer to exit.
const STOP: u32 = u32::MAX;

/// How a side waits for the other's counter to move.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Wait {
    /// Sleep on a futex (`private` when both sides are threads of one process).
    Futex { private: bool },
    /// Spin, yielding the CPU now and then (the other side may need it).
    Spin,
}

/// Two counters on separate cache lines: the request's and the answer's.
#[repr(C, align(64))]
struct Line(AtomicU32);

/// What both sides share: the client bumps `request`, the peer echoes the
/// value into `answer`.
#[repr(C)]
struct Counters {
    request: Line,
    answer: Line,
}

/// Sleeps while `word` is still `seen` (returns at once if it is not).
fn futex_wait(word: &AtomicU32, seen: u32, private: bool) {
    let op = if private {
        libc::FUTEX_WAIT | libc::FUTEX_PRIVATE_FLAG
    } else {
        libc::FUTEX_WAIT
    };
    // SAFETY: `word` is a live, aligned u32; the kernel only reads it.
    // Spurious returns (EINTR, EAGAIN) are fine: the caller looks again.
    unsafe {
        libc::syscall(
            libc::SYS_futex,
            word.as_ptr(),
            op,
            seen,
            std::ptr::null::<libc::timespec>(),
        )
    };
}

/// Wakes one side sleeping on `word`.
fn futex_wake(word: &AtomicU32, private: bool) {
    let op = if private {
        libc::FUTEX_WAKE | libc::FUTEX_PRIVATE_FLAG
    } else {
        libc::FUTEX_WAKE
    };
    // SAFETY: as in `futex_wait`; waking nobody is harmless.
    unsafe { libc::syscall(libc::SYS_futex, word.as_ptr(), op, 1) };
}

/// Waits until `word` is no longer `seen`; its new value.
fn wait_change(word: &AtomicU32, seen: u32, how: Wait) -> u32 {
    let mut spins = 0u32;
    loop {
        let now = word.load(Ordering::Acquire);
        if now != seen {
            return now;
        }
        match how {
            Wait::Futex { private } => futex_wait(word, seen, private),
            Wait::Spin => {
                spins += 1;
                if spins.is_multiple_of(256) {
                    std::thread::yield_now();
                } else {
                    std::hint::spin_loop();
                }
            }
        }
    }
}

/// Sets `word` to `value` and, with futexes, wakes the other side.
fn publish(word: &AtomicU32, value: u32, how: Wait) {
    word.store(value, Ordering::Release);
    if let Wait::Futex { private } = how {
        futex_wake(word, private);
    }
}

/// The peer's side: echoes each request counter until [`STOP`].
fn echo(counters: &Counters, how: Wait) {
    let mut seen = 0;
    loop {
        seen = wait_change(&counters.request.0, seen, how);
        if seen == STOP {
            return;
        }
        publish(&counters.answer.0, seen, how);
    }
}

/// The CPU this thread has used, from `/proc/thread-self/schedstat` (ns).
fn thread_cpu() -> Duration {
    cpu_of("/proc/thread-self/schedstat")
}

fn cpu_of(path: &str) -> Duration {
    std::fs::read_to_string(path)
        .ok()
        .and_then(|s| s.split_whitespace().next()?.parse().ok())
        .map_or(Duration::ZERO, Duration::from_nanos)
}

/// If this process is a peer started by [`boundary`], serves it and exits.
pub(crate) fn serve_if_peer() {
    let Ok(mode) = std::env::var(PEER) else {
        return;
    };
    if mode == "pipe" {
        let (mut input, mut output) = (std::io::stdin().lock(), std::io::stdout().lock());
        let mut request = [0u8; REQUEST.len()];
        while input.read_exact(&mut request).is_ok() {
            if output
                .write_all(&ANSWER)
                .and_then(|()| output.flush())
                .is_err()
            {
                break;
            }
        }
    } else {
        let fd: i32 = std::env::var(PEER_FD).unwrap().parse().unwrap();
        let page = Page::map(fd);
        echo(
            page.counters(),
            if mode == "spin" {
                Wait::Spin
            } else {
                Wait::Futex { private: false }
            },
        );
    }
    std::process::exit(0);
}

/// One shared page of a `memfd`, mapped in this process.
struct Page {
    fd: i32,
    at: *mut libc::c_void,
}

impl Page {
    /// A new page, its descriptor left open across `exec` for the peer.
    fn new() -> Page {
        // SAFETY: plain system calls on a name and a descriptor we own.
        let fd = unsafe { libc::memfd_create(c"extend-bench-ring".as_ptr(), 0) };
        assert!(fd >= 0, "memfd_create: {}", std::io::Error::last_os_error());
        // SAFETY: as above.
        assert_eq!(unsafe { libc::ftruncate(fd, 4096) }, 0);
        Page::map(fd)
    }

    fn map(fd: i32) -> Page {
        // SAFETY: maps the whole 4 KiB file shared; unmapped on drop.
        let at = unsafe {
            libc::mmap(
                std::ptr::null_mut(),
                4096,
                libc::PROT_READ | libc::PROT_WRITE,
                libc::MAP_SHARED,
                fd,
                0,
            )
        };
        assert_ne!(at, libc::MAP_FAILED, "mmap");
        Page { fd, at }
    }

    fn counters(&self) -> &Counters {
        // SAFETY: the page is 4096 bytes, aligned, zeroed by the kernel at
        // creation, and only touched through atomics.
        unsafe { &*(self.at as *const Counters) }
    }
}

impl Drop for Page {
    fn drop(&mut self) {
        // SAFETY: `at` came from `mmap` of 4096 bytes; `fd` is ours.
        unsafe {
            libc::munmap(self.at, 4096);
            libc::close(self.fd);
        }
    }
}

/// Round trips timed, and the CPU both sides used for them.
struct Trips {
    times: Vec<Duration>,
    cpu: Duration,
}

impl Trips {
    /// Prints the trips' figures, with the mean against `base`'s; their mean.
    ///
    /// On a VM a wake-up is two-moded: about a microsecond when the other
    /// CPU is still polling in the guest's idle loop, 50 µs or more when it
    /// has halted and the hypervisor must wake it. The p50 falls on either
    /// side from run to run, so the ratio is of means, and the share of
    /// slow trips is printed.
    fn line(&mut self, name: &str, base: Option<f64>) -> f64 {
        let n = self.times.len() as u32;
        let mean = (self.times.iter().sum::<Duration>() / n).as_secs_f64() * 1e6;
        let slow = self
            .times
            .iter()
            .filter(|t| **t > Duration::from_micros(10))
            .count() as f64
            / f64::from(n);
        let (p50, p99) = (
            super::pct(&mut self.times, 0.5),
            super::pct(&mut self.times, 0.99),
        );
        println!(
            "boundary {name:<34} round trip mean {mean:>5.1} µs  p50 {p50:>5.1}  p99 {p99:>6.1}  over 10 µs {:>3.0}%  CPU {:>5.1} µs a trip{}",
            slow * 100.0,
            (self.cpu / n).as_secs_f64() * 1e6,
            base.map_or(String::new(), |b| format!(
                "  mean {:.2}× threads'",
                mean / b
            )),
        );
        mean
    }
}

/// Times `n` round trips of `trip` after a warm-up.
fn time(n: usize, mut trip: impl FnMut(u32)) -> Vec<Duration> {
    for i in 1..=1000 {
        trip(i);
    }
    (0..n as u32)
        .map(|i| {
            let t = Instant::now();
            trip(1001 + i);
            t.elapsed()
        })
        .collect()
}

/// Round trips to a thread of this process, both sides sleeping on futexes.
fn threads(n: usize) -> Trips {
    let how = Wait::Futex { private: true };
    let counters: &'static Counters = Box::leak(Box::new(Counters {
        request: Line(AtomicU32::new(0)),
        answer: Line(AtomicU32::new(0)),
    }));
    let peer = std::thread::spawn(move || {
        let start = thread_cpu();
        echo(counters, how);
        thread_cpu() - start
    });
    let start = thread_cpu();
    let times = time(n, |i| {
        publish(&counters.request.0, i, how);
        wait_change(&counters.answer.0, i - 1, how);
    });
    let mine = thread_cpu() - start;
    publish(&counters.request.0, STOP, how);
    let theirs = peer.join().unwrap();
    Trips {
        times,
        cpu: mine + theirs,
    }
}

/// This bench binary, to be run as a peer of `mode`, given the page `fd`.
fn peer(mode: &str, fd: Option<i32>) -> std::process::Command {
    let mut c = std::process::Command::new(std::env::current_exe().unwrap());
    c.env(PEER, mode).env_remove("EXTEND_BENCH_ONLY");
    if let Some(fd) = fd {
        c.env(PEER_FD, fd.to_string());
    }
    c
}

/// Round trips to a peer process over a pipe each way. The peer's CPU is
/// read before it is told to stop: an exited process's schedstat is gone.
fn processes_pipe(n: usize) -> Trips {
    let mut child = peer("pipe", None)
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .expect("the bench runs itself as a peer");
    let (mut to, mut from) = (child.stdin.take().unwrap(), child.stdout.take().unwrap());
    let their_cpu = format!("/proc/{}/schedstat", child.id());
    let (start, their_start) = (thread_cpu(), cpu_of(&their_cpu));
    let mut answer = [0u8; ANSWER.len()];
    let times = time(n, |_| {
        to.write_all(&REQUEST).unwrap();
        from.read_exact(&mut answer).unwrap();
    });
    let cpu = thread_cpu() - start + (cpu_of(&their_cpu) - their_start);
    drop(to);
    child.wait().unwrap();
    Trips { times, cpu }
}

/// Round trips to a peer process over a shared page, waiting as `how` says.
fn processes_shared(n: usize, how: Wait) -> Trips {
    let page = Page::new();
    let mode = if how == Wait::Spin { "spin" } else { "futex" };
    let mut child = peer(mode, Some(page.fd))
        .spawn()
        .expect("the bench runs itself as a peer");
    let their_cpu = format!("/proc/{}/schedstat", child.id());
    let counters = page.counters();
    let (start, their_start) = (thread_cpu(), cpu_of(&their_cpu));
    let times = time(n, |i| {
        publish(&counters.request.0, i, how);
        wait_change(&counters.answer.0, i - 1, how);
    });
    let cpu = thread_cpu() - start + (cpu_of(&their_cpu) - their_start);
    publish(&counters.request.0, STOP, how);
    child.wait().unwrap();
    Trips { times, cpu }
}

/// Prints the round trips of each boundary, against the threads'.
pub(crate) fn boundary() {
    let n = super::scaled(50_000, 2_000);
    println!(
        "# boundary: {n} round trips of a {}-byte message and a {}-byte answer, one at a time (what c=1 pays per run)",
        REQUEST.len(),
        ANSWER.len()
    );
    let base = threads(n).line("threads, futex", None);
    processes_pipe(n).line("processes, pipes", Some(base));
    processes_shared(n, Wait::Futex { private: false })
        .line("processes, shared page + futex", Some(base));
    processes_shared(n, Wait::Spin).line("processes, shared page, spinning", Some(base));
}
