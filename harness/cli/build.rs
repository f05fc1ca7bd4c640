//! Embeds the scenario catalogue (`scenarios/**/*.toml`) in the `hybridlab` binary, so `run`,
//! `explain`, `list` and `receive --scenario` work outside a checkout (`cargo install`).
//!
//! Writes `$OUT_DIR/catalogue.rs`: `static EMBEDDED: &[(&str, &str)]`, each entry the file's path
//! relative to `scenarios/` (with `/`) and its text through `include_str!`, sorted by path.

use std::path::{Path, PathBuf};

fn main() {
    let manifest = PathBuf::from(std::env::var_os("CARGO_MANIFEST_DIR").expect("cargo sets it"));
    let root = manifest.join("../../scenarios");
    println!("cargo:rerun-if-changed={}", root.display());
    let mut files = Vec::new();
    if root.is_dir() {
        collect(&root, &root, &mut files);
    }
    files.sort();
    let mut out = String::from("/// The embedded catalogue: (path under `scenarios/`, text).\n");
    out.push_str("static EMBEDDED: &[(&str, &str)] = &[\n");
    for (rel, abs) in &files {
        out.push_str(&format!("    ({rel:?}, include_str!({abs:?})),\n"));
    }
    out.push_str("];\n");
    let dest =
        PathBuf::from(std::env::var_os("OUT_DIR").expect("cargo sets it")).join("catalogue.rs");
    std::fs::write(dest, out).expect("write catalogue.rs");
}

/// Every `.toml` under `dir`, as (path relative to `root` with `/`, absolute path).
fn collect(root: &Path, dir: &Path, files: &mut Vec<(String, String)>) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for e in entries.flatten() {
        let p = e.path();
        if p.is_dir() {
            collect(root, &p, files);
        } else if p.extension().is_some_and(|x| x == "toml") {
            let rel = p.strip_prefix(root).expect("under root");
            let rel = rel
                .components()
                .map(|c| c.as_os_str().to_string_lossy().into_owned())
                .collect::<Vec<_>>()
                .join("/");
            let abs = p.canonicalize().unwrap_or(p.clone());
            files.push((rel, abs.to_string_lossy().into_owned()));
        }
    }
}
