//! Child processes: spawn, feed standard input from the generator, sample RSS, and reap with
//! `wait4` to get the child's own peak RSS and CPU time.
//!
//! `ru_maxrss` from `wait4` is the high-water mark of the child's resident set. Linux carries
//! the parent's mark over an `exec` into it only as far as the parent's RSS at spawn time, so the
//! harness parent stays small (no large buffers: the pipe feeder works in 1 MiB pieces).

use std::io::{Read, Write};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::gen::Generator;
use crate::runner::timeval_seconds;

/// The feeder writes the pipe in pieces of this size.
const FEED_PIECE: usize = 1 << 20;

/// How often the RSS sampler reads `/proc/<pid>/status`.
const SAMPLE_EVERY: Duration = Duration::from_millis(50);

/// What a child did.
#[derive(Debug, Clone)]
pub struct Finished {
    /// Exit code, or `None` when killed by a signal.
    pub code: Option<i32>,
    /// From spawn to reaping.
    pub wall: Duration,
    /// User + system CPU seconds.
    pub cpu_seconds: f64,
    /// Peak resident set (KiB).
    pub max_rss_kib: u64,
    pub stdout: String,
    pub stderr: String,
    /// `(seconds since spawn, VmRSS KiB)` every [`SAMPLE_EVERY`], when asked for.
    pub rss_samples: Vec<(f64, u64)>,
}

impl Finished {
    pub fn success(&self) -> bool {
        self.code == Some(0)
    }

    /// The last line of stdout (where runners print their JSON report).
    pub fn last_line(&self) -> &str {
        self.stdout.lines().last().unwrap_or("")
    }

    /// A one-line description of a failure, for the report.
    pub fn failure(&self) -> String {
        let tail: Vec<&str> = self.stderr.lines().rev().take(3).collect();
        let tail: Vec<&str> = tail.into_iter().rev().collect();
        format!(
            "exit {}: {}",
            self.code.map_or("by signal".to_owned(), |c| c.to_string()),
            tail.join(" | ")
        )
    }
}

/// What to write to the child's standard input.
#[derive(Debug, Clone, Copy)]
pub enum Feed {
    Nothing,
    /// The first `len` bytes of generator stream `seed`, then end of file.
    Stream {
        seed: u64,
        len: u64,
    },
}

fn vm_rss_kib(pid: i32) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let line = status.lines().find(|l| l.starts_with("VmRSS:"))?;
    line.split_whitespace().nth(1)?.parse().ok()
}

/// The CPU time (user + system, children excluded) a running process has used so far, from
/// `/proc/<pid>/stat`; `None` if it is gone or the file is not as expected.
pub fn cpu_seconds_of(pid: u32) -> Option<f64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // The command name (field 2) may hold spaces; the fields after it are plain numbers.
    let after_name = &stat[stat.rfind(')')? + 1..];
    let mut fields = after_name.split_whitespace();
    // Fields 14 and 15 (utime, stime) are the 12th and 13th after the name.
    let utime: u64 = fields.nth(11)?.parse().ok()?;
    let stime: u64 = fields.next()?.parse().ok()?;
    // SAFETY: sysconf has no preconditions.
    let ticks = unsafe { libc::sysconf(libc::_SC_CLK_TCK) };
    (ticks > 0).then(|| (utime + stime) as f64 / ticks as f64)
}

/// Runs `command` to completion (killing it after `limit`), feeding its stdin.
pub fn run(
    mut command: Command,
    feed: Feed,
    sample_rss: bool,
    limit: Duration,
) -> anyhow::Result<Finished> {
    command
        .stdin(match feed {
            Feed::Nothing => Stdio::null(),
            Feed::Stream { .. } => Stdio::piped(),
        })
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let start = Instant::now();
    let mut child = command.spawn()?;
    let pid = child.id() as i32;

    let feeder = child.stdin.take().map(|mut stdin| {
        let Feed::Stream { seed, len } = feed else {
            unreachable!("stdin is piped only for a stream")
        };
        std::thread::spawn(move || {
            let mut generator = Generator::new(seed);
            let mut buf = vec![0u8; FEED_PIECE];
            let mut offset = 0;
            while offset < len {
                let n = (FEED_PIECE as u64).min(len - offset) as usize;
                generator.read_at(offset, &mut buf[..n]);
                // A child that stops reading (it failed) closes the pipe: stop quietly, its
                // exit status tells the story.
                if stdin.write_all(&buf[..n]).is_err() {
                    return;
                }
                offset += n as u64;
            }
        })
    });
    let mut stdout = child.stdout.take().expect("piped");
    let mut stderr = child.stderr.take().expect("piped");
    let out_reader = std::thread::spawn(move || {
        let mut s = String::new();
        let _ = stdout.read_to_string(&mut s);
        s
    });
    let err_reader = std::thread::spawn(move || {
        let mut s = String::new();
        let _ = stderr.read_to_string(&mut s);
        s
    });
    let done = Arc::new(AtomicBool::new(false));
    let sampler = {
        let done = done.clone();
        std::thread::spawn(move || {
            let mut samples = Vec::new();
            let mut killed = false;
            while !done.load(Ordering::Relaxed) {
                if sample_rss {
                    if let Some(kib) = vm_rss_kib(pid) {
                        samples.push((start.elapsed().as_secs_f64(), kib));
                    }
                }
                if !killed && start.elapsed() > limit {
                    // Our own child, by its pid, still unreaped (so the pid is still ours).
                    // SAFETY: kill has no memory-safety preconditions.
                    unsafe { libc::kill(pid, libc::SIGKILL) };
                    killed = true;
                }
                std::thread::sleep(SAMPLE_EVERY);
            }
            samples
        })
    };

    let mut status = 0;
    let mut usage = std::mem::MaybeUninit::<libc::rusage>::zeroed();
    // SAFETY: wait4 fills `status` and `usage`; `pid` is our child, reaped only here.
    let reaped = unsafe { libc::wait4(pid, &mut status, 0, usage.as_mut_ptr()) };
    let wall = start.elapsed();
    done.store(true, Ordering::Relaxed);
    if reaped != pid {
        anyhow::bail!("wait4 failed: {}", std::io::Error::last_os_error());
    }
    // SAFETY: wait4 succeeded, so it wrote the rusage.
    let usage = unsafe { usage.assume_init() };
    // The std handle must not try to reap the pid again.
    std::mem::forget(child);
    if let Some(feeder) = feeder {
        let _ = feeder.join();
    }
    let rss_samples = sampler.join().unwrap_or_default();
    let code = if libc::WIFEXITED(status) {
        Some(libc::WEXITSTATUS(status))
    } else {
        None
    };
    Ok(Finished {
        code,
        wall,
        cpu_seconds: timeval_seconds(usage.ru_utime) + timeval_seconds(usage.ru_stime),
        max_rss_kib: usage.ru_maxrss as u64,
        stdout: out_reader.join().unwrap_or_default(),
        stderr: err_reader.join().unwrap_or_default(),
        rss_samples,
    })
}
