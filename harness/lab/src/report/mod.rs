//! Reports on scenario runs: the verdict table for people ([`table`]), JSON ([`json`]), JUnit XML
//! for CI ([`junit`]), the narrated replay ([`explain`]) and the SVG sequence diagram ([`svg`]);
//! [`exo`] does the last three for the Exchange Online -> on-premises direction.

pub mod exo;
pub mod explain;
pub mod json;
pub mod junit;
pub mod svg;
pub mod table;
mod words;

use std::path::{Path, PathBuf};

use crate::scenario::{Replay, Scenario};
use hybridlab_artefacts::bundle::BundleOptions;

/// Writes every artefact of `r` (and `svg`, the picture) into `dir`, returning the files written.
///
/// # Errors
/// A file cannot be written.
pub fn write_scenario_dir(
    dir: &Path,
    s: &Scenario,
    r: &Replay,
    svg: &str,
) -> std::io::Result<Vec<PathBuf>> {
    let mut written = r
        .bundle
        .write_to(dir, &BundleOptions::default())
        .map_err(std::io::Error::other)?;
    for (name, text) in [
        (
            "transcript.txt",
            explain::narrate(s, r, &explain::Style::plain()),
        ),
        ("sequence.svg", svg.to_string()),
    ] {
        let p = dir.join(name);
        std::fs::write(&p, text)?;
        written.push(p);
    }
    Ok(written)
}
