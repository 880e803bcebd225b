//! Child processes of the control plane, and making sure none of them outlives the test process.
//!
//! The Rust test harness never runs the destructors of statics, and a test binary may also die from
//! a signal. Three mechanisms cover all the ways a test process ends:
//!
//! * Every child is spawned by one dedicated, never-exiting "supervisor" thread, with
//!   `PR_SET_PDEATHSIG = SIGKILL`. The kernel sends that signal when the *thread* that forked the
//!   child exits, which is why it must be a thread that lives as long as the process: a test thread
//!   would take its children with it when the test ends. When the process dies for any reason, the
//!   supervisor thread dies with it and every child gets SIGKILL.
//! * A `libc::atexit` handler (it runs when the test harness calls `exit`, also after failed tests)
//!   stops every registered child gracefully (SIGTERM to its process group, then SIGKILL) and
//!   removes the registered working directories.
//! * Owned handles ([`Process`], [`WorkDir`]) stop and clean up in `Drop`.
//!
//! Each child runs in its own process group, so signals reach anything it forks too.

use std::collections::VecDeque;
use std::fs::File;
use std::io::{self, BufRead, BufReader};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::{Mutex, MutexGuard, OnceLock, mpsc};
use std::time::{Duration, Instant};

use anyhow::{Context, anyhow};
use rustix::process::{Pid, Signal};

/// How long a stopping child gets between SIGTERM and SIGKILL.
const STOP_GRACE: Duration = Duration::from_secs(5);

/// Every running child and every working directory that still exists.
struct Registry {
    next_id: u64,
    children: Vec<Registered>,
    dirs: Vec<(PathBuf, bool)>,
}

struct Registered {
    id: u64,
    child: Child,
}

static REGISTRY: Mutex<Registry> = Mutex::new(Registry {
    next_id: 0,
    children: Vec::new(),
    dirs: Vec::new(),
});

/// Locks the registry, ignoring poisoning: a panicking test must not stop the clean-up.
fn registry() -> MutexGuard<'static, Registry> {
    REGISTRY.lock().unwrap_or_else(|e| e.into_inner())
}

type SpawnRequest = (Command, mpsc::Sender<io::Result<Child>>);

/// The supervisor thread's request queue; starting it also installs the `atexit` handler.
fn supervisor() -> &'static mpsc::Sender<SpawnRequest> {
    static SUPERVISOR: OnceLock<mpsc::Sender<SpawnRequest>> = OnceLock::new();
    SUPERVISOR.get_or_init(|| {
        // SAFETY: `atexit` only records a function pointer. `cleanup_at_exit` is an `extern "C"`
        // function that catches every panic, so no unwinding crosses the FFI boundary. This is the
        // only way to run clean-up when the test harness ends the process with `exit`, because
        // destructors of statics never run.
        let rc = unsafe { libc::atexit(cleanup_at_exit) };
        if rc != 0 {
            eprintln!("certsmith-e2e: atexit registration failed; children rely on PDEATHSIG only");
        }
        let (tx, rx) = mpsc::channel::<SpawnRequest>();
        std::thread::Builder::new()
            .name("certsmith-e2e-supervisor".into())
            .spawn(move || {
                // The sender lives in a static, so this loop (and the thread) never ends before the
                // process does: the children's PDEATHSIG is tied to this thread.
                for (mut cmd, reply) in rx {
                    let _ = reply.send(cmd.spawn());
                }
            })
            .expect("certsmith-e2e: cannot start the supervisor thread");
        tx
    })
}

extern "C" fn cleanup_at_exit() {
    let _ = std::panic::catch_unwind(|| {
        let (children, dirs) = {
            let mut reg = registry();
            (
                std::mem::take(&mut reg.children),
                std::mem::take(&mut reg.dirs),
            )
        };
        stop_children(children);
        for (dir, keep) in dirs {
            remove_dir(&dir, keep);
        }
    });
}

/// Starts `cmd` from the supervisor thread, in its own process group, with stdout and stderr
/// appended to `log`. The process is stopped when the returned handle is dropped, at process exit,
/// or (SIGKILL) when the test process dies. Use it for any long-running helper process a test
/// starts (e.g. a stand-in for a solver Pod).
pub fn spawn(name: &str, mut cmd: Command, log: &Path) -> anyhow::Result<Process> {
    let out = File::options()
        .create(true)
        .append(true)
        .open(log)
        .with_context(|| format!("creating log file {}", log.display()))?;
    let err = out.try_clone()?;
    cmd.stdin(Stdio::null())
        .stdout(out)
        .stderr(err)
        .process_group(0);
    let parent = rustix::process::getpid();
    // SAFETY: the closure runs in the forked child before exec and only makes two raw system calls
    // (prctl, getppid) without allocating or locking, which is async-signal-safe. PDEATHSIG makes
    // the kernel kill the child if the supervisor thread (and so the test process) dies without
    // running any clean-up; the getppid check closes the race where the parent died before prctl.
    unsafe {
        cmd.pre_exec(move || {
            rustix::process::set_parent_process_death_signal(Some(Signal::KILL))?;
            if rustix::process::getppid() != Some(parent) {
                return Err(rustix::io::Errno::SRCH.into());
            }
            Ok(())
        });
    }
    let program = cmd.get_program().to_string_lossy().into_owned();
    let (tx, rx) = mpsc::channel();
    supervisor()
        .send((cmd, tx))
        .map_err(|_| anyhow!("the supervisor thread is gone"))?;
    let child = rx
        .recv()
        .map_err(|_| anyhow!("the supervisor thread is gone"))?
        .with_context(|| format!("spawning {name} ({program})"))?;
    let pid = child.id();
    let mut reg = registry();
    let id = reg.next_id;
    reg.next_id += 1;
    reg.children.push(Registered { id, child });
    Ok(Process {
        id,
        pid,
        name: name.to_owned(),
        log: log.to_owned(),
    })
}

/// A running child process. Dropping the handle stops the process (SIGTERM, then SIGKILL).
#[derive(Debug)]
pub struct Process {
    id: u64,
    pid: u32,
    name: String,
    log: PathBuf,
}

impl Process {
    /// The name given at spawn time (e.g. `kube-apiserver`).
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The operating-system process id (also the process group id).
    pub fn pid(&self) -> u32 {
        self.pid
    }

    /// The file that receives the process's stdout and stderr.
    pub fn log_path(&self) -> &Path {
        &self.log
    }

    /// Errors (with the tail of the log) if the process has exited.
    pub fn check_running(&self) -> anyhow::Result<()> {
        match self.exit_status() {
            None => Ok(()),
            Some(status) => Err(anyhow!(
                "{} exited unexpectedly ({status}); last lines of {}:\n{}",
                self.name,
                self.log.display(),
                self.log_tail(40)
            )),
        }
    }

    /// How the process ended, or `None` while it runs.
    pub fn exit_status(&self) -> Option<ExitStatus> {
        let mut reg = registry();
        let entry = reg.children.iter_mut().find(|r| r.id == self.id)?;
        entry.child.try_wait().ok().flatten()
    }

    /// The last `lines` lines of the process's log.
    pub fn log_tail(&self, lines: usize) -> String {
        log_tail(&self.log, lines)
    }

    /// Adds the name and the log's tail to an error about this process.
    pub(crate) fn explain(&self, err: anyhow::Error) -> anyhow::Error {
        err.context(format!(
            "{} did not become ready; last lines of {}:\n{}",
            self.name,
            self.log.display(),
            self.log_tail(40)
        ))
    }
}

impl Process {
    /// Kills the process group with SIGKILL at once, as a crash would, and reaps it.
    pub fn kill_hard(self) {
        let mine = {
            let mut reg = registry();
            let (mine, rest): (Vec<_>, Vec<_>) = std::mem::take(&mut reg.children)
                .into_iter()
                .partition(|r| r.id == self.id);
            reg.children = rest;
            mine
        };
        for mut r in mine {
            signal_group(&mut r.child, Signal::KILL);
            let _ = r.child.wait();
        }
    }
}

impl Drop for Process {
    fn drop(&mut self) {
        stop(&[&*self]);
    }
}

/// Stops the given processes (see [`stop_children`] for the order): SIGTERM, then SIGKILL after a
/// grace period. Stopping an already stopped process does nothing.
pub(crate) fn stop(processes: &[&Process]) {
    let children = {
        let mut reg = registry();
        let (mine, rest) = std::mem::take(&mut reg.children)
            .into_iter()
            .partition(|r| processes.iter().any(|p| p.id == r.id));
        reg.children = rest;
        mine
    };
    stop_children(children);
}

/// Stops children one by one, the most recently spawned first: spawn order follows dependencies
/// (kube-apiserver hangs in its graceful shutdown if etcd goes away at the same time).
fn stop_children(mut children: Vec<Registered>) {
    children.sort_by_key(|r| std::cmp::Reverse(r.id));
    for r in &mut children {
        signal_group(&mut r.child, Signal::TERM);
        let deadline = Instant::now() + STOP_GRACE;
        while matches!(r.child.try_wait(), Ok(None)) && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(10));
        }
        signal_group(&mut r.child, Signal::KILL);
        let _ = r.child.wait();
    }
}

/// Signals the child's process group, unless the child was reaped already (its pid may have been
/// reused).
fn signal_group(child: &mut Child, signal: Signal) {
    if matches!(child.try_wait(), Ok(None))
        && let Some(pid) = Pid::from_raw(child.id() as i32)
    {
        let _ = rustix::process::kill_process_group(pid, signal);
    }
}

/// The last `lines` lines of a text file, or a note why it cannot be read.
pub(crate) fn log_tail(path: &Path, lines: usize) -> String {
    let file = match File::open(path) {
        Ok(f) => f,
        Err(e) => return format!("(cannot read {}: {e})", path.display()),
    };
    let mut tail = VecDeque::with_capacity(lines);
    for line in BufReader::new(file).lines().map_while(Result::ok) {
        if tail.len() == lines {
            tail.pop_front();
        }
        tail.push_back(line);
    }
    Vec::from(tail).join("\n")
}

/// A temporary directory for certificates, data and logs; removed on drop and at process exit,
/// unless `keep` is set.
#[derive(Debug)]
pub struct WorkDir {
    path: PathBuf,
    keep: bool,
}

impl WorkDir {
    pub(crate) fn new(keep: bool) -> anyhow::Result<WorkDir> {
        remove_stale_dirs();
        let path = tempfile::Builder::new()
            .prefix(WORK_DIR_PREFIX)
            .tempdir()
            .context("creating the control plane's temporary directory")?
            .keep();
        registry().dirs.push((path.clone(), keep));
        if !keep {
            std::fs::write(path.join(OWNER_FILE), std::process::id().to_string())?;
        }
        Ok(WorkDir { path, keep })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }
}

impl Drop for WorkDir {
    fn drop(&mut self) {
        registry().dirs.retain(|(p, _)| p != &self.path);
        remove_dir(&self.path, self.keep);
    }
}

const WORK_DIR_PREFIX: &str = "certsmith-e2e-";
/// Holds the pid of the process that owns a work dir that is to be removed.
const OWNER_FILE: &str = "owner.pid";

/// Removes the work dirs of test processes that died from a signal (their children died with
/// them, through PDEATHSIG, but `atexit` did not run). Kept work dirs have no owner file.
fn remove_stale_dirs() {
    let Ok(entries) = std::fs::read_dir(std::env::temp_dir()) else {
        return;
    };
    for entry in entries.flatten() {
        let path = entry.path();
        let ours = path
            .file_name()
            .and_then(|n| n.to_str())
            .is_some_and(|n| n.starts_with(WORK_DIR_PREFIX));
        let owner = ours
            .then(|| std::fs::read_to_string(path.join(OWNER_FILE)).ok())
            .flatten()
            .and_then(|pid| pid.trim().parse::<u32>().ok());
        if let Some(pid) = owner
            && !Path::new(&format!("/proc/{pid}")).exists()
        {
            let _ = std::fs::remove_dir_all(&path);
        }
    }
}

fn remove_dir(path: &Path, keep: bool) {
    if keep {
        eprintln!("certsmith-e2e: kept {}", path.display());
    } else {
        let _ = std::fs::remove_dir_all(path);
    }
}

/// `N` different free TCP ports on 127.0.0.1: all are bound at once, then released.
pub fn free_ports<const N: usize>() -> anyhow::Result<[u16; N]> {
    let listeners = (0..N)
        .map(|_| std::net::TcpListener::bind("127.0.0.1:0"))
        .collect::<io::Result<Vec<_>>>()
        .context("finding free loopback ports")?;
    let mut ports = [0; N];
    for (port, l) in ports.iter_mut().zip(&listeners) {
        *port = l.local_addr()?.port();
    }
    Ok(ports)
}
