//! The `marl` binary: parse the command line, set up logging, run, map errors to an exit code.

use std::process::ExitCode;

use clap::Parser;

// glibc maps and unmaps every large tensor buffer; mimalloc reuses them (27 -> 15 ms per
// update, docs/candle.md section 3.1).
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> ExitCode {
    // candle's intra-op threads gain nothing at these sizes and fight the environment workers
    // for the second core: one thread, set before the first tensor op reads them.
    for var in ["RAYON_NUM_THREADS", "CANDLE_NUM_THREADS"] {
        if std::env::var_os(var).is_none() {
            // SAFETY: no other thread exists yet.
            unsafe { std::env::set_var(var, "1") };
        }
    }
    let cli = marl::cli::Cli::parse();
    marl::cli::logging::init(cli.global.verbose, cli.global.quiet);
    match marl::cli::run(cli) {
        Ok(code) => code,
        Err(err) => {
            // A closed pipe (`marl envs | head`) is not an error.
            if err.chain().any(|e| {
                e.downcast_ref::<std::io::Error>()
                    .is_some_and(|io| io.kind() == std::io::ErrorKind::BrokenPipe)
            }) {
                return ExitCode::SUCCESS;
            }
            eprintln!("error: {err:#}");
            ExitCode::from(2)
        }
    }
}
