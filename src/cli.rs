//! The command line: clap definitions and the dispatch to each command.

use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Result;
use clap::{Args, Parser, Subcommand};
use marl_envs::{parity, registry};

/// Multi-agent reinforcement learning: MAPPO with centralized critics, and IPPO.
#[derive(Debug, Parser)]
#[command(name = "marl", version, about, long_about = None)]
pub struct Cli {
    /// Options every command takes.
    #[command(flatten)]
    pub global: GlobalArgs,
    /// What to do.
    #[command(subcommand)]
    pub command: Command,
}

/// Options every command takes.
#[derive(Debug, Args)]
pub struct GlobalArgs {
    /// More log output (-v debug, -vv trace); RUST_LOG overrides.
    #[arg(short, long, global = true, action = clap::ArgAction::Count)]
    pub verbose: u8,
    /// Only errors.
    #[arg(short, long, global = true)]
    pub quiet: bool,
}

/// The commands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// List the built-in environments, or check them against recorded reference episodes.
    Envs {
        /// What to do with the environments (default: list them).
        #[command(subcommand)]
        action: Option<EnvsCommand>,
    },
}

/// `marl envs ...`
#[derive(Debug, Subcommand)]
pub enum EnvsCommand {
    /// List the registry: id, agents, observation and action spaces, one line each.
    List,
    /// Replay episodes recorded from the Python reference and report, per file, PASS or the
    /// first mismatch (step, agent, index, expected, got). Exits non-zero on any mismatch.
    CheckParity {
        /// Trace files (formats marl-parity-v1, marl-parity-lbf-v1).
        #[arg(required = true)]
        files: Vec<PathBuf>,
    },
}

/// Runs a parsed command line.
pub fn run(cli: Cli) -> Result<ExitCode> {
    match cli.command {
        Command::Envs {
            action: None | Some(EnvsCommand::List),
        } => list_envs(),
        Command::Envs {
            action: Some(EnvsCommand::CheckParity { files }),
        } => check_parity(&files),
    }
}

fn list_envs() -> Result<ExitCode> {
    let mut out = std::io::stdout().lock();
    for entry in registry::REGISTRY {
        let env = (entry.make)(&toml::Table::new())?;
        let spec = env.spec();
        let mut groups: Vec<String> = Vec::new();
        for ty in spec.agent_types() {
            let members: Vec<_> = spec.agents.iter().filter(|a| a.agent_type == ty).collect();
            let a = members[0];
            groups.push(format!(
                "{}x {ty} obs {} act {}",
                members.len(),
                a.obs_dim,
                a.action_space
            ));
        }
        writeln!(
            out,
            "{:<32} {} | state {} | {} steps | {}",
            entry.id,
            groups.join(", "),
            spec.state_dim,
            spec.max_steps,
            entry.summary
        )?;
    }
    Ok(ExitCode::SUCCESS)
}

fn check_parity(files: &[PathBuf]) -> Result<ExitCode> {
    let mut out = std::io::stdout().lock();
    let (mut passed, mut failed) = (0, 0);
    for f in files {
        match parity::check_file(f) {
            Ok(report) if report.passed() => {
                passed += 1;
                writeln!(out, "{report}")?;
            }
            Ok(report) => {
                failed += 1;
                writeln!(out, "{report}")?;
            }
            Err(e) => {
                failed += 1;
                writeln!(out, "ERROR {e}")?;
            }
        }
    }
    writeln!(out, "{passed} passed, {failed} failed")?;
    Ok(if failed == 0 {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}
