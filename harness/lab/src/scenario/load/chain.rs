//! The `extend` chain: reading the files from the scenario down to its last base, parsing each
//! into a spanned tree whose spans index the chain's virtual text, and merging the trees base
//! first (tables merge key by key, arrays and scalars replace, an empty string removes the key
//! the base set).

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use toml::Spanned;
use toml::de::{DeTable, DeValue};

use super::locate::{ScenarioError, Sources};

/// How deep `extend` chains may go.
const MAX_EXTEND_DEPTH: usize = 8;

/// The files of `path`'s chain with their text, the last base first and `path` last.
///
/// # Errors
/// A file cannot be read or is not TOML, `extend` is not a string, the chain is too deep or
/// comes back to a file already in it.
pub(super) fn read_chain(path: &Path) -> Result<Vec<(PathBuf, String)>, ScenarioError> {
    let mut chain: Vec<(PathBuf, String)> = Vec::new();
    let mut seen: BTreeSet<PathBuf> = BTreeSet::new();
    let mut next = Some(path.to_path_buf());
    while let Some(p) = next.take() {
        if chain.len() > MAX_EXTEND_DEPTH {
            return Err(ScenarioError::new(
                path,
                format!("`extend` chain deeper than {MAX_EXTEND_DEPTH} files"),
            ));
        }
        let canon = p.canonicalize().unwrap_or_else(|_| p.clone());
        if !seen.insert(canon) {
            let from = chain.last().map(|(f, _)| f.clone()).unwrap_or_default();
            return Err(ScenarioError::new(
                &from,
                format!("`extend` cycle: {} is already in the chain", p.display()),
            ));
        }
        let text = read_link(path, &chain, &p)?;
        if let Some(rel) = extend_of(path, &p, &text)? {
            next = Some(p.parent().unwrap_or(Path::new(".")).join(&rel));
        }
        chain.push((p, text));
    }
    chain.reverse();
    Ok(chain)
}

/// The text of `p`, the next file of the chain read so far (the scenario file `path` first).
fn read_link(path: &Path, chain: &[(PathBuf, String)], p: &Path) -> Result<String, ScenarioError> {
    std::fs::read_to_string(p).map_err(|e| {
        let from = chain.last().map(|(f, _)| f.as_path()).unwrap_or(path);
        if chain.is_empty() {
            ScenarioError::new(p, format!("cannot read: {e}"))
        } else {
            ScenarioError::new(
                from,
                format!(
                    "extend = {:?}: cannot read {}: {e}",
                    p.display(),
                    p.display()
                ),
            )
        }
    })
}

/// The file's `extend = "..."`, relative to the file.
fn extend_of(scenario: &Path, p: &Path, text: &str) -> Result<Option<String>, ScenarioError> {
    let mut one = Sources::default();
    one.push(p.to_path_buf(), text);
    let tree = parse(&one, 0)?;
    match tree.get_ref().get("extend") {
        None => Ok(None),
        Some(v) => match v.get_ref() {
            DeValue::String(s) => {
                let target = p.parent().unwrap_or(Path::new(".")).join(s.as_ref());
                super::safety::check_extend(scenario, &target)
                    .map_err(|m| one.error_span(Some(v.span()), m))?;
                Ok(Some(s.to_string()))
            }
            _ => Err(one.error_span(
                Some(v.span()),
                "field `extend`: expected a path (string) relative to this file",
            )),
        },
    }
}

/// Every file of `sources` parsed and merged, base first, `extend` keys removed.
///
/// # Errors
/// A file is not TOML, or there is no file.
pub(super) fn merge_chain<'s>(
    sources: &'s Sources,
    path: &Path,
) -> Result<Spanned<DeTable<'s>>, ScenarioError> {
    let mut merged: Option<Spanned<DeTable<'_>>> = None;
    for id in 0..sources.files.len() {
        let mut tree = parse(sources, id)?;
        tree.get_mut().remove("extend");
        merged = Some(match merged {
            None => tree,
            Some(mut base) => {
                let span = tree.span();
                merge_tables(base.get_mut(), tree.into_inner());
                Spanned::new(span, base.into_inner())
            }
        });
    }
    merged.ok_or_else(|| ScenarioError::new(path, "empty extend chain"))
}

/// Parses file `id` of `sources` into a tree whose spans index the virtual text.
pub(super) fn parse(sources: &Sources, id: usize) -> Result<Spanned<DeTable<'_>>, ScenarioError> {
    let offset = sources.files[id].offset;
    let tree = DeTable::parse(sources.file_text(id)).map_err(|e| {
        sources.error_span(
            e.span().map(|s| s.start + offset..s.end + offset),
            e.message().trim().to_string(),
        )
    })?;
    let span = tree.span();
    let table = shift_table(tree.into_inner(), offset);
    Ok(Spanned::new(span.start + offset..span.end + offset, table))
}

fn shift_table(t: DeTable<'_>, off: usize) -> DeTable<'_> {
    t.into_iter()
        .map(|(k, v)| {
            let ks = k.span();
            (
                Spanned::new(ks.start + off..ks.end + off, k.into_inner()),
                shift_value(v, off),
            )
        })
        .collect()
}

fn shift_value(v: Spanned<DeValue<'_>>, off: usize) -> Spanned<DeValue<'_>> {
    let s = v.span();
    let inner = match v.into_inner() {
        DeValue::Table(t) => DeValue::Table(shift_table(t, off)),
        DeValue::Array(mut a) => {
            for item in a.iter_mut() {
                let taken = std::mem::replace(item, Spanned::new(0..0, DeValue::Boolean(false)));
                *item = shift_value(taken, off);
            }
            DeValue::Array(a)
        }
        other => other,
    };
    Spanned::new(s.start + off..s.end + off, inner)
}

/// Tables merge key by key; anything else replaces; an empty string removes what the base set
/// (`tls_auth_level = ""` unsets an inherited TlsAuthLevel).
pub(super) fn merge_tables<'a>(base: &mut DeTable<'a>, overlay: DeTable<'a>) {
    for (k, v) in overlay {
        if matches!(v.get_ref(), DeValue::String(s) if s.is_empty()) && base.contains_key(&k) {
            base.remove(&k);
            continue;
        }
        let both_tables = matches!(v.get_ref(), DeValue::Table(_))
            && matches!(base.get(&k).map(|b| b.get_ref()), Some(DeValue::Table(_)));
        if both_tables && let Some(mut existing) = base.remove(&k) {
            let span = v.span();
            if let (DeValue::Table(bt), DeValue::Table(ot)) = (existing.get_mut(), v.into_inner()) {
                merge_tables(bt, ot);
            }
            base.insert(k, Spanned::new(span, existing.into_inner()));
            continue;
        }
        base.remove(&k);
        base.insert(k, v);
    }
}

#[cfg(test)]
mod tests {
    use serde::Deserialize;

    use super::*;

    #[test]
    fn merge_replaces_arrays_merges_tables_and_unsets_with_empty_strings() {
        let mut src = Sources::default();
        let a = src.push(
            "base.toml".into(),
            "[t]\nx = 1\ny = \"keep\"\nz = \"drop\"\nlist = [1, 2]\n",
        );
        let b = src.push("top.toml".into(), "[t]\nx = 2\nz = \"\"\nlist = [3]\n");
        let mut base = parse(&src, a).unwrap();
        let top = parse(&src, b).unwrap();
        merge_tables(base.get_mut(), top.into_inner());
        #[derive(Deserialize)]
        struct T {
            x: i64,
            y: String,
            z: Option<String>,
            list: Vec<i64>,
        }
        #[derive(Deserialize)]
        struct Root {
            t: T,
        }
        let r = Root::deserialize(toml::de::Deserializer::from(base)).unwrap();
        assert_eq!(
            (r.t.x, r.t.y.as_str(), r.t.z, r.t.list),
            (2, "keep", None, vec![3])
        );
        // a span in the second file maps to that file
        let e = src.error_at(src.files[1].offset + 4, "x");
        assert_eq!(e.file, Path::new("top.toml"));
        assert_eq!((e.line, e.column), (Some(2), Some(1)));
    }
}
