//! Stop requests from outside: SIGINT (Ctrl-C), SIGTERM (Slurm's preemption, `scancel`,
//! `kill`) and SIGUSR1 (the warning Slurm sends before a time limit, `--signal=USR1@90`) all
//! set one flag, which the training loop reads after each update: it checkpoints and returns
//! `interrupted`, and the command exits with [`EXIT_STOPPED`] so that a batch script (and
//! Slurm) can tell "stopped, resume me" from success and from failure.
//!
//! A second Ctrl-C kills at once (exit 130). Repeated SIGTERM or SIGUSR1 do not: Slurm signals
//! every process of a job, and a wrapper script forwards what it receives, so several may
//! arrive while the checkpoint is being written.

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;

use anyhow::{Context, Result};
use signal_hook::consts::{SIGINT, SIGTERM, SIGUSR1};

/// The exit status of a run stopped by a signal after writing its checkpoint (resume it).
pub const EXIT_STOPPED: u8 = 3;

/// The flag the trainer polls, and which signal set it.
#[derive(Debug, Clone)]
pub struct StopSignal {
    /// Set by the first stop signal.
    pub flag: Arc<AtomicBool>,
    signal: Arc<AtomicUsize>,
}

impl StopSignal {
    /// Installs the handlers; call once per process.
    pub fn install() -> Result<Self> {
        let flag = Arc::new(AtomicBool::new(false));
        let signal = Arc::new(AtomicUsize::new(0));
        // Registered before the flag itself: with the flag already set, a second Ctrl-C exits.
        signal_hook::flag::register_conditional_shutdown(SIGINT, 130, flag.clone())
            .context("cannot install the SIGINT handler")?;
        for sig in [SIGINT, SIGTERM, SIGUSR1] {
            signal_hook::flag::register_usize(sig, signal.clone(), sig as usize)
                .context("cannot install a signal handler")?;
            signal_hook::flag::register(sig, flag.clone())
                .context("cannot install a signal handler")?;
        }
        Ok(Self { flag, signal })
    }

    /// The name of the signal that asked to stop, if one did.
    pub fn received(&self) -> Option<&'static str> {
        match self.signal.load(Ordering::SeqCst) as i32 {
            0 => None,
            SIGINT => Some("SIGINT"),
            SIGTERM => Some("SIGTERM"),
            SIGUSR1 => Some("SIGUSR1"),
            _ => Some("a signal"),
        }
    }
}
