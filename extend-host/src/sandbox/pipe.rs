//! The host's end of a worker process's stdout, read so that a quiet host
//! need not sleep while a small run is in the worker.
//!
//! At one connection, a run's answer comes some tens of microseconds after
//! its frame went out. Awaiting it the usual way parks the tokio thread in
//! `epoll_wait`, and waking it costs a context switch (tens of microseconds
//! on a VM, as long as the run). Spinning in the waiting task with tokio's
//! `yield_now` was worse on two cores: every yield makes tokio wake another
//! of its threads to steal work, and the spinning thread kept the CPU the
//! worker process was woken on (traced with `perf sched`: the worker waited
//! up to the whole spin before it ran; docs/benchmarks.md). So the reader
//! spins below tokio: it polls the pipe itself and yields the CPU
//! (`sched_yield`) between looks, for at most the spin it was given.

use std::io;
use std::os::fd::AsFd as _;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::{Duration, Instant};
use tokio::io::{AsyncRead, ReadBuf};
use tokio::process::ChildStdout;

/// A worker's stdout that reads the pipe before asking tokio whether it is
/// readable, and may first wait for it without sleeping ([`Answers::spin`]).
#[derive(Debug)]
pub(crate) struct Answers {
    stdout: ChildStdout,
    /// How long the next read that finds the pipe empty looks again without
    /// sleeping (then zero again).
    spin: Duration,
}

impl Answers {
    pub(crate) fn new(stdout: ChildStdout) -> Self {
        Answers {
            stdout,
            spin: Duration::ZERO,
        }
    }

    /// Lets the next read that finds the pipe empty wait up to `spin` for
    /// it without sleeping: for when this host has nothing else to do.
    pub(crate) fn spin(&mut self, spin: Duration) {
        self.spin = spin;
    }

    /// Reads what the pipe holds now; `None` when it is empty.
    ///
    /// Tokio's readiness for the pipe is only updated when a thread polls
    /// the driver, which a spinning thread does not, so the pipe is read
    /// directly. Tokio's edge-triggered registration still reports data
    /// that arrives later, whoever read before.
    fn read_now(&self, buf: &mut ReadBuf<'_>) -> Option<io::Result<()>> {
        loop {
            match nix::unistd::read(self.stdout.as_fd(), buf.initialize_unfilled()) {
                Ok(n) => {
                    buf.advance(n);
                    return Some(Ok(()));
                }
                Err(nix::errno::Errno::EINTR) => continue,
                Err(nix::errno::Errno::EAGAIN) => return None,
                Err(e) => return Some(Err(e.into())),
            }
        }
    }
}

/// Waits up to `spin` for `stdout` to be readable, yielding the CPU between
/// looks; whether it is.
fn wait_readable(stdout: &ChildStdout, spin: Duration) -> bool {
    use nix::poll::{PollFd, PollFlags, PollTimeout, poll};
    let until = Instant::now() + spin;
    loop {
        let mut fds = [PollFd::new(stdout.as_fd(), PollFlags::POLLIN)];
        // Readable, hung up or failed: the read says which.
        if !matches!(poll(&mut fds, PollTimeout::ZERO), Ok(0)) {
            return true;
        }
        if Instant::now() >= until {
            return false;
        }
        // The worker process (or the client) may be waiting for this CPU.
        std::thread::yield_now();
    }
}

impl AsyncRead for Answers {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        if let Some(read) = this.read_now(buf) {
            return Poll::Ready(read);
        }
        let spin = std::mem::take(&mut this.spin);
        if !spin.is_zero()
            && wait_readable(&this.stdout, spin)
            && let Some(read) = this.read_now(buf)
        {
            return Poll::Ready(read);
        }
        Pin::new(&mut this.stdout).poll_read(cx, buf)
    }
}

#[cfg(test)]
mod tests {
    use super::Answers;
    use std::pin::Pin;
    use std::process::Stdio;
    use std::task::{Context, Poll, Waker};
    use std::time::Duration;
    use tokio::io::{AsyncRead as _, AsyncReadExt as _, AsyncWriteExt as _, ReadBuf};
    use tokio::process::{Child, ChildStdin, Command};

    /// A child that echoes one line of its stdin, then exits.
    fn echo() -> (Child, ChildStdin, Answers) {
        let mut child = Command::new("sh")
            .args(["-c", "read line; printf '%s' \"$line\""])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .kill_on_drop(true)
            .spawn()
            .expect("sh runs");
        let stdin = child.stdin.take().unwrap();
        let stdout = Answers::new(child.stdout.take().unwrap());
        (child, stdin, stdout)
    }

    /// One poll of a read, as tokio would make it, with a waker that does nothing.
    fn poll_once(answers: &mut Answers, buf: &mut [u8]) -> Poll<usize> {
        let mut read = ReadBuf::new(buf);
        let mut cx = Context::from_waker(Waker::noop());
        match Pin::new(answers).poll_read(&mut cx, &mut read) {
            Poll::Ready(r) => {
                r.expect("the read succeeds");
                Poll::Ready(read.filled().len())
            }
            Poll::Pending => Poll::Pending,
        }
    }

    #[tokio::test(flavor = "current_thread")]
    async fn an_answer_that_comes_during_the_spin_is_read_in_the_same_poll() {
        let (_child, mut stdin, mut answers) = echo();
        let mut buf = [0u8; 16];
        // Nothing written yet, no spin: the read waits (on tokio).
        assert_eq!(poll_once(&mut answers, &mut buf), Poll::Pending);
        stdin.write_all(b"pong\n").await.unwrap();
        stdin.flush().await.unwrap();
        // This thread never returns to tokio's driver while it spins, so
        // only a read of the pipe itself can see the answer.
        answers.spin(Duration::from_secs(10));
        assert_eq!(poll_once(&mut answers, &mut buf), Poll::Ready(4));
        assert_eq!(&buf[..4], b"pong");
        // The spin is used once.
        assert!(answers.spin.is_zero());
    }

    #[tokio::test(flavor = "current_thread")]
    async fn an_answer_after_the_spin_ran_out_still_wakes_the_reader() {
        let (_child, mut stdin, mut answers) = echo();
        let mut buf = [0u8; 16];
        answers.spin(Duration::from_millis(1));
        assert_eq!(poll_once(&mut answers, &mut buf), Poll::Pending);
        stdin.write_all(b"late\n").await.unwrap();
        stdin.flush().await.unwrap();
        let n = tokio::time::timeout(Duration::from_secs(10), answers.read(&mut buf))
            .await
            .expect("the reader is woken when the answer comes")
            .unwrap();
        assert_eq!(&buf[..n], b"late");
    }

    #[tokio::test(flavor = "current_thread")]
    async fn a_worker_that_exits_reads_as_the_end() {
        let (_child, stdin, mut answers) = echo();
        drop(stdin);
        answers.spin(Duration::from_secs(10));
        let mut buf = [0u8; 16];
        let n = tokio::time::timeout(Duration::from_secs(10), answers.read(&mut buf))
            .await
            .expect("the end of the pipe is seen")
            .unwrap();
        assert_eq!(n, 0);
    }
}
