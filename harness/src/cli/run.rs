//! `hybridlab run` (not implemented yet).

use std::process::ExitCode;

/// Arguments of `hybridlab run`.
#[derive(Debug, clap::Args)]
pub(crate) struct Args {
    /// Inputs.
    paths: Vec<std::path::PathBuf>,
}

pub(crate) fn run(args: Args) -> anyhow::Result<ExitCode> {
    anyhow::bail!(
        "`hybridlab run` is not implemented yet ({} path(s) given)",
        args.paths.len()
    )
}
