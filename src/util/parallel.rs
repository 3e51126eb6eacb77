//! The second core: one persistent helper thread that runs the other half of a [`join`], so
//! that the learner's independent halves (actor and critic passes of a minibatch, actor and
//! critic forwards of a rollout step) run side by side without spawning a thread each time
//! (a spawn maps and faults in a new stack: tens of microseconds, thousands of times a run).
//!
//! The helper spins briefly, then sleeps, between jobs. It serves one caller at a time; a
//! caller that finds it busy (another learner in the same process) runs both halves itself.
//! Either way the arithmetic is the same, so the numbers do not depend on it.

use std::sync::atomic::{AtomicU8, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::thread::{self, Thread};

const IDLE: u8 = 0;
const READY: u8 = 1;
const DONE: u8 = 2;

/// A job whose borrows the caller keeps alive until it is done (see [`join`]).
type Job = Box<dyn FnOnce() + Send + 'static>;

struct Shared {
    state: AtomicU8,
    job: Mutex<Option<Job>>,
    caller: Mutex<Option<Thread>>,
}

struct Helper {
    shared: Arc<Shared>,
    thread: Thread,
}

/// The helper, started on first use where the machine has a second core.
fn helper() -> Option<&'static Mutex<Helper>> {
    static HELPER: OnceLock<Option<Mutex<Helper>>> = OnceLock::new();
    HELPER
        .get_or_init(|| {
            if thread::available_parallelism().map_or(1, |n| n.get()) < 2 {
                return None;
            }
            let shared = Arc::new(Shared {
                state: AtomicU8::new(IDLE),
                job: Mutex::new(None),
                caller: Mutex::new(None),
            });
            let s = shared.clone();
            let handle = thread::Builder::new()
                .name("marl-second-core".into())
                .spawn(move || serve(&s))
                .ok()?;
            Some(Mutex::new(Helper {
                shared,
                thread: handle.thread().clone(),
            }))
        })
        .as_ref()
}

fn serve(s: &Shared) {
    loop {
        if !wait_for(&s.state, READY) {
            thread::park();
            continue;
        }
        let job = s.job.lock().map(|mut j| j.take()).unwrap_or(None);
        if let Some(job) = job {
            // A panic is the caller's to see: its half reports it, this thread lives on.
            let _ = std::panic::catch_unwind(std::panic::AssertUnwindSafe(job));
        }
        s.state.store(DONE, Ordering::Release);
        if let Some(t) = s.caller.lock().ok().and_then(|c| c.clone()) {
            t.unpark();
        }
    }
}

/// Spins a little while `state` is not `want`; true once it is.
fn wait_for(state: &AtomicU8, want: u8) -> bool {
    for _ in 0..2_000 {
        if state.load(Ordering::Acquire) == want {
            return true;
        }
        std::hint::spin_loop();
    }
    state.load(Ordering::Acquire) == want
}

/// Runs `a` on this thread and `b` on the second core (or both here, where there is none or
/// it is busy); returns `a`'s result and `b`'s (an error if `b` panicked).
pub fn join<RA, RB: Send>(
    a: impl FnOnce() -> RA,
    b: impl FnOnce() -> RB + Send,
) -> (RA, thread::Result<RB>) {
    let Some(guard) = helper().and_then(|h| h.try_lock().ok()) else {
        let ra = a();
        return (
            ra,
            std::panic::catch_unwind(std::panic::AssertUnwindSafe(b)),
        );
    };
    let h = &*guard;
    let mut slot: Option<thread::Result<RB>> = None;
    {
        let slot_ref = &mut slot;
        let job: Box<dyn FnOnce() + Send + '_> = Box::new(move || {
            *slot_ref = Some(std::panic::catch_unwind(std::panic::AssertUnwindSafe(b)));
        });
        // SAFETY: the job borrows `slot` and whatever `b` borrows, all of which outlive this
        // call: `Wait` below blocks until the helper has run the job (DONE), also when `a`
        // panics, so the borrows are never used after they end.
        let job: Job = unsafe { std::mem::transmute::<Box<dyn FnOnce() + Send + '_>, Job>(job) };
        if let Ok(mut c) = h.shared.caller.lock() {
            *c = Some(thread::current());
        }
        if let Ok(mut j) = h.shared.job.lock() {
            *j = Some(job);
        }
        h.shared.state.store(READY, Ordering::Release);
        h.thread.unpark();
        struct Wait<'a>(&'a Shared);
        impl Drop for Wait<'_> {
            fn drop(&mut self) {
                while !wait_for(&self.0.state, DONE) {
                    thread::park();
                }
                self.0.state.store(IDLE, Ordering::Release);
            }
        }
        let wait = Wait(&h.shared);
        let ra = a();
        drop(wait);
        let rb = slot
            .take()
            .unwrap_or_else(|| Err(Box::new("the second core ran nothing")));
        (ra, rb)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn both_halves_run_and_return_their_results() {
        let data = [1u64, 2, 3];
        for k in 0..200u64 {
            let (a, b) = join(|| data.iter().sum::<u64>() + k, || data.len() as u64 * k);
            assert_eq!(a, 6 + k);
            assert_eq!(b.expect("no panic"), 3 * k);
        }
    }

    #[test]
    fn a_panic_on_the_second_core_is_reported_not_lost() {
        let (a, b) = join(|| 1, || -> u8 { panic!("boom") });
        assert_eq!(a, 1);
        assert!(b.is_err());
        // The helper lives on.
        let (_, b) = join(|| (), || 7);
        assert_eq!(b.expect("ok"), 7);
    }
}
