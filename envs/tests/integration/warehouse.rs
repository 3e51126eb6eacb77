//! The warehouse's step and reset allocate nothing, crowded floors (ties, swaps, cycles)
//! included. This test binary counts the allocations of its own test thread (also for the
//! other modules' allocation tests: [`counting_allocations`]).

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;

use marl_envs::StepOut;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

struct Counting;

thread_local! {
    static COUNTING: Cell<bool> = const { Cell::new(false) };
    static ALLOCATIONS: Cell<usize> = const { Cell::new(0) };
}

fn note() {
    if COUNTING.with(Cell::get) {
        ALLOCATIONS.with(|a| a.set(a.get() + 1));
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

/// The number of allocations `f` makes on this thread.
pub(crate) fn counting_allocations(f: impl FnOnce()) -> usize {
    ALLOCATIONS.with(|a| a.set(0));
    COUNTING.with(|c| c.set(true));
    f();
    COUNTING.with(|c| c.set(false));
    ALLOCATIONS.with(Cell::get)
}

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
        let allocations = counting_allocations(|| {
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
        });
        assert_eq!(allocations, 0, "{id} allocated");
    }
}

/// marl's collision resolution against networkx itself, on 800 random crowded floors where a
/// tie decides who moves (half with several ties on one path), recorded by
/// `scripts/make_rware_move_cases.py` with rware 2.0.0's graph code and networkx 3.6.1.
#[test]
fn collision_resolution_matches_networkx_on_tied_floors() {
    use marl_envs::grid::warehouse::moves::MoveResolver;

    let path =
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/rware_moves.json");
    let v: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(path).expect("read")).expect("json");
    let cases = v["cases"].as_array().expect("cases");
    assert!(cases.len() >= 800);
    let num = |x: &serde_json::Value| x.as_u64().expect("integer") as usize;
    for (k, case) in cases.iter().enumerate() {
        let (w, h) = (num(&case["w"]), num(&case["h"]));
        let robots = case["robots"].as_array().expect("robots");
        let n = robots.len();
        let mut robot_at = vec![0u16; w * h];
        let (mut start, mut target) = (vec![0; n], vec![0; n]);
        for (i, r) in robots.iter().enumerate() {
            start[i] = num(&r[1]) * w + num(&r[0]);
            target[i] = num(&r[3]) * w + num(&r[2]);
            robot_at[start[i]] = i as u16 + 1;
        }
        let expected: Vec<bool> = case["moves"]
            .as_array()
            .expect("moves")
            .iter()
            .map(|m| num(m) == 1)
            .collect();
        let mut moves = vec![false; n];
        MoveResolver::new(n, w * h).resolve(w, &start, &target, &robot_at, &mut moves);
        assert_eq!(moves, expected, "case {k}: {case}");
    }
}
