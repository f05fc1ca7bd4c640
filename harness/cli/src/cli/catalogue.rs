//! Where scenarios come from when no path is given: `./scenarios` when it is there (a checkout),
//! else the catalogue embedded in the binary at build time (`build.rs`), written once per run
//! into a temporary folder with the same layout so `extend` between its files works as on disk.
//! Also: finding a scenario by id, with a "did you mean" for a near miss.

use std::path::{Path, PathBuf};

use anyhow::{Context, bail};
use harness::scenario::{Scenario, discover, load};

include!(concat!(env!("OUT_DIR"), "/catalogue.rs"));

/// A scenario catalogue folder; the embedded one lives as long as this value.
#[derive(Debug)]
pub(crate) struct Catalogue {
    root: PathBuf,
    /// The temporary copy of the embedded catalogue (removed on drop).
    _tmp: Option<tempfile::TempDir>,
}

impl Catalogue {
    /// `dir` when given; else `./scenarios` when it is a folder; else the embedded catalogue.
    pub(crate) fn open(dir: Option<&Path>) -> anyhow::Result<Self> {
        if let Some(d) = dir {
            return Ok(Self {
                root: d.to_path_buf(),
                _tmp: None,
            });
        }
        let local = Path::new("scenarios");
        if local.is_dir() {
            return Ok(Self {
                root: local.to_path_buf(),
                _tmp: None,
            });
        }
        Self::embedded()
    }

    /// The embedded catalogue, written into a new temporary folder `.../scenarios/`.
    pub(crate) fn embedded() -> anyhow::Result<Self> {
        let tmp = tempfile::Builder::new()
            .prefix("hybridlab-")
            .tempdir()
            .context("a temporary folder for the embedded scenario catalogue")?;
        let root = tmp.path().join("scenarios");
        for (rel, text) in EMBEDDED {
            let path = root.join(rel);
            if let Some(parent) = path.parent() {
                std::fs::create_dir_all(parent)
                    .with_context(|| format!("creating {}", parent.display()))?;
            }
            std::fs::write(&path, text).with_context(|| format!("writing {}", path.display()))?;
        }
        Ok(Self {
            root,
            _tmp: Some(tmp),
        })
    }

    /// The catalogue's folder.
    pub(crate) fn root(&self) -> &Path {
        &self.root
    }

    /// Whether this is the embedded copy (for messages).
    pub(crate) fn is_embedded(&self) -> bool {
        self._tmp.is_some()
    }

    /// What to call the catalogue in a message.
    pub(crate) fn describe(&self) -> String {
        if self.is_embedded() {
            "the embedded catalogue".into()
        } else {
            self.root.display().to_string()
        }
    }

    /// The scenario files of the catalogue (bases left out).
    pub(crate) fn files(&self) -> anyhow::Result<Vec<PathBuf>> {
        discover(&self.root).map_err(|e| anyhow::anyhow!("{e}"))
    }

    /// The file of the scenario `arg`: a file path, a file name without `.toml`, or an id.
    /// An unknown id is an error that suggests the nearest ids.
    pub(crate) fn find(&self, arg: &str) -> anyhow::Result<PathBuf> {
        let p = Path::new(arg);
        if p.is_file() {
            return Ok(p.to_path_buf());
        }
        let want = arg.trim_end_matches(".toml");
        let files = self.files()?;
        let by_stem: Vec<&PathBuf> = files
            .iter()
            .filter(|f| f.file_stem().is_some_and(|s| s == want))
            .collect();
        let loaded: Vec<(PathBuf, Option<Scenario>)> = if by_stem.is_empty() {
            files.iter().map(|f| (f.clone(), load(f).ok())).collect()
        } else {
            Vec::new()
        };
        let by_id: Vec<&PathBuf> = loaded
            .iter()
            .filter(|(_, s)| s.as_ref().is_some_and(|s| s.scenario.id == want))
            .map(|(f, _)| f)
            .collect();
        let found = if by_stem.is_empty() { by_id } else { by_stem };
        match found.as_slice() {
            [one] => Ok((*one).clone()),
            [] => {
                let ids: Vec<String> = loaded
                    .iter()
                    .map(|(f, s)| match s {
                        Some(s) => s.scenario.id.clone(),
                        None => stem(f),
                    })
                    .collect();
                let hint = did_you_mean(want, &ids)
                    .map(|s| format!("; did you mean {s}?"))
                    .unwrap_or_else(|| "; `hybridlab list` shows the ids".into());
                bail!(
                    "no scenario `{arg}` in {} (and no such file){hint}",
                    self.describe()
                )
            }
            many => bail!(
                "`{arg}` names {} scenarios: {}",
                many.len(),
                many.iter()
                    .map(|p| p.display().to_string())
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
        }
    }
}

fn stem(f: &Path) -> String {
    f.file_stem()
        .map(|s| s.to_string_lossy().into_owned())
        .unwrap_or_default()
}

/// Up to three of `ids` close to `want` (Jaro-Winkler similarity, or `want` contained in the
/// id), best first, as "`a`, `b` or `c`".
pub(crate) fn did_you_mean(want: &str, ids: &[String]) -> Option<String> {
    let w = want.to_ascii_lowercase();
    let mut scored: Vec<(f64, &String)> = ids
        .iter()
        .map(|id| {
            let l = id.to_ascii_lowercase();
            let mut score = strsim::jaro_winkler(&w, &l);
            if w.len() >= 3 && l.contains(&w) {
                score = score.max(0.95);
            }
            (score, id)
        })
        .filter(|(s, _)| *s >= 0.8)
        .collect();
    scored.sort_by(|a, b| b.0.total_cmp(&a.0).then_with(|| a.1.cmp(b.1)));
    scored.dedup_by(|a, b| a.1 == b.1);
    let names: Vec<String> = scored
        .iter()
        .take(3)
        .map(|(_, id)| format!("`{id}`"))
        .collect();
    match names.as_slice() {
        [] => None,
        [one] => Some(one.clone()),
        [init @ .., last] => Some(format!("{} or {last}", init.join(", "))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn near_misses_are_suggested_and_far_ones_are_not() {
        let ids = vec![
            "fm01-keyless-twin-first".to_string(),
            "fm01-keyless-twin-last".to_string(),
            "healthy-ip-attributed".to_string(),
        ];
        let s = did_you_mean("fm01-keyles-twin-first", &ids).unwrap();
        assert!(s.starts_with("`fm01-keyless-twin-first`"), "{s}");
        assert_eq!(
            did_you_mean("healthy-ip", &ids).as_deref(),
            Some("`healthy-ip-attributed`")
        );
        assert_eq!(did_you_mean("zzzz", &ids), None);
    }

    #[test]
    fn the_embedded_catalogue_has_bases_and_extends_work() {
        assert!(EMBEDDED.iter().any(|(p, _)| p.starts_with("base/")));
        let c = Catalogue::embedded().unwrap();
        let files = c.files().unwrap();
        assert!(files.len() > 10, "{files:?}");
        let f = c.find("healthy-ip-attributed").unwrap();
        let s = load(&f).unwrap();
        assert_eq!(s.scenario.id, "healthy-ip-attributed");
        assert!(!s.scenario.title.is_empty());
    }
}
