//! Replays parity traces against the built-in environments, as `marl envs check-parity` does,
//! without building the trainer (the environment crate alone builds in seconds).
//!
//! `cargo run -p marl-envs --release --example check_parity -- TRACE.json...`

use std::path::Path;
use std::process::ExitCode;

fn main() -> ExitCode {
    let (mut passed, mut failed) = (0, 0);
    for file in std::env::args().skip(1) {
        match marl_envs::parity::check_file(Path::new(&file)) {
            Ok(report) if report.passed() => {
                passed += 1;
                println!("{report}");
            }
            Ok(report) => {
                failed += 1;
                println!("{report}");
            }
            Err(e) => {
                failed += 1;
                println!("ERROR {e}");
            }
        }
    }
    println!("{passed} passed, {failed} failed");
    if failed == 0 {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    }
}
