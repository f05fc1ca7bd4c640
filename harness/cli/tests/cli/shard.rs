//! `hybridlab run --shard I/N`: the shards of the catalogue are disjoint and together run every
//! scenario of the unsharded run exactly once (what a CI matrix relies on).

use std::collections::BTreeSet;
use std::process::Command;

fn ids(args: &[&str]) -> Vec<String> {
    let out = Command::new(env!("CARGO_BIN_EXE_hybridlab"))
        .current_dir(concat!(env!("CARGO_MANIFEST_DIR"), "/../.."))
        .args(["run", "--format", "json", "--filter", "baseline"])
        .args(args)
        .output()
        .expect("hybridlab runs");
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).expect("JSON");
    v["results"]
        .as_array()
        .expect("results")
        .iter()
        .map(|r| r["id"].as_str().expect("id").to_string())
        .collect()
}

#[test]
fn shards_partition_the_selected_scenarios() {
    let all: BTreeSet<String> = ids(&[]).into_iter().collect();
    assert!(all.len() >= 3, "the baseline folder has several scenarios");
    let mut seen = BTreeSet::new();
    for i in 1..=3 {
        let shard = ids(&["--shard", &format!("{i}/3")]);
        assert!(!shard.is_empty(), "shard {i}/3 is empty");
        for id in shard {
            assert!(seen.insert(id.clone()), "{id} ran in two shards");
        }
    }
    assert_eq!(seen, all);
}

#[test]
fn a_bad_shard_is_a_usage_error() {
    for bad in ["0/3", "4/3", "x", "1/0"] {
        let out = Command::new(env!("CARGO_BIN_EXE_hybridlab"))
            .current_dir(concat!(env!("CARGO_MANIFEST_DIR"), "/../.."))
            .args(["run", "--filter", "baseline", "--shard", bad])
            .output()
            .expect("hybridlab runs");
        assert_eq!(out.status.code(), Some(2), "--shard {bad}");
    }
}
