//! `hybridlab fuzz`: the generated scenario matrix (proptest cases over the on-premises -> EOP
//! space, each with its ground truth), replayed, diagnosed and judged; every disagreement is shrunk
//! and written as a catalogue TOML file to `--out`. Exit 1 on any disagreement.

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Instant;

use anyhow::{Context, bail};
use harness::fuzz::{FuzzConfig, run as run_fuzz};

#[derive(Debug, clap::Args)]
pub(crate) struct Args {
    /// Cases in the whole run (over every shard).
    #[arg(long, default_value_t = 1000)]
    cases: u64,
    /// The run's seed (the same seed gives the same cases).
    #[arg(long, default_value_t = 1)]
    seed: u64,
    /// Run shard I of N (1-based): the cases k with k mod N == I - 1.
    #[arg(long, value_name = "I/N", default_value = "1/1")]
    shard: String,
    /// Folder for the shrunk scenarios of the disagreements.
    #[arg(long, value_name = "DIR", default_value = "fuzz-out")]
    out: PathBuf,
    /// Worker threads (default: available parallelism).
    #[arg(long, value_name = "N")]
    threads: Option<usize>,
}

/// `I/N` (1-based) as `(I, N)`, for `fuzz --shard` and `run --shard`.
pub(crate) fn parse_shard(s: &str) -> anyhow::Result<(u64, u64)> {
    let (i, n) = s
        .split_once('/')
        .with_context(|| format!("--shard {s:?}: expected I/N, e.g. 1/4"))?;
    let i: u64 = i
        .trim()
        .parse()
        .with_context(|| format!("--shard {s:?}: I"))?;
    let n: u64 = n
        .trim()
        .parse()
        .with_context(|| format!("--shard {s:?}: N"))?;
    if n == 0 || i == 0 || i > n {
        bail!("--shard {s:?}: expected 1 <= I <= N");
    }
    Ok((i, n))
}

pub(crate) fn run(args: Args) -> anyhow::Result<ExitCode> {
    let shard = parse_shard(&args.shard)?;
    let work = std::env::temp_dir().join(format!("hybridlab-fuzz-{}", std::process::id()));
    std::fs::create_dir_all(&work).with_context(|| format!("cannot create {}", work.display()))?;
    let config = FuzzConfig {
        cases: args.cases,
        seed: args.seed,
        shard,
        work_dir: work.clone(),
        threads: args
            .threads
            .unwrap_or_else(harness::scenario::runner::default_threads),
    };
    #[allow(clippy::disallowed_methods)] // the wall time of the run, for the cases/s summary
    let start = Instant::now();
    let summary = run_fuzz(&config, &|id: &str| id.to_string());
    let secs = start.elapsed().as_secs_f64();
    let _ = std::fs::remove_dir_all(&work);
    let n = summary.indices.len();
    println!(
        "fuzz seed {} shard {}/{}: {n} cases ({} with injected causes) in {secs:.1} s ({:.0} cases/s), {} disagreements",
        args.seed,
        shard.0,
        shard.1,
        summary.faulty,
        n as f64 / secs.max(1e-9),
        summary.disagreements.len()
    );
    if let Some((k, e)) = summary.lab_errors.first() {
        bail!(
            "{} cases could not run (a broken lab, not a disagreement); first, case {k}: {e}",
            summary.lab_errors.len()
        );
    }
    if summary.disagreements.is_empty() {
        return Ok(ExitCode::SUCCESS);
    }
    std::fs::create_dir_all(&args.out)
        .with_context(|| format!("cannot create {}", args.out.display()))?;
    for d in &summary.disagreements {
        let file = args
            .out
            .join(format!("fuzz-s{}-c{}.toml", args.seed, d.index));
        std::fs::write(&file, d.toml(args.seed))
            .with_context(|| format!("cannot write {}", file.display()))?;
        println!(
            "case {}: {}\n  shrunk to: {}\n  {}\n  written: {}",
            d.index,
            d.reason,
            d.shrunk.describe(),
            d.original.describe(),
            file.display()
        );
    }
    Ok(ExitCode::from(1))
}

#[cfg(test)]
mod tests {
    use super::parse_shard;

    #[test]
    fn shard_parses_and_refuses_nonsense() {
        assert_eq!(parse_shard("2/4").unwrap(), (2, 4));
        for bad in ["0/4", "5/4", "1/0", "x", "1/x"] {
            assert!(parse_shard(bad).is_err(), "{bad}");
        }
    }
}
