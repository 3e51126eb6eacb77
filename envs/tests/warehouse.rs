//! The warehouse's step and reset allocate nothing, crowded floors (ties, swaps, cycles)
//! included. This test binary counts the allocations of its own test thread.

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;
use std::sync::atomic::{AtomicUsize, Ordering};

use marl_envs::StepOut;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

struct Counting;

thread_local! {
    static COUNTING: Cell<bool> = const { Cell::new(false) };
}
static ALLOCATIONS: AtomicUsize = AtomicUsize::new(0);

fn note() {
    if COUNTING.with(Cell::get) {
        ALLOCATIONS.fetch_add(1, Ordering::Relaxed);
    }
}

// SAFETY: every call is forwarded to the system allocator unchanged; counting has no effect on
// the memory handed out.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        note();
        // SAFETY: forwarded with the caller's layout.
        unsafe { System.alloc(layout) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: forwarded with the caller's pointer and layout.
        unsafe { System.dealloc(ptr, layout) }
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        note();
        // SAFETY: forwarded with the caller's arguments.
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static ALLOCATOR: Counting = Counting;

#[test]
fn stepping_and_resetting_allocate_nothing() {
    for id in [
        "rware-tiny-2ag-v2",
        "rware-tiny-12ag-v2",
        "rware-large-8ag-easy-v2",
    ] {
        let mut env = marl_envs::make(id, &toml::Table::new()).expect("make");
        let spec = env.spec().clone();
        let n = spec.num_agents();
        let mut rng = ChaCha8Rng::seed_from_u64(9);
        // Mostly FORWARD, so that robots contest cells and swap.
        let actions: Vec<f32> = (0..3000 * n)
            .map(|_| {
                let u: f64 = rng.random();
                if u < 0.6 {
                    1.0
                } else {
                    rng.random_range(0..5) as f32
                }
            })
            .collect();
        let mut obs = vec![0.0; spec.obs_len()];
        let mut state = vec![0.0; spec.state_dim];
        let (mut r, mut te, mut tr) = (vec![0.0; n], vec![false; n], vec![false; n]);
        env.reset(Some(3), &mut obs);
        COUNTING.with(|c| c.set(true));
        for a in actions.chunks_exact(n) {
            let out = StepOut {
                obs: &mut obs,
                rewards: &mut r,
                terminated: &mut te,
                truncated: &mut tr,
            };
            env.step(a, out).expect("step");
            env.state(&mut state);
            if tr[0] {
                env.reset(None, &mut obs);
            }
        }
        COUNTING.with(|c| c.set(false));
        assert_eq!(ALLOCATIONS.swap(0, Ordering::Relaxed), 0, "{id} allocated");
    }
}
