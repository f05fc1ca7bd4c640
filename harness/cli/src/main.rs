//! `hybridlab`: replay Exchange hybrid mail-flow failures against a mock EOP and diagnose real ones.
//!
//! Exit codes: 0 success (every scenario met its expectation / no error finding), 1 failures or
//! error findings, 2 usage or input error.

use std::process::ExitCode;

use clap::{CommandFactory, Parser, Subcommand};

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
    /// Replay scenario files, folders or ids (default: the catalogue) against the embedded mock EOP.
    Run(cli::run::Args),
    /// List the catalogue's scenario ids with their direction, tags and title.
    List(cli::list::Args),
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
    /// Print a shell completion script (bash, zsh, fish, powershell, elvish).
    Completions(cli::completions::Args),
    /// Print the man page (roff) to standard output.
    Man,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    init_logging(cli.verbose);
    let result = match cli.command {
        Command::Run(a) => cli::run::run(a),
        Command::List(a) => cli::list::run(a),
        Command::Explain(a) => cli::explain::run(a),
        Command::Diagnose(a) => cli::diagnose::run(a),
        Command::Send(a) => cli::send::run(*a),
        Command::Receive(a) => cli::receive::run(*a),
        Command::Fuzz(a) => cli::fuzz::run(a),
        Command::Completions(a) => cli::completions::run(a, Cli::command()),
        Command::Man => cli::completions::man(Cli::command()),
    };
    match result {
        Ok(code) => code,
        Err(e) => {
            if is_broken_pipe(&e) {
                return ExitCode::SUCCESS;
            }
            eprintln!("hybridlab: {}", cause_once(&e));
            ExitCode::from(2)
        }
    }
}

/// The error and its causes joined with ": ", each cause once: a cause whose text the message
/// before it already contains (an error type that prints its source, as many `io` wrappers do)
/// is left out, so no "X: X".
fn cause_once(e: &anyhow::Error) -> String {
    let mut out = String::new();
    for cause in e.chain() {
        let text = cause.to_string();
        if text.is_empty() || out.contains(&text) {
            continue;
        }
        if !out.is_empty() {
            out.push_str(": ");
        }
        out.push_str(&text);
    }
    out
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

#[cfg(test)]
mod tests {
    use super::cause_once;

    #[derive(Debug)]
    struct Wrapper(std::io::Error);
    impl std::fmt::Display for Wrapper {
        fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            write!(f, "/nonexistent: {}", self.0)
        }
    }
    impl std::error::Error for Wrapper {
        fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
            Some(&self.0)
        }
    }

    #[test]
    fn a_cause_is_stated_once() {
        let io = std::io::Error::new(std::io::ErrorKind::NotFound, "No such file");
        let e = anyhow::Error::new(Wrapper(io)).context("reading the artefacts");
        assert_eq!(
            cause_once(&e),
            "reading the artefacts: /nonexistent: No such file"
        );
        let plain = anyhow::anyhow!("no scenario").context("--scenario x");
        assert_eq!(cause_once(&plain), "--scenario x: no scenario");
    }
}
