//! The second core: one persistent helper thread that runs the other half of a [`join`], so
//! that the learner's independent halves (actor and critic passes of a minibatch, actor and
//! critic forwards of a rollout step) run side by side without spawning a thread each time
//! (a spawn maps and faults in a new stack: tens of microseconds, thousands of times a run).
//!
//! The helper spins briefly, then sleeps, between jobs. It serves one caller at a time; a
//! caller that finds it busy (another learner in the same process, or a [`join`] inside a
//! `join`) runs both halves itself. Either way the arithmetic is the same, so the numbers do
//! not depend on it. Handing over a job allocates nothing: the helper runs the caller's
//! closure where it lies, on the caller's stack.
//!
//! [`split`] is the finer-grained hand-over, for the two independent products of one layer's
//! backward: it uses the second core only inside [`with_second_core`], which the caller
//! enters where the core is known to be free (a communicating actor's backward, after the
//! critic's pass has finished), and runs both halves in turn anywhere else.

use std::cell::Cell;
use std::sync::atomic::{AtomicU8, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::thread::{self, Thread};

const IDLE: u8 = 0;
const READY: u8 = 1;
const DONE: u8 = 2;

/// A job on the caller's stack, whose borrows the caller keeps alive until it is done (see
/// [`join`]).
struct Job(*mut (dyn FnMut() + Send + 'static));

// SAFETY: the closure behind the pointer is `Send`; the caller that lent it waits until the
// helper is done with it before it touches it again.
unsafe impl Send for Job {}

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
        if let Some(Job(job)) = job {
            // SAFETY: the caller keeps the closure alive and untouched until DONE (below).
            let job = unsafe { &mut *job };
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
        let mut b = Some(b);
        let slot_ref = &mut slot;
        let mut run = move || {
            if let Some(b) = b.take() {
                *slot_ref = Some(std::panic::catch_unwind(std::panic::AssertUnwindSafe(b)));
            }
        };
        let job: *mut (dyn FnMut() + Send + '_) = &mut run;
        // SAFETY: the job borrows `slot` and whatever `b` borrows, all of which outlive this
        // call, and lives on this stack until its end: `Wait` below blocks until the helper
        // has run it (DONE), also when `a` panics, so nothing is used after it ends.
        let job = unsafe {
            std::mem::transmute::<*mut (dyn FnMut() + Send + '_), *mut (dyn FnMut() + Send)>(job)
        };
        if let Ok(mut c) = h.shared.caller.lock() {
            *c = Some(thread::current());
        }
        if let Ok(mut j) = h.shared.job.lock() {
            *j = Some(Job(job));
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

thread_local! {
    /// Whether [`split`] may use the second core on this thread.
    static SPLIT: Cell<bool> = const { Cell::new(false) };
}

/// Runs `f` with [`split`] handing halves to the second core on this thread (where there is
/// one and it is idle).
pub fn with_second_core<R>(f: impl FnOnce() -> R) -> R {
    struct Restore(bool);
    impl Drop for Restore {
        fn drop(&mut self) {
            SPLIT.with(|s| s.set(self.0));
        }
    }
    let _restore = Restore(SPLIT.with(|s| s.replace(true)));
    f()
}

/// `a` here and `b` on the second core inside [`with_second_core`], both here in turn
/// elsewhere; the results are the same either way. A panic in `b` resumes here.
pub fn split<RA, RB: Send>(a: impl FnOnce() -> RA, b: impl FnOnce() -> RB + Send) -> (RA, RB) {
    if SPLIT.with(Cell::get) {
        let (ra, rb) = join(a, b);
        (ra, rb.unwrap_or_else(|e| std::panic::resume_unwind(e)))
    } else {
        (a(), b())
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
    fn split_gives_the_same_results_inside_and_outside_the_second_cores_scope() {
        let data: Vec<u64> = (0..1000).collect();
        let halves = || {
            split(
                || data[..500].iter().sum::<u64>(),
                || data[500..].iter().map(|x| x * x).sum::<u64>(),
            )
        };
        let outside = halves();
        let inside = with_second_core(halves);
        assert_eq!(outside, inside);
        assert_eq!(outside, (124_750, 291_291_750));
        assert!(!SPLIT.with(Cell::get), "the scope ends with its call");
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
