//! The `marl` binary: parse the command line, set up logging, run, map errors to an exit code.

use std::process::ExitCode;

use clap::Parser;

fn main() -> ExitCode {
    let cli = marl::cli::Cli::parse();
    marl::logging::init(cli.global.verbose, cli.global.quiet);
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
