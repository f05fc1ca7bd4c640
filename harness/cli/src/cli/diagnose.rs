//! `hybridlab diagnose PATH ...`: read artefacts (folders or files, kinds by content) and print the
//! findings, root cause first.
//!
//! Exit codes: 0 no finding at the `--fail-on` level (default: error), 1 at least one, 2 an input
//! that cannot be read, or nothing recognised at all (every file is then listed with the reason).

use std::io::{IsTerminal, Write};
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;
use hybridlab_diagnose::{Options, Severity, diagnose_paths, render};

/// How `hybridlab diagnose` prints its findings.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub(crate) enum Format {
    /// Ranked findings with evidence, explanation and fix.
    Human,
    /// `{"findings":[...],"inputs":[...],"skipped":[...]}`.
    Json,
    /// Markdown for a ticket: findings, evidence quoted, fixes as code blocks.
    Markdown,
}

/// The severity from which `hybridlab diagnose` exits 1.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub(crate) enum FailOn {
    /// Exit 1 when a finding of severity error is reported.
    Error,
    /// Exit 1 when an error or a warning is reported.
    Warning,
}

/// Arguments of `hybridlab diagnose`.
#[derive(Debug, clap::Args)]
pub(crate) struct Args {
    /// Files or folders: protocol logs, connectivity logs, certificate, queue and connector listings.
    #[arg(required = true, value_name = "PATH")]
    paths: Vec<PathBuf>,
    /// How to print the findings: ranked text for people, or JSON.
    #[arg(long, value_enum, default_value = "human")]
    format: Format,
    /// Reference time for expiry rules (ISO 8601, e.g. 2019-05-02T06:40:07Z); default: the newest
    /// time in the logs.
    #[arg(long, value_name = "TIME", value_parser = parse_time)]
    now: Option<time::OffsetDateTime>,
    /// Exit 1 from this severity on (for CI): `error` (default) or `warning`.
    #[arg(long, value_enum, default_value = "error")]
    fail_on: FailOn,
}

fn parse_time(s: &str) -> Result<time::OffsetDateTime, String> {
    hybridlab_artefacts::ps::parse_iso(s.trim())
        .or_else(|| {
            time::OffsetDateTime::parse(s.trim(), &time::format_description::well_known::Rfc3339)
                .ok()
        })
        .ok_or_else(|| format!("`{s}` is not an ISO 8601 time (2019-05-02T06:40:07Z)"))
}

pub(crate) fn run(args: Args) -> anyhow::Result<ExitCode> {
    let mut opts = Options::default();
    if let Some(t) = args.now {
        opts = opts.with_now(t);
    }
    let report = diagnose_paths(&args.paths, &opts).context("reading the artefacts")?;
    let text = match args.format {
        Format::Human => {
            let color = std::io::stdout().is_terminal()
                && std::env::var_os("NO_COLOR").is_none_or(|v| v.is_empty());
            render::human(&report, color)
        }
        Format::Markdown => render::markdown(&report),
        Format::Json => {
            let mut s = render::json(&report);
            s.push('\n');
            s
        }
    };
    let mut out = std::io::stdout().lock();
    out.write_all(text.as_bytes())?;
    out.flush()?;
    let level = match args.fail_on {
        FailOn::Error => Severity::Error,
        FailOn::Warning => Severity::Warning,
    };
    Ok(if report.nothing_read() {
        ExitCode::from(2)
    } else if report.fails_at(level) {
        ExitCode::from(1)
    } else {
        ExitCode::SUCCESS
    })
}
