//! The generated scenario matrix (issue 15, first cut): proptest strategies over the
//! on-premises -> EOP space, each case with its ground truth, replayed and diagnosed in a closed
//! loop and judged by an oracle; disagreements are shrunk and written as catalogue TOML.
//!
//! - [`case`]: the generated [`Case`], its strategy, its TOML and its injected causes.
//! - [`oracle`]: the replay, the diagnosis and the verdict; [`oracle::INTERACTIONS`] is the one
//!   table of causes that hide others.
//!
//! [`run`] draws case `k` from its own RNG seeded by `(seed, k)`, so a case does not depend on
//! which other cases run: shard `I/N` takes the cases with `k mod N == I - 1`.

pub mod case;
pub mod oracle;

use std::path::{Path, PathBuf};

use proptest::strategy::{Strategy, ValueTree};
use proptest::test_runner::{Config, RngAlgorithm, TestRng, TestRunner};

pub use case::{Case, Twin};
pub use oracle::Remap;

/// What `hybridlab fuzz` runs.
#[derive(Debug, Clone)]
pub struct FuzzConfig {
    /// How many cases in the whole run (over every shard).
    pub cases: u64,
    /// The run's seed.
    pub seed: u64,
    /// `(I, N)`: this process runs shard `I` (1-based) of `N`.
    pub shard: (u64, u64),
    /// Where generated files are written while they are loaded.
    pub work_dir: PathBuf,
    /// Worker threads.
    pub threads: usize,
}

/// One disagreement between the oracle and the diagnosis, with the shrunk case.
#[derive(Debug, Clone)]
pub struct Disagreement {
    /// The case's index in the run.
    pub index: u64,
    /// The case as generated.
    pub original: Case,
    /// The smallest case proptest's shrinking found that still disagrees.
    pub shrunk: Case,
    /// What disagrees on the shrunk case.
    pub reason: String,
}

impl Disagreement {
    /// The shrunk case as a catalogue scenario file (its `[expect]` states what the oracle
    /// expects, so the file fails until the disagreement is fixed).
    pub fn toml(&self, seed: u64) -> String {
        let id = format!("fuzz-s{seed}-c{}", self.index);
        let tops = oracle::allowed_tops(&self.shrunk.injected());
        let mut t = format!("# disagreement: {}\n", self.reason.replace('\n', " "));
        t.push_str(&self.shrunk.to_toml(&id, tops.first().copied()));
        t
    }
}

/// The outcome of a run (one shard).
#[derive(Debug, Clone, Default)]
pub struct Summary {
    /// Indices of the cases this shard ran.
    pub indices: Vec<u64>,
    /// Cases with at least one injected cause.
    pub faulty: u64,
    /// The disagreements, shrunk.
    pub disagreements: Vec<Disagreement>,
    /// Cases the lab could not run (case index, error): a broken lab, not a finding.
    pub lab_errors: Vec<(u64, String)>,
}

/// The indices shard `(i, n)` (1-based `i`) takes out of `cases`: `k mod n == i - 1`.
pub fn shard_indices(cases: u64, (i, n): (u64, u64)) -> impl Iterator<Item = u64> {
    let n = n.max(1);
    let i = i.clamp(1, n);
    (0..cases).filter(move |k| k % n == i - 1)
}

fn runner_for(seed: u64, k: u64) -> TestRunner {
    let mut bytes = [0u8; 32];
    bytes[..8].copy_from_slice(&seed.to_le_bytes());
    bytes[8..16].copy_from_slice(&k.to_le_bytes());
    bytes[16..24].copy_from_slice(b"hybridlb");
    TestRunner::new_with_rng(
        Config::default(),
        TestRng::from_seed(RngAlgorithm::ChaCha, &bytes),
    )
}

/// Case `k` of the run seeded `seed` (independent of the shard and of the other cases).
pub fn case_at(seed: u64, k: u64) -> Case {
    let mut runner = runner_for(seed, k);
    case::strategy()
        .new_tree(&mut runner)
        .map(|t| t.current())
        .unwrap_or_else(|_| healthy())
}

/// The healthy base: nothing injected, no noise.
pub fn healthy() -> Case {
    Case {
        twin: Twin::None,
        expired: false,
        issuer_drift: false,
        sender_name_mismatch: false,
        fqdn_host: false,
        throttled_attempts: 0,
    }
}

/// Runs this shard's cases, shrinking each disagreement.
pub fn run(config: &FuzzConfig, remap: Remap<'_>) -> Summary {
    let indices: Vec<u64> = shard_indices(config.cases, config.shard).collect();
    let results = crate::scenario::runner::run_parallel(&indices, config.threads, |_, &k| {
        one(config.seed, k, &config.work_dir, remap)
    });
    let mut summary = Summary {
        indices,
        ..Summary::default()
    };
    for (k, (faulty, d)) in summary.indices.clone().into_iter().zip(results) {
        summary.faulty += u64::from(faulty);
        match d {
            Some(Outcome::Disagrees(d)) => summary.disagreements.push(*d),
            Some(Outcome::LabError(e)) => summary.lab_errors.push((k, e)),
            None => {}
        }
    }
    summary
}

enum Outcome {
    Disagrees(Box<Disagreement>),
    LabError(String),
}

fn one(seed: u64, k: u64, work: &Path, remap: Remap<'_>) -> (bool, Option<Outcome>) {
    let mut runner = runner_for(seed, k);
    let Ok(mut tree) = case::strategy().new_tree(&mut runner) else {
        return (false, None);
    };
    let original = tree.current();
    let name = format!("fuzz-{seed}-{k}");
    let faulty = !original.injected().is_empty();
    let mut reason = match oracle::judge(&original, work, &name, remap) {
        Ok(()) => return (faulty, None),
        Err(oracle::Judged::LabError(e)) => return (faulty, Some(Outcome::LabError(e))),
        Err(oracle::Judged::Disagrees(r)) => r,
    };
    // proptest's shrinking, driven by hand: simplify while the case still disagrees, else
    // step back (complicate); bounded.
    let mut shrunk = original.clone();
    for _ in 0..256 {
        if !tree.simplify() {
            break;
        }
        loop {
            let c = tree.current();
            match oracle::judge(&c, work, &name, remap) {
                Err(oracle::Judged::Disagrees(r)) => {
                    shrunk = c;
                    reason = r;
                    break;
                }
                Ok(()) | Err(oracle::Judged::LabError(_)) => {
                    if !tree.complicate() {
                        break;
                    }
                }
            }
        }
    }
    let d = Disagreement {
        index: k,
        original,
        shrunk,
        reason,
    };
    (faulty, Some(Outcome::Disagrees(Box::new(d))))
}
