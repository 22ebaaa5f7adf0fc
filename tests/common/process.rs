//! Child processes the tests start: one guard type that kills a child's whole process group
//! when dropped, and the line-driven child of the Python helpers.

use super::STEP;
use std::io::{BufRead, BufReader, Write};
use std::process::{Child, ChildStdin, Command, ExitStatus, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

/// A child process started as the leader of its own process group, killed with that whole group
/// and reaped when dropped: what a wrapper (strace, runuser, prlimit) or the child itself
/// started dies with it, and nothing is left running after a test, even one that panics.
pub struct Guard {
    pub child: Child,
}

impl Guard {
    pub fn spawn(cmd: &mut Command) -> std::io::Result<Guard> {
        let child = std::os::unix::process::CommandExt::process_group(cmd, 0).spawn()?;
        Ok(Guard { child })
    }

    pub fn id(&self) -> u32 {
        self.child.id()
    }

    /// The exit status, once the child has exited.
    pub fn try_wait(&mut self) -> Option<ExitStatus> {
        self.child.try_wait().unwrap()
    }

    /// Sends `signal` (like `libc::SIGHUP`) to the child itself.
    pub fn signal(&self, signal: i32) {
        // SAFETY: kill has no memory preconditions; the pid is our live child.
        assert_eq!(unsafe { libc::kill(self.child.id() as i32, signal) }, 0);
    }
}

impl Drop for Guard {
    fn drop(&mut self) {
        // SAFETY: killpg has no memory preconditions; the group is our child's own.
        unsafe { libc::killpg(self.child.id() as i32, libc::SIGKILL) };
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A child process driven one line at a time: a command on its stdin, a reply line on its
/// stdout ("ok [values]" or "err message"). It runs in its own process group, and dropping it
/// asks it to quit, then kills the group.
pub struct LineChild {
    child: Guard,
    stdin: ChildStdin,
    lines: mpsc::Receiver<String>,
}

impl LineChild {
    pub fn spawn(cmd: &mut Command) -> Self {
        let mut child = Guard::spawn(cmd.stdin(Stdio::piped()).stdout(Stdio::piped()))
            .expect("python3 runs (the tests need Python's sqlite3 module)");
        let stdin = child.child.stdin.take().unwrap();
        let stdout = child.child.stdout.take().unwrap();
        let (tx, lines) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        LineChild {
            child,
            stdin,
            lines,
        }
    }

    /// The next line it prints, within [`STEP`].
    pub fn next_line(&self, after: &str) -> String {
        self.lines
            .recv_timeout(STEP)
            .unwrap_or_else(|_| panic!("no reply from the child to {after:?}"))
    }

    /// Sends one command and returns the reply after "ok"; panics on "err" or silence.
    pub fn cmd(&mut self, line: &str) -> String {
        writeln!(self.stdin, "{line}").unwrap();
        self.stdin.flush().unwrap();
        let reply = self.next_line(line);
        match reply.strip_prefix("ok") {
            Some(rest) => rest.trim().to_string(),
            None => panic!("{line:?} -> {reply}"),
        }
    }

    pub fn pid(&self) -> i32 {
        self.child.id() as i32
    }
}

impl Drop for LineChild {
    fn drop(&mut self) {
        let _ = writeln!(self.stdin, "quit");
        let _ = self.stdin.flush();
        let deadline = Instant::now() + Duration::from_secs(5);
        while Instant::now() < deadline {
            if self.child.try_wait().is_some() {
                break;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        // Then the guard kills whatever is left of its group.
    }
}

/// What process `pid`'s descriptors point at (`/proc/PID/fd`, the kernel's account): paths,
/// `socket:[inode]`, `pipe:[inode]`. Empty when the process is gone.
pub fn fd_targets(pid: u32) -> Vec<std::path::PathBuf> {
    std::fs::read_dir(format!("/proc/{pid}/fd"))
        .map(|fds| {
            fds.filter_map(|e| std::fs::read_link(e.ok()?.path()).ok())
                .collect()
        })
        .unwrap_or_default()
}
