//! One module per subcommand; each has `Args` (clap) and `run(Args) -> anyhow::Result<ExitCode>`.

pub(crate) mod catalogue;
pub(crate) mod completions;
pub(crate) mod diagnose;
pub(crate) mod explain;
pub(crate) mod fuzz;
pub(crate) mod list;
pub(crate) mod receive;
pub(crate) mod run;
pub(crate) mod send;
