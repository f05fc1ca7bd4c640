//! The generated scenario matrix: shards partition the run, a bounded run agrees with the
//! diagnosis, and a rule broken on purpose is caught and shrunk to a small scenario.
//! `HYBRIDLAB_FUZZ_CASES=N` makes the bounded run a long one.

use std::collections::BTreeSet;

use harness::fuzz::{FuzzConfig, Twin, case_at, run, shard_indices};

fn config(cases: u64, seed: u64, work: &std::path::Path) -> FuzzConfig {
    FuzzConfig {
        cases,
        seed,
        shard: (1, 1),
        work_dir: work.to_path_buf(),
        threads: 2,
    }
}

#[test]
fn shards_partition_the_cases() {
    let all: BTreeSet<u64> = (0..10_000).collect();
    let mut seen = BTreeSet::new();
    let mut total = 0;
    for i in 1..=4 {
        for k in shard_indices(10_000, (i, 4)) {
            total += 1;
            assert!(seen.insert(k), "case {k} in two shards");
        }
    }
    assert_eq!(total, 10_000);
    assert_eq!(seen, all);
    // a case is the same whichever shard draws it, and differs between seeds somewhere
    assert_eq!(case_at(1, 17), case_at(1, 17));
    assert!((0..50).any(|k| case_at(1, k) != case_at(2, k)));
}

#[test]
fn bounded_run_agrees_with_the_diagnosis() {
    let cases = std::env::var("HYBRIDLAB_FUZZ_CASES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(300);
    let work = tempfile::tempdir().unwrap();
    let s = run(&config(cases, 7, work.path()), &|id: &str| id.to_string());
    assert_eq!(s.indices.len() as u64, cases);
    assert!(s.lab_errors.is_empty(), "{:?}", s.lab_errors.first());
    assert!(
        s.faulty > 0 && s.faulty < cases,
        "both healthy and faulty cases drawn"
    );
    let listed: Vec<String> = s
        .disagreements
        .iter()
        .map(|d| format!("case {}: {} ({})", d.index, d.reason, d.shrunk.describe()))
        .collect();
    assert!(listed.is_empty(), "disagreements:\n{}", listed.join("\n"));
}

#[test]
fn a_flipped_rule_is_caught_and_shrunk() {
    let work = tempfile::tempdir().unwrap();
    // the broken rule: the key-less twin is reported as a certificate without a private key
    let flip = |id: &str| {
        if id == "cert-keyless-duplicate" {
            "cert-missing-private-key".to_string()
        } else {
            id.to_string()
        }
    };
    let s = run(&config(40, 7, work.path()), &flip);
    let d = s.disagreements.first().expect("the flipped rule is caught");
    assert_eq!(d.shrunk.twin, Twin::KeylessFirst, "{d:?}");
    assert_eq!(d.shrunk.injected(), vec!["cert-keyless-duplicate"], "{d:?}");
    assert!(
        !d.shrunk.fqdn_host && d.shrunk.throttled_attempts == 0,
        "{d:?}"
    );
    // the shrunk scenario is an ordinary catalogue file: it loads, and fails the flipped rule's
    // expectation only through the flip (the real diagnosis meets it)
    let file = work.path().join("shrunk.toml");
    std::fs::write(&file, d.toml(7)).unwrap();
    let r = harness::scenario::run_file(&file, None);
    assert_eq!(
        r.outcome,
        harness::scenario::ScenarioOutcome::Reproduced,
        "{:?}",
        r.error
    );
}

#[test]
fn a_lab_that_cannot_run_is_an_error_not_a_disagreement() {
    let work = tempfile::tempdir().unwrap();
    let gone = work.path().join("missing");
    let s = run(&config(3, 7, &gone), &|id: &str| id.to_string());
    assert!(s.disagreements.is_empty(), "{:?}", s.disagreements.first());
    assert_eq!(s.lab_errors.len(), 3);
    assert!(
        s.lab_errors[0].1.contains("cannot write"),
        "{:?}",
        s.lab_errors[0]
    );
}
