//! What a scenario file may name on the file system (issue 12): its `id` becomes a folder under
//! `--out`, and `extend` reads another file.
//!
//! - `[scenario] id`: letters, digits, `.`, `_` and `-` only, not `.` or `..` and no `..` in it,
//!   so the artefacts of a run stay inside `--out`.
//! - `extend`: a `.toml` file inside the scenario tree (the folder above the scenario's own
//!   folder, as `../base/hybrid-cert.toml` is, or the lab's catalogue `scenarios/`); anything
//!   else is refused before it is read, and the error names the path only, never the file's
//!   contents.

use std::path::{Path, PathBuf};

/// Checks a scenario id; the message says what is allowed.
pub(super) fn check_id(id: &str) -> Result<(), String> {
    let allowed = |c: char| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-');
    if id.is_empty() || !id.chars().all(allowed) || id.contains("..") || id == "." {
        return Err(format!(
            "field `id`: {id:?} must be letters, digits, `.`, `_` and `-` only, without `..` \
             (it names the run's folder under --out)"
        ));
    }
    Ok(())
}

/// The folders `extend` may read from for the scenario file `scenario`.
fn roots(scenario: &Path) -> Vec<PathBuf> {
    let mut roots = Vec::new();
    let canon = scenario
        .canonicalize()
        .unwrap_or_else(|_| scenario.to_path_buf());
    if let Some(dir) = canon.parent() {
        roots.push(dir.parent().unwrap_or(dir).to_path_buf());
    }
    let catalogue = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../scenarios");
    if let Ok(c) = catalogue.canonicalize() {
        roots.push(c);
    }
    roots
}

/// Checks the file an `extend` of the chain of `scenario` names (already joined to the folder
/// of the file that holds the `extend`).
pub(super) fn check_extend(scenario: &Path, target: &Path) -> Result<(), String> {
    if target.extension().and_then(|e| e.to_str()) != Some("toml") {
        return Err(format!(
            "field `extend`: {} is not a .toml file",
            target.display()
        ));
    }
    // A file that does not exist is reported by the read that follows.
    let Ok(canon) = target.canonicalize() else {
        return Ok(());
    };
    let roots = roots(scenario);
    if roots.iter().any(|r| canon.starts_with(r)) {
        return Ok(());
    }
    Err(format!(
        "field `extend`: {} is outside the scenario tree ({}); a scenario extends only files \
         under it",
        target.display(),
        roots
            .first()
            .map(|r| r.display().to_string())
            .unwrap_or_default()
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids() {
        for ok in ["baseline-cert", "tls_1.2", "A9"] {
            assert!(check_id(ok).is_ok(), "{ok}");
        }
        for bad in ["", ".", "..", "a..b", "../x", "a/b", "a b", "é", "a\\b"] {
            assert!(check_id(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn extend_stays_in_the_tree() {
        let dir = tempfile::tempdir().unwrap();
        let tree = dir.path().join("tree");
        std::fs::create_dir_all(tree.join("tls")).unwrap();
        std::fs::create_dir_all(tree.join("base")).unwrap();
        let scenario = tree.join("tls/s.toml");
        std::fs::write(&scenario, "").unwrap();
        std::fs::write(tree.join("base/b.toml"), "").unwrap();
        let outside = dir.path().join("secret.toml");
        std::fs::write(&outside, "password = \"s3cr3t\"").unwrap();
        assert!(check_extend(&scenario, &tree.join("tls/../base/b.toml")).is_ok());
        let err = check_extend(&scenario, &tree.join("tls/../../secret.toml")).unwrap_err();
        assert!(err.contains("outside the scenario tree"), "{err}");
        assert!(!err.contains("s3cr3t"));
        assert!(check_extend(&scenario, Path::new("/etc/passwd")).is_err());
        // A symlink inside the tree to a file outside is outside.
        std::os::unix::fs::symlink(&outside, tree.join("base/link.toml")).unwrap();
        assert!(check_extend(&scenario, &tree.join("base/link.toml")).is_err());
    }
}
