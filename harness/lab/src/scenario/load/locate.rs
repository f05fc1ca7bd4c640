//! Locating errors: the scenario files of a chain as one virtual text, so that a span in the
//! merged tree maps back to one file, line and column; key paths (`changes[1].at`) and the
//! "did you mean" suggestion for a misspelt key.

use std::ops::Range;
use std::path::{Path, PathBuf};

/// A scenario that cannot be used: where and why.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{}", self.render())]
pub struct ScenarioError {
    /// The file the problem is in (a base the scenario extends when the problem is there).
    pub file: PathBuf,
    /// 1-based line of the offending key or value, when the problem has a place in the file.
    pub line: Option<usize>,
    /// 1-based column of the offending key or value, counted in characters, when known.
    pub column: Option<usize>,
    /// What is wrong and what is expected.
    pub message: String,
}

impl ScenarioError {
    /// An error about `file` as a whole (no line or column).
    pub(super) fn new(file: &Path, message: impl Into<String>) -> Self {
        Self {
            file: file.to_path_buf(),
            line: None,
            column: None,
            message: message.into(),
        }
    }

    fn render(&self) -> String {
        let mut s = self.file.display().to_string();
        if let Some(l) = self.line {
            s.push_str(&format!(":{l}"));
            if let Some(c) = self.column {
                s.push_str(&format!(":{c}"));
            }
        }
        format!("{s}: {}", self.message)
    }
}

/// One file of an `extend` chain inside the virtual text.
#[derive(Debug)]
pub(super) struct SourceFile {
    /// The file as the chain named it.
    pub(super) path: PathBuf,
    /// Where its text starts in [`Sources::text`].
    pub(super) offset: usize,
    /// The length of its text in bytes (without the newline that separates it from the next).
    pub(super) len: usize,
}

/// All the files of a chain, one after the other.
#[derive(Debug, Default)]
pub(super) struct Sources {
    /// Every file's text, each followed by a newline.
    pub(super) text: String,
    /// The files in the order they were pushed (base first).
    pub(super) files: Vec<SourceFile>,
}

impl Sources {
    /// Appends a file's text; gives its index in [`Self::files`].
    pub(super) fn push(&mut self, path: PathBuf, text: &str) -> usize {
        let offset = self.text.len();
        self.text.push_str(text);
        self.text.push('\n');
        self.files.push(SourceFile {
            path,
            offset,
            len: text.len(),
        });
        self.files.len() - 1
    }

    /// The text of file `id`.
    pub(super) fn file_text(&self, id: usize) -> &str {
        let f = &self.files[id];
        &self.text[f.offset..f.offset + f.len]
    }

    /// The error for `message` at virtual offset `at`.
    pub(super) fn error_at(&self, at: usize, message: impl Into<String>) -> ScenarioError {
        let file = self
            .files
            .iter()
            .rev()
            .find(|f| f.offset <= at)
            .or(self.files.first());
        let Some(file) = file else {
            return ScenarioError::new(Path::new("<scenario>"), message);
        };
        let local = at.saturating_sub(file.offset).min(file.len);
        let text = &self.text[file.offset..file.offset + file.len];
        let before = &text[..floor_char_boundary(text, local)];
        let line = before.matches('\n').count() + 1;
        let line_start = before.rfind('\n').map(|i| i + 1).unwrap_or(0);
        let column = before[line_start..].chars().count() + 1;
        ScenarioError {
            file: file.path.clone(),
            line: Some(line),
            column: Some(column),
            message: message.into(),
        }
    }

    /// The error for `message` at the start of `span`, or about the scenario file as a whole
    /// when there is no span.
    pub(super) fn error_span(
        &self,
        span: Option<Range<usize>>,
        message: impl Into<String>,
    ) -> ScenarioError {
        match span {
            Some(s) => self.error_at(s.start, message),
            None => {
                let path = self
                    .files
                    .last()
                    .map(|f| f.path.clone())
                    .unwrap_or_default();
                ScenarioError::new(&path, message)
            }
        }
    }

    /// The error for `message` at the first line and column of the scenario file itself (the
    /// last of the chain): for something missing from the whole file.
    pub(super) fn error_at_top(&self, message: impl Into<String>) -> ScenarioError {
        match self.files.last() {
            Some(f) => self.error_at(f.offset, message),
            None => ScenarioError::new(Path::new("<scenario>"), message),
        }
    }
}

fn floor_char_boundary(s: &str, mut i: usize) -> usize {
    while i > 0 && !s.is_char_boundary(i) {
        i -= 1;
    }
    i
}

/// A step of a key path.
#[derive(Debug, Clone)]
pub(super) enum Seg {
    /// A table key.
    Key(String),
    /// An index into an array (`[1]`).
    Index(usize),
}

/// `tenants[0].inbound_connectors[1].name` -> segments.
pub(super) fn parse_path(path: &str) -> Vec<Seg> {
    let mut out = Vec::new();
    for part in path.split('.') {
        let mut rest = part;
        if let Some(i) = rest.find('[') {
            out.push(Seg::Key(rest[..i].to_string()));
            rest = &rest[i..];
            while let Some(r) = rest.strip_prefix('[') {
                let Some(end) = r.find(']') else { break };
                if let Ok(n) = r[..end].parse() {
                    out.push(Seg::Index(n));
                }
                rest = &r[end + 1..];
            }
        } else if !rest.is_empty() {
            out.push(Seg::Key(rest.to_string()));
        }
    }
    out
}

/// `unknown field `requre_tls`, expected one of ...` gets `; did you mean `require_tls`?`.
pub(super) fn with_suggestion(message: &str) -> String {
    let (Some(rest), Some(list)) = (
        message
            .strip_prefix("unknown field `")
            .or_else(|| message.strip_prefix("unknown variant `")),
        message.split_once("expected one of ").map(|(_, l)| l),
    ) else {
        return message.to_string();
    };
    let Some(bad) = rest.split('`').next() else {
        return message.to_string();
    };
    let best = list
        .split(", ")
        .map(|o| o.trim_matches('`'))
        .map(|o| {
            (
                edit_distance(&bad.to_ascii_lowercase(), &o.to_ascii_lowercase()),
                o,
            )
        })
        .min();
    match best {
        Some((d, o)) if d <= 3 && d < bad.len() => format!("{message}; did you mean `{o}`?"),
        _ => message.to_string(),
    }
}

fn edit_distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut prev: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut cur = vec![i + 1; b.len() + 1];
        for (j, cb) in b.iter().enumerate() {
            let sub = prev[j] + usize::from(ca != *cb);
            cur[j + 1] = sub.min(prev[j + 1] + 1).min(cur[j] + 1);
        }
        prev = cur;
    }
    prev[b.len()]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn suggestions() {
        let m = "unknown field `requre_tls`, expected one of `require_tls`, `port`";
        assert!(with_suggestion(m).ends_with("did you mean `require_tls`?"));
        let m = "unknown variant `atributed`, expected one of `attributed`, `unattributed`";
        assert!(with_suggestion(m).ends_with("did you mean `attributed`?"));
        let m = "unknown field `zzz`, expected one of `require_tls`, `port`";
        assert_eq!(with_suggestion(m), m);
        assert_eq!(edit_distance("kitten", "sitting"), 3);
    }

    #[test]
    fn key_paths() {
        let p = parse_path("eop.tenants[0].inbound_connectors[1].name");
        assert_eq!(p.len(), 6);
        assert!(matches!(&p[2], Seg::Index(0)));
        assert!(matches!(&p[5], Seg::Key(k) if k == "name"));
    }

    #[test]
    fn the_top_of_the_scenario_file_is_its_first_line() {
        let mut src = Sources::default();
        src.push("base.toml".into(), "[t]\nx = 1\n");
        src.push("top.toml".into(), "y = 2\n");
        let e = src.error_at_top("missing");
        assert_eq!(e.file, Path::new("top.toml"));
        assert_eq!((e.line, e.column), (Some(1), Some(1)));
    }
}
