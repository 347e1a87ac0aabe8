//! Named network namespaces, compatible with iproute2 (`/run/netns/NAME`, so `ip netns exec`
//! works on them), and ways to run code inside one.
//!
//! A thread can enter a namespace with setns(2) without affecting the rest of the process, and
//! a socket stays in the namespace it was created in. So the pattern for async code is: create
//! the socket with [`NetNs::run`], then hand it to the runtime of your choice:
//!
//! ```no_run
//! # fn demo(ns: &qoelab_lab::NetNs) -> std::io::Result<()> {
//! let listener = ns.run(|| std::net::TcpListener::bind("198.18.2.2:8080"))??;
//! listener.set_nonblocking(true)?;
//! // tokio::net::TcpListener::from_std(listener) inside a runtime
//! # Ok(()) }
//! ```

use std::fs::{self, File, OpenOptions};
use std::future::Future;
use std::io;
use std::os::fd::{AsFd, AsRawFd};
use std::os::unix::fs::MetadataExt;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::thread;
use std::time::{Duration, Instant};

use nix::mount::{MntFlags, MsFlags, mount, umount2};
use nix::sched::{CloneFlags, setns, unshare};
use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;

/// Where iproute2 keeps named namespaces.
pub const NETNS_DIR: &str = "/run/netns";

/// An open handle on a named network namespace.
#[derive(Debug)]
pub struct NetNs {
    name: String,
    file: File,
}

impl NetNs {
    /// The bind-mount path of namespace `name`.
    pub fn path_of(name: &str) -> PathBuf {
        Path::new(NETNS_DIR).join(name)
    }

    /// Whether a namespace called `name` exists.
    pub fn exists(name: &str) -> bool {
        Self::path_of(name).exists()
    }

    /// Creates a new, empty namespace called `name`.
    ///
    /// Fails with [`io::ErrorKind::AlreadyExists`] if the name is taken, and with the error of
    /// unshare(2) if the kernel cannot create namespaces.
    pub fn create(name: &str) -> io::Result<NetNs> {
        ensure_netns_dir()?;
        let path = Self::path_of(name);
        OpenOptions::new()
            .write(true)
            .create_new(true)
            .open(&path)?;
        let target = path.clone();
        let made = thread::spawn(move || -> io::Result<()> {
            unshare(CloneFlags::CLONE_NEWNET)?;
            mount(
                Some("/proc/thread-self/ns/net"),
                &target,
                None::<&str>,
                MsFlags::MS_BIND,
                None::<&str>,
            )?;
            Ok(())
        })
        .join()
        .unwrap_or_else(|_| Err(io::Error::other("namespace thread panicked")));
        if let Err(err) = made {
            let _ = fs::remove_file(&path);
            return Err(err);
        }
        Self::open(name)
    }

    /// Opens the existing namespace `name`.
    pub fn open(name: &str) -> io::Result<NetNs> {
        let file = File::open(Self::path_of(name))?;
        Ok(NetNs {
            name: name.to_string(),
            file,
        })
    }

    /// The namespace's name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// A second handle on the same namespace.
    pub fn try_clone(&self) -> io::Result<NetNs> {
        Ok(NetNs {
            name: self.name.clone(),
            file: self.file.try_clone()?,
        })
    }

    /// Runs `f` on a dedicated thread inside the namespace and returns its result.
    ///
    /// Sockets `f` creates belong to the namespace for their whole life.
    pub fn run<F, R>(&self, f: F) -> io::Result<R>
    where
        F: FnOnce() -> R + Send,
        R: Send,
    {
        thread::scope(|scope| {
            let handle = scope.spawn(|| {
                self.enter()?;
                Ok(f())
            });
            match handle.join() {
                Ok(result) => result,
                Err(panic) => std::panic::resume_unwind(panic),
            }
        })
    }

    /// Runs the future made by `f` to completion on a current-thread tokio runtime of its own,
    /// on a dedicated thread inside the namespace.
    pub fn run_async<F, Fut, R>(&self, f: F) -> io::Result<R>
    where
        F: FnOnce() -> Fut + Send,
        Fut: Future<Output = R>,
        R: Send,
    {
        self.run(|| {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()?;
            Ok(runtime.block_on(f()))
        })?
    }

    /// Starts `f` on a new thread inside the namespace and returns at once; for servers and
    /// other long-running work.
    pub fn spawn_thread<F, R>(&self, f: F) -> io::Result<thread::JoinHandle<io::Result<R>>>
    where
        F: FnOnce() -> R + Send + 'static,
        R: Send + 'static,
    {
        let ns = self.try_clone()?;
        Ok(thread::spawn(move || {
            ns.enter()?;
            Ok(f())
        }))
    }

    /// Moves the calling thread into this namespace. Without CAP_SYS_ADMIN the error says
    /// that this is what is missing.
    fn enter(&self) -> io::Result<()> {
        setns(self.file.as_fd(), CloneFlags::CLONE_NEWNET).map_err(|e| {
            if e == nix::errno::Errno::EPERM {
                io::Error::new(
                    io::ErrorKind::PermissionDenied,
                    format!(
                        "entering network namespace {} needs CAP_SYS_ADMIN, which this process lacks",
                        self.name
                    ),
                )
            } else {
                e.into()
            }
        })
    }

    /// Makes `command` enter this namespace before it executes. The handle must outlive the
    /// `spawn` call.
    pub fn prepare(&self, command: &mut Command) {
        let fd = self.file.as_raw_fd();
        // SAFETY: setns(2) is async-signal-safe; the closure allocates nothing.
        unsafe {
            command.pre_exec(move || {
                if libc::setns(fd, libc::CLONE_NEWNET) != 0 {
                    return Err(io::Error::last_os_error());
                }
                Ok(())
            });
        }
    }

    /// The processes (other than this one) whose main thread is in this namespace.
    pub fn pids(&self) -> io::Result<Vec<Pid>> {
        let meta = self.file.metadata()?;
        pids_in(meta.dev(), meta.ino())
    }

    /// Ends every process in the namespace: SIGTERM, then SIGKILL after `grace`.
    pub fn kill_all(&self, grace: Duration) -> io::Result<()> {
        end_processes(&self.pids()?, grace);
        let left = self.pids()?;
        if left.is_empty() {
            Ok(())
        } else {
            Err(io::Error::other(format!(
                "processes {left:?} are still running in namespace {}",
                self.name
            )))
        }
    }
}

impl AsFd for NetNs {
    fn as_fd(&self) -> std::os::fd::BorrowedFd<'_> {
        self.file.as_fd()
    }
}

/// Removes the namespace `name` (its bind mount and file). The namespace itself disappears
/// once no process, thread or socket uses it any more; ending processes is the caller's job.
pub fn delete(name: &str) -> io::Result<()> {
    let path = NetNs::path_of(name);
    match umount2(&path, MntFlags::MNT_DETACH) {
        Ok(()) | Err(nix::errno::Errno::EINVAL) | Err(nix::errno::Errno::ENOENT) => {}
        Err(err) => return Err(err.into()),
    }
    match fs::remove_file(&path) {
        Err(err) if err.kind() != io::ErrorKind::NotFound => Err(err),
        _ => Ok(()),
    }
}

/// The names of all namespaces under [`NETNS_DIR`].
pub fn list() -> io::Result<Vec<String>> {
    let entries = match fs::read_dir(NETNS_DIR) {
        Ok(entries) => entries,
        Err(err) if err.kind() == io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(err) => return Err(err),
    };
    let mut names = Vec::new();
    for entry in entries {
        names.push(entry?.file_name().to_string_lossy().into_owned());
    }
    names.sort();
    Ok(names)
}

/// SIGTERM to each process, then SIGKILL to those still alive after `grace`.
pub fn end_processes(pids: &[Pid], grace: Duration) {
    for pid in pids {
        let _ = kill(*pid, Signal::SIGTERM);
    }
    let deadline = Instant::now() + grace;
    let alive = |pid: &&Pid| Path::new(&format!("/proc/{pid}/ns/net")).exists();
    while pids.iter().any(|p| alive(&p)) && Instant::now() < deadline {
        thread::sleep(Duration::from_millis(20));
    }
    for pid in pids.iter().filter(alive) {
        let _ = kill(*pid, Signal::SIGKILL);
    }
    let deadline = Instant::now() + Duration::from_secs(2);
    while pids.iter().any(|p| alive(&p)) && Instant::now() < deadline {
        thread::sleep(Duration::from_millis(10));
    }
}

fn pids_in(dev: u64, ino: u64) -> io::Result<Vec<Pid>> {
    let me = std::process::id();
    let mut pids = Vec::new();
    for entry in fs::read_dir("/proc")? {
        let entry = entry?;
        let Some(pid) = entry
            .file_name()
            .to_str()
            .and_then(|s| s.parse::<u32>().ok())
        else {
            continue;
        };
        if pid == me {
            continue;
        }
        // Processes come and go while we look; a vanished one is simply not ours to end.
        if let Ok(meta) = fs::metadata(entry.path().join("ns/net"))
            && meta.dev() == dev
            && meta.ino() == ino
        {
            pids.push(Pid::from_raw(pid as i32));
        }
    }
    Ok(pids)
}

/// Makes [`NETNS_DIR`] a shared mount point, as iproute2 does, so that namespaces created here
/// are visible to `ip netns` in other mount namespaces.
fn ensure_netns_dir() -> io::Result<()> {
    fs::create_dir_all(NETNS_DIR)?;
    let shared = || {
        mount(
            Some(""),
            NETNS_DIR,
            Some("none"),
            MsFlags::MS_SHARED | MsFlags::MS_REC,
            None::<&str>,
        )
    };
    match shared() {
        Ok(()) => Ok(()),
        Err(nix::errno::Errno::EINVAL) => {
            mount(
                Some(NETNS_DIR),
                NETNS_DIR,
                Some("none"),
                MsFlags::MS_BIND | MsFlags::MS_REC,
                None::<&str>,
            )?;
            shared().map_err(Into::into)
        }
        Err(err) => Err(err.into()),
    }
}
