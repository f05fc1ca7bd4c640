//! `hybridlab`: replay Exchange hybrid mail-flow failures against a mock EOP and diagnose real ones.
//!
//! Exit codes: 0 success (every scenario met its expectation / no error finding), 1 failures or
//! error findings, 2 usage or input error.

use std::process::ExitCode;

use clap::{Parser, Subcommand};

mod cli;

/// Replays Exchange hybrid mail-flow failures end to end and diagnoses real ones.
#[derive(Debug, Parser)]
#[command(name = "hybridlab", version, about, propagate_version = true)]
struct Cli {
    /// More logging on stderr (-v info, -vv debug); RUST_LOG overrides.
    #[arg(short, long, action = clap::ArgAction::Count, global = true)]
    verbose: u8,
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Replay scenario files or folders (default scenarios/) against the embedded mock EOP.
    Run(cli::run::Args),
    /// Replay one scenario narrated step by step, for a demo.
    Explain(cli::explain::Args),
    /// Read artefacts (protocol logs, listings, queues) and name the root cause.
    Diagnose(cli::diagnose::Args),
    /// One Exchange-like delivery against any SMTP server, writing Exchange's artefacts.
    Send(Box<cli::send::Args>),
    /// Serve an Exchange-like receive side (what Exchange Online delivers to) on a socket.
    Receive(Box<cli::receive::Args>),
    /// Generated scenarios (proptest) replayed, diagnosed and judged against their ground truth.
    Fuzz(cli::fuzz::Args),
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    init_logging(cli.verbose);
    let result = match cli.command {
        Command::Run(a) => cli::run::run(a),
        Command::Explain(a) => cli::explain::run(a),
        Command::Diagnose(a) => cli::diagnose::run(a),
        Command::Send(a) => cli::send::run(*a),
        Command::Receive(a) => cli::receive::run(*a),
        Command::Fuzz(a) => cli::fuzz::run(a),
    };
    match result {
        Ok(code) => code,
        Err(e) => {
            if is_broken_pipe(&e) {
                return ExitCode::SUCCESS;
            }
            eprintln!("hybridlab: {e:#}");
            ExitCode::from(2)
        }
    }
}

fn init_logging(verbose: u8) {
    use tracing_subscriber::EnvFilter;
    let default = match verbose {
        0 => "warn",
        1 => "info",
        _ => "debug",
    };
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new(default));
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .try_init();
}

fn is_broken_pipe(e: &anyhow::Error) -> bool {
    e.chain().any(|c| {
        c.downcast_ref::<std::io::Error>()
            .is_some_and(|io| io.kind() == std::io::ErrorKind::BrokenPipe)
    })
}
