//! `hybridlab completions SHELL` and `hybridlab man`: shell completions and a man page generated
//! from the command line's own definition, so they never drift from it.
//!
//! Install, for example: `hybridlab completions bash > /etc/bash_completion.d/hybridlab`,
//! `hybridlab man > /usr/local/share/man/man1/hybridlab.1`.

use std::io::Write;
use std::process::ExitCode;

/// Arguments of `hybridlab completions`.
#[derive(Debug, clap::Args)]
pub(crate) struct Args {
    /// The shell to write completions for.
    #[arg(value_enum)]
    shell: clap_complete::Shell,
}

/// Writes the completion script for `args.shell` to standard output.
pub(crate) fn run(args: Args, mut command: clap::Command) -> anyhow::Result<ExitCode> {
    let mut out = std::io::stdout().lock();
    clap_complete::generate(args.shell, &mut command, "hybridlab", &mut out);
    out.flush()?;
    Ok(ExitCode::SUCCESS)
}

/// Writes the man page (roff, section 1) to standard output.
pub(crate) fn man(command: clap::Command) -> anyhow::Result<ExitCode> {
    let mut out = std::io::stdout().lock();
    clap_mangen::Man::new(command).render(&mut out)?;
    out.flush()?;
    Ok(ExitCode::SUCCESS)
}
