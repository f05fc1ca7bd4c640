//! `hybridlab explain` (not implemented yet).

use std::process::ExitCode;

/// Arguments of `hybridlab explain`.
#[derive(Debug, clap::Args)]
pub(crate) struct Args {
    /// Inputs.
    paths: Vec<std::path::PathBuf>,
}

pub(crate) fn run(args: Args) -> anyhow::Result<ExitCode> {
    anyhow::bail!(
        "`hybridlab explain` is not implemented yet ({} path(s) given)",
        args.paths.len()
    )
}
