//! The engine never panics on damaged input and always ranks errors before warnings: sample
//! bundles with files cut short, bytes flipped and lines dropped (seeded, bounded).

use std::path::PathBuf;

use hybridlab_artefacts::ArtefactReader;
use hybridlab_diagnose::{Options, Severity, diagnose};
use proptest::prelude::*;

fn bundle_files() -> Vec<Vec<(String, Vec<u8>)>> {
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/samples");
    let mut dirs: Vec<PathBuf> = std::fs::read_dir(root)
        .unwrap()
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.is_dir())
        .collect();
    dirs.sort();
    dirs.iter()
        .map(|d| {
            let mut files = Vec::new();
            collect_files(d, "", &mut files);
            files.sort();
            files
        })
        // The empty-folder bundle has nothing to damage.
        .filter(|files: &Vec<(String, Vec<u8>)>| !files.is_empty())
        .collect()
}

/// Every file under `dir` but `expected.toml`, named by its path below the bundle (bundles may
/// hold per-server sub-folders).
fn collect_files(dir: &std::path::Path, prefix: &str, out: &mut Vec<(String, Vec<u8>)>) {
    for e in std::fs::read_dir(dir).unwrap().filter_map(Result::ok) {
        let p = e.path();
        let name = format!("{prefix}{}", p.file_name().unwrap().to_string_lossy());
        if p.is_dir() {
            collect_files(&p, &format!("{name}/"), out);
        } else if name != "expected.toml" {
            out.push((name, std::fs::read(&p).unwrap()));
        }
    }
}

#[derive(Debug, Clone)]
enum Damage {
    Truncate(usize),
    Flip(usize, u8),
    DropLine(usize),
}

fn apply(bytes: &[u8], d: &Damage) -> Vec<u8> {
    match d {
        Damage::Truncate(p) => bytes[..(*p % (bytes.len() + 1))].to_vec(),
        Damage::Flip(p, b) if !bytes.is_empty() => {
            let mut v = bytes.to_vec();
            let i = *p % v.len();
            v[i] ^= b | 1;
            v
        }
        Damage::DropLine(n) => {
            let lines: Vec<&[u8]> = bytes.split(|c| *c == b'\n').collect();
            let skip = *n % lines.len().max(1);
            lines
                .iter()
                .enumerate()
                .filter(|(i, _)| *i != skip)
                .flat_map(|(_, l)| l.iter().copied().chain(std::iter::once(b'\n')))
                .collect()
        }
        Damage::Flip(..) => bytes.to_vec(),
    }
}

fn damage() -> impl Strategy<Value = Damage> {
    prop_oneof![
        any::<usize>().prop_map(Damage::Truncate),
        (any::<usize>(), any::<u8>()).prop_map(|(p, b)| Damage::Flip(p, b)),
        any::<usize>().prop_map(Damage::DropLine),
    ]
}

proptest! {
    // Seeded: the same 96 cases on every run.
    #![proptest_config(ProptestConfig {
        cases: 96,
        failure_persistence: None,
        rng_seed: proptest::test_runner::RngSeed::Fixed(0x5eed_d1a9),
        ..ProptestConfig::default()
    })]

    #[test]
    fn damaged_bundles_diagnose_without_panicking(
        bundle in any::<prop::sample::Index>(),
        damages in prop::collection::vec((any::<prop::sample::Index>(), damage()), 1..6),
    ) {
        let all = bundle_files();
        let mut files = all[bundle.index(all.len())].clone();
        for (which, d) in &damages {
            let i = which.index(files.len());
            files[i].1 = apply(&files[i].1, d);
        }
        let mut r = ArtefactReader::new();
        for (name, bytes) in &files {
            r.add_bytes(name, bytes);
        }
        let report = diagnose(&r.finish(), &Options::default());
        // Ranked: severities never go back up.
        let sev: Vec<Severity> = report.findings.iter().map(|f| f.severity).collect();
        prop_assert!(sev.windows(2).all(|w| w[0] <= w[1]), "{:?}", report.ids());
        for f in &report.findings {
            prop_assert!(!f.evidence.is_empty() && !f.fix.is_empty());
        }
        // And renders.
        let _ = hybridlab_diagnose::render::human(&report, true);
        let _ = hybridlab_diagnose::render::json(&report);
        let _ = hybridlab_diagnose::render::markdown(&report);
    }
}
