//! Loading scenario files: TOML with spans, `extend` chains, and validation whose errors name the
//! file, line and column of the offending key and say what is expected.
//!
//! How `extend` works: each file of the chain is parsed on its own into a spanned tree; the spans
//! are shifted so that they index one virtual text made of all the files one after the other; the
//! trees are merged (base first: tables merge key by key, arrays and scalars replace, an empty
//! string removes the key the base set); serde reads
//! the merged tree. A span in any error therefore maps back to exactly one file, line and column.
//!
//! - `locate`: the virtual text, [`ScenarioError`] and key paths;
//! - `chain`: reading, parsing and merging the `extend` chain;
//! - `preprocess`: the scenario-level keys the reused types do not know, taken out of the tree;
//! - `validate` and `changes`: the checks serde cannot make, each error at its key;
//! - `safety`: what an `id` and an `extend` may name on the file system.

mod chain;
mod changes;
mod exo;
mod locate;
mod preprocess;
mod safety;
mod validate;

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use serde::Deserialize;

use super::exo::model::Direction;
use super::model::Scenario;
use hybridlab_onprem::certstore::AuthorityDescription;
pub use locate::ScenarioError;
use locate::{Sources, with_suggestion};
use preprocess::Preprocessed;
use validate::Validator;

/// Loads, merges, checks and validates a scenario file.
///
/// # Errors
/// The file (or a base it extends) cannot be read, is not TOML, has an unknown key or a value of
/// the wrong shape, names a certificate or authority that does not exist, states no expectation
/// (an empty or missing `[expect]`) or asks for something impossible. The error names the file, line and column.
pub fn load(path: &Path) -> Result<Scenario, ScenarioError> {
    let chain = chain::read_chain(path)?;
    let mut sources = Sources::default();
    for (p, text) in &chain {
        sources.push(p.clone(), text);
    }
    let mut merged = chain::merge_chain(&sources, path)?;
    let pre = preprocess::preprocess(&sources, merged.get_mut())?;
    let tree_for_lookup = merged.clone();
    let mut scenario: Scenario = Scenario::deserialize(toml::de::Deserializer::from(merged))
        .map_err(|e| sources.error_span(e.span(), with_suggestion(e.message().trim())))?;
    scenario.source.path = path.to_path_buf();
    scenario.source.chain = chain.into_iter().map(|(p, _)| p).collect();
    apply_preprocessed(&mut scenario, &pre);
    if scenario.scenario.id.trim().is_empty() {
        scenario.scenario.id = path
            .file_stem()
            .map(|s| s.to_string_lossy().into_owned())
            .unwrap_or_else(|| "scenario".into());
    }
    let v = Validator {
        sources: &sources,
        tree: tree_for_lookup.get_ref(),
    };
    match scenario.scenario.direction {
        Direction::OnpremToExo => v.validate(&mut scenario, &pre)?,
        Direction::ExoToOnprem => {
            v.validate_exo(&mut scenario, &pre)?;
            let tag = Direction::ExoToOnprem.as_str();
            if !scenario.scenario.tags.iter().any(|t| t == tag) {
                scenario.scenario.tags.push(tag.to_string());
            }
        }
    }
    Ok(scenario)
}

/// Puts what the preprocessing took out of the tree into the scenario serde read.
fn apply_preprocessed(scenario: &mut Scenario, pre: &Preprocessed) {
    scenario.source.tls_certificate_ref = pre.cert_ref.as_ref().map(|(n, _)| n.clone());
    if let Some(c) = pre.certificate_cache {
        scenario.onprem.certificate_cache = c;
    }
    scenario.onprem.not_installed = pre
        .not_installed
        .iter()
        .filter_map(|&i| scenario.onprem.certificates.get(i).map(|c| c.name.clone()))
        .collect();
    for (i, (name, _)) in &pre.change_cert_refs {
        if let Some(c) = scenario
            .changes
            .get_mut(*i)
            .and_then(|c| c.set_send_connector.as_mut())
        {
            c.certificate = Some(name.clone());
        }
    }
    for (i, (name, _)) in &pre.change_receive_cert_refs {
        if let Some(c) = scenario
            .changes
            .get_mut(*i)
            .and_then(|c| c.set_receive_connector.as_mut())
        {
            c.certificate = Some(name.clone());
        }
    }
    if let Some(r) = scenario.receive.as_mut() {
        r.connector_certificates = pre
            .receive_cert_refs
            .iter()
            .map(|(i, (n, _))| (*i, n.clone()))
            .collect();
    }
}

/// Authorities in an order where every parent comes before its children.
pub fn authorities_in_order(
    auths: &BTreeMap<String, AuthorityDescription>,
) -> Vec<AuthorityDescription> {
    let mut out: Vec<AuthorityDescription> = Vec::new();
    let mut placed: BTreeSet<&str> = BTreeSet::new();
    for _ in 0..=auths.len() {
        for (name, a) in auths {
            if placed.contains(name.as_str()) {
                continue;
            }
            if a.issuer.as_deref().is_none_or(|p| placed.contains(p)) {
                placed.insert(name);
                out.push(a.clone());
            }
        }
    }
    out
}

/// Every `*.toml` file under `path` (or `path` itself), sorted, skipping `README`s and folders
/// named `base` (files meant to be extended, not run).
///
/// # Errors
/// `path` does not exist or cannot be read.
pub fn discover(path: &Path) -> Result<Vec<PathBuf>, ScenarioError> {
    let meta = std::fs::metadata(path)
        .map_err(|e| ScenarioError::new(path, format!("cannot read: {e}")))?;
    if meta.is_file() {
        return Ok(vec![path.to_path_buf()]);
    }
    let mut out = Vec::new();
    let mut stack = vec![path.to_path_buf()];
    let mut visited = 0usize;
    while let Some(dir) = stack.pop() {
        visited += 1;
        if visited > 10_000 {
            break;
        }
        let entries = std::fs::read_dir(&dir)
            .map_err(|e| ScenarioError::new(&dir, format!("cannot read: {e}")))?;
        for e in entries.flatten() {
            let p = e.path();
            let name = e.file_name().to_string_lossy().into_owned();
            if p.is_dir() {
                if name != "base" && !name.starts_with('.') {
                    stack.push(p);
                }
            } else if name.ends_with(".toml") {
                out.push(p);
            }
        }
    }
    out.sort();
    Ok(out)
}
