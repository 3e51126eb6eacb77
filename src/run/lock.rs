//! One writer per run directory: an advisory `flock` on `RUN/.lock`, held for as long as a
//! process trains in the directory, and naming that process (`pid@host`) in the file.
//!
//! A second writer (a duplicated Slurm array task, a requeued job racing its predecessor, the
//! same command typed twice) is refused with an error that names the directory, the pid and
//! the host. The kernel drops the lock when its holder exits, however it exits (SIGKILL
//! included), so a stale `.lock` file never blocks anyone: only a live holder does. `flock`
//! works across machines on NFS (Linux emulates it with NFS byte-range locks) and on Lustre and
//! GPFS when mounted with locking on, which is how cluster home and scratch file systems are
//! mounted.

use std::fs::{File, OpenOptions};
use std::io::{Read, Seek, SeekFrom, Write};
use std::os::fd::AsRawFd;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

/// The exit status of `marl train` and `marl sweep task` refused because another process holds
/// the run directory.
pub const EXIT_BUSY: u8 = 4;

/// The lock file's name inside a run directory.
pub const LOCK_FILE: &str = ".lock";

/// How long an acquisition retries before refusing: long enough to outlast a probe by
/// [`holder`] (microseconds), far shorter than any training.
const RETRY_FOR: Duration = Duration::from_millis(500);

/// Another process holds the directory.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Busy {
    /// The run directory.
    pub dir: PathBuf,
    /// What the holder wrote: `pid@host` (empty if it had not written it yet).
    pub holder: String,
}

impl std::fmt::Display for Busy {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let (pid, host) = self.holder.split_once('@').unwrap_or(("?", "?"));
        write!(
            f,
            "{} is in use: process {pid} on host {host} is training in it (lock {}); wait \
             for it to end or stop it (kill -TERM {pid} on {host} checkpoints and exits)",
            self.dir.display(),
            self.dir.join(LOCK_FILE).display()
        )
    }
}

impl std::error::Error for Busy {}

/// A held lock; dropping it (or exiting) releases it.
#[derive(Debug)]
pub struct RunLock {
    _file: File,
    path: PathBuf,
}

impl RunLock {
    /// Locks `dir` (which must exist) for this process, or fails with [`Busy`] (downcast the
    /// error to tell) when another process holds it.
    pub fn acquire(dir: &Path) -> anyhow::Result<Self> {
        use anyhow::Context;
        let path = dir.join(LOCK_FILE);
        let mut file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(&path)
            .with_context(|| format!("cannot open the lock file {}", path.display()))?;
        let start = Instant::now();
        loop {
            match try_flock(&file, libc::LOCK_EX) {
                Ok(true) => break,
                Ok(false) if start.elapsed() < RETRY_FOR => {
                    std::thread::sleep(Duration::from_millis(50))
                }
                Ok(false) => {
                    return Err(Busy {
                        dir: dir.to_path_buf(),
                        holder: read_holder(&mut file),
                    }
                    .into())
                }
                Err(e) => return Err(e).with_context(|| format!("cannot lock {}", path.display())),
            }
        }
        let me = format!("{}@{}\n", std::process::id(), hostname());
        file.set_len(0)
            .and_then(|()| file.seek(SeekFrom::Start(0)))
            .and_then(|_| file.write_all(me.as_bytes()))
            .and_then(|()| file.flush())
            .with_context(|| format!("cannot write {}", path.display()))?;
        Ok(Self { _file: file, path })
    }

    /// The lock file.
    pub fn path(&self) -> &Path {
        &self.path
    }
}

/// Who holds `dir` now: `Some("pid@host")` while a process holds its lock, `None` when nobody
/// does (no lock file, or a stale one). Probes with a shared lock held for microseconds.
pub fn holder(dir: &Path) -> Option<String> {
    let mut file = File::open(dir.join(LOCK_FILE)).ok()?;
    match try_flock(&file, libc::LOCK_SH) {
        Ok(true) => None, // released when `file` closes
        Ok(false) => Some(read_holder(&mut file)),
        Err(_) => None,
    }
}

/// `flock(fd, op | LOCK_NB)`: Ok(true) when taken, Ok(false) when another holder has it.
fn try_flock(file: &File, op: libc::c_int) -> std::io::Result<bool> {
    loop {
        // SAFETY: the descriptor is open for the duration of the call; flock has no other
        // preconditions.
        let rc = unsafe { libc::flock(file.as_raw_fd(), op | libc::LOCK_NB) };
        if rc == 0 {
            return Ok(true);
        }
        let err = std::io::Error::last_os_error();
        match err.raw_os_error() {
            Some(libc::EWOULDBLOCK) => return Ok(false),
            Some(libc::EINTR) => continue,
            _ => return Err(err),
        }
    }
}

fn read_holder(file: &mut File) -> String {
    let mut text = String::new();
    let _ = file.seek(SeekFrom::Start(0));
    let _ = file.read_to_string(&mut text);
    text.trim().to_string()
}

/// This machine's short host name (what Slurm calls the node).
pub fn hostname() -> String {
    let mut buf = [0u8; 256];
    // SAFETY: the buffer is valid for `len` bytes; gethostname writes at most that many.
    let rc = unsafe { libc::gethostname(buf.as_mut_ptr().cast(), buf.len()) };
    if rc != 0 {
        return "unknown".into();
    }
    let end = buf.iter().position(|&b| b == 0).unwrap_or(buf.len());
    let name = String::from_utf8_lossy(&buf[..end]).to_string();
    name.split('.').next().unwrap_or("unknown").to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_second_holder_is_refused_with_pid_and_host_until_the_first_releases() {
        let tmp = tempfile::tempdir().expect("tmp");
        let first = RunLock::acquire(tmp.path()).expect("first lock");
        let me = format!("{}@{}", std::process::id(), hostname());
        assert_eq!(holder(tmp.path()).as_deref(), Some(me.as_str()));
        // flock locks belong to open files, so a second open in this process conflicts too.
        let err = RunLock::acquire(tmp.path()).expect_err("second lock");
        let busy = err.downcast_ref::<Busy>().expect("a Busy error");
        assert_eq!(busy.holder, me);
        let msg = busy.to_string();
        assert!(msg.contains(&tmp.path().display().to_string()), "{msg}");
        assert!(msg.contains(&std::process::id().to_string()), "{msg}");
        assert!(msg.contains(&hostname()), "{msg}");
        drop(first);
        assert_eq!(
            holder(tmp.path()),
            None,
            "a released lock is stale, not held"
        );
        let again = RunLock::acquire(tmp.path()).expect("lock after release");
        assert!(again.path().ends_with(LOCK_FILE));
    }
}
