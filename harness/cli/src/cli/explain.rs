//! `hybridlab explain SCENARIO`: replay one scenario (a file path, or the id of a scenario of the
//! catalogue: `./scenarios`, else the one embedded in the binary) and narrate it for a demo: the certificate selection and why, each SMTP and TLS
//! step from both sides, what EOP decided and why, what the admin sees, the diagnosis and the fix.
//! Colour only when stdout is a terminal and `NO_COLOR` is not set.
//!
//! Exit codes: 0 the scenario was reproduced, 1 it was not, 2 usage or input error.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{Context, bail};
use harness::report::explain::{Style, narrate_with_checks};
use harness::report::svg::sequence_svg;
use harness::scenario::{ScenarioOutcome, TransportKind, load, run_scenario};

use super::catalogue::Catalogue;

/// Arguments of `hybridlab explain`.
#[derive(Debug, clap::Args)]
pub(crate) struct Args {
    /// A scenario file, or the id of a scenario under --dir.
    scenario: String,
    /// Where to look for a scenario given by id (default: ./scenarios when it is there, else
    /// the catalogue embedded in the binary).
    #[arg(long, value_name = "DIR")]
    dir: Option<PathBuf>,
    /// Also write the SVG sequence diagram to FILE.
    #[arg(long, value_name = "FILE")]
    svg: Option<PathBuf>,
    /// Carry the sessions over in-memory streams (virtual time, default) or real loopback
    /// sockets.
    #[arg(long, value_name = "memory|tcp")]
    transport: Option<TransportKind>,
}

pub(crate) fn run(args: Args) -> anyhow::Result<ExitCode> {
    if let Some(svg) = &args.svg {
        check_writable(svg)?;
    }
    let catalogue = Catalogue::open(args.dir.as_deref())?;
    let path = catalogue.find(&args.scenario)?;
    let scenario = load(&path).map_err(|e| anyhow::anyhow!("{e}"))?;
    let result = run_scenario(scenario, args.transport);
    if let (Some(s), Some(r)) = (&result.scenario, &result.exo_replay) {
        let text = harness::report::exo::narrate(s, r, &result.checks, &Style::for_stdout());
        let mut out = std::io::stdout().lock();
        out.write_all(text.as_bytes())?;
        writeln!(out, "\nverdict: {}", result.outcome.as_str())?;
        out.flush()?;
        if let Some(svg) = &args.svg {
            std::fs::write(svg, harness::report::exo::sequence_svg(s, r))
                .with_context(|| format!("writing {}", svg.display()))?;
        }
        return Ok(match result.outcome {
            ScenarioOutcome::Reproduced | ScenarioOutcome::Skipped => ExitCode::SUCCESS,
            ScenarioOutcome::NotReproduced => ExitCode::from(1),
            ScenarioOutcome::Error => ExitCode::from(2),
        });
    }
    let (Some(s), Some(r)) = (&result.scenario, &result.replay) else {
        let why = result.error.as_deref().unwrap_or("no replay");
        if result.outcome == ScenarioOutcome::Skipped {
            println!("{}: skipped: {why}", result.id);
            return Ok(ExitCode::SUCCESS);
        }
        bail!("{}: {why}", path.display());
    };
    let text = narrate_with_checks(s, r, &result.checks, &Style::for_stdout());
    let verdict = match result.outcome {
        ScenarioOutcome::Reproduced => "reproduced",
        ScenarioOutcome::NotReproduced => "NOT reproduced",
        ScenarioOutcome::Error => "error",
        ScenarioOutcome::Skipped => "skipped",
    };
    let mut out = std::io::stdout().lock();
    out.write_all(text.as_bytes())?;
    writeln!(out, "\nverdict: {verdict}")?;
    out.flush()?;
    if let Some(svg) = &args.svg {
        std::fs::write(svg, sequence_svg(s, r))
            .with_context(|| format!("writing {}", svg.display()))?;
    }
    Ok(match result.outcome {
        ScenarioOutcome::Reproduced | ScenarioOutcome::Skipped => ExitCode::SUCCESS,
        ScenarioOutcome::NotReproduced => ExitCode::from(1),
        ScenarioOutcome::Error => ExitCode::from(2),
    })
}

/// Fails, before anything is replayed or narrated, when `file` cannot be written: its folder does
/// not exist or is not writable, or `file` is a folder.
pub(crate) fn check_writable(file: &Path) -> anyhow::Result<()> {
    if file.is_dir() {
        bail!("--svg {}: is a folder, not a file", file.display());
    }
    let folder = match file.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => Path::new("."),
    };
    if !folder.is_dir() {
        bail!(
            "--svg {}: the folder {} does not exist",
            file.display(),
            folder.display()
        );
    }
    match tempfile::NamedTempFile::new_in(folder) {
        Ok(_) => Ok(()),
        Err(e) => {
            // the OS's words, without tempfile's name for its probe file
            let why = e.raw_os_error().map_or_else(
                || e.kind().to_string(),
                |c| std::io::Error::from_raw_os_error(c).to_string(),
            );
            bail!(
                "--svg {}: cannot write in {}: {why}",
                file.display(),
                folder.display()
            )
        }
    }
}
