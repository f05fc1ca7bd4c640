//! `hybridlab run [PATH|ID ...]`: replay scenario files, folders or ids (default: `./scenarios`, or
//! the catalogue embedded in the binary outside a checkout) against the embedded mock EOP, in
//! parallel, and print a verdict table (or JSON / JUnit XML).
//!
//! Exit codes: 0 every scenario reproduced (or skipped), 1 any not reproduced, 2 a usage or input
//! error (a file that does not load, a path that does not exist).

use std::io::{IsTerminal, Write};
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::atomic::{AtomicUsize, Ordering};

use anyhow::Context;
use harness::report;
use harness::report::explain::Style;
use harness::scenario::runner::{default_threads, run_parallel};
use harness::scenario::{ScenarioOutcome, ScenarioResult, TransportKind, discover, run_file};

use super::catalogue::{Catalogue, did_you_mean};

/// How `hybridlab run` prints its results.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub(crate) enum Format {
    /// The verdict table: one line per scenario, failed expectations below it, a summary.
    Human,
    /// One JSON document: every scenario with its checks and diagnosis, and the summary.
    Json,
    /// JUnit XML for CI: one test case per scenario, failures with expected and actual.
    Junit,
}

/// Arguments of `hybridlab run`.
#[derive(Debug, clap::Args)]
pub(crate) struct Args {
    /// Scenario files, folders or ids (default: ./scenarios when it is there, else the
    /// catalogue embedded in the binary; an id is looked up there).
    paths: Vec<PathBuf>,
    /// How to print the results: the verdict table, JSON or JUnit XML.
    #[arg(long, value_enum, default_value = "human")]
    format: Format,
    /// Write each scenario's artefacts into DIR/SCENARIO_ID/.
    #[arg(long, value_name = "DIR")]
    out: Option<PathBuf>,
    /// Run only scenarios whose id, path or tags contain TEXT.
    #[arg(long, value_name = "TEXT")]
    filter: Option<String>,
    /// Carry the sessions over in-memory streams (virtual time) or real loopback sockets.
    #[arg(long, value_name = "memory|tcp")]
    transport: Option<TransportKind>,
    /// Worker threads (default: available parallelism).
    #[arg(long, value_name = "N")]
    jobs: Option<usize>,
    /// Run shard I of N (1-based) of the selected scenarios, sorted by path: the k-th with
    /// k mod N == I - 1, so N CI jobs with 1/N .. N/N cover each scenario exactly once.
    #[arg(long, value_name = "I/N")]
    shard: Option<String>,
}

pub(crate) fn run(args: Args) -> anyhow::Result<ExitCode> {
    let mut catalogue: Option<Catalogue> = None;
    let mut files = Vec::new();
    let mut wheres = Vec::new();
    if args.paths.is_empty() {
        let c = catalogue.insert(Catalogue::open(None)?);
        files = c.files()?;
        wheres.push(c.describe());
    }
    for p in &args.paths {
        if p.exists() {
            files.extend(discover(p).map_err(|e| anyhow::anyhow!("{e}"))?);
            wheres.push(p.display().to_string());
        } else if looks_like_a_path(p) {
            anyhow::bail!("{}: no such file or folder", p.display());
        } else {
            // not a path: an id of the catalogue
            let c = match &mut catalogue {
                Some(c) => c,
                None => catalogue.insert(Catalogue::open(None)?),
            };
            files.push(c.find(&p.to_string_lossy())?);
            wheres.push(c.describe());
        }
    }
    wheres.dedup();
    if let Some(f) = &args.filter {
        let f = f.to_ascii_lowercase();
        // what a filter could have meant: the ids (file names) and the folders
        let mut all: Vec<String> = files
            .iter()
            .flat_map(|p| {
                let folder = p.parent().and_then(Path::file_name);
                [p.file_stem(), folder]
            })
            .flatten()
            .map(|s| s.to_string_lossy().into_owned())
            .collect();
        all.sort();
        all.dedup();
        files.retain(|p| {
            let text = p.display().to_string().to_ascii_lowercase();
            text.contains(&f) || tags_contain(p, &f)
        });
        if files.is_empty() {
            let hint = did_you_mean(&f, &all)
                .map(|s| format!("; did you mean {s}?"))
                .unwrap_or_default();
            anyhow::bail!("no scenario in {} matches `{f}`{hint}", wheres.join(", "));
        }
    }
    if files.is_empty() {
        anyhow::bail!("no scenario files found in {}", wheres.join(", "));
    }
    if let Some(s) = &args.shard {
        let (i, n) = super::fuzz::parse_shard(s)?;
        files.sort();
        files.dedup();
        files = files
            .into_iter()
            .enumerate()
            .filter(|(k, _)| *k as u64 % n == i - 1)
            .map(|(_, p)| p)
            .collect();
        if files.is_empty() {
            // more shards than scenarios: an empty shard is not an error
            println!("shard {i}/{n}: no scenario");
            return Ok(ExitCode::SUCCESS);
        }
    }

    if let Some(dir) = &args.out {
        // before the run, so a bad --out fails at once
        std::fs::create_dir_all(dir)
            .with_context(|| format!("creating --out {}", dir.display()))?;
    }
    let progress = (std::io::stderr().is_terminal() && files.len() > 5).then(|| {
        let pb = indicatif::ProgressBar::new(files.len() as u64);
        pb.set_style(
            indicatif::ProgressStyle::with_template("{bar:40} {pos}/{len} {wide_msg}")
                .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar()),
        );
        pb
    });
    let done = AtomicUsize::new(0);
    #[allow(clippy::disallowed_methods)] // the wall time of the whole run, for the report
    let started = std::time::Instant::now();
    let threads = args.jobs.unwrap_or_else(default_threads);
    let transport = args.transport;
    let results: Vec<ScenarioResult> = run_parallel(&files, threads, |_, p| {
        let r = run_file(p, transport);
        done.fetch_add(1, Ordering::Relaxed);
        if let Some(pb) = &progress {
            pb.inc(1);
            pb.set_message(r.id.clone());
        }
        r
    });
    if let Some(pb) = &progress {
        pb.finish_and_clear();
    }
    let wall_ms = started.elapsed().as_millis();

    if let Some(dir) = &args.out {
        for r in &results {
            if let (Some(s), Some(rep)) = (&r.scenario, &r.replay) {
                let svg = report::svg::sequence_svg(s, rep);
                report::write_scenario_dir(&dir.join(&r.id), s, rep, &svg)
                    .with_context(|| format!("writing the artefacts of {}", r.id))?;
            }
            if let (Some(s), Some(rep)) = (&r.scenario, &r.exo_replay) {
                let svg = report::exo::sequence_svg(s, rep);
                report::exo::write_scenario_dir(&dir.join(&r.id), s, rep, &svg)
                    .with_context(|| format!("writing the artefacts of {}", r.id))?;
            }
        }
    }

    let text = match args.format {
        Format::Human => {
            report::table::render_width(&results, &Style::for_stdout(), wall_ms, table_width())
        }
        Format::Json => report::json::render(&results, wall_ms),
        Format::Junit => report::junit::render(&results, wall_ms),
    };
    let mut out = std::io::stdout().lock();
    out.write_all(text.as_bytes())?;
    if !text.ends_with('\n') {
        out.write_all(b"\n")?;
    }
    out.flush()?;

    let code = if results.iter().any(|r| r.outcome == ScenarioOutcome::Error) {
        2
    } else if results
        .iter()
        .any(|r| r.outcome == ScenarioOutcome::NotReproduced)
    {
        1
    } else {
        0
    };
    Ok(ExitCode::from(code))
}

/// The verdict table's width: `COLUMNS`, else the terminal's, else 100 (a pipe or a file).
fn table_width() -> usize {
    if let Some(c) = std::env::var("COLUMNS")
        .ok()
        .and_then(|v| v.trim().parse::<usize>().ok())
        .filter(|c| *c > 0)
    {
        return c;
    }
    if std::io::stdout().is_terminal()
        && let Some((_, cols)) = console::Term::stdout().size_checked()
    {
        return usize::from(cols);
    }
    100
}

/// Whether an argument that does not exist was meant as a path (not a scenario id).
fn looks_like_a_path(p: &Path) -> bool {
    p.components().count() > 1 || p.extension().is_some_and(|e| e == "toml")
}

/// Whether the file's `tags = [...]` line mentions `needle` (a cheap look before loading).
fn tags_contain(path: &Path, needle: &str) -> bool {
    std::fs::read_to_string(path).is_ok_and(|t| {
        t.lines()
            .filter(|l| l.trim_start().starts_with("tags"))
            .any(|l| l.to_ascii_lowercase().contains(needle))
    })
}
